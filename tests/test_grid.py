"""The decoder's grid (issue 20: no grid texture): brushwork.ops.remove_lattice and AdaIN's
``degrid`` option."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import save_decoder, smooth_image

from brushwork.methods.adain import AdaIN
from brushwork.ops import remove_lattice


def lattice(height: int, width: int, period: int = 8) -> torch.Tensor:
    """A checkerboard-like pattern repeating every ``period`` px, zero mean."""
    y = torch.arange(height).view(-1, 1) % period
    x = torch.arange(width).view(1, -1) % period
    tile = torch.cos(2 * math.pi * y / period) + 0.5 * torch.cos(4 * math.pi * x / period)
    return (0.05 * tile).expand(1, 3, height, width)


def peak(image: torch.Tensor, period: int = 8) -> float:
    """Power at the lattice's frequencies over the median power (grey image)."""
    grey = image.mean(1)[0].double()
    power = torch.fft.fft2(grey - grey.mean()).abs() ** 2
    height, width = grey.shape
    at = [power[height // period, 0], power[0, 2 * width // period]]
    return float(max(at) / power.median().clamp_min(1e-12))


def test_a_lattice_over_a_picture_is_removed_and_the_picture_kept() -> None:
    picture = smooth_image(64, 96, seed=1)
    gridded = picture + lattice(64, 96)
    cleaned = remove_lattice(gridded)
    assert peak(gridded) > 50 * peak(cleaned)
    assert float((cleaned - picture).abs().mean()) < 0.2 * float((gridded - picture).abs().mean())
    # no colour shift: each channel's mean stays
    torch.testing.assert_close(cleaned.mean((2, 3)), gridded.mean((2, 3)), atol=2e-3, rtol=0)


def test_a_picture_without_a_lattice_barely_changes() -> None:
    picture = smooth_image(64, 96, seed=2)
    assert float((remove_lattice(picture) - picture).abs().max()) < 0.05
    flat = torch.full((1, 3, 16, 16), 0.4)
    torch.testing.assert_close(remove_lattice(flat), flat)


@pytest.mark.usefixtures("one_thread")
def test_adain_removes_its_grid_unless_told_not_to(tiny_encoder, tmp_path) -> None:
    model = str(save_decoder(tmp_path / "d.safetensors", tiny_encoder))
    content, style = smooth_image(40, 48, seed=3), smooth_image(32, 32, seed=4)
    with_grid = AdaIN(encoder=tiny_encoder, model=model, degrid=False).stylize(content, style)
    without = AdaIN(encoder=tiny_encoder, model=model).stylize(content, style)
    assert with_grid.image.shape == without.image.shape == content.shape
    assert float((with_grid.image - without.image).abs().max()) > 1e-3
