"""The precision policy (brushwork.precision): the choice follows the CPU's flags, bad
requests are refused, and bfloat16 keeps results close to float32 where it is used."""

from __future__ import annotations

import pytest
import torch
from conftest import expect_error, requires_weights, save_decoder, smooth_image

from brushwork import events, precision
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.methods.adain import AdaIN
from brushwork.methods.gatys import Gatys
from brushwork.ops import gram_matrix, laplacian, mean_std
from brushwork.precision import Precision, resolve_device, resolve_precision


@pytest.fixture
def flags(monkeypatch: pytest.MonkeyPatch):
    """Pretend the CPU has the given flags (and no BRUSHWORK_PRECISION override)."""
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)

    def use(*names: str) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(names))

    return use


def test_auto_follows_the_cpu_flags(flags) -> None:
    flags("avx2", "avx512f")
    chosen = resolve_precision("auto", "cpu")
    assert chosen.name == "float32" and "no bfloat16 units" in chosen.reason
    flags("avx512_bf16")
    assert resolve_precision("auto", "cpu").name == "bfloat16"
    flags("amx_bf16", "avx512_bf16")
    chosen = resolve_precision("auto", torch.device("cpu"))
    assert chosen.name == "bfloat16" and "amx_bf16" in chosen.reason


def test_environment_sets_what_auto_means(flags, monkeypatch) -> None:
    flags("amx_bf16")
    monkeypatch.setenv(precision.PRECISION_ENV, "float32")
    assert resolve_precision("auto").name == "float32"
    assert resolve_precision("bfloat16").name == "bfloat16"  # explicit wins
    monkeypatch.setenv(precision.PRECISION_ENV, "float64")
    with pytest.raises(BrushworkError, match="BRUSHWORK_PRECISION"):
        resolve_precision("auto")


def test_bad_requests(flags) -> None:
    flags("avx2")
    with pytest.raises(BrushworkError, match="unknown precision 'half'"):
        resolve_precision("half")
    with pytest.raises(BrushworkError, match="only on CUDA"):
        resolve_precision("float16", "cpu")
    with pytest.warns(BrushworkWarning, match="emulated and slower"):
        chosen = resolve_precision("bfloat16", "cpu")
    assert chosen.name == "bfloat16"
    sink = events.Collect()
    with events.bound(sink):
        resolve_precision("bfloat16", "cpu")
    assert "emulated" in sink.of(events.Warned)[0].message


def test_flags_are_read_without_a_timing_run() -> None:
    precision.cpu_flags.cache_clear()
    assert isinstance(precision.cpu_flags(), frozenset)
    assert precision.cpu_flags() is precision.cpu_flags()  # cached after the first read


def test_devices() -> None:
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(BrushworkError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(BrushworkError, match="CUDA is not available"):
            resolve_device("cuda")


def test_autocast_context() -> None:
    bf16 = Precision("bfloat16", "cpu")
    conv = torch.nn.Conv2d(3, 4, 3)
    with bf16.autocast():
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16
    with Precision("float32", "cpu").autocast():
        assert conv(torch.rand(1, 3, 8, 8)).dtype == torch.float32


def test_sensitive_reductions_stay_float32() -> None:
    features = torch.rand(1, 8, 16, 16) * 100
    with Precision("bfloat16", "cpu").autocast():
        gram = gram_matrix(features.bfloat16())
        mean, std = mean_std(features.bfloat16())
        lap = laplacian(torch.rand(1, 3, 16, 16))
    assert gram.dtype == mean.dtype == std.dtype == lap.dtype == torch.float32
    torch.testing.assert_close(gram, gram_matrix(features.bfloat16().float()))


def test_gatys_bfloat16_tracks_float32(tiny_encoder: VGG19) -> None:
    content, style = smooth_image(32, 32, seed=1), smooth_image(32, 32, seed=2)
    results = {}
    for name in ("float32", "bfloat16"):
        method = Gatys(encoder=tiny_encoder, iterations=20, precision=Precision(name, "cpu"))
        results[name] = method.stylize(content, style)
    f32, b16 = results["float32"], results["bfloat16"]
    assert b16.details["precision"] == "bfloat16"
    for term in ("content", "style"):
        assert abs(b16.losses[term] - f32.losses[term]) <= 0.05 * f32.losses[term] + 1e-4
    assert float((b16.image - f32.image).abs().mean()) < 0.02
    assert b16.image.dtype == torch.float32


def test_adain_bfloat16_tracks_float32(tiny_encoder: VGG19, tmp_path) -> None:
    model = save_decoder(tmp_path / "d.safetensors", tiny_encoder)
    content, style = smooth_image(40, 48, seed=1), smooth_image(32, 32, seed=2)
    images = [
        AdaIN(encoder=tiny_encoder, model=str(model), precision=Precision(name, "cpu"))
        .stylize(content, style)
        .image
        for name in ("float32", "bfloat16")
    ]
    assert images[1].dtype == torch.float32
    assert float((images[0] - images[1]).abs().mean()) < 0.01


def test_cli_refuses_bad_precisions(capsys, tmp_path) -> None:
    from brushwork.image import to_pil

    content, style = tmp_path / "c.png", tmp_path / "s.png"
    to_pil(smooth_image(32, 32, seed=1)).save(content)
    to_pil(smooth_image(32, 32, seed=2)).save(style)
    out = str(tmp_path / "o.png")
    message = expect_error(
        capsys, ["stylize", str(content), str(style), "-o", out, "--precision", "half"]
    )
    assert "invalid choice: 'half'" in message
    message = expect_error(
        capsys,
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            out,
            "--precision",
            "float16",
            "--device",
            "cpu",
        ],
    )
    assert "float16 runs only on CUDA" in message
    assert not (tmp_path / "o.png").exists()


@requires_weights
@pytest.mark.integration
def test_real_encoder_gatys_parity() -> None:
    from brushwork.encoders import load_vgg19

    encoder = load_vgg19("relu5_1").use_channels_last(True)
    content, style = smooth_image(96, 96, seed=1), smooth_image(96, 96, seed=2)
    losses = {}
    for name in ("float32", "bfloat16"):
        method = Gatys(encoder=encoder, iterations=30, precision=Precision(name, "cpu"))
        losses[name] = method.stylize(content, style).losses
    for term in ("content", "style"):
        assert (
            abs(losses["bfloat16"][term] - losses["float32"][term])
            <= 0.03 * losses["float32"][term]
        )
