"""Texture tracking: temporal consistency for the feed-forward methods, which cannot
accumulate streaks.

A feed-forward method paints each frame anew with the style prepared once for the clip, yet
its texture "boils": a small motion of the content gives other brush strokes. The tracker
makes the texture follow the motion instead. Per output pixel it keeps a *source* (the frame
whose own stylization paints it), the position there and an *age*, all moved along the
backward optical flow of the input each frame (the nearest state pixel plus the flow's
sub-pixel remainder); every tracked pixel samples its source's stylization once (bicubic),
so no texture is warped again and again (repeated warps blur or ring). What keeps it from
accumulating streaks, drift and stale texture:

* **Blend weights per pixel** from the forward–backward consistency of the flow (a soft
  form of Ruder, Dosovitskiy & Brox 2016, eq. 6, with their motion-boundary test, eq. 7)
  and from the warping error of the *input*: the current frame against the source frame's
  input at the tracked position (colour, blurred by 2 px; the error Lai et al. 2018
  measure, taken along the whole track, so drift, lighting changes and fades are caught
  however slowly they build up). A position outside its source frame is never sampled
  (its edge, repeated, made streaks). Flat input (sky, a wall) is trusted without the
  check, which it cannot pass or fail; where the flow fails its check it is replaced by
  the checked flow around (normalized convolution), so nothing is dragged apart. Pixels
  whose weight falls below one half, with their neighbours (a round opening and dilation:
  regions, not single pixels), take the current frame's stylization.
* **An age limit**: a pixel is carried ``max_age`` frames at most, then painted anew.
* **Anchor frames**: a pixel is painted anew only from an anchor frame (every ``every``
  frames); until then it shows each frame's own stylization. New content entering at the
  edge of a pan is painted in bands ``every`` frames wide, not in a band per frame from a
  different stylization each: the horizontal streaks of the earlier tracker were those
  bands. At a restart the ages are staggered over smooth regions of equal area, so that the
  age limit renews one region at a time, not the whole frame at once.
* **Re-anchoring on scene changes**: where the flow fails (a cut, a flash, a black first
  frame and then the picture; :attr:`brushwork.video.flow.FramePair.cut`) everything starts
  again from the current frame's stylization, which is then the output.
* **The current frame's statistics**: AdaIN and WCT normalize each frame's features as a
  whole, so texture painted for earlier frames drifts from what the current frame asks for.
  The tracked texture is matched to the current frame's stylization: its local mean and
  contrast (Gaussian windows of ``match`` px) and its colour covariance (the linear colour
  transfer of Pitié & Kokaram 2007).

A pixel's output mixes the tracked texture, with weight ``w`` (its weight times
``strength``, feathered over ``feather`` px next to freshly painted pixels), and the
current frame's, keeping contrast (Heitz & Neyret 2018: a plain average of two textures is
fainter than either, and the style distance of a half-and-half average is nearly twice a
frame's); where ``w`` is 0 it is the current frame's stylization, exactly. Measured:
``python -m benchmarks.video_consistency`` (BENCHMARKS.md, "Video: texture tracking frame
by frame").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from brushwork.video.flow import FramePair, inside

MAX_AGE = 192
"""Frames a pixel is carried at most (eight seconds at 24 fps): renewing texture is a jump
where the picture stands still, so it is renewed no more often than drift needs (the input
check catches drift earlier)."""
EVERY = 8
"""Frames between anchors: new texture sources."""
TOLERANCE = 0.1
"""Largest change of the input (blurred, [0, 1], the largest over the colour channels)
between a pixel's source and now."""
FLAT = 0.02
"""Input whose local deviation (blurred, [0, 1], in every channel) is below this is flat:
trusted
without the flow (up to twice this, in part)."""
_INPUT_BLUR = 2.0
"""Deviation (px) of the blur of the inputs compared (sub-pixel misalignment of a
sharp edge is not a change)."""


def ramp(value: Tensor, start: float, end: float) -> Tensor:
    """1 up to ``start``, 0 from ``end``, linear between."""
    return ((end - value) / (end - start)).clamp(0, 1)


def gaussian(image: Tensor, sigma: float) -> Tensor:
    """A Gaussian blur of deviation ``sigma`` px, edges reflected."""
    from kornia.filters import gaussian_blur2d

    side = 2 * math.ceil(3 * sigma) + 1
    border = "reflect" if min(image.shape[-2:]) > side // 2 else "replicate"
    return gaussian_blur2d(image, (side, side), (sigma, sigma), border_type=border)


def match_local(image: Tensor, reference: Tensor, sigma: float) -> Tensor:
    """``image`` with the local mean and deviation of ``reference`` (Gaussian windows)."""
    mean, target = gaussian(image, sigma), gaussian(reference, sigma)
    spread = (gaussian(image * image, sigma) - mean * mean).clamp_min(1e-5).sqrt()
    wanted = (gaussian(reference * reference, sigma) - target * target).clamp_min(1e-5).sqrt()
    return ((image - mean) / spread * wanted + target).clamp(0, 1)


def _power(matrix: Tensor, power: float) -> Tensor:
    """A symmetric positive definite matrix to a ``power`` (eigendecomposition)."""
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp_min(1e-10).pow(power)) @ vectors.T


def match_colours(image: Tensor, reference: Tensor) -> Tensor:
    """``image`` (1, 3, H, W) with the mean and colour covariance of ``reference``: the
    linear map of Pitié & Kokaram 2007 (the Monge–Kantorovich solution for Gaussians),
    T = Σa^−½ (Σa^½ Σb Σa^½)^½ Σa^−½."""
    a, b = image[0].flatten(1).double(), reference[0].flatten(1).double()
    mean_a, mean_b = a.mean(1, keepdim=True), b.mean(1, keepdim=True)
    eye = 1e-6 * torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    cov_a, cov_b = torch.cov(a) + eye, torch.cov(b) + eye
    root, inverse_root = _power(cov_a, 0.5), _power(cov_a, -0.5)
    transform = inverse_root @ _power(root @ cov_b @ root, 0.5) @ inverse_root
    mapped = transform @ (a - mean_a) + mean_b
    return mapped.to(image.dtype).view_as(image).clamp(0, 1)


def staggered_ages(height: int, width: int, levels: int, step: int) -> Tensor:
    """Ages 0, ``step``, …, (``levels`` − 1)·``step`` over smooth regions of equal area (a
    fixed bicubic noise), so that the age limit renews one region at a time."""
    if levels <= 1:
        return torch.zeros(height, width, dtype=torch.int64)
    cell = max(16, max(height, width) // 6)
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 1, height // cell + 3, width // cell + 3, generator=generator)
    field = F.interpolate(coarse, scale_factor=cell, mode="bicubic", align_corners=False)
    field = field[0, 0, cell : cell + height, cell : cell + width]
    ranks = field.flatten().argsort().argsort().float() / field.numel()
    return (ranks.view(height, width) * levels).floor().clamp(max=levels - 1).long() * step


def _sample(image: Tensor, x: Tensor, y: Tensor, mode: str = "bicubic") -> Tensor:
    """``image`` (1, C, H, W) at the N points (x, y) (pixels), edges repeated → (C, N)."""
    height, width = image.shape[-2:]
    grid = torch.stack([x / max(1, width - 1) * 2 - 1, y / max(1, height - 1) * 2 - 1], -1)
    values = F.grid_sample(
        image,
        grid.view(1, 1, -1, 2).to(image),
        mode=mode,
        padding_mode="border",
        align_corners=True,
    )
    return values[0, :, 0]


def filled_flow(pair: FramePair, sigma: float = 8.0) -> Tensor:
    """The backward flow, (2, H, W), where it passes its forward–backward check; elsewhere
    (flat input, occlusions) the average of the checked flow around (normalized convolution,
    Knutsson & Westin 1993), so that texture there moves with its surroundings instead of
    being dragged apart by a flow nothing supports."""
    flow = torch.from_numpy(np.ascontiguousarray(pair.backward)).float().permute(2, 0, 1)
    trust = torch.from_numpy(pair.consistency()).float()[None]
    spread = gaussian((flow * trust)[None], sigma)[0]
    weight = gaussian(trust[None], sigma)[0]
    filled = spread / weight.clamp_min(1e-3)
    return torch.where(trust >= 0.5, flow, filled)


def _input(rgb: np.ndarray) -> Tensor:
    """An (H, W, 3) uint8 input frame as the blurred (1, 3, H, W) float the tracker
    compares."""
    image = torch.from_numpy(np.array(rgb)).float().div(255).permute(2, 0, 1)[None]
    return gaussian(image, _INPUT_BLUR)


class TextureTracker:
    """Temporal consistency for feed-forward methods (see the module docstring).

    :meth:`step` takes each frame's own stylization, its input and the
    :class:`~brushwork.video.flow.FramePair` from the previous frame, and returns the
    output. At most ``history`` source frames are kept (one stylization and one input
    each): when one more is needed, the one that paints the fewest pixels is dropped and its
    pixels are painted anew. :meth:`state` and :meth:`restore` resume a run exactly.
    """

    def __init__(
        self,
        history: int = 16,
        strength: float = 1.0,
        feather: float = 2.0,
        *,
        max_age: int = MAX_AGE,
        every: int = EVERY,
        tolerance: float = TOLERANCE,
        match: float = 8.0,
        flat: float = FLAT,
    ) -> None:
        self.history = max(1, history)
        self.strength = strength
        self.feather = feather
        self.max_age = max(1, max_age)
        self.every = max(1, min(every, self.max_age))
        self.tolerance = tolerance
        self.match = match
        self.flat = flat
        self.painted: dict[int, Tensor] = {}
        """Source frame → its stylization, (1, 3, H, W) uint8."""
        self.inputs: dict[int, Tensor] = {}
        """Source frame → its blurred input, (1, 3, H, W) in [0, 1]."""
        self.frame = -1
        self.anchor = 0
        """The frame of the last restart: anchors follow every ``every`` frames."""
        self.anchored = False
        """Whether the last frame became a source (what a resumable run keeps)."""
        self.source: Tensor | None = None
        self.x = self.y = self.age = torch.zeros(0)

    def step(self, fresh: Tensor, rgb: np.ndarray, pair: FramePair | None = None) -> Tensor:
        """The output of the next frame from its own stylization ``fresh`` ((1, 3, H, W) in
        [0, 1]), its input frame ((H, W, 3) uint8) and the flow from the previous frame (None:
        the first frame)."""
        self.frame += 1
        device = fresh.device
        fresh = fresh.detach().float().cpu().clamp(0, 1)
        painted = fresh.mul(255).round().byte()
        current = _input(rgb)
        if pair is None or pair.cut or self.source is None:
            self._restart(painted, current)
            return fresh.to(device)
        source, x, y, age = self._follow(filled_flow(pair))
        weight = self._weights(pair, current, source, x, y)
        keep = self._regions(weight) & (source >= 0) & (age < self.max_age)
        anchor = (self.frame - self.anchor) % self.every == 0
        keep = self._evict(source, keep, anchor)
        tracked = self._paint(fresh, source, x, y, keep)
        self._renew(keep, source, x, y, age, (painted, current) if anchor else None)
        return self._blend(fresh, tracked, weight, keep).to(device)

    def _restart(self, painted: Tensor, current: Tensor) -> None:
        """Everything from this frame: its stylization is the output, ages staggered."""
        height, width = painted.shape[-2:]
        self.anchor = self.frame
        self.source = torch.full((height, width), self.frame, dtype=torch.int64)
        self.y, self.x = self._grid(height, width)
        levels = max(1, self.max_age // self.every)
        self.age = staggered_ages(height, width, levels, self.every)
        self.painted, self.inputs = {self.frame: painted}, {self.frame: current}
        self.anchored = True

    @staticmethod
    def _grid(height: int, width: int) -> tuple[Tensor, Tensor]:
        ys, xs = torch.meshgrid(
            torch.arange(height, dtype=torch.float32),
            torch.arange(width, dtype=torch.float32),
            indexing="ij",
        )
        return ys, xs

    def _follow(self, backward: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The state moved along the backward flow: each pixel takes the state of the
        nearest pixel it comes from, plus the flow's sub-pixel remainder."""
        assert self.source is not None
        height, width = self.source.shape
        ys, xs = self._grid(height, width)
        qx, qy = xs + backward[0], ys + backward[1]
        ix = qx.round().clamp(0, width - 1).long()
        iy = qy.round().clamp(0, height - 1).long()
        x = self.x[iy, ix] + (qx - ix)
        y = self.y[iy, ix] + (qy - iy)
        return self.source[iy, ix], x, y, self.age[iy, ix] + 1

    def _weights(
        self, pair: FramePair, current: Tensor, source: Tensor, x: Tensor, y: Tensor
    ) -> Tensor:
        """Per pixel, how much the tracked texture is trusted, (H, W) in [0, 1]: the flow's
        consistency (or flat input), times the input's agreement with the source's."""
        expected = current[0].clone()
        for frame, image in self.inputs.items():
            chosen = source == frame
            if bool(chosen.any()):
                expected[:, chosen] = _sample(image, x[chosen], y[chosen], "bilinear")
        change = (current[0] - expected).abs().amax(0)
        weight = torch.from_numpy(pair.consistency()).float()
        if self.flat > 0:  # flat input: any flow fits, none can be checked
            mean = gaussian(current, 4.0)
            spread = (gaussian(current * current, 4.0) - mean * mean).clamp_min(0).sqrt()
            spread = spread[0].amax(0)
            flat = ramp(spread, self.flat, 2 * self.flat) * torch.from_numpy(inside(pair.backward))
            weight = torch.maximum(weight, flat)
        height, width = source.shape
        within = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)  # in the source
        return weight * ramp(change, 0.8 * self.tolerance, self.tolerance) * within

    @staticmethod
    def _regions(weight: Tensor) -> Tensor:
        """The pixels that keep their track: not where the weight is below one half, with
        its neighbours (a round opening, then a round dilation by about 2 px: regions, not
        single pixels, with no corners)."""
        bad = (weight < 0.5).float()[None, None]
        bad = (gaussian(bad, 1.0) > 0.5).float()  # isolated doubts stay tracked
        bad = gaussian(bad, 1.5) > 0.05
        return ~bad[0, 0] & (weight > 0)

    def _evict(self, source: Tensor, keep: Tensor, anchor: bool) -> Tensor:
        """Drop source frames until ``history`` remain (counting the one an anchor frame may
        add): those that would paint the fewest kept pixels first, the oldest on ties.
        The pixels they painted are no longer kept."""
        limit = max(0, self.history - 1) if anchor else self.history
        while len(self.painted) > limit:
            counts = {b: int((keep & (source == b)).sum()) for b in self.painted}
            dropped = min(counts, key=lambda b: (counts[b], b))
            del self.painted[dropped], self.inputs[dropped]
        alive = torch.tensor(sorted(self.painted), dtype=source.dtype)
        return keep & torch.isin(source, alive)

    def _paint(self, fresh: Tensor, source: Tensor, x: Tensor, y: Tensor, keep: Tensor) -> Tensor:
        """The tracked texture: each kept pixel sampled once from its source's stylization
        (bicubic), the others the current frame's."""
        tracked = fresh.clone()
        flat = tracked.view(3, -1)
        for frame, image in self.painted.items():
            chosen = (keep & (source == frame)).view(-1).nonzero().squeeze(1)
            if chosen.numel():
                values = _sample(image.float().div(255), x.view(-1)[chosen], y.view(-1)[chosen])
                flat[:, chosen] = values.clamp(0, 1)
        return tracked

    def _renew(
        self,
        keep: Tensor,
        source: Tensor,
        x: Tensor,
        y: Tensor,
        age: Tensor,
        anchor: tuple[Tensor, Tensor] | None,
    ) -> None:
        """The new state: kept pixels go on; the others are painted from this frame on when
        it is an anchor (``anchor``: its stylization and input), else anew each frame
        until the next anchor."""
        ys, xs = self._grid(*keep.shape)
        new = self.frame if anchor is not None else -1
        self.source = torch.where(keep, source, torch.full_like(source, new))
        self.x, self.y = torch.where(keep, x, xs), torch.where(keep, y, ys)
        self.age = torch.where(keep, age, torch.zeros_like(age))
        self.anchored = anchor is not None and not bool(keep.all())
        if self.anchored and anchor is not None:
            self.painted[self.frame], self.inputs[self.frame] = anchor
        used = set(torch.unique(self.source).tolist())
        for frame in [f for f in self.painted if f not in used]:
            del self.painted[frame], self.inputs[frame]

    def _blend(self, fresh: Tensor, tracked: Tensor, weight: Tensor, keep: Tensor) -> Tensor:
        """``w·tracked + (1 − w)·fresh``, the tracked texture first matched to the current
        frame's statistics, the seams next to freshly painted pixels feathered; contrast is
        kept where the two mix (their deviations from the local mean are summed with weights
        whose squares add up to one, the blend of Heitz & Neyret 2018), so that no mix is
        fainter than either."""
        if not bool(keep.any()):
            return fresh
        share = (weight * keep)[None, None]
        if self.match > 0:
            tracked = match_colours(match_local(tracked, fresh, self.match), fresh)
        if self.feather > 0:
            share = torch.minimum(share, gaussian(keep.float()[None, None], self.feather))
        share = self.strength * share
        mean = gaussian(fresh, 4.0)
        norm = (share * share + (1 - share) * (1 - share)).sqrt()
        mixed = mean + (share * (tracked - mean) + (1 - share) * (fresh - mean)) / norm
        return torch.where(share > 0, mixed.clamp(0, 1), fresh)

    # -- resuming ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What :meth:`restore` needs besides the source frames (their stylizations and
        inputs, which the work folder keeps as images)."""
        assert self.source is not None
        return {
            "frame": self.frame,
            "anchor": self.anchor,
            "source": self.source.numpy().astype(np.int32),
            "x": self.x.numpy(),
            "y": self.y.numpy(),
            "age": self.age.numpy().astype(np.int32),
        }

    def restore(
        self, state: dict[str, Any], painted: dict[int, Tensor], inputs: dict[int, np.ndarray]
    ) -> None:
        """Continue from a saved :meth:`state`, the stylizations ((1, 3, H, W) uint8) and
        the inputs ((H, W, 3) uint8) of the source frames it refers to."""
        self.frame = int(state["frame"])
        self.anchor = int(state["anchor"])
        self.source = torch.from_numpy(np.asarray(state["source"])).long()
        self.x = torch.from_numpy(np.asarray(state["x"], dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(state["y"], dtype=np.float32))
        self.age = torch.from_numpy(np.asarray(state["age"])).long()
        self.painted = dict(painted)
        self.inputs = {k: _input(v) for k, v in inputs.items()}

    @staticmethod
    def needed_by(state: dict[str, Any]) -> list[int]:
        """The source frames a saved :meth:`state` refers to."""
        return sorted(int(b) for b in np.unique(np.asarray(state["source"])) if b >= 0)
