"""Losses between images, or between their encoder features.

Each function compares an output with a precomputed target (targets are computed once, with
no gradient). Normalizations, so that weights carry over between image sizes:

* content: mean squared error over feature elements (Gatys et al. 2016, eq. 1, averaged);
* style: mean squared error between Gram matrices normalized by C·H·W (eq. 3-5, averaged);
* total variation: mean squared difference of neighbouring pixels of the [0, 1] image
  (Mahendran & Vedaldi 2015, β = 2);
* Laplacian: mean squared difference of pooled Laplacians (Li et al. 2017, eq. 2-3);
* depth: scale-and-shift-invariant squared error of relative depth maps (Ranftl et al.
  2020, eq. 4-5), divided by the target's variance (:func:`scale_shift_invariant_loss`).

Methods divide content, style and Laplacian terms by their target's mean square, which makes
each a relative error: layers of very different magnitude then weigh alike (relu4_1's Gram
entries are ~10⁴ times relu1_1's) and weights carry over between images and sizes.
"""

from __future__ import annotations

import torch
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


def scale_shift_invariant_loss(prediction: Tensor, target: Tensor,
                               mask: Tensor | None = None, eps: float = 1e-10) -> Tensor:
    """Scale-and-shift-invariant squared error between relative depth maps, in [0, 1].

    Monocular depth networks (MiDaS, Depth Anything) predict inverse depth only up to an
    unknown scale and shift per image, so the prediction d is first aligned to the target
    d* by the least-squares scale s and shift t over the valid pixels (Ranftl et al.,
    "Towards Robust Monocular Depth Estimation", TPAMI 2020, eq. 4, in closed form)::

        (s, t) = argmin Σ_i (s·d_i + t − d*_i)²
        loss   = mean_i (s·d_i + t − d*_i)² / var(d*)

    This is MiDaS's ℒ_ssimse (eq. 5 with a squared residual, averaged instead of halved)
    divided by the target's variance, which makes it invariant to scaling and shifting the
    target as well as the prediction. Unlike eq. 4, s is kept ≥ 0: a depth map with near
    and far swapped is no match. The loss is then 1 − max(r, 0)², r the Pearson correlation
    of prediction and target: 0 when the prediction is an increasing affine map of the
    target, 1 when it is flat, uncorrelated or anticorrelated (where its gradient vanishes).
    s and t stay functions of the prediction, as in MiDaS; since they minimize the
    residual, detaching them would give the same gradient.

    ``prediction`` and ``target`` (no gradient) are batches (B, ...) of the same shape, e.g.
    (B, 1, H, W); each image is aligned and scored on its own, and the scores averaged.
    ``mask`` (broadcastable to ``target``; nonzero = valid) restricts both the alignment and
    the error; images with no valid pixel are left out (a batch with none gives 0). ``eps``,
    relative to each map's mean square, keeps flat maps finite: a flat prediction scores 1,
    a flat target 0.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} differ in shape")
    if prediction.dim() < 2:
        raise ValueError(f"expected a batch (B, ...), got shape {tuple(prediction.shape)}")
    batch = prediction.shape[0]
    pred = prediction.float().reshape(batch, -1)
    goal = target.detach().float().reshape(batch, -1)
    if mask is None:
        valid = torch.ones_like(goal)
    else:
        valid = (mask.detach().expand(target.shape) != 0).reshape(batch, -1).float()
    count = valid.sum(1)
    n = count.clamp_min(1)

    def centered(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean = (valid * x).sum(1, keepdim=True) / n[:, None]
        x_c = (x - mean) * valid
        floor = eps * (valid * x.pow(2)).sum(1) / n + 1e-30
        return x_c, x_c.pow(2).sum(1) / n, floor

    pred_c, pred_var, pred_floor = centered(pred)
    goal_c, goal_var, goal_floor = centered(goal)
    scale = ((pred_c * goal_c).sum(1) / n / (pred_var + pred_floor)).clamp_min(0)
    # s·d + t − d* with t = mean(d*) − s·mean(d), written on centred maps (no cancellation)
    residual = scale[:, None] * pred_c - goal_c
    per_image = residual.pow(2).sum(1) / n / (goal_var + goal_floor)
    has_pixels = (count > 0).float()  # images with no valid pixel score 0 and do not count
    return (per_image * has_pixels).sum() / has_pixels.sum().clamp_min(1)
