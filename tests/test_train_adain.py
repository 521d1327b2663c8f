"""Tests for ``brushwork train adain`` (brushwork.training.adain's objective, the one training
loop of brushwork.training.trainer, brushwork.training.data and the ``train`` command of
brushwork.cli).

Every run uses a tiny random encoder (no weights), 16-32 px crops, batches of 2 and a few
steps. Interruption (SIGINT to the process group, SIGKILL) and distributed training (two
processes under torchrun, gloo on the CPU) run in subprocesses; everything else in-process.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import expect_error, save_decoder, smooth_image
from contract import train_argv
from PIL import Image, ImageFile
from safetensors.torch import load_file

import brushwork.encoders
from brushwork import events as ev
from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.image import to_pil
from brushwork.methods.feedforward import load_decoder
from brushwork.training import trainer
from brushwork.training.adain import AdaINLoss, AdaINObjective, TrainConfig
from brushwork.training.runs import CHECKPOINT, CURVE, LOG, MODEL
from brushwork.training.trainer import RunOptions, TrainResult

TESTS = Path(__file__).resolve().parent
# The subprocesses' stand-in for the real VGG-19 (the same as the `encoder` fixture), with a
# line on stderr per logged step so that a test can tell when training is under way.
DRIVER = """
import sys, torch
torch.set_num_threads(1)
import brushwork.encoders
from brushwork import events as ev
from brushwork.encoders import VGG19
torch.manual_seed(0)
encoder = VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()
brushwork.encoders.cached_vgg19 = lambda *args, **kwargs: encoder
import brushwork.training.trainer as trainer
_train = trainer.train
def _progress(event):
    if isinstance(event, ev.Progress):
        print(f"step {event.step}", file=sys.stderr, flush=True)
def _train_with_progress(*args, events=None, **kwargs):
    sinks = [events] if callable(events) else list(events or [])
    return _train(*args, events=[*sinks, _progress], **kwargs)
trainer.train = _train_with_progress
from brushwork.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a small, busy machine several make these tiny steps slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def encoder() -> VGG19:
    torch.manual_seed(0)
    return VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()


@pytest.fixture
def tiny_pretrained(monkeypatch: pytest.MonkeyPatch, encoder: VGG19) -> None:
    """The CLI's VGG-19 replaced by the tiny random encoder."""
    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", lambda *args, **kwargs: encoder)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the weights are loaded or a training step starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input reached the expensive part")

    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", refuse)
    monkeypatch.setattr(AdaINLoss, "forward", refuse)


def _folder(path: Path, count: int, seed: int, size: int = 32) -> Path:
    path.mkdir(parents=True)
    for i in range(count):
        to_pil(smooth_image(size, size, seed=seed + i)).save(path / f"{i}.png")
    return path


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    """Three 32 px content and three 32 px style images."""
    return _folder(tmp_path / "content", 3, 0), _folder(tmp_path / "style", 3, 10)


@pytest.fixture
def fixed_data(tmp_path: Path) -> tuple[Path, Path]:
    """One content and one style image of exactly the crop size (crop 32, no resizing):
    every batch is the same whatever the seed."""
    return _folder(tmp_path / "content1", 1, 0), _folder(tmp_path / "style1", 1, 1)


def _config(data: tuple[Path, Path], **changes: object) -> TrainConfig:
    values: dict = {
        "iterations": 4,
        "batch_size": 2,
        "learning_rate": 3e-3,
        "load_size": 32,
        "crop_size": 16,
    }
    values.update(changes)
    return TrainConfig(str(data[0]), str(data[1]), **values)


def _fixed_config(data: tuple[Path, Path], **changes: object) -> TrainConfig:
    return _config(data, **{"load_size": None, "crop_size": 32, **changes})


def _options(out: Path, **changes: object) -> RunOptions:
    values: dict = {
        "out_dir": str(out),
        "workers": 0,
        "save_every": 1000,
        "log_every": 1,
        "progress": False,
    }
    values.update(changes)
    return RunOptions(**values)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / LOG, newline="") as f:
        return list(csv.DictReader(f))


def _steps(out: Path) -> list[int]:
    return [int(row["step"]) for row in _rows(out)]


def _checkpoint(out: Path):
    return load_checkpoint(out / CHECKPOINT, method="adain")


def train(
    config: TrainConfig, run: RunOptions, *, encoder: VGG19, events: ev.Sinks = None
) -> TrainResult:
    """One AdaIN run through the trainer."""
    return trainer.train(AdaINObjective(config, encoder=encoder), run, events=events)


# ----------------------------------------------------------------------------- a run's files


def test_short_run_writes_checkpoint_log_curve_and_model(tmp_path, data, encoder) -> None:
    out = tmp_path / "run"
    config = _config(data, lap_weight=2.0, iterations=5)
    collect = ev.Collect()
    result = train(config, _options(out, save_every=2), encoder=encoder, events=collect)
    assert (
        result.out_dir,
        result.step,
        result.finished,
        result.interrupted,
        result.skipped,
        result.precision,
    ) == (out, 5, True, False, [], "float32")
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKPOINT, LOG, CURVE, MODEL])

    saved = _checkpoint(out)
    assert saved.step == 5
    assert TrainConfig(**saved.config) == config
    assert saved.optimizer and all(t.dtype == torch.float32 for t in saved.tensors.values())

    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    for row in rows:
        for name in ("content", "style", "laplacian", "total", "lr"):
            assert math.isfinite(float(row[name])) and float(row[name]) >= 0, row
        assert row["depth"] == ""
        weighted = float(row["content"]) + 10 * float(row["style"]) + 2 * float(row["laplacian"])
        assert float(row["total"]) == pytest.approx(weighted, rel=1e-3)
    assert (out / CURVE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The event stream: one Progress per step, its losses those of the log (every step is
    # logged here), between a Started and a Finished of the stage "train adain".
    progress = collect.of(ev.Progress)
    assert [(e.stage, e.step, e.total) for e in progress] == [
        ("train adain", step, 5) for step in range(1, 6)
    ]
    for event, row in zip(progress, rows, strict=True):
        assert set(event.losses) == {"content", "style", "laplacian", "total"}
        for name, value in event.losses.items():
            assert value == pytest.approx(float(row[name]), rel=1e-4)
    assert [e.stage for e in collect.of(ev.Started)] == ["train adain"]
    [finished] = collect.of(ev.Finished)
    assert finished.details == {"step": 5, "finished": True}
    assert not encoder.channels_last  # the encoder given was copied, never modified

    model = load_file(out / MODEL)
    assert {t.dtype for t in model.values()} == {torch.float16}
    meta = load_checkpoint(out / MODEL, method="adain", encoder="vgg19:relu4_1:32")
    assert meta.step == 5 and TrainConfig(**meta.config) == config
    decoder = load_decoder(out / MODEL, method="adain", layer="relu4_1", encoder=encoder)
    for name, tensor in decoder.state_dict().items():
        torch.testing.assert_close(tensor, saved.tensors[name], rtol=1e-3, atol=1e-4)
    with torch.no_grad():
        image = decoder(torch.rand(1, 32, 2, 2))
    assert image.shape == (1, 3, 16, 16)


def test_without_lap_weight_the_laplacian_column_is_empty(tmp_path, data, encoder) -> None:
    out = tmp_path / "run"
    collect = ev.Collect()
    train(_config(data, iterations=3), _options(out, log_every=2), encoder=encoder, events=collect)
    assert _steps(out) == [2, 3]  # every log_every steps, and the last
    assert all(row["laplacian"] == "" and row["depth"] == "" for row in _rows(out))
    # losses ride on the Progress events of logged steps only
    assert [(e.step, sorted(e.losses)) for e in collect.of(ev.Progress)] == [
        (1, []),
        (2, ["content", "style", "total"]),
        (3, ["content", "style", "total"]),
    ]


def test_the_loss_goes_down(tmp_path, fixed_data, encoder) -> None:
    # Same batch every step, fixed seeds: deterministic; the margin is wide (seen: ×0.65-0.85).
    out = tmp_path / "run"
    train(_fixed_config(fixed_data, iterations=40), _options(out), encoder=encoder)
    totals = [float(row["total"]) for row in _rows(out)]
    assert len(totals) == 40
    first, last = np.mean(totals[:5]), np.mean(totals[-5:])
    assert last < 0.9 * first, totals


# ----------------------------------------------------------------------------- precision


def test_bfloat16_on_the_cpu_tracks_float32(tmp_path, fixed_data, encoder) -> None:
    """The same deterministic run (one batch every step) in float32 and, under autocast, in
    bfloat16: the weights the optimizer updates and saves stay float32, and the loss curves
    agree to a few per cent (seen: 0.5 % at most over 20 steps) without being identical."""
    config = _fixed_config(fixed_data, iterations=20, lap_weight=1.0)
    curves, results = {}, {}
    for precision in ("float32", "bfloat16"):
        collect = ev.Collect()
        out = tmp_path / precision
        results[precision] = train(
            config, _options(out, precision=precision), encoder=encoder, events=collect
        )
        [started] = collect.of(ev.Started)
        assert started.details["precision"] == precision
        curves[precision] = np.array([e.losses["total"] for e in collect.of(ev.Progress)])
        saved = _checkpoint(out)
        assert {t.dtype for t in saved.tensors.values()} == {torch.float32}
        moments = {k: t for k, t in saved.optimizer.items() if not k.endswith((".step", "/lr"))}
        assert {t.dtype for t in moments.values()} == {torch.float32}
    assert [r.precision for r in results.values()] == ["float32", "bfloat16"]
    assert all(r.finished and r.step == 20 for r in results.values())
    f32, bf16 = curves["float32"], curves["bfloat16"]
    assert len(f32) == len(bf16) == 20 and np.isfinite(bf16).all()
    assert np.abs(bf16 - f32).max() > 1e-6 * f32.max()  # bfloat16 really ran
    np.testing.assert_allclose(bf16, f32, rtol=0.05)
    assert bf16[-5:].mean() < 0.9 * bf16[:5].mean()


# ----------------------------------------------------------------------------- resume


def test_resume_continues_exactly(tmp_path, fixed_data, encoder) -> None:
    halves, straight = tmp_path / "halves", tmp_path / "straight"
    config = _fixed_config(fixed_data, iterations=3, lap_weight=1.0)
    first = train(config, _options(halves, save_every=3), encoder=encoder)
    assert (first.step, first.finished) == (3, True)
    assert _steps(halves) == [1, 2, 3]

    longer = dataclasses.replace(config, iterations=6)
    second = train(longer, _options(halves, save_every=3, resume=True), encoder=encoder)
    assert (second.step, second.finished) == (6, True)
    assert _steps(halves) == [1, 2, 3, 4, 5, 6]
    assert _checkpoint(halves).step == 6

    # With the same batch every step, 3 + 3 steps equal 6 straight ones: the optimizer's
    # state and the learning-rate schedule survive the checkpoint.
    train(longer, _options(straight, save_every=3), encoder=encoder)
    resumed, direct = _checkpoint(halves), _checkpoint(straight)
    assert resumed.tensors.keys() == direct.tensors.keys()
    for name, tensor in direct.tensors.items():
        torch.testing.assert_close(resumed.tensors[name], tensor, rtol=1e-5, atol=1e-6)
    assert resumed.optimizer.keys() == direct.optimizer.keys()
    for name, tensor in direct.optimizer.items():
        torch.testing.assert_close(resumed.optimizer[name], tensor, rtol=1e-5, atol=1e-6)
    assert [r["lr"] for r in _rows(halves)] == [r["lr"] for r in _rows(straight)]


@pytest.mark.parametrize("crash_in", ["write_log", "save_checkpoint"])
def test_a_crash_while_saving_leaves_a_resumable_run(
    monkeypatch, tmp_path, data, encoder, crash_in
) -> None:
    """Killed during its second save (between or inside the log's and the checkpoint's
    writes), a run resumes from its first checkpoint with a continuous log."""
    out = tmp_path / "run"
    real = getattr(trainer, crash_in)
    calls = []

    def crash_on_second_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, crash_in, crash_on_second_call)
    config = _config(data, iterations=6)
    with pytest.raises(KeyboardInterrupt):
        train(config, _options(out, save_every=2), encoder=encoder)
    monkeypatch.setattr(trainer, crash_in, real)
    assert _checkpoint(out).step == 2
    assert _steps(out) in ([1, 2], [1, 2, 3, 4])
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]

    result = train(config, _options(out, save_every=2, resume=True), encoder=encoder)
    assert result.finished and _checkpoint(out).step == 6
    assert _steps(out) == [1, 2, 3, 4, 5, 6]


@pytest.mark.usefixtures("tiny_pretrained")
def test_cli_run_and_resume_refusals(capsys, tmp_path, data) -> None:
    out = tmp_path / "run"
    message = expect_error(capsys, train_argv("adain", data, out, "--resume"))
    assert "nothing to resume" in message and CHECKPOINT in message

    assert main(train_argv("adain", data, out)) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / MODEL)
    assert _checkpoint(out).step == 2

    message = expect_error(capsys, train_argv("adain", data, out))
    assert "already holds a training run" in message and "--resume" in message

    message = expect_error(
        capsys, train_argv("adain", data, out, "--resume", "--style-weight", "5")
    )
    assert "different configuration" in message and "--style-weight" in message
    assert _checkpoint(out).step == 2 and _steps(out) == [1, 2]

    assert main(train_argv("adain", data, out, "--resume", "--iterations", "3")) == 0
    capsys.readouterr()
    assert _checkpoint(out).step == 3 and _steps(out) == [1, 2, 3]


# ----------------------------------------------------------------------------- bad data


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("which", ["content", "style"])
@pytest.mark.parametrize("problem", ["missing", "empty", "text only", "a file"])
def test_bad_folder(capsys, tmp_path, data, which, problem) -> None:
    bad = tmp_path / "bad"
    if problem == "empty":
        bad.mkdir()
    elif problem == "text only":
        (bad / "sub").mkdir(parents=True)
        (bad / "notes.txt").write_text("no images here\n")
        (bad / "sub" / "readme.md").write_text("nor here\n")
    elif problem == "a file":
        bad = data[0] / "0.png"
    folders = (bad, data[1]) if which == "content" else (data[0], bad)
    out = tmp_path / "run"
    message = expect_error(capsys, train_argv("adain", folders, out))
    assert message.startswith(f"{which} folder {bad}")
    assert ("has no images" if problem in ("empty", "text only") else "does not exist") in message
    assert not out.exists()


def _corrupt(folder: Path, seed: int) -> list[Path]:
    """Add a file of random bytes, a truncated JPEG and an empty PNG to ``folder``."""
    rng = np.random.default_rng(seed)
    noise = folder / "noise.jpg"
    noise.write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(buffer, "JPEG")
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    return [noise, truncated, empty]


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_images_are_skipped_and_warned_once(
    monkeypatch, tmp_path, data, encoder, workers
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    bad = _corrupt(data[0], 0) + _corrupt(data[1], 1)
    with pytest.warns(BrushworkWarning) as record:
        result = train(
            _config(data, iterations=15),
            _options(tmp_path / "run", workers=workers),
            encoder=encoder,
        )
    assert result.finished and result.step == 15
    assert result.skipped == sorted(str(p) for p in bad)
    messages = [str(w.message) for w in record if issubclass(w.category, BrushworkWarning)]
    assert len(messages) == len(bad), messages
    for path in bad:
        assert sum(str(path) in m for m in messages) == 1, messages
    assert all(m.startswith("skipping unreadable ") for m in messages)


@pytest.mark.parametrize("workers", [0, 2])
def test_no_readable_image_is_an_error(tmp_path, data, encoder, workers) -> None:
    style = tmp_path / "broken"
    style.mkdir()
    _corrupt(style, 2)
    before = set(multiprocessing.active_children())
    with (
        pytest.raises(BrushworkError, match="none of the 3 style images could be read") as error,
        pytest.warns(BrushworkWarning),
    ):
        train(
            _config((data[0], style)), _options(tmp_path / "run", workers=workers), encoder=encoder
        )
    assert not (tmp_path / "run" / CHECKPOINT).exists()
    # The data workers ended with the run, although the error's traceback still holds the
    # loaders (they ignore SIGTERM: left running, Python could not exit).
    assert error.value.__traceback__ is not None
    assert set(multiprocessing.active_children()) <= before


@pytest.mark.usefixtures("tiny_pretrained")
def test_cli_reports_skipped_images(capsys, monkeypatch, tmp_path, data) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    bad = _corrupt(data[1], 3)
    assert main(train_argv("adain", data, tmp_path / "run", "--iterations", "12")) == 0
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if line.startswith("brushwork: warning: skipping")]
    assert sorted(warned) == sorted(
        f"brushwork: warning: skipping unreadable style image {p}" for p in bad
    )
    assert f"brushwork: skipped {len(bad)} unreadable input(s)" in err


# ----------------------------------------------------------------------------- bad values


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--iterations", "0"], "iterations must be >= 1, not 0"),
        (["--batch-size", "0"], "batch-size must be >= 1, not 0"),
        (["--lap-weight", "-1"], "lap-weight must be >= 0, not -1"),
        (["--style-weight", "inf"], "style-weight must be a finite number, not inf"),
        (["--lr", "nan"], "lr must be a finite number, not nan"),
        (["--lr", "0"], "lr must be > 0, not 0"),
        (
            ["--crop-size", "64", "--load-size", "32"],
            "load-size must be >= crop-size (64), not 32",
        ),
        (["--crop-size", "8", "--load-size", "8"], "crop-size must be >= 16, not 8"),
        (["--lap-pool", "0"], "lap-pool must be >= 1, not 0"),
        (["--save-every", "0"], "save-every must be >= 1, not 0"),
        (["--log-every", "0"], "log-every must be >= 1, not 0"),
        (["--val-every", "0"], "val-every must be >= 1, not 0"),
        (["--workers", "-1"], "workers must be >= 0, not -1"),
        (["--max-minutes", "0"], "max-minutes must be > 0, not 0"),
    ],
)
def test_bad_values(capsys, monkeypatch, tmp_path, data, extra, expected) -> None:
    monkeypatch.delenv("BRUSHWORK_DEPTH_MODEL", raising=False)
    out = tmp_path / "run"
    assert expected in expect_error(capsys, train_argv("adain", data, out, *extra))
    assert not out.exists()


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("from_environment", [False, True])
def test_missing_depth_model_fails_before_the_weights_load(
    capsys, monkeypatch, tmp_path, data, from_environment
) -> None:
    """BRUSHWORK_DEPTH_MODEL stands in for --depth-model."""
    missing = tmp_path / "nowhere.onnx"
    extra = ["--depth-weight", "1"]
    if from_environment:
        monkeypatch.setenv("BRUSHWORK_DEPTH_MODEL", str(missing))
    else:
        monkeypatch.delenv("BRUSHWORK_DEPTH_MODEL", raising=False)
        extra += ["--depth-model", str(missing)]
    message = expect_error(capsys, train_argv("adain", data, tmp_path / "run", *extra))
    assert message == f"depth model {missing} does not exist"


@pytest.mark.usefixtures("no_work")
def test_a_run_folder_that_cannot_be_created_fails_before_the_weights_load(
    capsys, tmp_path, data
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    message = expect_error(capsys, train_argv("adain", data, blocker / "run"))
    assert message == f"output directory is not a directory: {blocker}"
    assert blocker.read_text() == "not a folder"


# ----------------------------------------------------------------------------- memory plan


@pytest.mark.usefixtures("no_work")
def test_max_memory_limits_the_run(capsys, tmp_path, data) -> None:
    """The default run (8 crops of 256 px with a 32 px mirrored margin): about 4.7 GiB, the
    decoder's step (5200 bytes a pixel of the 320 px framed crop) and two loaders' queues
    (4 workers each)."""
    argv = ["train", "adain", "--content-dir", str(data[0]), "--style-dir", str(data[1])]
    message = expect_error(capsys, [*argv, "--out", str(tmp_path / "run"), "--max-memory", "1G"])
    assert message == (
        "adain training with batches of 8 crops of 256x256 px needs about 4.7 GiB, over the "
        "memory limit (1.0 GiB); use a smaller --batch-size, --crop-size or --load-size, or "
        "a machine with more memory"
    )
    assert "argument --max-memory: expected a size like 8G" in expect_error(
        capsys, [*argv, "--max-memory", "lots"]
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("tiny_pretrained")
def test_a_run_within_max_memory_trains(capsys, tmp_path, data) -> None:
    out = tmp_path / "run"
    assert main(train_argv("adain", data, out, "--max-memory", "700M")) == 0
    assert capsys.readouterr().out.strip() == str(out / MODEL)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--crop-size", "70000", "--load-size", "none"],
            "the adain training crops would be 70000x70000 px, over the 65536 px a side "
            "brushwork handles; use a smaller --crop-size or --load-size",
        ),
        (
            ["--crop-size", "70000", "--load-size", "70000"],
            "the resized training images would be 70000x70000 px, over the 65536 px a side "
            "brushwork handles; use a smaller --load-size",
        ),
        (
            ["--load-size", "60000"],
            r"adain training with batches of 2 crops of 16x16 px needs about [\d.]+ GiB",
        ),
    ],
)
def test_crop_and_load_sizes_are_bounded(capsys, tmp_path, data, extra, expected) -> None:
    out = tmp_path / "run"
    message = expect_error(capsys, train_argv("adain", data, out, *extra))
    assert re.match(expected, message), message
    assert not out.exists()


def test_each_objective_plans_its_own_step() -> None:
    """One hook, one number per trainer: the estimate grows by the objective's bytes per
    crop pixel (and its loaders' queues) with each crop of a batch."""
    from brushwork.training import get_objective, trainers
    from brushwork.training.data import PREFETCH

    run = RunOptions(workers=2, max_memory=2**50)
    pair = {"content_dir": "photos", "style_dir": "paintings"}
    required = {
        "wct": {"image_dirs": ("photos",)},
        "depth": {"data_dir": "pairs"},
        "johnson": {"content_dir": "photos", "style": ("painting.jpg",)},
        "lapstyle": {"content_dir": "photos", "style": "painting.jpg"},
    }
    for name in trainers():
        objective_class = get_objective(name)
        args = required.get(name, pair)
        one, two = (
            objective_class(objective_class.config_class(**args, batch_size=n)) for n in (1, 2)
        )
        height, width = one.crop()
        queue = getattr(one, "streams", 0) * (PREFETCH * 2 + 2) * 12 * height * width
        step = one.pixel_bytes() * height * width
        assert two.plan(run) - one.plan(run) == pytest.approx(step + queue, abs=1), name
        assert one.pixel_bytes() >= 1000


# ----------------------------------------------------------------------------- the run folder


@pytest.mark.usefixtures("no_work")
def test_the_run_folder_is_no_input(capsys, tmp_path, data) -> None:
    """The run folder may not be a data folder, contain one, or lie inside one (the data is
    read recursively: the run's files would be trained on); nothing is written."""
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    content = data[0]
    cases = {
        content: f"--out {content} is the input {content}; choose another path",
        tmp_path: f"--out {tmp_path} contains the input {content}; choose another path",
        content / "run": f"--out {content / 'run'} lies inside the data folder {content}",
    }
    for out, expected in cases.items():
        assert expect_error(capsys, train_argv("adain", data, out)).startswith(expected)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.usefixtures("no_work")
def test_the_run_folder_does_not_hold_the_start(capsys, tmp_path, data, encoder) -> None:
    """A start checkpoint in the run folder would be overwritten by the run's model."""

    out = tmp_path / "run"
    out.mkdir()
    start = save_decoder(out / MODEL, encoder)
    before = start.read_bytes()
    argv = ["train", "adain-temporal", "--content-dir", str(data[0]), "--style-dir"]
    message = expect_error(
        capsys, [*argv, str(data[1]), "--init-from", str(start), "--out", str(out)]
    )
    assert message == f"--out {out} contains the input {start}; choose another path"
    assert start.read_bytes() == before and list(out.iterdir()) == [start]


@pytest.mark.parametrize("existing", [False, True])
def test_a_refused_run_leaves_no_folder(capsys, monkeypatch, tmp_path, data, existing) -> None:
    """A run refused once its folder was made (here: the weights cannot be loaded) removes
    the folders it made, and only those."""

    def missing(*args: object, **kwargs: object) -> None:
        raise BrushworkError("VGG-19 weights not found")

    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", missing)
    parent = tmp_path / "runs"
    if existing:
        parent.mkdir()
    assert (
        expect_error(capsys, train_argv("adain", data, parent / "new" / "run"))
        == "VGG-19 weights not found"
    )
    assert parent.exists() == existing
    assert not (parent / "new").exists()


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("name", ["model.safetensors", "losses.csv", "losses.png"])
def test_a_new_run_never_replaces_a_file_it_would_write(capsys, tmp_path, data, name) -> None:
    """`--out .` in a folder holding the user's own model.safetensors once overwrote it at
    the end of the run."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_bytes(b"the user's file")
    message = expect_error(capsys, train_argv("adain", data, out))
    assert message == f"--out {out} holds a {name} that a run would replace; choose a new or " + (
        "empty folder"
    )
    assert sorted(p.name for p in out.iterdir()) == [name]
    assert (out / name).read_bytes() == b"the user's file"


# ----------------------------------------------------------------------------- stopping


def _signal_self_at(step: int, *signums: int) -> Callable[[ev.Event], None]:
    """A sink that signals this process once step ``step`` is done."""

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and event.step == step:
            for signum in signums:
                os.kill(os.getpid(), signum)

    return sink


def test_sigterm_stops_between_steps_with_a_checkpoint(tmp_path, data, encoder) -> None:
    out = tmp_path / "run"
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    result = train(
        _config(data, iterations=50),
        _options(out, save_every=1000),
        encoder=encoder,
        events=_signal_self_at(2, signal.SIGTERM),
    )
    assert (result.step, result.finished, result.interrupted) == (2, False, True)
    assert _checkpoint(out).step == 2 and _steps(out) == [1, 2]
    assert not (out / MODEL).exists()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_second_signal_stops_at_once(tmp_path, data, encoder) -> None:
    out = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(
            _config(data, iterations=50),
            _options(out, save_every=1000),
            encoder=encoder,
            events=_signal_self_at(2, signal.SIGINT, signal.SIGINT),
        )
    assert not (out / CHECKPOINT).exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_max_minutes_stops_with_a_checkpoint(tmp_path, data, encoder, monkeypatch) -> None:
    out = tmp_path / "run"
    # the trainer's clock moves a minute per step, and only then: however fast or slow the
    # machine sets up and runs the steps, the limit lands after the second
    now = [0.0]
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def slow(event: ev.Event) -> None:
        if isinstance(event, ev.Progress):
            now[0] += 60.0

    result = train(
        _config(data, iterations=50), _options(out, max_minutes=1.5), encoder=encoder, events=slow
    )
    assert (result.step, result.finished, result.interrupted) == (2, False, False)
    assert _checkpoint(out).step == 2


def _start_cli(tmp_path: Path, data: tuple[Path, Path], out: Path, *extra: str):
    err = open(tmp_path / "stderr.txt", "w+")  # noqa: SIM115 (closed by _finish)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRIVER,
            *train_argv("adain", data, out, "--iterations", "100000", *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=env,
        start_new_session=True,
    )
    return process, err


def _stderr(err) -> str:
    err.seek(0)
    return err.read()


def _wait_for(condition: Callable[[], bool], process, err, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"training ended early ({process.returncode}): {_stderr(err)}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"no progress in {timeout} s: {_stderr(err)}")
        time.sleep(0.05)


def _finish(process, err, timeout: float = 90) -> tuple[int, str]:
    try:
        rc = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"training did not stop: {_stderr(err)}")
    text = _stderr(err)
    err.close()
    return rc, text


@pytest.mark.usefixtures("tiny_pretrained")
def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(capsys, tmp_path, data) -> None:
    """Ctrl-C at a terminal signals the whole process group, data workers included."""
    out = tmp_path / "run"
    process, err = _start_cli(tmp_path, data, out, "--workers", "2", "--save-every", "100000")
    _wait_for(lambda: "step 3\n" in _stderr(err), process, err)
    os.killpg(process.pid, signal.SIGINT)
    rc, text = _finish(process, err)
    assert rc == 130, text
    assert "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("brushwork: stopped at step ") and "--resume continues" in last
    step = int(last.split()[4])
    assert step >= 3 and f"step {step}\n" in text
    assert _checkpoint(out).step == step
    assert _steps(out) == list(range(1, step + 1))
    assert process.stdout.read() == ""
    process.stdout.close()

    assert main(train_argv("adain", data, out, "--resume", "--iterations", str(step + 2))) == 0
    assert capsys.readouterr().out.strip() == str(out / MODEL)
    assert _checkpoint(out).step == step + 2
    assert _steps(out) == list(range(1, step + 3))


@pytest.mark.usefixtures("tiny_pretrained")
def test_resume_after_sigkill_cuts_the_log_back(capsys, tmp_path, data) -> None:
    out = tmp_path / "run"
    process, err = _start_cli(tmp_path, data, out, "--save-every", "3")
    _wait_for(lambda: (out / CHECKPOINT).exists(), process, err)
    process.kill()
    _finish(process, err)
    process.stdout.close()
    saved = _checkpoint(out).step
    assert saved > 0 and saved % 3 == 0
    logged = _steps(out)
    assert logged == list(range(1, len(logged) + 1)) and len(logged) >= saved

    # A log ahead of its checkpoint (a kill between the two writes): resume cuts it back.
    with open(out / LOG, "a", newline="") as f:
        for extra in range(len(logged) + 1, len(logged) + 3):
            f.write(f"{extra},0.001,1,1,,,999,1.0\n")
    assert (
        main(
            train_argv(
                "adain", data, out, "--resume", "--iterations", str(saved + 2), "--save-every", "3"
            )
        )
        == 0
    )
    capsys.readouterr()
    assert _checkpoint(out).step == saved + 2
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, saved + 3))
    assert all(float(r["total"]) != 999 for r in rows)


# ----------------------------------------------------------------------------- distributed


def test_distributed_training_all_reduces_gradients(tmp_path, data) -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    out, ranks = tmp_path / "run", tmp_path / "ranks"
    ranks.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            str(TESTS / "ddp_train.py"),
            str(data[0]),
            str(data[1]),
            str(out),
            str(ranks),
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reports = [json.loads((ranks / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["step"] == 4 and r["finished"] for r in reports)
    # Each rank read its own crops, and the log shows the mean over the ranks ...
    assert reports[0]["batches"] != reports[1]["batches"]
    assert reports[0]["totals"] == reports[1]["totals"]
    assert len(reports[0]["totals"]) == 4
    # Rank 0 alone reports progress, with the same means.
    assert reports[0]["progress"] == reports[0]["totals"] and reports[1]["progress"] == []
    # ... yet both ended with the same decoder: the gradients were averaged across ranks.
    weights = [load_file(ranks / f"rank{r}.safetensors") for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][name], tensor, rtol=0, atol=0)
    # Rank 0 alone wrote the run: one checkpoint (the final state), one log, one model.
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKPOINT, LOG, CURVE, MODEL])
    saved = _checkpoint(out)
    assert saved.step == 4
    for name, tensor in weights[0].items():
        torch.testing.assert_close(saved.tensors[name], tensor, rtol=0, atol=0)
    assert _steps(out) == [1, 2, 3, 4]
    assert [float(r["total"]) for r in _rows(out)] == pytest.approx(reports[0]["totals"], rel=1e-5)


# ----------------------------------------------------------------------------- margin and start


def test_the_loss_sees_the_mirrored_margin_and_the_picture_without_it(encoder: VGG19) -> None:
    """With a margin the decoder paints the framed crop; the content loss compares the
    picture's cells with the AdaIN target inside the margin, the style loss the picture's
    statistics: a decoder that paints the margin black scores as one that paints it white."""
    from brushwork.methods.feedforward import Decoder

    torch.manual_seed(0)
    decoder = Decoder("relu4_1", width=1 / 16)
    config = TrainConfig("c", "s", crop_size=32, load_size=None, margin=16)
    content, style = smooth_image(32, 32, seed=1)[None][0], smooth_image(32, 32, seed=2)
    seen: list[tuple[int, ...]] = []

    class Framed(torch.nn.Module):
        def __init__(self, fill: float) -> None:
            super().__init__()
            self.fill = fill

        def forward(self, target: torch.Tensor) -> torch.Tensor:
            out = decoder(target)
            seen.append(tuple(out.shape[-2:]))
            framed = torch.full_like(out, self.fill)
            framed[..., 16:48, 16:48] = out[..., 16:48, 16:48]
            return framed

    black = AdaINLoss(Framed(0.0), encoder, config)(content, style)  # type: ignore[arg-type]
    white = AdaINLoss(Framed(1.0), encoder, config)(content, style)  # type: ignore[arg-type]
    assert seen == [(64, 64), (64, 64)]
    for name in ("content", "style", "total"):
        torch.testing.assert_close(black[name], white[name])


def test_a_margin_off_relu4_1_s_cells_is_refused(capsys, tmp_path, data) -> None:
    argv = train_argv("adain", data, tmp_path / "run")
    message = expect_error(capsys, [*argv, "--margin", "12"])
    assert message == "--margin must be a multiple of 8 (relu4_1's cell), not 12"


@pytest.mark.usefixtures("no_work")
def test_a_missing_start_is_refused_before_the_weights_load(capsys, tmp_path, data) -> None:
    argv = train_argv("adain", data, tmp_path / "run")
    message = expect_error(capsys, [*argv, "--init-from", str(tmp_path / "none.safetensors")])
    assert "none.safetensors" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("tiny_pretrained")
def test_a_run_starts_from_a_given_decoder(tmp_path, data, encoder: VGG19) -> None:
    """--init-from: the first checkpoint is the start after its steps, not a new decoder."""
    start = save_decoder(tmp_path / "start.safetensors", encoder)
    out = tmp_path / "run"
    argv = train_argv("adain", data, out)
    assert main([*argv, "--init-from", str(start), "--iterations", "1", "--lr", "1e-9"]) == 0
    trained = load_checkpoint(out / MODEL, method="adain").tensors
    begun = load_checkpoint(start, method="adain").tensors
    for name, tensor in begun.items():  # (the model file is float16)
        torch.testing.assert_close(trained[name].float(), tensor.float(), atol=1e-4, rtol=2e-3)
