"""``brushwork.metrics``: the content and style distances the benchmarks report (the
warping error has its own module, tests/test_video_metrics.py). The tiny random encoder
stands in for VGG-19: the properties hold for any encoder."""

from __future__ import annotations

import pytest
import torch
from conftest import smooth_image

from brushwork.encoders import VGG19
from brushwork.metrics import (
    LAYERS,
    Reference,
    distances,
    relative_error,
    sharpness,
    sliced_wasserstein,
)


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
    assert found["sliced_wasserstein"] == pytest.approx(0, abs=1e-9)
    assert found["ssim"] == pytest.approx(1.0)
    assert found["sharpness"] == pytest.approx(1.0)


def test_distances_grow_away_from_their_reference(tiny_encoder: VGG19) -> None:
    content, style = smooth_image(32, 32, seed=1), smooth_image(32, 32, seed=2)
    c, s = Reference.of(content, tiny_encoder), Reference.of(style, tiny_encoder)
    near_content = distances(0.9 * content + 0.1 * style, c, s, tiny_encoder)
    near_style = distances(0.1 * content + 0.9 * style, c, s, tiny_encoder)
    assert near_content["content"] < near_style["content"]
    assert near_style["style"] < near_content["style"]
    assert near_style["gram"] < near_content["gram"]
    assert near_style["sliced_wasserstein"] < near_content["sliced_wasserstein"]
    assert near_content["ssim"] > near_style["ssim"]
    assert "ssim" not in distances(content, c, s, tiny_encoder, ssim=False)


def test_sharpness_is_the_laplacian_energy_relative_to_the_content() -> None:
    photo = smooth_image(48, 48, seed=4)
    blurred = torch.nn.functional.avg_pool2d(photo, 3, 1, 1, count_include_pad=False)
    noisy = (
        photo + 0.05 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))
    ).clamp(0, 1)
    assert sharpness(blurred, photo) < 1 < sharpness(noisy, photo)
    assert sharpness(photo * 0.5, photo) == pytest.approx(0.25, rel=1e-4)  # energy: squared
    assert sharpness(torch.full_like(photo, 0.5), photo) == 0


# ----------------------------------------------------------------------------- sliced Wasserstein


def features_of(image: torch.Tensor, encoder: VGG19) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return encoder(image, list(LAYERS))


def test_sliced_wasserstein_is_zero_for_the_same_features(tiny_encoder: VGG19) -> None:
    features = features_of(smooth_image(32, 32, seed=3), tiny_encoder)
    assert sliced_wasserstein(features, features) == pytest.approx(0, abs=1e-12)


def test_sliced_wasserstein_ignores_where_features_are(tiny_encoder: VGG19) -> None:
    """A distance between distributions: the same feature vectors in another order (here
    turned by 180°) are at distance 0."""
    image = smooth_image(32, 32, seed=3)
    features = features_of(image, tiny_encoder)
    shuffled = {k: v.flip(-1).flip(-2) for k, v in features.items()}
    assert sliced_wasserstein(shuffled, features) == pytest.approx(0, abs=1e-9)


def test_sliced_wasserstein_grows_with_a_shift(tiny_encoder: VGG19) -> None:
    image = smooth_image(32, 32, seed=3)
    features = features_of(image, tiny_encoder)
    found = [
        sliced_wasserstein(features_of((image + shift).clamp(0, 1), tiny_encoder), features)
        for shift in (0.05, 0.15, 0.3)
    ]
    assert 0 < found[0] < found[1] < found[2], found


def test_sliced_wasserstein_is_nearly_symmetric_and_takes_other_sizes(
    tiny_encoder: VGG19,
) -> None:
    """The longer sorted set is resampled to the shorter's length, so images of different
    sizes compare; swapping them changes only the normalisation."""
    a = features_of(smooth_image(32, 48, seed=4), tiny_encoder)
    b = features_of(smooth_image(40, 40, seed=5), tiny_encoder)
    forward, backward = sliced_wasserstein(a, b), sliced_wasserstein(b, a)
    assert forward > 0 and backward > 0
    assert 0.5 < forward / backward < 2


def test_sliced_wasserstein_is_deterministic_per_seed(tiny_encoder: VGG19) -> None:
    a = features_of(smooth_image(32, 32, seed=6), tiny_encoder)
    b = features_of(smooth_image(32, 32, seed=7), tiny_encoder)
    first = sliced_wasserstein(a, b, projections=16)
    assert sliced_wasserstein(a, b, projections=16) == first
    assert sliced_wasserstein(a, b, projections=16, seed=1) != first
