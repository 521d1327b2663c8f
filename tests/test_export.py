"""ONNX export of AdaIN: the exported graph computes what the PyTorch method computes, at any
content and style size; the CLI's `brushwork export adain`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import expect_error, requires_weights, save_decoder, smooth_image

import brushwork.encoders
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.export import ExportOptions
from brushwork.methods import get_method
from brushwork.methods.adain import LAYER, AdaINGraph, AdaINOptions
from brushwork.methods.adain import export_onnx as export_adain
from brushwork.methods.feedforward import decoder_id, load_decoder

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
# (content H, W), (style H, W): odd sizes, sizes that are not multiples of 8, the smallest
# content the decoder takes (9) and the smallest style (8), styles larger and smaller.
SIZES = [((37, 45), (29, 33)), ((21, 30), (40, 17)), ((9, 13), (8, 8)), ((32, 24), (19, 51))]


def export(
    path: Path, model: Path, *, encoder: VGG19, opset: int = 17, force: bool = False
) -> Path:
    """``export_adain`` of the decoder checkpoint ``model`` to ``path``."""
    return export_adain(
        ExportOptions(output=str(path), opset=opset, force=force),
        AdaINOptions(model=str(model)),
        encoder=encoder,
    )


@pytest.fixture(scope="module")
def tiny() -> VGG19:
    torch.manual_seed(0)
    return VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()


@pytest.fixture(scope="module")
def checkpoint(tiny: VGG19, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_decoder(tmp_path_factory.mktemp("model") / "tiny.safetensors", tiny)


@pytest.fixture(scope="module")
def exported(tiny: VGG19, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "adain.onnx"
    assert export(path, checkpoint, encoder=tiny) == path
    return path


def run_onnx(session, content: torch.Tensor, style: torch.Tensor, alpha: float) -> np.ndarray:
    feeds = {
        "content": content.numpy(),
        "style": style.numpy(),
        "alpha": np.array([alpha], dtype=np.float32),
    }
    return session.run(["image"], feeds)[0]


def reference(
    encoder: VGG19, model: Path, content: torch.Tensor, style: torch.Tensor, alpha: float
) -> np.ndarray:
    method = get_method("adain")(encoder=encoder, model=str(model), alpha=alpha)
    return method.stylize(content, style).image.numpy()


def test_graph_module_matches_the_method(tiny, checkpoint) -> None:
    decoder = load_decoder(checkpoint, method="adain", layer=LAYER, encoder=tiny)
    graph = AdaINGraph(tiny, decoder).eval()
    content, style = smooth_image(21, 30, seed=1), smooth_image(19, 27, seed=2)
    for alpha in (torch.tensor(0.3), torch.tensor([0.3])):  # 0-d or (1,)
        with torch.no_grad():
            image = graph(content, style, alpha)
        assert image.shape == content.shape
        expected = reference(tiny, checkpoint, content, style, 0.3)
        np.testing.assert_allclose(image.numpy(), expected, atol=1e-6)


def test_onnx_matches_pytorch_at_any_size(exported, tiny, checkpoint) -> None:
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["content", "style", "alpha"]
    assert [o.name for o in model.graph.output] == ["image"]
    assert model.opset_import[0].version == 17
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["brushwork_method"] == "adain"
    assert metadata["brushwork_encoder"] == decoder_id(LAYER, tiny.out_channels[LAYER])
    assert metadata["brushwork_encoder"] == "vgg19:relu4_1:32"
    assert metadata["brushwork_model"] == checkpoint.name
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed, ((h, w), (sh, sw)) in enumerate(SIZES):
        content, style = smooth_image(h, w, seed=seed), smooth_image(sh, sw, seed=seed + 10)
        images = {}
        for alpha in (0.3, 1.0):
            image = run_onnx(session, content, style, alpha)
            expected = reference(tiny, checkpoint, content, style, alpha)
            assert image.shape == tuple(content.shape) == expected.shape
            worst = max(worst, float(np.abs(image - expected).max()))
            assert image.min() >= 0 and image.max() <= 1
            images[alpha] = image
        # not a vacuous comparison: the image depends on alpha and has structure
        assert np.abs(images[1.0] - images[0.3]).max() > 0.01
        assert images[1.0].std() > 0.05
    print(f"max abs difference onnxruntime vs PyTorch: {worst:.3g}")
    assert worst < TOLERANCE


def test_export_refuses_to_overwrite_and_checks_arguments(
    exported, tiny, checkpoint, tmp_path
) -> None:
    before = exported.read_bytes()
    with pytest.raises(BrushworkError, match="exists; pass --force to overwrite"):
        export(exported, checkpoint, encoder=tiny)
    assert exported.read_bytes() == before
    with pytest.raises(BrushworkError, match=r"unsupported model format \(extension '\.pt'\)"):
        export(tmp_path / "adain.pt", checkpoint, encoder=tiny)
    with pytest.raises(BrushworkError, match="opset must be >= 11, not 9"):
        export(tmp_path / "a.onnx", checkpoint, encoder=tiny, opset=9)
    with pytest.raises(
        BrushworkError,
        match=r"is neither a bundled adain model \(adain, "
        r"adain-laplacian, adain-depth, adain-temporal\) nor an existing file",
    ):
        export(tmp_path / "a.onnx", tmp_path / "missing.safetensors", encoder=tiny)
    other = VGG19(last_layer="relu4_1", width=1 / 8)
    with pytest.raises(
        BrushworkError,
        match="trained on encoder 'vgg19:relu4_1:32'; this run uses 'vgg19:relu4_1:64'",
    ):
        export(tmp_path / "a.onnx", checkpoint, encoder=other)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture
def tiny_pretrained(monkeypatch: pytest.MonkeyPatch, tiny: VGG19) -> None:
    """The tiny encoder stands in for the pretrained VGG-19 wherever it is loaded:
    `brushwork export` loads it itself (brushwork.encoders.load_vgg19, not the shared
    cached one; the exporter copies it anyway)."""

    def load(*args: object, **kwargs: object) -> VGG19:
        return tiny

    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", load)
    monkeypatch.setattr(brushwork.encoders, "load_vgg19", load)


@pytest.mark.usefixtures("tiny_pretrained")
def test_cli_exports_and_refuses_bad_input(capsys, tmp_path, checkpoint, tiny) -> None:
    out = tmp_path / "model.onnx"
    argv = ["export", "adain", "-o", str(out), "--model", str(checkpoint)]
    assert main([*argv, "--opset", "18"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 18
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    content, style = smooth_image(19, 23, seed=4), smooth_image(16, 16, seed=5)
    image = run_onnx(session, content, style, 0.5)
    expected = reference(tiny, checkpoint, content, style, 0.5)
    assert np.abs(image - expected).max() < TOLERANCE

    before = out.read_bytes()
    assert "exists" in expect_error(capsys, argv)
    assert out.read_bytes() == before
    assert main([*argv, "-f"]) == 0
    assert capsys.readouterr().out.strip() == str(out)

    assert ".onnx" in expect_error(
        capsys, ["export", "adain", "-o", str(tmp_path / "m.png"), "--model", str(checkpoint)]
    )
    missing = tmp_path / "missing.safetensors"
    assert "is neither a bundled adain model" in expect_error(
        capsys, ["export", "adain", "-o", str(tmp_path / "b.onnx"), "--model", str(missing)]
    )
    not_a_model = tmp_path / "junk.safetensors"
    not_a_model.write_bytes(b"not safetensors")
    expect_error(
        capsys, ["export", "adain", "-o", str(tmp_path / "b.onnx"), "--model", str(not_a_model)]
    )
    assert "opset must be >= 11, not 7" in expect_error(capsys, [*argv, "-f", "--opset", "7"])
    expect_error(capsys, ["export"])  # no network named
    assert not (tmp_path / "b.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.safetensors", "model.onnx"]


@pytest.mark.integration
@requires_weights
def test_real_encoder_exports_within_tolerance(tmp_path) -> None:
    """The real VGG-19 (features in the hundreds) with a full-width random decoder."""
    from brushwork.encoders import load_vgg19

    encoder = load_vgg19(LAYER)
    checkpoint = save_decoder(tmp_path / "full.safetensors", encoder)
    path = export(tmp_path / "adain.onnx", checkpoint, encoder=encoder)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    content, style = smooth_image(45, 61, seed=0), smooth_image(40, 33, seed=3)
    image = run_onnx(session, content, style, 1.0)
    expected = reference(encoder, checkpoint, content, style, 1.0)
    assert image.shape == tuple(content.shape)
    assert np.abs(image - expected).max() < TOLERANCE
