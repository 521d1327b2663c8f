"""Tests for the depth term of Gatys (brushwork.methods.gatys: ``depth_weight``,
``depth_model``): reported and minimized, off without loading anything at weight 0, bad
values refused through the CLI before any work, resized estimator input, memory estimate,
and the gatys-laplacian, coarse-to-fine, multi-style and masked paths.

Every test uses the tiny random VGG-19 and a tiny random depth estimator (VGG-19 at 1/16
width) saved as a brushwork checkpoint, 32-48 px images and at most 8 steps."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from conftest import expect_error, smooth_image
from PIL import Image

from brushwork import api
from brushwork import depth as depth_models
from brushwork import events as ev
from brushwork.api import Style
from brushwork.checkpoints import save_checkpoint
from brushwork.cli import main
from brushwork.cli.stylize import stylize_parser
from brushwork.depth import DepthModel, load_depth_model
from brushwork.depth.estimator import TRAINING_SIDE, DepthNet, to_checkpoint
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.image import to_pil
from brushwork.losses import scale_shift_invariant_loss
from brushwork.methods.base import StyleTarget
from brushwork.methods.gatys import Gatys, GatysLaplacian, depth_input

MB = 2**20


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def estimator_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random brushwork depth estimator (VGG-19 to relu4_1 at 1/16 width)."""
    torch.manual_seed(0)
    net = DepthNet(VGG19(last_layer="relu4_1", width=1 / 16)).eval()
    path = tmp_path_factory.mktemp("depth") / "tiny.safetensors"
    save_checkpoint(path, to_checkpoint(net, {}, 0))
    return path


@pytest.fixture
def estimator(estimator_file: Path) -> DepthModel:
    return load_depth_model(estimator_file)


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    return smooth_image(32, 32, seed=0), smooth_image(32, 32, seed=1)


@pytest.fixture
def start(pair) -> torch.Tensor:
    """A start image half content, half another image: its depth is partly the content's,
    so the depth term starts between 0 and 1 and has a gradient."""
    return 0.5 * pair[0] + 0.5 * smooth_image(32, 32, seed=2)


def _ssi(estimator: DepthModel, image: torch.Tensor, content: torch.Tensor) -> float:
    with torch.no_grad():
        return float(scale_shift_invariant_loss(estimator(image), estimator(content)))


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    loads: list[object] = []
    load = depth_models.load_depth_model

    def counted(path: object, **kwargs: object) -> DepthModel:
        loads.append(path)
        return load(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(depth_models, "load_depth_model", counted)
    return loads


# ----------------------------------------------------------------------------- the term


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_depth_loss_is_reported_and_decreases(
    tiny_encoder, estimator_file, pair, start, optimizer: str
) -> None:
    content, style = pair
    collect = ev.Collect()
    result = Gatys(
        encoder=tiny_encoder,
        depth_weight=10.0,
        depth_model=str(estimator_file),
        iterations=8,
        optimizer=optimizer,
        learning_rate=0.02 if optimizer == "adam" else None,
    ).stylize(content, style, init=start, events=collect)
    records = collect.of(ev.Progress)
    assert len(records) == 8
    assert set(result.losses) == {"content", "style", "tv", "depth", "total"}
    assert all("depth" in r.losses for r in records)
    assert all("depth" in h for h in result.details["history"])
    depth = [r.losses["depth"] for r in records]
    assert 0 < depth[0] <= 10.0  # weight × SSI, SSI in [0, 1]
    assert depth[-1] < 0.5 * depth[0]
    assert all(b < a for a, b in itertools.pairwise(depth))
    assert result.losses["total"] == pytest.approx(
        sum(v for k, v in result.losses.items() if k != "total"), rel=1e-5
    )


@pytest.mark.parametrize("init", ["content", "start"])
def test_a_large_depth_weight_keeps_the_content_depth(
    tiny_encoder, estimator, pair, start, init: str
) -> None:
    """Same start, same steps: with the depth term, D(output) ends closer to D(content)."""
    content, style = pair
    first = content.clone() if init == "content" else start

    def final_ssi(weight: float) -> float:
        result = Gatys(
            encoder=tiny_encoder,
            depth=estimator,
            depth_weight=weight,
            style_weight=30.0,
            iterations=8,
        ).stylize(content, style, init=first.clone())
        return _ssi(estimator, result.image, content)

    without, with_depth = final_ssi(0.0), final_ssi(100.0)
    assert without > 0.1  # the style moved the depth layout
    assert with_depth < 0.5 * without


def test_depth_target_is_the_content_and_zero_at_the_content(tiny_encoder, estimator, pair) -> None:
    content, style = pair
    method = Gatys(encoder=tiny_encoder, depth=estimator, depth_weight=3.0)
    loss = method.build_loss(tiny_encoder, content, method.prepare([StyleTarget(style)]), False)
    with torch.no_grad():
        torch.testing.assert_close(loss.depth_target, estimator(content))
        assert float(loss(content)["depth"]) == pytest.approx(0.0, abs=1e-6)
        assert 0 < float(loss(smooth_image(32, 32, seed=5))["depth"]) <= 3.0
    assert loss.depth_target.requires_grad is False


def test_depth_weight_zero_never_loads_an_estimator(
    monkeypatch, tiny_encoder, pair, tmp_path, estimator_file
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a depth estimator was loaded at depth weight 0")

    monkeypatch.setattr(depth_models, "load_depth_model", refuse)
    # $BRUSHWORK_DEPTH_MODEL names a model, but at weight 0 nothing is loaded
    monkeypatch.setenv(depth_models.ENV, str(estimator_file))
    content, style = pair
    method = Gatys(encoder=tiny_encoder, iterations=2)
    assert method.depth_estimator() is None
    method.check_files()
    result = method.stylize(content, style)
    assert "depth" not in result.losses
    assert "depth_input" not in result.details
    assert method.extra_bytes(32, 32) == 0
    named = method.plan(32, 32, [], limit=2**50).estimate
    monkeypatch.delenv(depth_models.ENV)
    assert named == Gatys().plan(32, 32, [], limit=2**50).estimate


def test_a_depth_model_without_a_depth_weight_is_refused(monkeypatch, tmp_path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a depth estimator was loaded at depth weight 0")

    monkeypatch.setattr(depth_models, "load_depth_model", refuse)
    with pytest.raises(BrushworkError, match="depth-model is set but depth-weight is 0"):
        Gatys(depth_model=str(tmp_path / "no.onnx"))
    with pytest.raises(BrushworkError, match="depth-model is set but depth-weight is 0"):
        GatysLaplacian(depth_model="depth", depth_weight=0.0)


def test_the_estimator_is_loaded_once_and_follows_the_environment(
    monkeypatch, estimator_file, tmp_path
) -> None:
    loads = _count_loads(monkeypatch)
    monkeypatch.setenv(depth_models.ENV, str(estimator_file))
    method = Gatys(depth_weight=1.0)
    first = method.depth_estimator()
    assert isinstance(first, DepthModel)
    assert method.depth_estimator() is first
    assert loads == [None]  # None: load_depth_model reads $BRUSHWORK_DEPTH_MODEL
    monkeypatch.setenv(depth_models.ENV, str(tmp_path / "missing.safetensors"))
    with pytest.raises(BrushworkError, match="does not exist"):
        method.depth_estimator()


def test_a_given_estimator_replaces_the_model_and_is_frozen(tiny_encoder, pair) -> None:
    torch.manual_seed(0)
    net = DepthNet(VGG19(last_layer="relu4_1", width=1 / 16)).train()
    content, style = pair
    result = Gatys(
        encoder=tiny_encoder,
        depth=net,
        depth_weight=1.0,
        depth_model="/nonexistent.onnx",
        iterations=2,
    ).stylize(content, style)
    assert "depth" in result.losses
    assert not any(p.requires_grad for p in net.parameters())
    assert not any(p.grad is not None for p in net.parameters())


# ----------------------------------------------------------------------------- estimator input


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((32, 48), (32, 48)),
        ((224, 300), (224, 300)),
        ((448, 600), (224, 300)),
        ((1200, 900), (299, 224)),
        ((1000, 1000), (224, 224)),
    ],
)
def test_depth_input_shrinks_the_shorter_side_to_the_training_side(size, expected) -> None:
    image = torch.rand(1, 3, *size)
    assert tuple(depth_input(image).shape[-2:]) == expected
    assert TRAINING_SIDE == 224


def test_depth_input_is_antialiased_and_moves_every_pixel() -> None:
    image = torch.rand(1, 3, 900, 672, requires_grad=True)
    small = depth_input(image)
    assert tuple(small.shape[-2:]) == (300, 224)
    small.sum().backward()
    assert bool((image.grad != 0).all())
    # a constant image stays constant (a normalized filter)
    flat = depth_input(torch.full((1, 3, 500, 500), 0.25))
    torch.testing.assert_close(flat, torch.full_like(flat, 0.25))


def test_large_outputs_feed_the_estimator_a_training_sized_image(tiny_encoder, pair) -> None:
    seen: list[tuple[int, ...]] = []

    class Probe(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(image.shape))
            return image.mean(1, keepdim=True)

    content = torch.rand(1, 3, 256, 320)
    method = Gatys(encoder=tiny_encoder, depth=Probe(), depth_weight=1.0)
    loss = method.build_loss(tiny_encoder, content, method.prepare([StyleTarget(pair[1])]), False)
    loss(content.clone().requires_grad_(True))["total"].backward()
    assert seen == [(1, 3, 224, 280)] * 2
    assert loss.details["depth_input"] == [224, 280]


# ----------------------------------------------------------------------------- memory


def test_memory_estimate_counts_the_estimator_and_stays_bounded(estimator_file) -> None:
    def estimate(size: tuple[int, int], weight: float) -> int:
        if weight == 0:  # a depth model at weight 0 is refused: it would not be used
            return Gatys().plan(*size, [], limit=2**50).estimate
        method = Gatys(depth_weight=weight, depth_model=str(estimator_file))
        return method.plan(*size, [], limit=2**50).estimate

    small = estimate((32, 32), 1.0) - estimate((32, 32), 0.0)
    assert 0 < small < 10 * MB
    large = estimate((1536, 2048), 1.0) - estimate((1536, 2048), 0.0)
    huge = estimate((3072, 4096), 1.0) - estimate((3072, 4096), 0.0)
    assert 100 * MB < large < 400 * MB  # one 224 x 320 pass of the estimator
    assert huge == large  # the estimator's input does not grow with the output


# ----------------------------------------------------------------------------- other paths


def test_gatys_laplacian_coarse_to_fine_with_masked_styles(
    monkeypatch, tiny_encoder, estimator_file
) -> None:
    loads = _count_loads(monkeypatch)
    left = Image.new("L", (48, 48), 0)
    left.paste(255, (0, 0, 24, 48))
    right = Image.eval(left, lambda v: 255 - v)
    done = api.run(
        to_pil(smooth_image(48, 48, seed=0)),
        [
            Style(to_pil(smooth_image(40, 40, seed=1)), mask=left),
            Style(to_pil(smooth_image(40, 44, seed=3)), 2.0, mask=right),
        ],
        "gatys-laplacian",
        size=48,
        start_size=24,
        scale_iterations=[3, 2],
        encoder=tiny_encoder,
        depth_weight=5.0,
        depth_model=str(estimator_file),
        device="cpu",
    )
    assert {"lap", "depth"} <= set(done.result.losses)
    assert [len(s["losses"]) for s in done.scales] == [6, 6]
    assert all("depth" in s["losses"] for s in done.scales)
    assert len(done.result.details["history"]) == 5
    assert all("depth" in h for h in done.result.details["history"])
    assert loads == [str(estimator_file)]  # loaded once for both scales


def test_blended_styles_with_depth(tiny_encoder, estimator, pair) -> None:
    content, style = pair
    result = GatysLaplacian(
        encoder=tiny_encoder, depth=estimator, depth_weight=2.0, iterations=2
    ).stylize(content, [StyleTarget(style, 0.3), StyleTarget(smooth_image(36, 36, 4), 0.7)])
    assert {"content", "style", "tv", "lap", "depth", "total"} == set(result.losses)


# ----------------------------------------------------------------------------- options and CLI


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"depth_weight": -1.0}, "depth-weight must be >= 0, not -1.0"),
        ({"depth_weight": float("nan")}, "depth-weight must be a finite number, not nan"),
        ({"depth_weight": float("inf")}, "depth-weight must be a finite number, not inf"),
        ({"depth_weight": 1.0, "depth_model": 3}, "depth-model must be a string, not 3"),
    ],
)
def test_invalid_depth_options_raise(options: dict, match: str) -> None:
    with pytest.raises(BrushworkError, match=match):
        Gatys(**options)
    with pytest.raises(BrushworkError, match=match):
        GatysLaplacian(**options)


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    to_pil(smooth_image(32, 40, seed=0)).save(content)
    to_pil(smooth_image(36, 36, seed=1)).save(style)
    return content, style


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _stylize(images: tuple[Path, Path], output: Path, *extra: str) -> list[str]:
    return [
        "stylize",
        str(images[0]),
        str(images[1]),
        "-o",
        str(output),
        "--quiet",
        "--size",
        "32",
        "--iterations",
        "2",
        "--device",
        "cpu",
        *extra,
    ]


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("method", ["gatys", "gatys-laplacian"])
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--depth-weight=-1"], "depth-weight must be >= 0, not -1"),
        (["--depth-weight", "nan"], "depth-weight must be a finite number, not nan"),
        (
            ["--depth-weight", "1", "--depth-model", "{tmp}/missing.safetensors"],
            "missing.safetensors does not exist",
        ),
        (
            ["--depth-weight", "1", "--depth-model", "{tmp}/corrupt.safetensors"],
            "corrupt.safetensors",
        ),
        (["--depth-weight", "1", "--depth-model", "{tmp}"], "is not a file"),
    ],
)
def test_bad_depth_input_is_one_line_error_before_any_work(
    capsys, images, out_dir, tmp_path, method: str, flags: list[str], expected: str
) -> None:
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00not a safetensors file" * 10)
    output = out_dir / "o.png"
    argv = _stylize(images, output, "--method", method, *(f.format(tmp=tmp_path) for f in flags))
    message = expect_error(capsys, argv)
    assert expected in message
    assert list(out_dir.iterdir()) == []


def test_depth_flags_exist_for_gatys_methods(images, tmp_path) -> None:
    for method in ("gatys", "gatys-laplacian"):
        parser = stylize_parser(method)
        argv = _stylize(
            images,
            tmp_path / "o.png",
            "--method",
            method,
            "--depth-weight",
            "2.5",
            "--depth-model",
            "x.onnx",
        )
        args = parser.parse_args(argv[1:])  # without the "stylize" command
        assert args.m_depth_weight == 2.5
        assert args.m_depth_model == "x.onnx"


def test_depth_flags_are_documented(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--depth-weight FLOAT weight of the depth loss" in help_text
    assert "--depth-model NAME|PATH depth estimator: bundled name or file" in help_text


def test_depth_flag_does_not_apply_to_adain(capsys, images, out_dir) -> None:
    argv = [
        "stylize",
        str(images[0]),
        str(images[1]),
        "-o",
        str(out_dir / "o.png"),
        "--method",
        "adain",
        "--depth-weight",
        "1",
    ]
    message = expect_error(capsys, argv)
    assert (
        "--depth-weight does not apply to method 'adain' (it is an option of gatys, "
        "gatys-laplacian)" in message
    )
    assert list(out_dir.iterdir()) == []


@pytest.mark.usefixtures("tiny_pretrained")
def test_cli_run_reports_the_depth_loss(capsys, images, out_dir, estimator_file) -> None:
    output = out_dir / "o.png"
    argv = _stylize(
        images,
        output,
        "--method",
        "gatys",
        "--depth-weight",
        "4",
        "--depth-model",
        str(estimator_file),
        "--json",
    )
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert output.is_file()
    assert summary["losses"]["depth"] >= 0
    assert set(summary["scales"][0]["losses"]) == {"content", "style", "tv", "depth", "total"}
