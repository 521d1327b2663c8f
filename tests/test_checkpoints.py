"""Checkpoints (brushwork.checkpoints): round trips, refusals, and turning a training
checkpoint into a shipped float16 model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from brushwork.checkpoints import Checkpoint, export_model, load_checkpoint, save_checkpoint
from brushwork.errors import BrushworkError


def make(path: Path, method: str = "wct") -> Path:
    tensors = {"conv1_1.weight": torch.randn(3, 4, 3, 3), "conv1_1.bias": torch.randn(3)}
    optimizer = {"conv1_1.weight.exp_avg": torch.randn(3, 4, 3, 3)}
    return save_checkpoint(
        path, Checkpoint(method, "vgg19:relu1_1:4", tensors, {"layer": "relu1_1"}, 7, optimizer)
    )


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    path = make(tmp_path / "c.safetensors")
    saved = load_checkpoint(path, method="wct", encoder="vgg19:relu1_1:4")
    assert saved.step == 7 and saved.config == {"layer": "relu1_1"}
    assert set(saved.optimizer) == {"conv1_1.weight.exp_avg"}
    with pytest.raises(BrushworkError, match="'wct' checkpoint, not 'adain'"):
        load_checkpoint(path, method="adain")
    with pytest.raises(BrushworkError, match="trained on encoder 'vgg19:relu1_1:4'"):
        load_checkpoint(path, method="wct", encoder="vgg19:relu1_1:64")


def test_export_model_drops_the_optimizer_and_halves(tmp_path: Path) -> None:
    path = make(tmp_path / "c.safetensors")
    model = export_model(path, tmp_path / "m.safetensors")
    saved = load_checkpoint(model, method="wct")
    assert saved.optimizer == {} and saved.step == 7
    assert all(t.dtype == torch.float16 for t in saved.tensors.values())
    with pytest.raises(BrushworkError, match="exists"):
        export_model(path, model)
    with pytest.raises(BrushworkError, match="does not exist"):
        export_model(tmp_path / "none.safetensors", tmp_path / "x.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(BrushworkError, match="not a readable safetensors file"):
        export_model(tmp_path / "bad.safetensors", tmp_path / "y.safetensors")
