"""The stylizer (brushwork.stylizer): plans from sizes alone, prepares styles once, paints
frame after frame, takes extra loss terms, and shares nothing mutable between threads."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from conftest import save_decoder, smooth_image

from brushwork import events
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods.base import StyleTarget
from brushwork.stylizer import Controls, Stylizer, make_stylizer, scale_schedule


def stylizer(encoder: VGG19, method: str = "gatys", **values) -> Stylizer:
    return make_stylizer(method, encoder=encoder, **values)


def test_plan_from_sizes(tiny_encoder) -> None:
    s = stylizer(tiny_encoder, size=64, style_scale=0.5, iterations=10)
    plan = s.plan((640, 480), [(150, 300)])
    assert plan.content_size == (64, 48)
    assert plan.style_sizes == [(16, 32)]
    assert plan.schedule == [(64, 10)] and plan.total_steps == 10
    coarse = stylizer(tiny_encoder, size=128, start_size=32, iterations=40).plan(
        (256, 256), [(64, 64)]
    )
    assert coarse.schedule == [(32, 40), (64, 10), (128, 10)]


@pytest.mark.parametrize(
    ("values", "sizes", "message"),
    [
        ({"size": 10**9}, ((64, 64), [(64, 64)]), "size must be <= 65536"),
        ({"size": None}, ((70000, 10), [(64, 64)]), "over the 65536 px"),
        ({"style_size": 10**9}, ((64, 64), [(64, 64)]), "style-size must be <= 65536"),
        ({"style_scale": 1e300}, ((64, 64), [(64, 64)]), "style-scale must be <= 128"),
        ({"style_scale": 128, "size": 1000}, ((1000, 1000), [(64, 64)]), "over the 65536 px"),
        ({"style_scale": 100, "size": 600}, ((1000, 1000), [(64, 64)]), "GiB"),
        ({"size": 64, "style_scale": 0.01}, ((64, 64), [(64, 64)]), "smaller than the 16 px"),
        ({"size": 2048, "max_memory": 2**30}, ((64, 64), [(64, 64)]), "GiB"),
        ({"size": 256, "style_size": 20000, "max_memory": 2**30}, ((64, 64), [(64, 64)]), "GiB"),
        ({"size": 64, "start_size": 128}, ((64, 64), [(64, 64)]), "must not be larger"),
        ({"style_size": 64, "style_scale": 2.0}, ((64, 64), [(64, 64)]), "not both"),
    ],
)
def test_impossible_runs_are_refused_from_sizes(tiny_encoder, values, sizes, message) -> None:
    with pytest.raises(BrushworkError, match=message):
        stylizer(tiny_encoder, **values).plan(*sizes)


def test_coarse_to_fine_needs_an_optimization_method(tiny_encoder, tmp_path) -> None:
    model = save_decoder(tmp_path / "d.safetensors", tiny_encoder)
    s = stylizer(tiny_encoder, "adain", start_size=32, model=str(model))
    with pytest.raises(BrushworkError, match="coarse-to-fine needs an optimization method"):
        s.plan((128, 128), [(64, 64)])


def test_prepared_styles_are_encoded_once(tiny_encoder, monkeypatch) -> None:
    s = stylizer(tiny_encoder, size=32, iterations=2)
    plan = s.plan((32, 32), [(32, 32)])
    prepared = s.prepare(
        plan, [StyleTarget(smooth_image(32, 32, seed=9))], smooth_image(32, 32, seed=1)
    )
    calls = []
    original = s.method.prepare
    monkeypatch.setattr(s.method, "prepare", lambda t: calls.append(1) or original(t))
    frames = [smooth_image(32, 32, seed=seed) for seed in (1, 2, 3)]
    outputs = [s.stylize(frame, prepared).tensor for frame in frames]
    assert len(calls) == 1
    assert not torch.equal(outputs[0], outputs[1])
    with pytest.raises(BrushworkError, match="planned for 32x32"):
        s.stylize(smooth_image(40, 32), prepared)


def test_extra_loss_terms_join_the_objective(tiny_encoder) -> None:
    s = stylizer(tiny_encoder, size=32, iterations=5)
    plan = s.plan((32, 32), [(32, 32)])
    content = smooth_image(32, 32, seed=1)
    prepared = s.prepare(plan, [StyleTarget(smooth_image(32, 32, seed=2))], content)
    anchor = torch.full_like(content, 0.5)
    plain = s.stylize(content, prepared).result
    held = s.stylize(
        content,
        prepared,
        extra_losses=[("temporal", lambda image: 100.0 * (image - anchor).pow(2).mean())],
    ).result
    assert "temporal" in held.losses and "temporal" not in plain.losses
    assert float((held.image - anchor).abs().mean()) < float((plain.image - anchor).abs().mean())
    coarse = stylizer(tiny_encoder, size=64, start_size=32, iterations=2)
    plan = coarse.plan((64, 64), [(32, 32)])
    prepared = coarse.prepare(
        plan, [StyleTarget(smooth_image(32, 32, seed=2))], smooth_image(64, 64)
    )
    with pytest.raises(BrushworkError, match="single-scale"):
        coarse.stylize(smooth_image(64, 64), prepared, extra_losses=[("t", lambda x: x.sum())])


def test_progress_is_numbered_across_scales(tiny_encoder) -> None:
    s = stylizer(tiny_encoder, size=64, start_size=32, iterations=12)
    plan = s.plan((64, 64), [(32, 32)])
    prepared = s.prepare(plan, [StyleTarget(smooth_image(32, 32, seed=2))], smooth_image(64, 64))
    sink = events.Collect()
    s.stylize(smooth_image(64, 64), prepared, events=sink)
    progress = sink.of(events.Progress)
    assert [p.step for p in progress] == list(range(1, 23))
    assert {p.total for p in progress} == {22}
    assert [p.scale for p in progress][::12] == [1, 2]


def test_two_threads_with_two_stylizers(tiny_encoder) -> None:
    """The shared encoder is used by both at once and never changed; each thread's result
    equals the same work done alone."""
    before = copy.deepcopy(tiny_encoder.state_dict())
    jobs = {"a": (1, 2), "b": (3, 4)}

    def work(seeds: tuple[int, int]) -> torch.Tensor:
        s = stylizer(tiny_encoder, size=32, iterations=6, max_memory=2**31)
        plan = s.plan((32, 32), [(32, 32)])
        content = smooth_image(32, 32, seed=seeds[0])
        prepared = s.prepare(plan, [StyleTarget(smooth_image(32, 32, seed=seeds[1]))], content)
        return s.stylize(content, prepared).tensor

    alone = {name: work(seeds) for name, seeds in jobs.items()}
    together: dict[str, torch.Tensor] = {}
    threads = [
        threading.Thread(target=lambda n=n, s=s: together.__setitem__(n, work(s)))
        for n, s in jobs.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in jobs:
        assert torch.equal(alone[name], together[name])
    after = tiny_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not hasattr(tiny_encoder, "checkpointing")


def test_schedule_rules() -> None:
    assert scale_schedule(512, None, 300) == [(512, 300)]
    assert scale_schedule(512, 128, 200) == [(128, 200), (256, 50), (512, 12)]
    assert scale_schedule(512, 512, 7) == [(512, 7)]
    with pytest.raises(BrushworkError, match="2 scale iterations given for 3 scales"):
        scale_schedule(512, 128, 200, [10, 5])


def test_controls_validate() -> None:
    with pytest.raises(BrushworkError, match="preserve-color must be one of"):
        Controls(preserve_color="sepia").validate()
    with pytest.raises(BrushworkError, match="hexadecimal"):
        Controls(weights_sha256="xyz").validate()
