"""Depth maps as images: a colour map to look at, and 16-bit grey to compute with.

Both take *relative inverse depth* (:func:`brushwork.depth.estimator.predict_depth`:
larger = nearer, known only up to a scale and shift per image), so neither can show metric
distances: each image is normalised by its own values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Turbo (Anton Mikhailov, "Turbo, An Improved Rainbow Colormap for Visualization", Google AI
# Blog, August 2019), as the degree-5 polynomial approximation that Google published with it
# (GLSL by Ruofei Du, https://gist.github.com/mikhailov-work/0d177465a8151eb6ede1768d51d476c7,
# Copyright 2019 Google LLC, Apache-2.0). Row: R, G, B; column: coefficient of x**0 ... x**5.
_TURBO = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)
RAW_DESCRIPTION = "relative inverse depth: 0 = farthest, 65535 = nearest, scale and shift unknown"
"""What a :func:`to_uint16` PNG holds (``brushwork depth --raw`` writes it as its
``Description`` text chunk)."""


def _as_map(inverse_depth: Tensor | np.ndarray) -> np.ndarray:
    """(H, W), (1, H, W) or (1, 1, H, W) → a float64 (H, W) array."""
    if isinstance(inverse_depth, Tensor):
        inverse_depth = inverse_depth.detach().to("cpu", torch.float64).numpy()
    values = np.asarray(inverse_depth, dtype=np.float64)
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2:
        raise ValueError(
            f"expected a depth map (H, W), (1, H, W) or (1, 1, H, W), got "
            f"shape {tuple(np.shape(inverse_depth))}"
        )
    return values


def turbo(x: np.ndarray) -> np.ndarray:
    """Turbo colours of ``x`` in [0, 1] (clipped) → float RGB in [0, 1], shape ``x.shape + (3,)``:
    dark blue at 0, through cyan, green and yellow, to dark red at 1."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    powers = np.stack([x**k for k in range(6)], axis=-1)
    return np.clip(powers @ _TURBO.T, 0.0, 1.0)


def colorize(
    inverse_depth: Tensor | np.ndarray, low: float = 2.0, high: float = 98.0
) -> np.ndarray:
    """Relative inverse depth (H, W), (1, H, W) or (1, 1, H, W) → RGB uint8 (H, W, 3).

    Values are normalised by the map's own ``low`` and ``high`` percentiles (so a few
    outlying pixels do not wash out the rest; those beyond are clipped) and coloured with
    Turbo: the nearest parts red and yellow (warm), the farthest dark blue. Only the order
    of depths is meaningful, not the colours' absolute values. A flat map (or one without
    finite values) is all the far colour; non-finite pixels are shown as far.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    values = _as_map(inverse_depth)
    finite = np.isfinite(values)
    x = np.zeros(values.shape)
    if finite.any():
        lo, hi = np.percentile(values[finite], [low, high])
        if hi - lo > 1e-12 * max(1.0, abs(lo), abs(hi)):
            x = np.where(finite, (values - lo) / (hi - lo), 0.0)
    return np.round(turbo(x) * 255.0).astype(np.uint8)


def to_uint16(inverse_depth: Tensor | np.ndarray) -> np.ndarray:
    """Relative inverse depth (H, W), (1, H, W) or (1, 1, H, W) → uint16 (H, W), linearly:
    the map's minimum (the farthest point) → 0, its maximum (the nearest) → 65535.

    The scale and shift are lost (as they are unknown anyway); a flat map becomes all 0,
    and non-finite pixels 0.
    """
    values = _as_map(inverse_depth)
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype=np.uint16)
    if finite.any():
        lo, hi = values[finite].min(), values[finite].max()
        if hi > lo:
            scaled = np.where(finite, (values - lo) / (hi - lo), 0.0)
            out = np.round(np.clip(scaled, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return out
