"""The flicker metric: the warping error of Lai et al. 2018 (brushwork.metrics.WarpingError,
brushwork.metrics.warping_error), on synthetic clips whose exact warp is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from videoclips import pan

from brushwork.metrics import WarpingError, warping_error
from brushwork.video.flow import inside, warp


def _tensors(frames: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]


def _exact(frames: list[torch.Tensor], shift: int) -> WarpingError:
    """The warping error with the known flow of a pan (every pixel comes from ``shift``
    pixels to its right in the previous frame) and the mask of where that source is
    inside the frame."""
    height, width = frames[0].shape[-2:]
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = shift
    mask = torch.from_numpy(inside(flow))
    flow_t = torch.from_numpy(flow).permute(2, 0, 1)[None]
    measure = WarpingError()
    for t in range(1, len(frames)):
        measure.add(frames[t], warp(frames[t - 1], flow_t), mask)
    return measure


def test_a_pan_warped_by_its_exact_flow_has_no_error() -> None:
    frames = _tensors(pan(6, 32, 48, shift=2))
    assert _exact(frames, 2).value == pytest.approx(0.0, abs=1e-10)


def test_brightness_flicker_gives_the_squared_step() -> None:
    """Frames alternately lifted by δ: every reliable pixel differs by δ from its warped
    predecessor, so the error is δ² (mean over channels)."""
    delta = 0.1
    frames = _tensors(pan(6, 32, 48, shift=2, seed=1))
    frames = [(f * 0.8 + (delta if t % 2 else 0.0)) for t, f in enumerate(frames)]
    assert _exact(frames, 2).value == pytest.approx(delta**2, rel=1e-5)


def test_the_error_is_the_mean_over_pairs_of_masked_errors() -> None:
    measure = WarpingError()
    current = torch.zeros(1, 3, 2, 2)
    previous = torch.ones(1, 3, 2, 2)
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert measure.add(current, previous, mask) == pytest.approx(1.0)
    previous[..., 0, 0] = 0.5
    assert measure.add(current, previous, mask) == pytest.approx(0.25)
    assert measure.value == pytest.approx(0.625)
    assert math.isnan(WarpingError().value)


def test_an_empty_mask_counts_every_pixel() -> None:
    measure = WarpingError()
    assert measure.add(
        torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5), torch.zeros(2, 2)
    ) == pytest.approx(0.25)


def test_estimated_flow_scores_a_steady_pan_near_zero_and_flicker_high() -> None:
    steady = _tensors(pan(5, 48, 64, shift=2, seed=2))
    noisy_generator = torch.Generator().manual_seed(0)
    flicker = [
        (f + 0.15 * (torch.rand(f.shape, generator=noisy_generator) - 0.5)).clamp(0, 1)
        for f in steady
    ]
    floor = warping_error(steady)
    assert floor < 2e-3
    # the flow and mask come from the (steady) input: only the output flickers
    assert warping_error(flicker, steady) > 10 * floor
    assert warping_error(steady, steady, flow="medium") < 2e-3


def test_input_and_output_counts_must_match() -> None:
    frames = _tensors(pan(3))
    with pytest.raises(ValueError, match="3 output frames for 2 input frames"):
        warping_error(frames, frames[:2])
