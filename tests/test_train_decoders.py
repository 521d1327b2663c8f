"""Tests for ``brushwork train wct``: training a decoder that inverts VGG-19 from one layer
(brushwork.training.decoders' ReconstructionObjective, through brushwork.training.trainer).

Every run uses the tiny random encoder (relu5_1, width 1/16: 16 channels at relu3_1, 32 at
relu4_1 and relu5_1), 16-32 px crops, batches of 2 and a few steps.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import expect_error, save_decoder, smooth_image
from contract import train_argv
from PIL import Image

from brushwork import events as ev
from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.image import to_pil
from brushwork.methods.feedforward import Decoder, decoder_width, load_decoder
from brushwork.training import trainer
from brushwork.training.decoders import (
    DecoderConfig,
    ReconstructionLoss,
    ReconstructionObjective,
    load_val_images,
    score_reconstruction,
)
from brushwork.training.runs import CHECKPOINT, CURVE, LOG, MODEL
from brushwork.training.trainer import RunOptions, TrainResult

pytestmark = pytest.mark.usefixtures("one_thread")


def _folder(path: Path, count: int, seed: int, height: int = 32, width: int = 32) -> Path:
    path.mkdir(parents=True)
    for i in range(count):
        to_pil(smooth_image(height, width, seed=seed + i)).save(path / f"{i}.png")
    return path


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders of training images (photos, paintings): three 32 px images each."""
    return _folder(tmp_path / "photos", 3, 0), _folder(tmp_path / "paintings", 3, 10)


@pytest.fixture
def fixed_image(tmp_path: Path) -> Path:
    """One image of exactly the crop size (crop 32, no resizing): every batch is the same."""
    return _folder(tmp_path / "fixed", 1, 5)


def _crop(folder: Path) -> torch.Tensor:
    """The batch of two crops of :func:`fixed_image`'s image that every step trains on."""
    [path] = folder.iterdir()
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None].expand(2, -1, -1, -1).contiguous()


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch, no_work: None) -> None:
    """Fail the test if the weights load or a training step starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input reached the expensive part")

    monkeypatch.setattr(ReconstructionLoss, "forward", refuse)


def _config(*folders: Path, **changes: object) -> DecoderConfig:
    values: dict = {
        "layer": "relu3_1",
        "iterations": 4,
        "batch_size": 2,
        "learning_rate": 3e-3,
        "load_size": 32,
        "crop_size": 16,
    }
    values.update(changes)
    return DecoderConfig(tuple(str(f) for f in folders), **values)


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


def train(
    config: DecoderConfig, run: RunOptions, *, encoder: VGG19, events: ev.Sinks = None
) -> TrainResult:
    """One reconstruction run through the trainer."""
    return trainer.train(ReconstructionObjective(config, encoder=encoder), run, events=events)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / LOG, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- a run's files


def test_cli_run_writes_checkpoint_log_and_model(capsys, tmp_path, images, tiny_pretrained) -> None:
    out = tmp_path / "run"
    assert main(train_argv("wct", images, out)) == 0
    assert capsys.readouterr().out.strip() == str(out / MODEL)
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKPOINT, LOG, CURVE, MODEL])

    encoder_id = "vgg19:relu3_1:16"
    saved = load_checkpoint(out / CHECKPOINT, method="wct", encoder=encoder_id)
    assert saved.step == 2 and saved.optimizer
    config = DecoderConfig(**saved.config)
    config.validate()
    assert config == _config(*images, iterations=2)
    model = load_checkpoint(out / MODEL, method="wct", encoder=encoder_id)
    assert model.step == 2 and {t.dtype for t in model.tensors.values()} == {torch.float16}
    assert model.tensors.keys() == saved.tensors.keys() == Decoder("relu3_1").state_dict().keys()
    decoder = load_decoder(out / MODEL, method="wct", layer="relu3_1", encoder=tiny_pretrained)
    with torch.no_grad():
        assert decoder(torch.rand(1, 16, 4, 4)).shape == (1, 3, 16, 16)

    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    for row in rows:
        pixel, feature, total = (float(row[k]) for k in ("pixel", "feature", "total"))
        assert all(math.isfinite(v) and v > 0 for v in (pixel, feature, total))
        assert total == pytest.approx(pixel + feature, rel=1e-4)
        assert row["val_psnr"] == row["val_feature"] == ""  # no --val-dir

    message = expect_error(
        capsys, train_argv("wct", images, out, "--resume", "--pixel-weight", "2")
    )
    assert "different configuration" in message and "--pixel-weight" in message
    assert main(train_argv("wct", images, out, "--resume", "--iterations", "3")) == 0
    capsys.readouterr()
    assert load_checkpoint(out / CHECKPOINT, method="wct").step == 3
    assert [int(r["step"]) for r in _rows(out)] == [1, 2, 3]


def test_the_loss_goes_down(tmp_path, fixed_image, tiny_encoder) -> None:
    # Same batch every step, fixed seeds: deterministic.
    collect = ev.Collect()
    config = _config(fixed_image, iterations=30, load_size=None, crop_size=32)
    train(config, _options(tmp_path / "run"), encoder=tiny_encoder, events=collect)
    progress = collect.of(ev.Progress)
    assert [e.stage for e in progress] == ["train wct"] * 30
    totals = [e.losses["total"] for e in progress]
    assert totals == pytest.approx([float(r["total"]) for r in _rows(tmp_path / "run")], rel=1e-4)
    first, last = np.mean(totals[:5]), np.mean(totals[-5:])
    assert last < 0.8 * first, totals


# ----------------------------------------------------------------------------- starting points


def _state(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / CHECKPOINT, method="wct").tensors


@pytest.mark.parametrize(
    ("start", "layer"), [(None, "relu3_1"), ("relu3_1", "relu3_1"), ("relu4_1", "relu5_1")]
)
def test_start_and_data_dependent_initialization(
    tmp_path, fixed_image, tiny_encoder, start, layer
) -> None:
    """A decoder from scratch is initialized on its first batch (its output the spread of an
    image); one started from a decoder of its layer takes every tensor and keeps them; one
    started from a shallower decoder (relu5_1 from relu4_1) takes the shared tensors and
    initializes only its new convolution (conv5_1), to the spread of the relu4_1 features
    its loaded layers expect. A learning rate of 1e-9 leaves the weights where one step put
    them."""
    changes: dict = {}
    if start is not None:
        path = save_decoder(
            tmp_path / f"{start}.safetensors", tiny_encoder, method="wct", layer=start
        )
        changes = {"init_from": str(path), "init_method": "wct"}
        loaded = load_checkpoint(path, method="wct").tensors
    out = tmp_path / "run"
    config = _config(
        fixed_image,
        layer=layer,
        iterations=1,
        learning_rate=1e-9,
        load_size=None,
        crop_size=32,
        **changes,
    )
    train(config, _options(out), encoder=tiny_encoder)
    state = _state(out)
    decoder = Decoder(layer, width=decoder_width(layer, tiny_encoder.out_channels[layer]))
    decoder.load_state_dict(state)
    torch.manual_seed(config.seed)  # the decoder the run built, before loading and scaling
    fresh = Decoder(layer, width=decoder_width(layer, tiny_encoder.out_channels[layer]))
    batch = _crop(fixed_image)
    with torch.no_grad():
        features = tiny_encoder(batch, ["relu4_1", layer])
        if start is None:
            assert float(decoder(features[layer]).std()) == pytest.approx(0.25, rel=1e-3)
            assert not 0.2 < float(fresh(features[layer]).std()) < 0.3  # needed initializing
        elif start == layer:
            assert state.keys() == loaded.keys()
            for name, tensor in loaded.items():
                torch.testing.assert_close(state[name], tensor, rtol=0, atol=1e-6)
        else:
            assert set(state) - set(loaded) == {"conv5_1.weight", "conv5_1.bias"}
            for name, tensor in loaded.items():
                torch.testing.assert_close(state[name], tensor, rtol=0, atol=1e-6)
            wanted = float(features["relu4_1"].std())
            assert float(decoder.conv5_1(features[layer]).std()) == pytest.approx(wanted, rel=1e-3)
            assert float(state["conv5_1.bias"].abs().max()) < 1e-6
            # conv5_1 is the run's own random one, scaled (here by about 3/4)
            fresh.conv5_1.bias.zero_()
            scale = wanted / float(fresh.conv5_1(features[layer]).std())
            assert abs(scale - 1) > 0.1
            torch.testing.assert_close(
                state["conv5_1.weight"], fresh.conv5_1.weight * scale, rtol=1e-3, atol=1e-7
            )


def test_resume_does_not_initialize_again(tmp_path, fixed_image, tiny_encoder) -> None:
    """Resuming continues exactly from the checkpoint: 2 + 2 steps equal 4 straight ones
    (no second data-dependent initialization)."""
    halves, straight = tmp_path / "halves", tmp_path / "straight"
    config = _config(fixed_image, iterations=2, load_size=None, crop_size=32)
    train(config, _options(halves), encoder=tiny_encoder)
    longer = dataclasses.replace(config, iterations=4)
    train(longer, _options(halves, resume=True), encoder=tiny_encoder)
    train(longer, _options(straight), encoder=tiny_encoder)
    resumed, direct = _state(halves), _state(straight)
    for name, tensor in direct.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- validation


def test_validation_psnr_is_logged(capsys, tmp_path, images, tiny_pretrained) -> None:
    held_out = _folder(tmp_path / "held-out", 2, 20, height=24, width=40)
    out = tmp_path / "run"
    assert main(train_argv("wct", images, out, "--val-dir", str(held_out), "--val-every", "2")) == 0
    capsys.readouterr()
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert rows[0]["val_psnr"] == rows[0]["val_feature"] == ""
    psnr, feature = float(rows[1]["val_psnr"]), float(rows[1]["val_feature"])
    assert 0 < psnr < 60 and feature > 0
    # the scores of the decoder saved at that step, on the whole held-out images
    decoder = Decoder("relu3_1", width=decoder_width("relu3_1", 16))
    decoder.load_state_dict(_state(out))
    scores = score_reconstruction(
        decoder.eval(), tiny_pretrained, "relu3_1", load_val_images(str(held_out))
    )
    assert psnr == pytest.approx(scores["psnr"], rel=1e-3)
    assert feature == pytest.approx(scores["feature"], rel=1e-3)


# ----------------------------------------------------------------------------- bad values


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--layer", "relu9_9"], "argument --layer: invalid choice: 'relu9_9'"),
        (["--iterations", "0"], "iterations must be >= 1, not 0"),
        (["--batch-size", "0"], "batch-size must be >= 1, not 0"),
        (["--lr", "0"], "lr must be > 0, not 0"),
        (["--lr-decay", "-1"], "lr-decay must be >= 0, not -1"),
        (["--feature-weight", "-1"], "feature-weight must be >= 0, not -1"),
        (["--pixel-weight", "nan"], "pixel-weight must be a finite number, not nan"),
        (
            ["--pixel-weight", "0", "--feature-weight", "0"],
            "pixel-weight and feature-weight must not both be 0",
        ),
        (["--crop-size", "64"], "load-size must be >= crop-size (64), not 32"),
        (["--crop-size", "8", "--load-size", "8"], "crop-size must be >= 16, not 8"),
        (["--layer", "relu5_1"], "crop-size must be >= 32 for a decoder from relu5_1, not 16"),
        (["--init-method", "gatys"], "argument --init-method: invalid choice: 'gatys'"),
        (["--images", ""], "argument --images: expected comma-separated"),
        (["--val-every", "0"], "val-every must be >= 1, not 0"),
    ],
)
def test_bad_values(capsys, tmp_path, images, extra, expected) -> None:
    out = tmp_path / "run"
    assert expected in expect_error(capsys, train_argv("wct", images, out, *extra))
    assert not out.exists()


@pytest.mark.usefixtures("no_training")
def test_bad_paths_fail_before_the_weights_load(capsys, tmp_path, images) -> None:
    out = tmp_path / "run"
    missing = tmp_path / "nowhere"
    message = expect_error(capsys, train_argv("wct", (images[0], missing), out))
    assert message == f"training folder {missing} does not exist or is not a folder"
    message = expect_error(capsys, train_argv("wct", images, out, "--val-dir", str(missing)))
    assert message == f"validation folder {missing} does not exist or is not a folder"
    model = tmp_path / "missing.safetensors"
    message = expect_error(
        capsys, train_argv("wct", images, out, "--init-from", str(model), "--init-method", "wct")
    )
    assert message.startswith(f"model {model} is neither a bundled wct model")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    message = expect_error(
        capsys, train_argv("wct", images, out, "--init-from", str(bad), "--init-method", "wct")
    )
    assert message.startswith(f"model {bad} is not a readable safetensors file")
    assert not out.exists()


def test_a_start_for_an_encoder_of_another_width_is_refused(
    capsys, tmp_path, images, tiny_pretrained
) -> None:
    """Only a bias of the last layer would fit: no start at all."""
    wide = VGG19(last_layer="relu4_1", width=1 / 8)
    path = save_decoder(tmp_path / "wide.safetensors", wide, method="wct", layer="relu3_1")
    out = tmp_path / "run"
    message = expect_error(
        capsys, train_argv("wct", images, out, "--init-from", str(path), "--init-method", "wct")
    )
    assert message == (
        f"model {path} was trained on encoder 'vgg19:relu3_1:32', of another "
        "width than this run's 'vgg19:relu3_1:16'"
    )
    assert not (out / CHECKPOINT).exists()
