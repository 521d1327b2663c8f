"""``brushwork.metrics``: the content and style distances the benchmarks report (the
warping error has its own module, tests/test_video_metrics.py). The tiny random encoder
stands in for VGG-19: the properties hold for any encoder."""

from __future__ import annotations

import pytest
import torch
from conftest import smooth_image

from brushwork.encoders import VGG19
from brushwork.metrics import Reference, distances, relative_error


def test_relative_error() -> None:
    target = torch.ones(2, 3)
    assert relative_error(target, target) == 0
    assert relative_error(torch.zeros(2, 3), target) == pytest.approx(1.0)
    assert relative_error(2 * target, target) == pytest.approx(1.0)
    assert relative_error(torch.ones(2), torch.zeros(2)) > 1e6  # no division by zero


def test_an_image_is_at_distance_zero_from_itself(tiny_encoder: VGG19) -> None:
    image = smooth_image(32, 32, seed=1)
    reference = Reference.of(image, tiny_encoder)
    found = distances(image, reference, reference, tiny_encoder)
    assert found["content"] == pytest.approx(0, abs=1e-9)
    assert found["style"] == pytest.approx(0, abs=1e-9)
    assert found["gram"] == pytest.approx(0, abs=1e-9)
    assert found["laplacian"] == pytest.approx(0, abs=1e-9)
    assert found["ssim"] == pytest.approx(1.0)


def test_distances_grow_away_from_their_reference(tiny_encoder: VGG19) -> None:
    content, style = smooth_image(32, 32, seed=1), smooth_image(32, 32, seed=2)
    c, s = Reference.of(content, tiny_encoder), Reference.of(style, tiny_encoder)
    near_content = distances(0.9 * content + 0.1 * style, c, s, tiny_encoder)
    near_style = distances(0.1 * content + 0.9 * style, c, s, tiny_encoder)
    assert near_content["content"] < near_style["content"]
    assert near_style["style"] < near_content["style"]
    assert near_style["gram"] < near_content["gram"]
    assert near_content["ssim"] > near_style["ssim"]
    assert "ssim" not in distances(content, c, s, tiny_encoder, ssim=False)
