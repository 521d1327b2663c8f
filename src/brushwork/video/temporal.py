"""Temporal consistency: what keeps a stylized video from flickering.

Optimization methods (Ruder, Dosovitskiy & Brox 2016, "Artistic style transfer for videos")
start frame t from the previous stylized frame warped onto it by the backward flow, ω, and
add a temporal loss that penalizes deviating from it where the flow is reliable (mask c,
:func:`brushwork.video.flow.reliable`)::

    L_temporal(x, ω, c) = 1/D Σ_k c_k (x_k − ω_k)²,   D = C·H·W           (eq. 5)

Long-term consistency (§3.3) compares with several earlier frames t − j, j ∈ J, each
counted only where no nearer frame is reliable::

    c_long^(t−j) = max(c^(t−j) − Σ_{k ∈ J, k < j} c^(t−k), 0)              (eq. 8)
    L_long = Σ_{j ∈ J} L_temporal(x, ω_j, c_long^(t−j))                     (eq. 9)

Feed-forward methods paint each frame anew with the style prepared once for the clip (fixed
statistics, no per-frame randomness), yet their textures still "boil": a small motion of the
content gives other brush strokes. :class:`TextureTracker` makes the texture follow the
motion instead: it tracks, along the flow of the input, where each output pixel was first
painted (the frame and the position there) and samples that frame's own stylization there,
once (bicubic). Where the flow is unreliable (disocclusions, motion boundaries, the frame's
edge) the pixel takes the new frame's stylization and is tracked from there. Sampling the
painted frame once, rather than warping the previous output again and again, keeps the
strokes sharp: repeated bilinear warps blur them (the style distance doubled in our
measurements) and repeated bicubic ones ring. Averaging the tracked texture with the new one
(``strength`` < 1, :func:`blend`) flickers less but washes the style out (two strokes
averaged are fainter than either; BENCHMARKS.md, video). The trained alternative is
:mod:`brushwork.training.temporal`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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


def blend(output: Tensor, warped_previous: Tensor, mask: Tensor, strength: float) -> Tensor:
    """The flow-guided blend of a feed-forward frame: ``strength``·c of the warped previous
    output, the rest the new output (c: (1, 1, H, W) reliability)."""
    share = strength * mask.to(output)
    return (1 - share) * output + share * warped_previous.to(output)


def _sample(image: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``image`` (1, C, H, W) at the N points (x, y) (pixels): bicubic, clamped → (C, N)."""
    height, width = image.shape[-2:]
    grid = torch.stack([x / max(1, width - 1) * 2 - 1, y / max(1, height - 1) * 2 - 1], -1)
    values = F.grid_sample(
        image,
        grid.view(1, 1, -1, 2).to(image),
        mode="bicubic",
        padding_mode="border",
        align_corners=True,
    )
    return values[0, :, 0].clamp(0, 1)


class TextureTracker:
    """Temporal consistency for feed-forward methods (see the module docstring).

    State, per output pixel p of the last frame: ``births[p]``, the frame whose stylization
    paints it, and ``x[p]``, ``y[p]``, the position there. Each step moves the state along
    the backward flow (nearest state pixel plus the flow's sub-pixel remainder), keeps the
    pixels where the flow is reliable, and paints every kept pixel by sampling its birth
    frame's stylization. At most ``history`` painted frames are kept: when one more is
    needed, the one that paints the fewest pixels is dropped and its pixels are painted anew
    (a static shot keeps its first frame's texture for as long as it lasts). The seams
    between tracked and newly painted texture are feathered over ``feather`` pixels (a
    Gaussian of that deviation): without it, where new content enters the frame, each
    frame's band of new texture meets the older one along a visible line.
    """

    def __init__(self, history: int = 16, strength: float = 1.0, feather: float = 2.0) -> None:
        self.history = max(1, history)
        self.strength = strength
        self.feather = feather
        self.painted: dict[int, Tensor] = {}
        """Frame index → its stylization, (1, 3, H, W) uint8."""
        self.frame = -1
        self.births: Tensor | None = None
        self.x: Tensor | None = None
        self.y: Tensor | None = None

    def step(
        self, fresh: Tensor, backward: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> Tensor:
        """The output of the next frame from its own stylization ``fresh`` ((1, 3, H, W)
        in [0, 1]), the backward flow to the previous frame and where it is reliable
        (None: the first frame, or a cut)."""
        self.frame += 1
        frame = self.frame
        device = fresh.device
        height, width = fresh.shape[-2:]
        self.painted[frame] = fresh.detach().clamp(0, 1).mul(255).round().byte().cpu()
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=torch.float32),
            torch.arange(width, dtype=torch.float32),
            indexing="ij",
        )
        if backward is None or mask is None or self.births is None:
            self._restart(frame, xs, ys)
            return fresh
        assert self.x is not None and self.y is not None
        flow = torch.from_numpy(np.ascontiguousarray(backward)).float()
        qx, qy = xs + flow[..., 0], ys + flow[..., 1]
        ix = qx.round().clamp(0, width - 1).long()
        iy = qy.round().clamp(0, height - 1).long()
        births = self.births[iy, ix]
        x = self.x[iy, ix] + (qx - ix)
        y = self.y[iy, ix] + (qy - iy)
        keep = torch.from_numpy(mask > 0.5)
        self._evict(births, keep, frame)
        keep &= torch.isin(births, torch.tensor(list(self.painted), dtype=births.dtype))
        tracked = fresh.detach().clone()
        flat = tracked.view(3, -1)
        for birth, image in self.painted.items():
            chosen = (keep & (births == birth)).view(-1).nonzero().squeeze(1)
            if birth == frame or chosen.numel() == 0:
                continue
            source = image.to(device).float().div(255)
            flat[:, chosen.to(device)] = _sample(source, x.view(-1)[chosen], y.view(-1)[chosen]).to(
                flat
            )
        self.births = torch.where(keep, births, torch.full_like(births, frame))
        self.x = torch.where(keep, x, xs)
        self.y = torch.where(keep, y, ys)
        for birth in list(self.painted):  # the state refers to exactly these
            if not bool((self.births == birth).any()):
                del self.painted[birth]
        if self.strength >= 1 and self.feather <= 0:
            return tracked
        share = keep.to(fresh)[None, None].to(device)
        if self.feather > 0:  # soften the seams between tracked and freshly painted texture
            from kornia.filters import gaussian_blur2d

            side = 2 * math.ceil(2 * self.feather) + 1
            soft = gaussian_blur2d(
                share, (side, side), (self.feather, self.feather), border_type="replicate"
            )
            share = torch.minimum(share, soft)
        share = self.strength * share
        return (1 - share) * fresh + share * tracked

    def _restart(self, frame: int, xs: Tensor, ys: Tensor) -> None:
        self.births = torch.full(xs.shape, frame, dtype=torch.int64)
        self.x, self.y = xs, ys
        self.painted = {frame: self.painted[frame]}

    def _evict(self, births: Tensor, keep: Tensor, frame: int) -> None:
        """Drop painted frames until ``history`` remain (the new one included): those that
        would paint the fewest kept pixels first, the oldest on ties."""
        while len(self.painted) > self.history:
            counts = {b: int((keep & (births == b)).sum()) for b in self.painted if b != frame}
            del self.painted[min(counts, key=lambda b: (counts[b], b))]

    # -- resuming ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What :meth:`restore` needs (without the painted frames, which the work folder
        keeps as images): arrays and the frame index."""
        assert self.births is not None and self.x is not None and self.y is not None
        return {
            "frame": self.frame,
            "births": self.births.numpy().astype(np.int32),
            "x": self.x.numpy(),
            "y": self.y.numpy(),
        }

    def restore(self, state: dict[str, Any], painted: dict[int, Tensor]) -> None:
        """Continue from a saved :meth:`state` and the painted frames it refers to
        ((1, 3, H, W) uint8 each)."""
        self.frame = int(state["frame"])
        self.births = torch.from_numpy(np.asarray(state["births"])).long()
        self.x = torch.from_numpy(np.asarray(state["x"], dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(state["y"], dtype=np.float32))
        self.painted = dict(painted)

    @staticmethod
    def needed_by(state: dict[str, Any]) -> list[int]:
        """The painted frames a saved :meth:`state` refers to."""
        return sorted(int(b) for b in np.unique(np.asarray(state["births"])))
