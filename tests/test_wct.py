"""WCT (brushwork.methods.wct) and its whitening and coloring ops (brushwork.ops): the
transform's statistics, coarse-to-fine levels, blending, masks, alpha, regularized
eigendecompositions on flat and tiny styles, decoder checkpoints of the wrong level or
method, and its ONNX export checked by onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import requires_weights, save_decoder, smooth_image
from contract import run_wct_export

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods import get_method
from brushwork.methods.base import StyleTarget
from brushwork.methods.feedforward import DECODER_LAYERS
from brushwork.methods.wct import WCT
from brushwork.ops import coloring_statistics, covariance, symmetric_power, whiten_color


@pytest.fixture(scope="module")
def encoder() -> VGG19:
    torch.manual_seed(0)
    return VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()


@pytest.fixture(scope="module")
def decoders(encoder: VGG19, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a random decoder per level, as `--models DIR` takes."""
    folder = tmp_path_factory.mktemp("wct")
    for seed, layer in enumerate(DECODER_LAYERS, 1):
        save_decoder(folder / f"{layer}.safetensors", encoder, "wct", layer, seed)
    return folder


def wct(encoder: VGG19, decoders: Path, **options: object) -> WCT:
    return WCT(encoder=encoder, models=str(decoders), **options)  # type: ignore[arg-type]


def features(seed: int, channels: int = 8, height: int = 12, width: int = 10) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mix = torch.randn(channels, channels, generator=generator)
    raw = torch.randn(1, channels, height * width, generator=generator)
    return (mix @ raw).reshape(1, channels, height, width) + 3.0


# ----------------------------------------------------------------------------- the transform


def test_whitening_and_coloring_give_the_style_statistics() -> None:
    content, style = features(1), features(2, height=9, width=14)
    mean, coloring = coloring_statistics(style)
    out = whiten_color(content, mean, coloring)
    out_mean, out_cov = covariance(out)
    style_mean, style_cov = covariance(style)
    torch.testing.assert_close(out_mean, style_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_cov, style_cov, atol=1e-3, rtol=1e-3)


def test_whitening_alone_gives_identity_covariance() -> None:
    content = features(3)
    mean, _cov = covariance(content)
    identity = torch.eye(8)[None]
    white = whiten_color(content, torch.zeros_like(mean), identity)
    _, white_cov = covariance(white)
    # the regularization (1e-5 × the mean eigenvalue on the diagonal) shrinks the smallest
    # directions a little: λ / (λ + ε) is 0.997 for this random covariance's smallest
    torch.testing.assert_close(white_cov, identity, atol=5e-3, rtol=0)


def test_symmetric_power_matches_eigendecomposition_and_inverts() -> None:
    cov = covariance(features(4))[1]
    root = symmetric_power(cov, 0.5, eps=0.0)
    torch.testing.assert_close(root @ root, cov, atol=1e-3, rtol=1e-4)
    inverse_root = symmetric_power(cov, -0.5, eps=0.0)
    torch.testing.assert_close(
        inverse_root @ cov @ inverse_root, torch.eye(8)[None], atol=1e-3, rtol=1e-3
    )


def test_flat_and_rank_deficient_covariances_stay_finite() -> None:
    flat = torch.full((1, 8, 6, 6), 2.5)
    mean, coloring = coloring_statistics(flat)
    assert torch.isfinite(coloring).all() and float(coloring.abs().max()) < 1e-3
    out = whiten_color(features(5), mean, coloring)
    assert torch.isfinite(out).all()
    # a flat style paints its colour: the output is (nearly) its mean everywhere
    torch.testing.assert_close(out, torch.full_like(out, 2.5), atol=1e-2, rtol=0)
    rank_one = features(6)[:, :1].expand(1, 8, 12, 10).contiguous()  # 8 equal channels
    assert torch.isfinite(symmetric_power(covariance(rank_one)[1], -0.5)).all()
    one_pixel = features(7, height=1, width=1)
    assert torch.isfinite(whiten_color(one_pixel, *coloring_statistics(features(8)))).all()


def test_masked_statistics_are_the_region_s() -> None:
    content = features(9)
    mask = torch.zeros(1, 1, 12, 10)
    mask[..., :6, :] = 1
    mean, cov = covariance(content, mask)
    region = content[..., :6, :]
    expected_mean, expected_cov = covariance(region)
    torch.testing.assert_close(mean, expected_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cov, expected_cov, atol=1e-3, rtol=1e-3)


def test_bfloat16_features_give_float32_statistics() -> None:
    content = features(10).bfloat16()
    mean, coloring = coloring_statistics(features(11).bfloat16())
    assert mean.dtype == coloring.dtype == torch.float32
    assert whiten_color(content, mean, coloring).dtype == torch.bfloat16


# ----------------------------------------------------------------------------- the method


def test_output_keeps_any_size_and_is_deterministic(encoder, decoders) -> None:
    method = wct(encoder, decoders)
    style = smooth_image(40, 36, seed=2)
    for height, width in ((37, 45), (16, 20), (1, 1), (33, 8)):
        content = smooth_image(height, width, seed=1)
        first = method.stylize(content, style).image
        assert first.shape == content.shape
        assert float(first.min()) >= 0 and float(first.max()) <= 1
        assert torch.equal(first, method.stylize(content, style).image)


def test_levels_run_coarse_to_fine_and_each_changes_the_image(encoder, decoders) -> None:
    content, style = smooth_image(32, 32, seed=1), smooth_image(32, 32, seed=2)
    assert wct(encoder, decoders).levels() == ("relu4_1", "relu3_1", "relu2_1", "relu1_1")
    full = wct(encoder, decoders, alpha=1.0, levels=DECODER_LAYERS)
    assert full.levels() == ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")
    given = wct(encoder, decoders, levels=("relu1_1", "relu3_1"))
    assert given.levels() == ("relu3_1", "relu1_1")
    one = wct(encoder, decoders, alpha=1.0, levels=("relu3_1",)).stylize(content, style).image
    two = (
        wct(encoder, decoders, alpha=1.0, levels=("relu3_1", "relu1_1"))
        .stylize(content, style)
        .image
    )
    assert not torch.equal(one, two)
    with pytest.raises(BrushworkError, match="once"):
        wct(encoder, decoders, levels=("relu3_1", "relu3_1"))


def test_alpha_zero_is_the_plain_reconstruction(encoder, decoders) -> None:
    content = smooth_image(32, 32, seed=1)
    styles = [smooth_image(32, 32, seed=s) for s in (2, 3)]
    outputs = [wct(encoder, decoders, alpha=0.0).stylize(content, s).image for s in styles]
    assert torch.equal(outputs[0], outputs[1])  # no style left
    styled = wct(encoder, decoders, alpha=1.0).stylize(content, styles[0]).image
    assert not torch.equal(outputs[0], styled)


def test_blend_weights_interpolate_and_masks_split(encoder, decoders) -> None:
    method = wct(encoder, decoders, alpha=1.0, levels=("relu2_1",))
    content = smooth_image(32, 32, seed=1)
    a, b = smooth_image(32, 32, seed=2), smooth_image(32, 32, seed=3)
    only_a = method.stylize(content, a).image
    assert torch.equal(
        method.stylize(content, [StyleTarget(a, 1.0), StyleTarget(b, 0.0)]).image, only_a
    )
    blend = method.stylize(content, [StyleTarget(a, 0.5), StyleTarget(b, 0.5)]).image
    assert not torch.equal(blend, only_a)
    full, empty = torch.ones(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    whole = method.stylize(
        content, [StyleTarget(a, 1.0, mask=full), StyleTarget(b, 1.0, mask=empty)]
    ).image
    torch.testing.assert_close(whole, only_a, atol=1e-4, rtol=0)  # a region of everything
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :, :16] = 1
    c = smooth_image(32, 32, seed=4)
    with_b = method.stylize(
        content, [StyleTarget(a, 1.0, mask=mask), StyleTarget(b, 1.0, mask=1 - mask)]
    ).image
    with_c = method.stylize(
        content, [StyleTarget(a, 1.0, mask=mask), StyleTarget(c, 1.0, mask=1 - mask)]
    ).image
    # the second style paints the right half only: swapping it changes that half, and
    # leaves the left half (away from the border the decoder blurs across) nearly as it was
    left, right = (
        with_b[..., :, 2:10] - with_c[..., :, 2:10],
        with_b[..., :, 22:30] - with_c[..., :, 22:30],
    )
    assert float(left.abs().mean()) < 0.2 * float(right.abs().mean())


def test_prepared_styles_are_reused(encoder, decoders) -> None:
    method = wct(encoder, decoders)
    style = smooth_image(40, 36, seed=2)
    prepared = method.prepare([StyleTarget(style)])
    for seed in (1, 4):
        content = smooth_image(30, 30, seed=seed)
        assert torch.equal(
            method.stylize(content, prepared).image, method.stylize(content, style).image
        )


def test_flat_style_gives_a_finite_image(encoder, decoders) -> None:
    flat = torch.full((1, 3, 32, 32), 0.3)
    out = wct(encoder, decoders).stylize(smooth_image(32, 32, seed=1), flat).image
    assert torch.isfinite(out).all()


def test_nan_in_the_inputs_is_refused(encoder, decoders) -> None:
    content = smooth_image(32, 32, seed=1)
    bad = content.clone()
    bad[..., 3, 3] = float("nan")
    with pytest.raises(BrushworkError, match="not finite"):
        wct(encoder, decoders).stylize(bad, smooth_image(32, 32, seed=2))
    with pytest.raises(BrushworkError, match="not finite"):
        wct(encoder, decoders).stylize(content, bad)


def test_too_small_style_is_refused(encoder, decoders) -> None:
    with pytest.raises(BrushworkError, match="at least 8"):
        wct(encoder, decoders).stylize(smooth_image(32, 32), smooth_image(4, 40))
    with pytest.raises(BrushworkError, match="at least 16"):
        wct(encoder, decoders, levels=DECODER_LAYERS).stylize(
            smooth_image(32, 32), smooth_image(8, 40)
        )


def test_decoder_of_the_wrong_level_or_method_is_refused(encoder, decoders, tmp_path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for layer in DECODER_LAYERS:
        source = "relu2_1" if layer == "relu3_1" else layer
        (folder / f"{layer}.safetensors").write_bytes(
            (decoders / f"{source}.safetensors").read_bytes()
        )
    with pytest.raises(BrushworkError, match="decoder from relu2_1, not from relu3_1"):
        wct(encoder, folder).stylize(smooth_image(32, 32), smooth_image(32, 32))
    adain = tmp_path / "adain"
    adain.mkdir()
    for layer in DECODER_LAYERS:
        save_decoder(adain / f"{layer}.safetensors", encoder, "adain", layer)
    with pytest.raises(BrushworkError, match="'adain' checkpoint, not 'wct'"):
        wct(encoder, adain).stylize(smooth_image(32, 32), smooth_image(32, 32))
    with pytest.raises(BrushworkError, match="neither a bundled wct model"):
        wct(encoder, tmp_path / "none").check_files()


def test_registry_lists_wct_with_its_bundled_decoders() -> None:
    from brushwork import models

    assert get_method("wct") is WCT
    names = [m.name for m in models.for_method("wct")]
    assert names == [f"wct-{layer}" for layer in DECODER_LAYERS]
    assert all(m.layer in DECODER_LAYERS for m in models.for_method("wct"))


def test_memory_plan_refuses_a_run_too_large(encoder, decoders) -> None:
    method = wct(encoder, decoders)
    plan = method.plan(512, 512, [(512, 512)])
    assert plan.estimate > 512 * 512 * method.bytes_per_pixel
    with pytest.raises(BrushworkError, match="GiB"):
        method.plan(4096, 4096, [(512, 512)], limit=2**30)
    with pytest.raises(BrushworkError, match="GiB"):  # the style's pass counts too
        method.plan(64, 64, [(20000, 20000)], limit=2**30)


@requires_weights
@pytest.mark.integration
def test_bundled_decoders_reconstruct_and_stylize() -> None:
    from brushwork import models
    from brushwork.encoders import load_vgg19

    if not all(m.path.is_file() for m in models.for_method("wct")):
        pytest.skip("the bundled WCT decoders are not in this checkout")
    encoder = load_vgg19("relu5_1")
    content = smooth_image(64, 80, seed=1)
    out = WCT(encoder=encoder).stylize(content, smooth_image(64, 64, seed=2)).image
    assert out.shape == content.shape and torch.isfinite(out).all()
    reconstruction = (
        WCT(encoder=encoder, alpha=0.0, levels=("relu1_1",)).stylize(content, content).image
    )
    mse = float((reconstruction - content).pow(2).mean())
    assert 10 * np.log10(1 / mse) > 25  # the relu1_1 decoder nearly inverts the encoder


# ----------------------------------------------------------------------------- ONNX export


def test_onnx_export_matches_pytorch(encoder, decoders, tmp_path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from brushwork.export import ExportOptions
    from brushwork.methods.wct import WCTOptions
    from brushwork.methods.wct import export_onnx as export_wct

    options = WCTOptions(models=str(decoders), alpha=0.7)
    folder = export_wct(ExportOptions(str(tmp_path / "wct")), options, encoder=encoder)
    description = json.loads((folder / "wct.json").read_text())
    assert [lv["level"] for lv in description["levels"]] == list(WCT(options).levels())
    for size in ((37, 45), (32, 48)):
        content = smooth_image(*size, seed=1)
        style = smooth_image(40, 36, seed=2)
        expected = WCT(options, encoder=encoder).stylize(content, style).image.numpy()
        got = run_wct_export(folder, content, style)
        np.testing.assert_allclose(got, expected, atol=2e-3)
    with pytest.raises(BrushworkError, match="exists"):
        export_wct(ExportOptions(str(folder)), options, encoder=encoder)
    with pytest.raises(BrushworkError, match="folder"):
        export_wct(ExportOptions(str(tmp_path / "wct.onnx")), options, encoder=encoder)


def test_onnx_export_never_replaces_a_folder_it_did_not_write(
    encoder, decoders, tmp_path, monkeypatch
) -> None:
    """`export wct -o . -f` once removed the current folder; `-o FOLDER -f` a folder of the
    user's files. Only an earlier export (its marker, nothing added) is replaced."""
    pytest.importorskip("onnx")
    from brushwork.export import ExportOptions
    from brushwork.methods.wct import WCTOptions
    from brushwork.methods.wct import export_onnx as export_wct

    options = WCTOptions(models=str(decoders), levels=("relu1_1",))
    user = tmp_path / "photos"
    user.mkdir()
    (user / "holiday.jpg").write_bytes(b"precious")
    monkeypatch.chdir(user)
    for target, message in (
        (".", "current folder"),
        (str(tmp_path), "current folder or one of its ancestors"),
        (str(user), "current folder"),
    ):
        with pytest.raises(BrushworkError, match=message):
            export_wct(ExportOptions(target, force=True), options, encoder=encoder)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BrushworkError, match="brushwork did not write"):
        export_wct(ExportOptions(str(user), force=True), options, encoder=encoder)
    with pytest.raises(BrushworkError, match=r"contains the input .*relu1_1\.safetensors"):
        export_wct(ExportOptions(str(decoders), force=True), options, encoder=encoder)
    assert (user / "holiday.jpg").read_bytes() == b"precious"

    folder = export_wct(ExportOptions(str(tmp_path / "wct")), options, encoder=encoder)
    first = (folder / "wct.json").read_bytes()
    assert export_wct(ExportOptions(str(folder), force=True), options, encoder=encoder) == folder
    assert (folder / "wct.json").read_bytes() == first
    (folder / "notes.txt").write_text("mine")  # the user's file in the export: kept
    with pytest.raises(BrushworkError, match="holds other files"):
        export_wct(ExportOptions(str(folder), force=True), options, encoder=encoder)
    assert (folder / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries
