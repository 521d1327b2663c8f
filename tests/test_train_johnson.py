"""`brushwork train johnson`: a network for several styles names them (with thumbnails) in
its model file; `--init-from` adds styles to a trained network and trains only their
normalization parameters (Dumoulin et al. 2017 §4.3); style names are checked up front. The
loop, resuming and memory checks are the trainer contract's (test_contract_trainers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import expect_error
from contract import JOHNSON_STYLES, image_folder, save_johnson
from PIL import Image

from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.methods.johnson import style_names
from brushwork.training.runs import MODEL

pytestmark = pytest.mark.usefixtures("one_thread", "tiny_pretrained")


def _argv(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    photos = image_folder(tmp_path / "photos", 2, 0, 24)
    paintings = image_folder(tmp_path / "paintings", 2, 5, 24)
    styles = f"{paintings / '0.png'},{paintings / '1.png'}"
    return [
        "train", "johnson", "--content-dir", str(photos), "--style", styles,
        "--style-size", "24", "--crop-size", "16", "--load-size", "24", "--width", "0.25",
        "--iterations", "2", "--batch-size", "2", "--workers", "0", "--out", str(out), "-q",
        *extra,
    ]  # fmt: skip


def test_several_styles_are_named_in_the_model(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(_argv(tmp_path, out, "--style-names", "dots,waves")) == 0
    assert style_names(out / MODEL) == ["dots", "waves"]
    assert all(t is not None for t in models.read_thumbnails(out / MODEL))


def test_added_styles_train_only_their_normalization(tmp_path: Path) -> None:
    start = save_johnson(tmp_path / "start.safetensors")
    out = tmp_path / "run"
    assert main(_argv(tmp_path, out, "--init-from", str(start), "--lr", "0.1")) == 0
    before = load_checkpoint(start, method="johnson").tensors
    after = load_checkpoint(out / MODEL, method="johnson").tensors
    assert style_names(out / MODEL) == [*JOHNSON_STYLES, "0", "1"]
    for key, tensor in before.items():
        trained = after[key].float()
        if key.endswith((".gamma", ".beta")):
            assert trained.shape[0] == 4
            torch.testing.assert_close(trained[:2], tensor.float(), atol=1e-3, rtol=0)
        else:
            torch.testing.assert_close(trained, tensor.float(), atol=1e-3, rtol=0)
    gamma = "down.0.norm.gamma"
    assert float((after[gamma][2:].float() - before[gamma].float().mean(0)).abs().max()) > 1e-3


def test_style_names_are_checked_before_anything_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    message = expect_error(capsys, _argv(tmp_path, out, "--style-names", "one"))
    assert message == "--style-names gives 1 names for 2 styles"
    message = expect_error(capsys, _argv(tmp_path / "again", out, "--style-names", "a,a"))
    assert message == "two styles are named 'a'; give --style-names"
    assert not out.exists()


def test_a_missing_style_or_a_foreign_start_is_refused_before_anything_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_encoder: object
) -> None:
    from conftest import save_decoder

    out = tmp_path / "run"
    argv = _argv(tmp_path, out)
    missing = tmp_path / "no-such.png"
    argv[argv.index("--style") + 1] = str(missing)
    assert expect_error(capsys, argv) == f"{missing}: no such file"
    decoder = save_decoder(tmp_path / "adain.safetensors", tiny_encoder)  # type: ignore[arg-type]
    message = expect_error(capsys, [*_argv(tmp_path / "b", out), "--init-from", str(decoder)])
    assert message == f"model {decoder} is a 'adain' checkpoint, not 'johnson'"
    assert not out.exists()


def test_a_style_too_small_for_the_loss_layers_is_refused_before_anything_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A strip 24 px long and 2 px high is 5 px high at --style-size 64: relu4_1, the style
    loss's deepest layer, needs 8."""
    out = tmp_path / "run"
    strip = tmp_path / "strip.png"
    Image.new("RGB", (24, 2), "red").save(strip)
    argv = _argv(tmp_path, out, "--style-size", "64")
    argv[argv.index("--style") + 1] = str(strip)
    message = expect_error(capsys, argv)
    assert message == (
        f"style {strip} is 64x5 px at --style-size 64; its losses reach relu4_1 and need at "
        "least 8 px a side there"
    )
    assert not out.exists()


def test_crops_may_grow_when_a_run_resumes(tmp_path: Path) -> None:
    """Larger crops on --resume: a curriculum against the blobs a network paints in flat
    regions larger than its crops."""
    out = tmp_path / "run"
    assert main(_argv(tmp_path, out)) == 0
    larger = ["--resume", "--iterations", "3", "--crop-size", "24", "--load-size", "24"]
    assert main(_argv(tmp_path / "more", out, *larger)) == 0
    checkpoint = load_checkpoint(out / "checkpoint.safetensors", method="johnson")
    assert checkpoint.step == 3 and checkpoint.config["crop_size"] == 24
