"""Temporal consistency of the optimization methods (Ruder, Dosovitskiy & Brox 2016,
"Artistic style transfer for videos"): frame t starts from the previous stylized frame
warped onto it by the backward flow, ω, and a temporal loss penalizes deviating from it
where the flow is reliable (mask c, :func:`brushwork.video.flow.reliable`)::

    L_temporal(x, ω, c) = 1/D Σ_k c_k (x_k − ω_k)²,   D = C·H·W           (eq. 5)

Long-term consistency (§3.3) compares with several earlier frames t − j, j ∈ J, each
counted only where no nearer frame is reliable::

    c_long^(t−j) = max(c^(t−j) − Σ_{k ∈ J, k < j} c^(t−k), 0)              (eq. 8)
    L_long = Σ_{j ∈ J} L_temporal(x, ω_j, c_long^(t−j))                     (eq. 9)

After a scene cut (:attr:`brushwork.video.flow.FramePair.cut`) a frame starts again from
its content. The feed-forward methods track their texture instead
(:mod:`brushwork.video.tracking`); the trained alternative is
:mod:`brushwork.training.temporal`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn


def long_term_weights(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Ruder et al.'s eq. 8: the reliability masks c^(t−j) of the frames j ∈ J (nearest
    first) → the weights each one's temporal term gets."""
    weights = []
    covered = np.zeros_like(masks[0]) if masks else None
    for mask in masks:
        assert covered is not None
        weights.append(np.maximum(mask - covered, 0).astype(np.float32))
        covered = covered + mask
    return weights


class TemporalLoss(nn.Module):
    """``weight`` × Σ_j L_temporal(x, ω_j, c_j) (eq. 5 and 9): an extra term for
    :meth:`brushwork.stylizer.Stylizer.stylize`. ``targets`` are the warped earlier frames
    (1, 3, H, W), ``masks`` their weights (1, 1, H, W)."""

    def __init__(self, targets: Sequence[Tensor], masks: Sequence[Tensor], weight: float) -> None:
        super().__init__()
        self.targets = [t.detach() for t in targets]
        self.masks = [m.detach() for m in masks]
        self.weight = weight

    def forward(self, image: Tensor) -> Tensor:
        total = image.new_zeros((), dtype=torch.float32)
        for target, mask in zip(self.targets, self.masks, strict=True):
            squared = (image.float() - target.float()).pow(2) * mask.float()
            total = total + squared.mean()  # 1/D Σ c (x − ω)², D = C·H·W
        return self.weight * total
