"""Pluggable depth estimators (ONNX via onnx2torch, TorchScript) and the
scale-and-shift-invariant depth loss used by AdaIN training's --depth-weight."""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from brushwork.cli import main
from brushwork.depth import DepthModel, load_depth_model
from brushwork.depth.estimator import DepthNet
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import scale_shift_invariant_loss
from brushwork.methods.feedforward import Decoder
from brushwork.training.adain import AdaINLoss, AdaINObjective, TrainConfig
from brushwork.training.runs import LOG, read_log
from brushwork.training.trainer import RunOptions, train

HAS_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnx2torch"))
requires_onnx = pytest.mark.skipif(
    not HAS_ONNX,
    reason="needs onnx and onnx2torch: pip install onnx && pip install --no-deps onnx2torch",
)


class TinyDepth(nn.Module):
    """A few convolutions: normalized RGB (B, 3, S, S) → (B, S/2, S/2), like MiDaS's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 1, 3, padding=1),
            nn.Softplus(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


@pytest.fixture(scope="module")
def tiny_depth_net() -> TinyDepth:
    torch.manual_seed(0)
    return TinyDepth().eval()


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory, tiny_depth_net: TinyDepth) -> Path:
    if not HAS_ONNX:
        pytest.skip("needs onnx and onnx2torch")
    path = tmp_path_factory.mktemp("depth") / "tiny.onnx"
    # the legacy exporter (deprecated, but it needs no onnxscript) writes opset 20, which
    # onnx2torch cannot read as is (Constant-19): load_depth_model converts it down
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            tiny_depth_net,
            (torch.rand(1, 3, 32, 32),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["depth"],
            dynamic_axes={"image": {0: "batch"}, "depth": {0: "batch"}},
        )
    return path


@pytest.fixture(scope="module")
def torchscript_path(tmp_path_factory: pytest.TempPathFactory, tiny_depth_net: TinyDepth) -> Path:
    path = tmp_path_factory.mktemp("depth") / "tiny.pt"
    with warnings.catch_warnings():  # deprecated in recent torch, still the format of .pt
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(tiny_depth_net), str(path))
    return path


def _check_model(model: DepthModel, net: nn.Module) -> None:
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    image = torch.rand(2, 3, 20, 28, requires_grad=True)
    depth = model(image)
    assert depth.shape == (2, 1, 20, 28)
    assert torch.isfinite(depth).all()
    depth.mean().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    # the same as running the original network by hand
    x = torch.nn.functional.interpolate(image.detach(), size=(32, 32), mode="bilinear")
    x = (x - model.mean) / model.std
    expected = torch.nn.functional.interpolate(net(x).unsqueeze(1), size=(20, 28), mode="bilinear")
    torch.testing.assert_close(model(image.detach()), expected, atol=1e-5, rtol=1e-4)


@requires_onnx
def test_onnx_model_is_differentiable(onnx_path: Path, tiny_depth_net: TinyDepth) -> None:
    _check_model(load_depth_model(onnx_path, input_size=32), tiny_depth_net)
    if importlib.util.find_spec("torchvision") is None:  # onnx2torch's stand-in is gone
        assert "torchvision" not in sys.modules


def test_torchscript_model_is_differentiable(
    torchscript_path: Path, tiny_depth_net: TinyDepth
) -> None:
    _check_model(load_depth_model(torchscript_path, input_size=32), tiny_depth_net)


def test_model_from_environment_and_conventions(
    torchscript_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRUSHWORK_DEPTH_MODEL", str(torchscript_path))
    model = load_depth_model(None, input_size=None, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert model(torch.rand(1, 3, 16, 24)).shape == (1, 1, 16, 24)
    model.train()  # a module holding the estimator goes to training mode: the net stays eval
    assert not model.net.training
    with pytest.raises(BrushworkError, match="depth-size"):
        load_depth_model(torchscript_path, input_size=0)
    with pytest.raises(BrushworkError, match="std must be > 0"):
        load_depth_model(torchscript_path, std=(0.5, 0.0, 0.5))


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRUSHWORK_DEPTH_MODEL", raising=False)
    with pytest.raises(BrushworkError, match="does not exist"):
        load_depth_model(tmp_path / "missing.onnx")
    (tmp_path / "model.h5").write_bytes(b"whatever")
    with pytest.raises(BrushworkError, match=r"unsupported file type '\.h5'"):
        load_depth_model(tmp_path / "model.h5")
    (tmp_path / "bad.pt").write_bytes(b"not a zip archive")
    with pytest.raises(BrushworkError, match="not a TorchScript file"):
        load_depth_model(tmp_path / "bad.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "state.pt")
    with pytest.raises(BrushworkError, match=r"torch\.jit\.save"):
        load_depth_model(tmp_path / "state.pt")


@requires_onnx
def test_onnx_errors(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    (tmp_path / "bad.onnx").write_bytes(b"this is not an onnx model \x00\x01\x02\xff")
    with pytest.raises(BrushworkError, match="not a valid ONNX model") as error:
        load_depth_model(tmp_path / "bad.onnx")
    assert "\n" not in str(error.value)
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(BrushworkError, match="not a valid ONNX model"):
        load_depth_model(tmp_path / "empty.onnx")
    # a valid ONNX operator that onnx2torch has no converter for
    graph = helper.make_graph(
        [helper.make_node("Shrink", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
        tmp_path / "shrink.onnx",
    )
    with pytest.raises(BrushworkError, match=r"onnx2torch does not support operator Shrink"):
        load_depth_model(tmp_path / "shrink.onnx")


# ---- the scale-and-shift-invariant loss ----


def _maps(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(3, 1, 12, 16, generator=generator) * 5 + 1
    noise = torch.randn(3, 1, 12, 16, generator=generator)
    return target, noise


def test_ssi_loss_is_zero_for_affine_predictions() -> None:
    target, _ = _maps()
    for scale, shift in ((1.0, 0.0), (3.0, 7.0), (0.01, -2.0), (250.0, 1000.0)):
        loss = scale_shift_invariant_loss(scale * target + shift, target)
        assert float(loss) < 1e-5, (scale, shift, float(loss))
    # near and far swapped is no match
    assert float(scale_shift_invariant_loss(-target, target)) == pytest.approx(1.0)


def test_ssi_loss_is_invariant_and_bounded() -> None:
    target, noise = _maps()
    prediction = target + 2 * noise
    loss = scale_shift_invariant_loss(prediction, target)
    assert 0.05 < float(loss) < 1
    for scale, shift in ((4.0, 3.0), (0.1, -50.0)):
        torch.testing.assert_close(
            scale_shift_invariant_loss(scale * prediction + shift, target),
            loss,
            rtol=1e-4,
            atol=1e-6,
        )
        torch.testing.assert_close(
            scale_shift_invariant_loss(prediction, scale * target + shift),
            loss,
            rtol=1e-4,
            atol=1e-6,
        )
    # 1 − r², per image, averaged
    per_image = []
    for p, d in zip(prediction.flatten(1), target.flatten(1), strict=True):
        r = torch.corrcoef(torch.stack([p, d]))[0, 1]
        per_image.append(1 - r.clamp_min(0) ** 2)
    torch.testing.assert_close(loss, torch.stack(per_image).mean(), rtol=1e-4, atol=1e-6)


def test_ssi_loss_gradient_and_flat_maps() -> None:
    target, noise = _maps()
    prediction = (target + noise).requires_grad_(True)
    scale_shift_invariant_loss(prediction, target).backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0
    flat = torch.full_like(target, 3.0, requires_grad=True)
    loss = scale_shift_invariant_loss(flat, target)
    loss.backward()
    assert loss.item() == pytest.approx(1.0) and torch.isfinite(flat.grad).all()
    for prediction, goal in (
        (target, torch.full_like(target, 2.0)),
        (torch.zeros_like(target), torch.zeros_like(target)),
    ):
        loss = scale_shift_invariant_loss(prediction, goal)
        assert math.isfinite(float(loss)) and 0 <= float(loss) <= 1


def test_ssi_loss_respects_the_mask() -> None:
    target, noise = _maps()
    mask = torch.zeros_like(target, dtype=torch.bool)
    mask[..., :6, :] = True
    # exact (affine) on the valid rows, garbage elsewhere
    prediction = torch.where(mask, 2 * target + 1, noise * 100)
    assert float(scale_shift_invariant_loss(prediction, target)) > 0.1
    assert float(scale_shift_invariant_loss(prediction, target, mask)) < 1e-5
    # a broadcast mask (H, W) and a float mask work alike
    loss = scale_shift_invariant_loss(prediction, target, mask[0, 0].float())
    assert float(loss) < 1e-5
    # an image with no valid pixel is left out; none at all gives 0
    mask[0] = False
    prediction = torch.where(mask, 2 * target + 1, noise)
    assert float(scale_shift_invariant_loss(prediction, target, mask)) < 1e-5
    assert float(scale_shift_invariant_loss(prediction, target, torch.zeros_like(mask))) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        scale_shift_invariant_loss(prediction, target[:, :, :5])


# ---- AdaIN training with a depth term ----


def _image_folder(folder: Path, count: int, seed: int) -> str:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        coarse = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((24, 20), Image.Resampling.BICUBIC)
        image.save(folder / f"{i}.png")
    return str(folder)


@pytest.fixture
def tiny_relu4() -> VGG19:
    torch.manual_seed(0)
    return VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()


@requires_onnx
def test_training_with_depth_loss(tmp_path: Path, onnx_path: Path, tiny_relu4: VGG19) -> None:
    config = TrainConfig(
        _image_folder(tmp_path / "content", 3, 0),
        _image_folder(tmp_path / "style", 2, 1),
        iterations=3,
        batch_size=2,
        load_size=None,
        crop_size=16,
        depth_weight=1.0,
        depth_model=str(onnx_path),
        depth_size=32,
    )
    result = train(
        AdaINObjective(config, encoder=tiny_relu4),
        RunOptions(
            out_dir=str(tmp_path / "run"), workers=0, progress=False, save_every=10, log_every=1
        ),
    )
    assert result.finished and result.step == 3
    steps = read_log(tmp_path / "run" / LOG)
    assert [s.step for s in steps] == [1, 2, 3]
    for s in steps:
        assert math.isfinite(s.losses["depth"]) and 0 <= s.losses["depth"] <= 1


def test_training_with_a_depth_module_passed_directly(
    tmp_path: Path, torchscript_path: Path, tiny_relu4: VGG19
) -> None:
    """The API can hand the objective a depth module, which stands in for depth_model."""
    config = TrainConfig(
        _image_folder(tmp_path / "content", 2, 0),
        _image_folder(tmp_path / "style", 2, 1),
        iterations=2,
        batch_size=2,
        load_size=None,
        crop_size=16,
        depth_weight=1.0,
    )
    result = train(
        AdaINObjective(
            config, encoder=tiny_relu4, depth=load_depth_model(torchscript_path, input_size=32)
        ),
        RunOptions(out_dir=str(tmp_path / "run"), workers=0, progress=False, log_every=1),
    )
    assert result.finished
    assert all(math.isfinite(s.losses["depth"]) for s in read_log(tmp_path / "run" / LOG))


def test_depth_term_alone_trains_the_decoder(torchscript_path: Path, tiny_relu4: VGG19) -> None:
    depth = load_depth_model(torchscript_path, input_size=32)
    config = TrainConfig(
        "",
        "",
        content_weight=0,
        style_weight=0,
        depth_weight=1.0,
        depth_model=str(torchscript_path),
    )
    torch.manual_seed(0)
    decoder = Decoder(width=1 / 16)
    loss = AdaINLoss(decoder, tiny_relu4, config, depth)
    losses = loss(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert 0 < losses["depth"].item() <= 1
    losses["total"].backward()
    grads = [p.grad for p in decoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in depth.parameters())


def test_config_checks_depth_options() -> None:
    with pytest.raises(BrushworkError, match="depth-size must be >= 0, not -1"):
        TrainConfig("c", "s", depth_size=-1).validate()
    with pytest.raises(BrushworkError, match="depth-size must be an integer"):
        TrainConfig("c", "s", depth_size=2.5).validate()  # type: ignore[arg-type]
    with pytest.raises(BrushworkError, match="depth-normalize must be one of imagenet, half"):
        TrainConfig("c", "s", depth_normalize="zscore").validate()
    # 0 (was None before the options refactor): the estimator sees the crops at their size
    TrainConfig("c", "s", depth_size=0, depth_normalize="half").validate()


def test_without_depth_model_the_bundled_estimator_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_relu4: VGG19
) -> None:
    import brushwork.encoders
    from brushwork.checkpoints import load_checkpoint

    monkeypatch.delenv("BRUSHWORK_DEPTH_MODEL", raising=False)
    model = load_depth_model(None)
    assert isinstance(model.net, DepthNet) and model.input_size is None
    assert not any(p.requires_grad for p in model.parameters())
    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", lambda *args, **kwargs: tiny_relu4)
    content = _image_folder(tmp_path / "content", 1, 0)
    code = main(
        [
            "train",
            "adain",
            "--content-dir",
            content,
            "--style-dir",
            content,
            "--depth-weight",
            "1",
            "--iterations",
            "1",
            "--batch-size",
            "1",
            "--crop-size",
            "16",
            "--load-size",
            "16",
            "--workers",
            "0",
            "--out",
            str(tmp_path / "run"),
            "-q",
        ]
    )
    assert code == 0
    saved = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors", method="adain")
    assert saved.config["depth_model"] == "depth"
    assert math.isfinite(read_log(tmp_path / "run" / LOG)[-1].losses["depth"])


def test_cli_depth_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = _image_folder(tmp_path / "content", 1, 0)
    code = main(
        [
            "train",
            "adain",
            "--content-dir",
            content,
            "--style-dir",
            content,
            "--depth-weight",
            "1",
            "--depth-model",
            str(tmp_path / "none.onnx"),
            "--depth-size",
            "-4",
            "--out",
            str(tmp_path / "run"),
            "-q",
        ]
    )
    assert code == 2 and "depth-size must be >= 0, not -4" in capsys.readouterr().err
