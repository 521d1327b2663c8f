"""`brushwork train lapstyle`: the draft starts from an AdaIN decoder; each revision stage
trains its own network alone from the stage before's model, with a patch discriminator and
its own optimizer (or none: --adversarial-weight 0); every stage's model is a whole LapStyle
model without the discriminator; stages and sizes are checked up front. The loop, resuming
and memory checks are the trainer contract's (test_contract_trainers.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import expect_error, save_decoder
from contract import image_folder
from PIL import Image

from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.models.parts import load_parts
from brushwork.training.runs import CHECKPOINT, LOG, MODEL

pytestmark = pytest.mark.usefixtures("one_thread", "tiny_pretrained")


def _argv(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    photos = tmp_path / "photos"
    if not photos.exists():
        image_folder(photos, 2, 0, 40)
        image_folder(tmp_path / "paintings", 1, 5, 64)
    return [
        "train", "lapstyle", "--content-dir", str(photos),
        "--style", str(tmp_path / "paintings" / "0.png"), "--style-size", "64",
        "--samples", "32", "--iterations", "2", "--batch-size", "2", "--workers", "0",
        "--log-every", "1", "--out", str(out), "-q", *extra,
    ]  # fmt: skip


def _draft(tmp_path: Path, encoder: VGG19, *extra: str) -> Path:
    start = save_decoder(tmp_path / "adain.safetensors", encoder)
    out = tmp_path / "draft"
    sizes = ["--crop-size", "16", "--load-size", "24"]
    assert main(_argv(tmp_path, out, *sizes, "--draft-from", str(start), *extra)) == 0
    return out / MODEL


def _column(run: Path, name: str) -> list[str]:
    with (run / LOG).open() as f:
        return [row[name] for row in csv.DictReader(f)]


def test_the_draft_starts_from_the_adain_decoder(tmp_path: Path, tiny_encoder: VGG19) -> None:
    model = _draft(tmp_path, tiny_encoder, "--lr", "1e-12")
    draft = load_parts(model, method="lapstyle")["draft"]
    start = load_checkpoint(tmp_path / "adain.safetensors", method="adain").tensors
    for key, tensor in start.items():
        torch.testing.assert_close(draft[f"decoder.{key}"].float(), tensor, atol=2e-3, rtol=1e-3)
    assert float(draft["skip3.weight"].abs().max()) < 1e-6  # the skips start closed
    assert models.style_of(models.file_metadata(model)).name == "0"  # type: ignore[union-attr]


@pytest.mark.parametrize("adversarial", [True, False])
def test_a_revision_stage_trains_its_network_alone(
    tmp_path: Path, tiny_encoder: VGG19, adversarial: bool
) -> None:
    draft = _draft(tmp_path, tiny_encoder)
    out = tmp_path / "revision"
    flags = ["--stage", "revision1", "--crop-size", "32", "--load-size", "40", "--lr", "1e-2"]
    flags += ["--init-from", str(draft), "--adversarial-weight", "1" if adversarial else "0"]
    assert main(_argv(tmp_path, out, *flags)) == 0
    before, after = load_parts(draft, method="lapstyle"), load_parts(out / MODEL, method="lapstyle")
    assert set(after) == {"draft", "revision1", "revision2"}  # no discriminator in the model
    for part in ("draft", "revision2"):
        for key, tensor in before[part].items():
            assert torch.equal(after[part][key], tensor), (part, key)
    assert any(not torch.equal(after["revision1"][k], v) for k, v in before["revision1"].items())
    held = load_checkpoint(out / CHECKPOINT, method="lapstyle").tensors
    judged = [k for k in held if k.startswith("discriminator.")]
    losses = _column(out, "discriminator")
    if adversarial:
        assert judged and all(losses)
        assert all(_column(out, "adversarial"))
    else:
        assert not judged and not any(losses)


def test_stages_and_sizes_are_checked_before_anything_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    message = expect_error(
        capsys, _argv(tmp_path, out, "--stage", "revision1", "--crop-size", "32")
    )
    assert message.startswith("the revision1 stage revises a trained draft: give --init-from")
    message = expect_error(capsys, _argv(tmp_path, out, "--crop-size", "20", "--load-size", "24"))
    assert message.startswith("--crop-size 20: the draft stage takes a multiple of 8")
    assert not out.exists()


def test_a_style_too_small_for_the_stage_s_loss_layers_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The draft stage sees the style at a quarter of --style-size: relu5_1's 16 px need
    64 there; the last revision, at full size, 16."""
    out = tmp_path / "run"
    wide = tmp_path / "wide.png"
    Image.new("RGB", (128, 40), "red").save(wide)
    argv = _argv(tmp_path, out, "--crop-size", "16", "--load-size", "24")
    argv[argv.index("--style") + 1] = str(wide)
    message = expect_error(capsys, argv)
    assert message == (
        f"style {wide} is 64x20 px at --style-size 64; its losses reach relu5_1 and need at "
        "least 64 px a side there"
    )
    assert not out.exists()


def test_a_missing_or_foreign_start_is_refused_before_anything_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_encoder: VGG19
) -> None:
    out = tmp_path / "run"
    missing = str(tmp_path / "no-such.safetensors")
    flags = ["--stage", "revision1", "--crop-size", "32", "--init-from", missing]
    message = expect_error(capsys, _argv(tmp_path, out, *flags))
    assert message.startswith(f"model {missing} is neither a bundled lapstyle model")
    wct = save_decoder(tmp_path / "wct.safetensors", tiny_encoder, "wct", "relu3_1")
    message = expect_error(capsys, _argv(tmp_path, out, "--draft-from", str(wct)))
    assert "adain" in message
    assert not out.exists()
