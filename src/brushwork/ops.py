"""Feature and image operations shared by every method: pure functions on (B, C, H, W)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class _SelfProduct(torch.autograd.Function):
    """Xᵀ X for X of shape (B, N, C), with the one-matmul backward 2·X·sym(dG).

    Autograd's own backward of ``bmm(Xᵀ, X)`` takes two matmuls and an addition.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.bmm(x.transpose(1, 2), x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return torch.bmm(x, grad + grad.transpose(1, 2))


def gram_matrix(features: Tensor) -> Tensor:
    """Channel correlations G = F Fᵀ / (C·H·W) of (B, C, H, W) features → (B, C, C).

    Gatys et al. 2016, eq. 3; normalized by the number of feature elements as in Johnson's
    neural-style, so style weights do not depend on image size.
    """
    b, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last):
        samples = features.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view, no copy
    else:
        samples = features.reshape(b, c, h * w).transpose(1, 2)
    return _SelfProduct.apply(samples) / (c * h * w)


# The 4-neighbour discrete Laplacian used by Li et al. 2017 (Laplacian-steered NST, §3.1).
LAPLACIAN_KERNEL = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def laplacian(image: Tensor) -> Tensor:
    """The 3×3 Laplacian of each channel, with replicated borders (kornia's filter2d)."""
    from kornia.filters import filter2d

    kernel = LAPLACIAN_KERNEL.to(image)[None]
    return filter2d(image, kernel, border_type="replicate")


def pooled_laplacian(image: Tensor, pool_size: int) -> Tensor:
    """Laplacian of the image average-pooled by ``pool_size`` (Li et al. 2017, eq. 2):
    pooling first makes the loss follow the image's structure, not its pixel noise."""
    if pool_size > 1:
        image = F.avg_pool2d(image, pool_size, ceil_mode=True)
    return laplacian(image)
