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

from brushwork.ops import gram_matrix, mean_std, pooled_laplacian


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


def scale_shift_invariant_loss(
    prediction: Tensor, target: Tensor, mask: Tensor | None = None, eps: float = 1e-10
) -> Tensor:
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
    fit = _Fit(prediction, target, mask, eps)
    residual = fit.scale[:, None] * fit.pred_c - fit.goal_c
    per_image = (residual.pow(2) * fit.valid).sum(1) / fit.n / (fit.goal_var + fit.goal_floor)
    return fit.average(per_image)


def align_scale_shift(
    prediction: Tensor, target: Tensor, mask: Tensor | None = None, eps: float = 1e-10
) -> Tensor:
    """``prediction`` mapped by each image's least-squares scale (≥ 0) and shift onto
    ``target`` over the valid pixels of ``mask`` (Ranftl et al. 2020, eq. 4): the aligned
    map that :func:`scale_shift_invariant_loss` scores and depth metrics are computed on.
    Same shape as ``prediction``; invalid pixels get the same affine map."""
    fit = _Fit(prediction, target, mask, eps)
    pred = prediction.float().reshape(fit.scale.shape[0], -1)
    aligned = fit.scale[:, None] * (pred - fit.pred_mean) + fit.goal_mean
    return aligned.reshape(prediction.shape)


def gradient_matching_loss(
    prediction: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    scales: int = 4,
    eps: float = 1e-10,
) -> Tensor:
    """MiDaS's multi-scale gradient-matching term (Ranftl et al. 2020, eq. 11; Li & Snavely
    2018): the mean absolute x and y differences of the residual R = (aligned prediction −
    target) / std(target), over ``scales`` levels that each halve the resolution (nearest),
    counting only differences between two valid pixels. It rewards sharp, well-placed depth
    edges, which the squared term alone blurs. Inputs (B, 1, H, W); the alignment is
    :func:`align_scale_shift`'s, and the result is averaged over images with valid pixels."""
    if prediction.dim() != 4 or prediction.shape[1] != 1:
        raise ValueError(f"expected depth maps (B, 1, H, W), got {tuple(prediction.shape)}")
    fit = _Fit(prediction, target, mask, eps)
    std = (fit.goal_var + fit.goal_floor).sqrt()
    residual = ((fit.scale[:, None] * fit.pred_c - fit.goal_c) / std[:, None]).reshape(
        prediction.shape
    )
    valid = fit.valid.reshape(prediction.shape)
    total = prediction.new_zeros(prediction.shape[0], dtype=torch.float32)
    for level in range(scales):
        step = 2**level
        r, v = residual[..., ::step, ::step], valid[..., ::step, ::step]
        r = r * v
        vx = v[..., :, 1:] * v[..., :, :-1]
        vy = v[..., 1:, :] * v[..., :-1, :]
        grad = ((r[..., :, 1:] - r[..., :, :-1]).abs() * vx).sum((1, 2, 3)) + (
            (r[..., 1:, :] - r[..., :-1, :]).abs() * vy
        ).sum((1, 2, 3))
        total = total + grad / (vx.sum((1, 2, 3)) + vy.sum((1, 2, 3))).clamp_min(1)
    return fit.average(total / scales)


class _Fit:
    """Per-image least-squares scale (≥ 0) and shift of a prediction onto a target, kept on
    mean-centred maps (no cancellation): t = mean(d*) − s·mean(d)."""

    def __init__(self, prediction: Tensor, target: Tensor, mask: Tensor | None, eps: float) -> None:
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction {tuple(prediction.shape)} and target "
                f"{tuple(target.shape)} differ in shape"
            )
        if prediction.dim() < 2:
            raise ValueError(f"expected a batch (B, ...), got shape {tuple(prediction.shape)}")
        batch = prediction.shape[0]
        pred = prediction.float().reshape(batch, -1)
        goal = target.detach().float().reshape(batch, -1)
        if mask is None:
            valid = torch.ones_like(goal)
        else:
            valid = (mask.detach().expand(target.shape) != 0).reshape(batch, -1).float()
        self.valid = valid
        self.count = valid.sum(1)
        self.n = n = self.count.clamp_min(1)
        self.pred_mean = (valid * pred).sum(1, keepdim=True) / n[:, None]
        self.goal_mean = (valid * goal).sum(1, keepdim=True) / n[:, None]
        self.pred_c = (pred - self.pred_mean) * valid
        self.goal_c = (goal - self.goal_mean) * valid
        pred_var = self.pred_c.pow(2).sum(1) / n
        self.goal_var = self.goal_c.pow(2).sum(1) / n
        pred_floor = eps * (valid * pred.pow(2)).sum(1) / n + 1e-30
        self.goal_floor = eps * (valid * goal.pow(2)).sum(1) / n + 1e-30
        self.scale = ((self.pred_c * self.goal_c).sum(1) / n / (pred_var + pred_floor)).clamp_min(0)

    def average(self, per_image: Tensor) -> Tensor:
        """Mean over images with at least one valid pixel (0 when none has)."""
        has_pixels = (self.count > 0).float()
        return (per_image * has_pixels).sum() / has_pixels.sum().clamp_min(1)


def normalized_content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared error between features each normalized to zero mean and unit deviation
    per channel (LapStyle's content loss, Lin et al. 2021 §3.5, as in Park & Lee 2019's
    SANet): the structure, whatever the style's statistics."""
    mean, std = mean_std(features)
    target_mean, target_std = mean_std(target)
    return F.mse_loss((features.float() - mean) / std, (target.float() - target_mean) / target_std)


def cosine_distances(x: Tensor, y: Tensor) -> Tensor:
    """1 − cosine similarity between every column of (B, C, N) ``x`` and of (B, C, M) ``y``
    → (B, N, M), in float32."""
    with torch.autocast(x.device.type, enabled=False):  # bfloat16 would round them to 1/128
        x = F.normalize(x.float(), dim=1)
        y = F.normalize(y.float(), dim=1)
        return 1 - x.transpose(1, 2) @ y


def relaxed_emd_loss(features: Tensor, style: Tensor) -> Tensor:
    """Relaxed earth mover's distance between two sets of feature vectors, (B, C, N) and
    (B, C, M) (Kolkin, Salavon & Shakhnarovich 2019, "STROTSS", eq. 4-5): with cosine
    distances C, ``max(mean_i min_j C_ij, mean_j min_i C_ij)`` — each output feature near
    some style feature and each style feature near some output feature."""
    distances = cosine_distances(features, style)
    to_style = distances.min(dim=2).values.mean(dim=1)
    from_style = distances.min(dim=1).values.mean(dim=1)
    return torch.maximum(to_style, from_style).mean()


def self_similarity_loss(features: Tensor, content: Tensor) -> Tensor:
    """How differently the output's features relate to each other than the content's do,
    at the same (B, C, N) positions (STROTSS eq. 7; LapStyle's relative content loss):
    cosine-distance matrices, each column normalized to sum 1, compared by mean absolute
    difference, times N (so the loss does not shrink with more positions)."""
    found = cosine_distances(features, features)
    wanted = cosine_distances(content, content)
    found = found / found.sum(dim=1, keepdim=True).clamp_min(1e-8)
    wanted = wanted / wanted.sum(dim=1, keepdim=True).clamp_min(1e-8)
    return (found - wanted).abs().mean() * features.shape[-1]
