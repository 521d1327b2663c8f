"""Tests for the Gatys method (brushwork.methods.gatys) and the optimizer driving it
(brushwork.optim). Every test uses the tiny random encoder and 32-64 px images."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
import torch
from conftest import smooth_image
from PIL import Image

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import laplacian_loss
from brushwork.methods import METHODS, get_method
from brushwork.methods.gatys import Gatys, GatysLaplacian, GatysOptions
from brushwork.methods.optimization import initial_image
from brushwork.ops import pooled_laplacian
from brushwork.optim import Iterate, optimize_image


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A content image (32x48) and a style image of another size (40x40)."""
    return smooth_image(32, 48, seed=0), smooth_image(40, 40, seed=1)


def _run(
    encoder: VGG19,
    content: torch.Tensor,
    style: torch.Tensor,
    method: type[Gatys] = Gatys,
    **options: object,
) -> tuple[torch.Tensor, dict[str, float], list[Iterate]]:
    records: list[Iterate] = []
    result = method(encoder=encoder, **options).stylize(content, style, callbacks=[records.append])
    return result.image, result.losses, records


# ----------------------------------------------------------------------------- output


def test_output_has_content_shape_and_is_in_unit_range(tiny_encoder, pair) -> None:
    content, style = pair
    # Noise init with a large learning rate pushes pixels out of [0, 1] before clamping.
    result = Gatys(
        encoder=tiny_encoder, iterations=3, init="noise", optimizer="adam", learning_rate=0.5
    ).stylize(content, style)
    assert result.image.shape == content.shape
    assert result.image.dtype == torch.float32
    assert float(result.image.min()) >= 0.0
    assert float(result.image.max()) <= 1.0
    assert torch.isfinite(result.image).all()
    assert result.seconds > 0
    assert result.details["steps"] == 3
    assert len(result.details["history"]) == 3
    assert set(result.losses) == {"content", "style", "tv", "total"}
    assert result.losses["total"] == pytest.approx(
        sum(v for k, v in result.losses.items() if k != "total"), rel=1e-5
    )


def test_callbacks_see_every_step_in_order(tiny_encoder, pair) -> None:
    content, style = pair
    _, _, records = _run(tiny_encoder, content, style, iterations=4, optimizer="adam")
    assert [r.step for r in records] == [1, 2, 3, 4]
    assert all(r.image.shape == content.shape for r in records)
    assert all(not r.image.requires_grad for r in records)
    seconds = [r.seconds for r in records]
    assert seconds == sorted(seconds)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_total_loss_decreases_over_ten_steps(tiny_encoder, pair, optimizer: str) -> None:
    content, style = pair
    _, final, records = _run(
        tiny_encoder, content, style, iterations=10, optimizer=optimizer, init="noise"
    )
    totals = [r.losses["total"] for r in records]
    assert len(totals) == 10
    assert all(math.isfinite(t) for t in totals)
    assert totals[-1] < 0.5 * totals[0]
    assert final["total"] < totals[0]
    # Mostly downhill, not just a lucky last step.
    assert sum(b < a for a, b in itertools.pairwise(totals)) >= 7


# ----------------------------------------------------------------------------- loss terms


@pytest.mark.parametrize(
    ("method", "options", "expected"),
    [
        (Gatys, {}, {"content", "style", "tv", "total"}),
        (Gatys, {"tv_weight": 0.0}, {"content", "style", "total"}),
        (Gatys, {"lap_weight": 5.0}, {"content", "style", "tv", "lap", "total"}),
        (Gatys, {"lap_weight": 5.0, "tv_weight": 0.0}, {"content", "style", "lap", "total"}),
        (GatysLaplacian, {}, {"content", "style", "tv", "lap", "total"}),
        (GatysLaplacian, {"lap_weight": 0.0}, {"content", "style", "tv", "total"}),
        (GatysLaplacian, {"tv_weight": 0.0}, {"content", "style", "lap", "total"}),
    ],
)
def test_loss_terms_present_only_when_weighted(
    tiny_encoder, pair, method: type[Gatys], options: dict, expected: set[str]
) -> None:
    content, style = pair
    _, final, records = _run(tiny_encoder, content, style, method, iterations=1, **options)
    assert set(final) == expected
    assert set(records[0].losses) == expected


def test_content_init_without_style_keeps_the_content(tiny_encoder, pair) -> None:
    content, style = pair
    image, final, _ = _run(
        tiny_encoder, content, style, iterations=5, style_weight=0.0, tv_weight=0.0
    )
    assert torch.allclose(image, content, atol=1e-4)
    assert final["style"] == 0.0
    assert final["content"] < 1e-8


def test_style_weight_moves_away_from_the_content(tiny_encoder, pair) -> None:
    # The counterpart of the test above: with the style loss on, the image does change.
    content, style = pair
    image, _, _ = _run(tiny_encoder, content, style, iterations=5, style_weight=100.0)
    assert float((image - content).abs().mean()) > 1e-3


# ----------------------------------------------------------------------------- init and seed


def test_noise_init_is_reproducible_with_a_seed(tiny_encoder, pair) -> None:
    content, style = pair
    first, _, _ = _run(tiny_encoder, content, style, iterations=2, init="noise", seed=7)
    again, _, _ = _run(tiny_encoder, content, style, iterations=2, init="noise", seed=7)
    other, _, _ = _run(tiny_encoder, content, style, iterations=2, init="noise", seed=8)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other, atol=1e-3)


def test_initial_image_noise_and_content() -> None:
    content = smooth_image(32, 48)
    start = initial_image(content, "content", 0)
    assert torch.equal(start, content)
    assert start.data_ptr() != content.data_ptr()  # a copy: optimizing it leaves content alone
    a, b = initial_image(content, "noise", 3), initial_image(content, "noise", 3)
    assert torch.equal(a, b)
    assert a.shape == content.shape
    assert not torch.equal(a, initial_image(content, "noise", 4))
    assert float(a.min()) >= 0.0
    assert float(a.max()) <= 1.0


def test_init_from_an_image_file(tiny_encoder, pair, tmp_path: Path) -> None:
    content, style = pair
    path = tmp_path / "start.png"
    # A different size than the content, and a left-right split: checks the resize.
    Image.new("RGB", (20, 10), (255, 0, 0)).save(path)
    picture = Image.open(path)
    picture.paste((0, 0, 255), (10, 0, 20, 10))
    picture.save(path)

    start = initial_image(content, str(path), 0)
    assert start.shape == content.shape
    assert start[0, :, :, :20].mean(dim=(1, 2)).tolist() == pytest.approx([1, 0, 0], abs=0.02)
    assert start[0, :, :, -20:].mean(dim=(1, 2)).tolist() == pytest.approx([0, 0, 1], abs=0.02)

    # A tiny Adam step from the file's image: the output is still that image.
    image, _, records = _run(
        tiny_encoder,
        content,
        style,
        iterations=1,
        init=str(path),
        optimizer="adam",
        learning_rate=1e-6,
    )
    assert torch.allclose(image, start, atol=1e-4)
    assert not torch.allclose(image, content, atol=0.1)
    assert records[0].losses["content"] > 0  # started away from the content


# ----------------------------------------------------------------------------- presets


def test_gatys_laplacian_preset() -> None:
    preset_weight = GatysLaplacian.preset["lap_weight"]
    assert preset_weight > 0
    assert GatysLaplacian.default_options().lap_weight == preset_weight
    assert Gatys.default_options().lap_weight == 0.0
    assert GatysLaplacian(lap_weight=3.0).options.lap_weight == 3.0
    # The preset changes only the Laplacian weight; everything else is shared.
    gatys = dataclasses.asdict(Gatys.default_options())
    laplacian = dataclasses.asdict(GatysLaplacian.default_options())
    assert {k for k in gatys if gatys[k] != laplacian[k]} == {"lap_weight"}
    assert GatysLaplacian.options_class is GatysOptions


def test_registry_holds_both_methods() -> None:
    assert METHODS["gatys"] is Gatys
    assert METHODS["gatys-laplacian"] is GatysLaplacian
    assert get_method("gatys-laplacian") is GatysLaplacian
    with pytest.raises(BrushworkError, match="available: adain, gatys, gatys-laplacian"):
        get_method("gatsby")


def test_laplacian_term_keeps_content_structure(tiny_encoder) -> None:
    content, style = smooth_image(64, 64, seed=0), smooth_image(64, 64, seed=3)

    def lap_metric(**options: object) -> float:
        image, _, _ = _run(
            tiny_encoder, content, style, iterations=8, init="noise", lap_pool_sizes=(4,), **options
        )
        return float(laplacian_loss(image, pooled_laplacian(content, 4), 4))

    without = lap_metric(lap_weight=0.0)
    with_lap = lap_metric(lap_weight=GatysLaplacian.preset["lap_weight"])
    assert with_lap < 0.5 * without


# ----------------------------------------------------------------------------- validation

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"style_layers": ("relu1_1", "nope")}, "nope"),
        ({"content_layers": ("relu9_9",)}, "relu9_9"),
        ({"content_layers": (), "style_layers": ()}, "at least one"),
        ({"content_weight": -1.0}, "content-weight"),
        ({"style_weight": -0.001}, "style-weight"),
        ({"tv_weight": -2.0}, "tv-weight"),
        ({"lap_weight": -1.0}, "lap-weight"),
        ({"content_weight": NAN}, "content-weight"),
        ({"style_weight": NAN}, "style-weight"),
        ({"tv_weight": NAN}, "tv-weight"),
        ({"lap_weight": NAN}, "lap-weight"),
        ({"content_weight": INF}, "content-weight"),
        ({"style_weight": INF}, "style-weight"),
        ({"tv_weight": -INF}, "tv-weight"),
        ({"lap_weight": INF}, "lap-weight"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": -5}, "iterations"),
        ({"style_layer_weights": (1.0, 2.0)}, "2 style layer weights given for 5"),
        ({"style_layer_weights": (0.0,) * 5}, "all be zero"),
        ({"style_layer_weights": (1.0, 1.0, NAN, 1.0, 1.0)}, "style layer weight"),
        ({"style_layer_weights": (1.0, -1.0, 1.0, 1.0, 1.0)}, "style layer weight"),
        ({"lap_pool_sizes": (4, 0)}, "pool sizes"),
        ({"lap_pool_sizes": (-2,)}, "pool sizes"),
        ({"lap_weight": 1.0, "lap_pool_sizes": ()}, "pool size"),
        ({"optimizer": "sgd"}, "sgd"),
        ({"pooling": "median"}, "median"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"learning_rate": NAN}, "learning rate"),
        ({"foo": 1}, "unknown option 'foo'"),
        ({"init": "/nonexistent/start.png"}, "init"),
    ],
)
def test_invalid_options_raise(options: dict, match: str) -> None:
    with pytest.raises(BrushworkError, match=match):
        Gatys(**options)


def test_invalid_options_raise_for_the_preset_too() -> None:
    with pytest.raises(BrushworkError, match="lap-weight"):
        GatysLaplacian(lap_weight=NAN)
    with pytest.raises(BrushworkError, match="iterations"):
        GatysLaplacian(GatysOptions(iterations=0))


def test_init_file_missing_in_tmp_path(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="init"):
        Gatys(init=str(tmp_path / "missing.png"))
    with pytest.raises(BrushworkError, match="init"):
        Gatys(init=str(tmp_path))  # a directory is not an image file


def test_valid_edge_options_are_accepted(tiny_encoder, pair) -> None:
    content, style = pair
    method = Gatys(
        encoder=tiny_encoder,
        iterations=1,
        content_weight=0.0,
        tv_weight=0.0,
        style_layer_weights=(0.0, 0.0, 0.0, 0.0, 1.0),
        lap_pool_sizes=(1,),
        lap_weight=1.0,
        pooling="avg",
    )
    result = method.stylize(content, style)
    assert set(result.losses) == {"content", "style", "lap", "total"}
    assert result.losses["content"] == 0.0


# ----------------------------------------------------------------------------- optimize_image


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimize_image_raises_when_the_loss_is_nan(optimizer: str) -> None:
    seen: list[int] = []

    def nan_loss(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"total": (x * float("nan")).sum()}

    with pytest.raises(BrushworkError, match="diverged at step 1"):
        optimize_image(
            smooth_image(),
            nan_loss,
            iterations=3,
            optimizer=optimizer,
            callbacks=[lambda r: seen.append(r.step)],
        )
    assert seen == []


def test_optimize_image_raises_when_the_loss_turns_nan_later() -> None:
    calls = 0

    def loss(x: torch.Tensor) -> dict[str, torch.Tensor]:
        nonlocal calls
        calls += 1
        value = x.pow(2).mean()
        return {"total": value * float("nan") if calls >= 3 else value}

    seen: list[int] = []
    with pytest.raises(BrushworkError, match="diverged at step 3"):
        optimize_image(
            smooth_image(),
            loss,
            iterations=5,
            optimizer="adam",
            callbacks=[lambda r: seen.append(r.step)],
        )
    assert seen == [1, 2]


def test_optimize_image_rejects_bad_arguments() -> None:
    def loss(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"total": x.pow(2).mean()}

    with pytest.raises(BrushworkError, match="iterations"):
        optimize_image(smooth_image(), loss, iterations=0)
    with pytest.raises(BrushworkError, match="optimizer"):
        optimize_image(smooth_image(), loss, iterations=1, optimizer="sgd")


def test_optimize_image_minimizes_a_simple_loss_and_leaves_the_input_alone() -> None:
    start = smooth_image()
    before = start.clone()
    target = torch.full_like(start, 0.25)

    def loss(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mse": (x - target).pow(2).mean(), "total": (x - target).pow(2).mean()}

    result = optimize_image(start, loss, iterations=5, optimizer="lbfgs")
    assert torch.equal(start, before)
    assert result.steps == 5
    assert result.evaluations >= 5
    assert len(result.history) == 5
    assert result.losses["total"] < 1e-3 * result.history[0]["total"]
    assert torch.allclose(result.image, target, atol=1e-2)
