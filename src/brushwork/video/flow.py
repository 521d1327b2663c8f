"""Optical flow between video frames, its reliability, and warping.

Flow is OpenCV's DIS (Kroeger et al. 2016, "Fast Optical Flow using Dense Inverse Search")
on grey frames at the working size: fast on a CPU and needing no downloaded weights. A flow
``w`` from frame a to frame b is an (H, W, 2) float32 array of (dx, dy) in pixels: pixel p of
a is at p + w(p) in b.

For frame t the *backward* flow ŵ (t → t−1) warps the previous frame onto frame t,
``warp(x_{t−1}, ŵ)(p) = x_{t−1}(p + ŵ(p))``; the *forward* flow w (t−1 → t) checks it.
:func:`reliable` marks where the warp can be trusted (Ruder, Dosovitskiy & Brox 2016,
"Artistic style transfer for videos", §3.1): not where the forward flow, warped to frame t,
fails to undo the backward flow (disocclusions, eq. 6)::

    |w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5,      w̃(p) = w(p + ŵ(p))

and not on motion boundaries (eq. 7)::

    |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002

The same mask is the occlusion mask of Lai et al.'s warping error (2018; their code applies
both tests). OpenCV is imported only when a flow is computed (``pip install
brushwork[video]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from brushwork.errors import BrushworkError

PRESETS = ("ultrafast", "fast", "medium")
"""DIS presets, fastest first (OpenCV's DISOPTICAL_FLOW_PRESET_*)."""
_CV2_MISSING = (
    "video needs OpenCV for optical flow: pip install opencv-python-headless "
    "(or pip install 'brushwork[video]')"
)


def import_cv2() -> ModuleType:
    """OpenCV, or one clear error when it is not installed."""
    try:
        import cv2
    except ImportError as error:
        raise BrushworkError(_CV2_MISSING) from error
    return cv2


def gray(frame: np.ndarray | Tensor) -> np.ndarray:
    """A frame as 8-bit grey (H, W): an RGB uint8 (H, W, 3) array or a (1, 3, H, W) tensor
    in [0, 1] (BT.601 luma, as OpenCV's RGB2GRAY)."""
    if isinstance(frame, Tensor):
        frame = frame[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    if frame.ndim == 2:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    cv2 = import_cv2()
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


class DISFlow:
    """OpenCV DIS optical flow with one preset; :meth:`__call__` (a, b) → flow a → b."""

    def __init__(self, preset: str = "medium") -> None:
        if preset not in PRESETS:
            raise BrushworkError(f"flow must be one of {', '.join(PRESETS)}, not {preset!r}")
        cv2 = import_cv2()
        code = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[preset]
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(code)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from grey frame ``a`` to grey frame ``b`` ((H, W) uint8 each)."""
        return self._dis.calc(a, b, None)


class FarnebackFlow:
    """OpenCV's Farnebäck flow (Farnebäck 2003): another algorithm than DIS, used by the
    flicker metric so that a temporal method is not scored with the flow it used itself."""

    preset = "farneback"

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cv2 = import_cv2()
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 5, 5, 1.2, 0)


def _sample(array: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``array`` (H, W, C) float32 sampled at p + flow(p), bilinear, edges repeated."""
    cv2 = import_cv2()
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    return cv2.remap(
        array,
        grid_x + flow[..., 0],
        grid_y + flow[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def disocclusions(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where the forward flow (t−1 → t), warped to frame t by the backward flow (t → t−1),
    does not cancel it: Ruder et al. 2016, eq. 6. (H, W) bool, True = disoccluded."""
    warped = _sample(forward, backward)
    total = np.square(warped + backward).sum(-1)
    scale = np.square(warped).sum(-1) + np.square(backward).sum(-1)
    return total > 0.01 * scale + 0.5


def motion_boundaries(backward: np.ndarray) -> np.ndarray:
    """Where the backward flow changes fast: Ruder et al. 2016, eq. 7 (forward differences,
    as Lai et al.'s code). (H, W) bool, True = on a boundary."""
    du = np.zeros_like(backward)
    dv = np.zeros_like(backward)
    du[:, :-1] = backward[:, :-1] - backward[:, 1:]
    dv[:-1] = backward[:-1] - backward[1:]
    gradient = np.square(du).sum(-1) + np.square(dv).sum(-1)
    return gradient > 0.01 * np.square(backward).sum(-1) + 0.002


def reliable(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where warping frame t−1 onto frame t by ``backward`` can be trusted: neither
    disoccluded (eq. 6) nor on a motion boundary (eq. 7). (H, W) float32 in {0, 1}."""
    bad = disocclusions(forward, backward) | motion_boundaries(backward)
    return (~bad).astype(np.float32)


def inside(flow: np.ndarray) -> np.ndarray:
    """Where p + flow(p) falls inside the frame ((H, W) float32 in {0, 1}): outside it the
    warp only repeats the edge."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    x, y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).astype(np.float32)


def flow_tensor(flow: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """An (H, W, 2) flow array as a (1, 2, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1)[None].float().to(device)


def warp(image: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """``image`` (B, C, H, W) sampled at p + flow(p) (flow (B, 2, H, W) in pixels):
    bilinear (or ``"bicubic"``, clamped to the image's range), edges repeated,
    differentiable (kornia's remap)."""
    from kornia.geometry.transform import remap

    batch, _, height, width = image.shape
    flow = flow.to(image)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=image.device, dtype=image.dtype),
        torch.arange(width, device=image.device, dtype=image.dtype),
        indexing="ij",
    )
    map_x = xs[None] + flow[:, 0]
    map_y = ys[None] + flow[:, 1]
    warped = remap(
        image,
        map_x.expand(batch, -1, -1),
        map_y.expand(batch, -1, -1),
        mode=mode,
        padding_mode="border",
        align_corners=True,
    )
    if mode == "bicubic":  # cubic weights overshoot
        warped = warped.clamp(float(image.min()), float(image.max()))
    return warped


CUT_RELIABLE = 0.4
"""A frame pair whose flow is reliable on less than this share of the frame is a cut."""
CUT_CHANGE = 0.08
"""A frame pair whose grey input (in [0, 1]) still changes by this much on average after
warping along the flow is a cut (a pan or a zoom: about 0.01)."""


def consistency(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """A soft form of :func:`reliable`: 1 where the forward–backward error of eq. 6 is
    below 0.8 of its threshold, 0 from the threshold on (and on motion boundaries, eq. 7),
    linear between. (H, W) float32 in [0, 1]."""
    warped = _sample(forward, backward)
    error = np.square(warped + backward).sum(-1)
    threshold = 0.01 * (np.square(warped).sum(-1) + np.square(backward).sum(-1)) + 0.5
    soft = np.clip((1.0 - error / threshold) / 0.2, 0.0, 1.0)
    return (soft * ~motion_boundaries(backward)).astype(np.float32)


@dataclass
class FramePair:
    """What the temporal methods and the metric need of two input frames (t−j, t): the
    backward flow t → t−j, where warping along it is reliable, the forward flow, and how
    much the input still changes once warped (a scene cut: :attr:`cut`)."""

    backward: np.ndarray
    mask: np.ndarray
    forward: np.ndarray | None = None
    change: float = 0.0
    """Mean |frame t − warp(frame t−j)| of the grey inputs, in [0, 1]."""

    @classmethod
    def between(
        cls, earlier: np.ndarray, later: np.ndarray, flow: DISFlow | FarnebackFlow
    ) -> FramePair:
        """From two grey frames (frame t−j, frame t)."""
        backward = flow(later, earlier)
        forward = flow(earlier, later)
        warped = _sample(np.ascontiguousarray(earlier, dtype=np.float32)[..., None], backward)
        change = float(np.abs(later.astype(np.float32) - warped.reshape(later.shape)).mean())
        return cls(backward, reliable(forward, backward), forward, change / 255)

    @property
    def usable(self) -> np.ndarray:
        """:attr:`mask` without the pixels whose flow leaves the frame (a warp only
        repeats the edge there): what the temporal methods follow."""
        return self.mask * inside(self.backward)

    @property
    def cut(self) -> bool:
        """Whether the two frames show different scenes (a cut, a flash, a black frame and
        the picture): the flow is reliable on less than :data:`CUT_RELIABLE` of the frame,
        or the input changes by more than :data:`CUT_CHANGE` even along it."""
        return float(self.mask.mean()) < CUT_RELIABLE or self.change > CUT_CHANGE

    def consistency(self) -> np.ndarray:
        """Per-pixel trust in the warp, (H, W) float32 in [0, 1]: :func:`consistency` (or
        :attr:`mask` without the forward flow) where the flow stays inside the frame."""
        soft = self.mask if self.forward is None else consistency(self.forward, self.backward)
        return soft * inside(self.backward)
