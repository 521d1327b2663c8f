"""Losses between images, or between their encoder features.

Each function compares an output with a precomputed target (targets are computed once, with
no gradient). Normalizations, so that weights carry over between image sizes:

* content: mean squared error over feature elements (Gatys et al. 2016, eq. 1, averaged);
* style: mean squared error between Gram matrices normalized by C·H·W (eq. 3-5, averaged);
* total variation: mean squared difference of neighbouring pixels of the [0, 1] image
  (Mahendran & Vedaldi 2015, β = 2);
* Laplacian: mean squared difference of pooled Laplacians (Li et al. 2017, eq. 2-3).

Methods divide content, style and Laplacian terms by their target's mean square, which makes
each a relative error: layers of very different magnitude then weigh alike (relu4_1's Gram
entries are ~10⁴ times relu1_1's) and weights carry over between images and sizes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from brushwork.ops import gram_matrix, pooled_laplacian


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between output and content features."""
    return F.mse_loss(features, target)


def gram_loss(features: Tensor, target_gram: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error between the output's Gram matrix (guided by ``mask`` if given, see
    :func:`brushwork.ops.gram_matrix`) and a target Gram matrix."""
    return F.mse_loss(gram_matrix(features, mask), target_gram)


def total_variation_loss(image: Tensor) -> Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def laplacian_loss(image: Tensor, target: Tensor, pool_size: int) -> Tensor:
    """Mean squared difference between the pooled Laplacians of ``image``
    and a target already passed through :func:`brushwork.ops.pooled_laplacian` with the same
    pool size; both images are RGB in [0, 1]."""
    return F.mse_loss(pooled_laplacian(image, pool_size), target)


def relative_scale(target: Tensor) -> float:
    """1 / mean square of a target: multiplying a squared error by it makes the error
    relative, so terms of very different magnitude weigh alike (see the module docstring)."""
    return 1.0 / float(target.pow(2).mean().clamp_min(1e-12))
