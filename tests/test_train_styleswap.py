"""Tests for ``brushwork train styleswap-inverse``: Style Swap's inverse network
(brushwork.training.styleswap's InverseObjective, through brushwork.training.trainer).

Every run uses the tiny random encoder (relu5_1, width 1/16: 16 channels at relu3_1), 16 px
crops, batches of 2 and a few steps. The bundled start (wct-relu3_1) is for the real VGG-19,
so runs start from a random relu3_1 decoder saved in the test.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import expect_error, save_decoder, smooth_image
from contract import train_argv

from brushwork import events as ev
from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.image import to_pil
from brushwork.methods.feedforward import Decoder, load_decoder
from brushwork.training import trainer
from brushwork.training.runs import CHECKPOINT, CURVE, LOG, MODEL
from brushwork.training.styleswap import InverseConfig, InverseLoss, InverseObjective
from brushwork.training.trainer import RunOptions

pytestmark = pytest.mark.usefixtures("one_thread")


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


@pytest.fixture
def start(tmp_path: Path, tiny_encoder) -> Path:
    """A random relu3_1 WCT decoder for the tiny encoder, to start from."""
    return save_decoder(
        tmp_path / "wct-relu3_1.safetensors", tiny_encoder, method="wct", layer="relu3_1"
    )


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch, no_work: None) -> None:
    """Fail the test if the weights load or a training step starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input reached the expensive part")

    monkeypatch.setattr(InverseLoss, "forward", refuse)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / LOG, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_trains_the_inverse_network(capsys, tmp_path, data, start, tiny_pretrained) -> None:
    out = tmp_path / "run"
    assert main(train_argv("styleswap-inverse", data, out, "--init-from", str(start))) == 0
    assert capsys.readouterr().out.strip() == str(out / MODEL)
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKPOINT, LOG, CURVE, MODEL])

    encoder_id = "vgg19:relu3_1:16"
    saved = load_checkpoint(out / CHECKPOINT, method="styleswap", encoder=encoder_id)
    assert saved.step == 2 and saved.optimizer
    assert InverseConfig(**saved.config) == InverseConfig(
        str(data[0]),
        str(data[1]),
        init_from=str(start),
        iterations=2,
        batch_size=2,
        learning_rate=3e-3,
        load_size=32,
        crop_size=16,
    )
    model = load_checkpoint(out / MODEL, method="styleswap", encoder=encoder_id)
    assert {t.dtype for t in model.tensors.values()} == {torch.float16}
    assert model.tensors.keys() == Decoder("relu3_1").state_dict().keys()
    decoder = load_decoder(
        out / MODEL, method="styleswap", layer="relu3_1", encoder=tiny_pretrained
    )
    with torch.no_grad():
        assert decoder(torch.rand(1, 16, 4, 4)).shape == (1, 3, 16, 16)

    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    for row in rows:
        feature, tv, total = (float(row[k]) for k in ("feature", "tv", "total"))
        assert all(math.isfinite(v) and v >= 0 for v in (feature, tv, total))
        assert total == pytest.approx(feature + tv, rel=1e-4)  # tv-weight 1
        assert row["val_psnr"] == ""


def test_a_run_from_scratch_learns(tmp_path, fixed_data, tiny_encoder) -> None:
    """Through the Python API, without a start (init_from None): a random decoder; the loss
    reported by the event stream goes down (the same batch every step: deterministic; seen
    ×0.64)."""
    collect = ev.Collect()
    config = InverseConfig(
        str(fixed_data[0]),
        str(fixed_data[1]),
        init_from=None,
        iterations=30,
        batch_size=2,
        learning_rate=3e-3,
        load_size=None,
        crop_size=32,
    )
    result = trainer.train(
        InverseObjective(config, encoder=tiny_encoder),
        RunOptions(out_dir=str(tmp_path / "run"), workers=0, log_every=1, progress=False),
        events=collect,
    )
    assert result.finished and result.step == 30
    progress = collect.of(ev.Progress)
    assert [e.stage for e in progress] == ["train styleswap-inverse"] * 30
    totals = [e.losses["total"] for e in progress]
    assert np.mean(totals[-5:]) < 0.8 * np.mean(totals[:5]), totals


def test_a_start_of_relu3_1_is_taken_whole(tmp_path, data, start, tiny_encoder) -> None:
    out = tmp_path / "run"
    config = InverseConfig(
        str(data[0]),
        str(data[1]),
        init_from=str(start),
        iterations=1,
        batch_size=2,
        learning_rate=1e-9,
        load_size=32,
        crop_size=16,
    )
    trainer.train(
        InverseObjective(config, encoder=tiny_encoder),
        RunOptions(out_dir=str(out), workers=0, progress=False),
    )
    loaded = load_checkpoint(start, method="wct").tensors
    state = load_checkpoint(out / CHECKPOINT, method="styleswap").tensors
    assert state.keys() == loaded.keys()
    for name, tensor in loaded.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=1e-6)


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("layer", ["relu4_1", "relu5_1", "relu2_1"])
def test_a_start_from_another_layer_is_refused(capsys, tmp_path, data, tiny_encoder, layer) -> None:
    """A deeper decoder shares the relu3_1 decoder's lower layers: it would be taken in part,
    silently; it is refused, before the weights load."""
    other = save_decoder(
        tmp_path / f"wct-{layer}.safetensors", tiny_encoder, method="wct", layer=layer
    )
    out = tmp_path / "run"
    message = expect_error(
        capsys, train_argv("styleswap-inverse", data, out, "--init-from", str(other))
    )
    assert message == (
        f"model {other} is a decoder from {layer}, not from relu3_1; the "
        "inverse network starts from a relu3_1 decoder"
    )
    assert not out.exists()


@pytest.mark.usefixtures("no_training")
def test_bad_starts_and_values(capsys, tmp_path, data, start) -> None:
    out = tmp_path / "run"
    message = expect_error(
        capsys,
        train_argv(
            "styleswap-inverse", data, out, "--init-from", str(start), "--init-method", "styleswap"
        ),
    )
    assert message == f"model {start} is a 'wct' checkpoint, not 'styleswap'"
    missing = tmp_path / "missing.safetensors"
    message = expect_error(
        capsys, train_argv("styleswap-inverse", data, out, "--init-from", str(missing))
    )
    assert message.startswith(f"model {missing} is neither a bundled wct model")
    for extra, expected in (
        (["--patch-size", "0"], "patch-size must be >= 1, not 0"),
        (["--tv-weight", "-1"], "tv-weight must be >= 0, not -1"),
        (["--crop-size", "64"], "load-size must be >= crop-size (64), not 32"),
        (["--init-method", "adain"], "argument --init-method: invalid choice: 'adain'"),
    ):
        assert expected in expect_error(
            capsys, train_argv("styleswap-inverse", data, out, "--init-from", str(start), *extra)
        )
    message = expect_error(
        capsys, train_argv("styleswap-inverse", (data[0], tmp_path / "nowhere"), out)
    )
    assert message == f"style folder {tmp_path / 'nowhere'} does not exist or is not a folder"
    assert not out.exists()
