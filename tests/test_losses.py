"""Tests for brushwork.ops and brushwork.losses: Gram matrices, content, total variation and
Laplacian losses, LapStyle's relaxed EMD, self-similarity and normalized content terms, on
small tensors made in the test."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import smooth_image

from brushwork.losses import (
    content_loss,
    gram_loss,
    laplacian_loss,
    normalized_content_loss,
    relaxed_emd_loss,
    self_similarity_loss,
    total_variation_loss,
)
from brushwork.ops import LAPLACIAN_KERNEL, gram_matrix, laplacian, pooled_laplacian

# ----------------------------------------------------------------------------- Gram matrix


def test_gram_matrix_shape_symmetry_and_value() -> None:
    torch.manual_seed(0)
    features = torch.randn(2, 5, 4, 3)
    gram = gram_matrix(features)
    assert gram.shape == (2, 5, 5)
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    for b in range(2):
        flat = features[b].reshape(5, -1)
        expected = flat @ flat.T / (5 * 4 * 3)
        torch.testing.assert_close(gram[b], expected)
    # diagonal: mean square of each channel divided by C
    torch.testing.assert_close(
        torch.diagonal(gram, dim1=1, dim2=2), features.pow(2).mean(dim=(2, 3)) / 5
    )


def test_gram_matrix_of_a_hand_computed_example() -> None:
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # B=1, C=2, H=1, W=2
    expected = torch.tensor([[[5.0, 1.0], [1.0, 10.0]]]) / 4
    torch.testing.assert_close(gram_matrix(features), expected)


def test_gram_matrix_of_channels_last_input_equals_contiguous() -> None:
    torch.manual_seed(1)
    features = torch.randn(2, 6, 5, 7)
    channels_last = features.contiguous(memory_format=torch.channels_last)
    assert not channels_last.is_contiguous()
    torch.testing.assert_close(gram_matrix(channels_last), gram_matrix(features))


def test_gram_loss_is_zero_at_the_target_and_positive_elsewhere() -> None:
    torch.manual_seed(2)
    features = torch.randn(1, 4, 6, 6)
    assert gram_loss(features, gram_matrix(features)).item() == 0
    other = gram_matrix(torch.randn(1, 4, 6, 6))
    expected = (gram_matrix(features) - other).pow(2).mean()
    torch.testing.assert_close(gram_loss(features, other), expected)
    assert gram_loss(features, other) > 0


# ----------------------------------------------------------------------------- content


def test_content_loss_zero_for_identical_features_positive_otherwise() -> None:
    torch.manual_seed(3)
    features = torch.randn(1, 8, 5, 5)
    assert content_loss(features, features.clone()).item() == 0
    shifted = features + 0.5
    torch.testing.assert_close(content_loss(features, shifted), torch.tensor(0.25))
    assert content_loss(features, torch.randn(1, 8, 5, 5)) > 0


# ----------------------------------------------------------------------------- total variation


def test_total_variation_is_zero_on_a_constant_image() -> None:
    assert total_variation_loss(torch.full((1, 3, 8, 9), 0.3)).item() == 0


def test_total_variation_of_a_hand_computed_example() -> None:
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # horizontal differences 1, 2 → mean square 2.5; vertical 2, 3 → 6.5
    torch.testing.assert_close(total_variation_loss(image), torch.tensor(9.0))
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 2, 3, 4)  # x-ramp, unit step
    torch.testing.assert_close(total_variation_loss(ramp), torch.tensor(1.0))


def test_total_variation_is_lower_for_smoother_images() -> None:
    smooth = smooth_image(16, 16)
    noisy = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert total_variation_loss(smooth) < total_variation_loss(noisy)


# ----------------------------------------------------------------------------- Laplacian


def test_laplacian_kernel_is_the_4_neighbour_kernel() -> None:
    expected = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    assert torch.equal(LAPLACIAN_KERNEL, expected)


def test_laplacian_of_a_constant_image_is_zero_everywhere() -> None:
    image = torch.full((2, 3, 7, 9), 0.7)
    out = laplacian(image)
    assert out.shape == image.shape
    # zero on the border too: the border is replicated, not zero-padded
    torch.testing.assert_close(out, torch.zeros_like(out), rtol=0, atol=1e-6)


def test_laplacian_of_a_linear_ramp_is_zero_in_the_interior() -> None:
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(10.0), indexing="ij")
    ramp = (0.05 * xs + 0.02 * ys).expand(1, 3, 8, 10)
    out = laplacian(ramp)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], torch.zeros(1, 3, 6, 8), rtol=0, atol=1e-5)
    # with replicated borders the ramp ends: the first column sees 4x − x − x − x₊₁ − x
    torch.testing.assert_close(out[0, 0, 3, 0], torch.tensor(-0.05), rtol=0, atol=1e-5)


def test_laplacian_of_a_single_bright_pixel_is_the_kernel() -> None:
    image = torch.zeros(1, 2, 7, 7)
    image[0, 1, 3, 3] = 1.0
    out = laplacian(image)
    expected = torch.zeros(1, 2, 7, 7)
    expected[0, 1, 2:5, 2:5] = LAPLACIAN_KERNEL
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_pooled_laplacian_shape_is_ceil_of_the_pooled_size() -> None:
    image = smooth_image(10, 13)
    assert pooled_laplacian(image, 4).shape == (1, 3, math.ceil(10 / 4), math.ceil(13 / 4))
    assert pooled_laplacian(image, 1).shape == image.shape
    torch.testing.assert_close(pooled_laplacian(image, 1), laplacian(image))


def test_pooled_laplacian_pools_before_the_laplacian() -> None:
    image = smooth_image(16, 16)
    pooled = torch.nn.functional.avg_pool2d(image, 2)
    torch.testing.assert_close(pooled_laplacian(image, 2), laplacian(pooled))


@pytest.mark.parametrize("pool_size", [1, 2, 4])
def test_laplacian_loss_is_zero_for_identical_images_and_differentiable(pool_size: int) -> None:
    content = smooth_image(16, 20, seed=1)
    target = pooled_laplacian(content, pool_size)
    assert laplacian_loss(content.clone(), target, pool_size).item() == pytest.approx(0, abs=1e-12)

    image = smooth_image(16, 20, seed=2).requires_grad_(True)
    loss = laplacian_loss(image, target, pool_size)
    assert loss > 0
    loss.backward()
    assert image.grad is not None
    assert torch.isfinite(image.grad).all()
    assert image.grad.abs().sum() > 0


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_matrix_gradient_is_exact(channels_last: bool) -> None:
    torch.manual_seed(0)
    features = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (features,))


# ----------------------------------------------------------------------------- LapStyle's terms


def test_the_relaxed_emd_is_zero_for_the_same_set_in_any_order_and_grows_apart() -> None:
    torch.manual_seed(0)
    features = torch.rand(2, 8, 30)
    shuffled = features[..., torch.randperm(30)]
    assert float(relaxed_emd_loss(features, shuffled)) < 1e-6
    near = relaxed_emd_loss(features, shuffled + 0.01 * torch.randn_like(shuffled))
    far = relaxed_emd_loss(features, torch.rand(2, 8, 30) - 0.5)
    assert 0 < float(near) < float(far)
    half = relaxed_emd_loss(features, features[..., :15])  # half the style unmatched
    assert float(half) > float(near)


def test_the_self_similarity_ignores_scale_and_sees_rearranged_structure() -> None:
    torch.manual_seed(1)
    content = torch.rand(1, 8, 40)
    assert float(self_similarity_loss(content * 3.0, content)) < 1e-5
    rearranged = content[..., torch.randperm(40)]
    assert float(self_similarity_loss(rearranged, content)) > 0.1


def test_the_normalized_content_loss_ignores_each_channel_s_statistics() -> None:
    torch.manual_seed(2)
    content = torch.rand(1, 4, 6, 6)
    restyled = content * torch.tensor([2.0, 0.5, 3.0, 1.0])[:, None, None] + 7
    assert float(normalized_content_loss(restyled, content)) < 1e-4
    assert float(normalized_content_loss(content.flip(-1), content)) > 0.1
