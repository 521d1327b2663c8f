"""Error measures for relative depth, and the trivial baselines they are read against.

A relative estimator knows depth only up to a scale and shift, so each prediction is first
aligned to the ground truth in inverse-depth space (least squares, the protocol of MiDaS's
zero-shot evaluation: Ranftl et al. 2020, §6), turned into depth, and then scored with the
usual measures of Eigen et al. 2014:

* AbsRel = mean |d − d*| / d*  (lower is better);
* δ<1.25 = share of pixels with max(d / d*, d* / d) < 1.25  (higher is better).

The aligned inverse depth is clamped below at the farthest ground-truth point of the image
(MiDaS clamps at the dataset's largest depth), so that a flat or wrong prediction cannot
produce negative or infinite depths.
"""

from __future__ import annotations

import torch
from torch import Tensor

from brushwork.losses import align_scale_shift

BASELINES = ("constant", "ramp")


def depth_errors(
    prediction: Tensor, target: Tensor, mask: Tensor | None = None
) -> dict[str, float]:
    """AbsRel and δ<1.25 of inverse-depth ``prediction`` against inverse-depth ``target``
    (both (B, 1, H, W); target 0 = unknown), averaged over the images of the batch."""
    valid = target > 0 if mask is None else (mask != 0) & (target > 0)
    aligned = align_scale_shift(prediction.float(), target.float(), valid)
    absrel, delta1, count = 0.0, 0.0, 0
    for a, t, v in zip(aligned, target.float(), valid, strict=True):
        if not v.any():
            continue
        t = t[v]
        a = a[v].clamp_min(float(t.min()))
        depth, truth = 1.0 / a, 1.0 / t
        absrel += float(((depth - truth).abs() / truth).mean())
        ratio = torch.maximum(depth / truth, truth / depth)
        delta1 += float((ratio < 1.25).float().mean())
        count += 1
    count = max(count, 1)
    return {"absrel": absrel / count, "delta1": delta1 / count}


def baseline(name: str, shape: tuple[int, ...]) -> Tensor:
    """A trivial inverse-depth prediction of ``shape`` (B, 1, H, W): ``constant`` (every
    pixel equally far; after alignment, the mean) or ``ramp`` (far at the top, near at the
    bottom, linear in the row: a ground plane seen from eye height)."""
    if name == "constant":
        return torch.ones(shape)
    if name == "ramp":
        height = shape[-2]
        rows = torch.linspace(0.0, 1.0, height).view(1, 1, height, 1)
        return rows.expand(shape).clone()
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
