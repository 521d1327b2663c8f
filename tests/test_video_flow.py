"""Optical flow, reliability masks (Ruder et al. 2016, eq. 6-7) and warping
(brushwork.video.flow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from videoclips import pan, texture

from brushwork.errors import BrushworkError
from brushwork.video.flow import (
    DISFlow,
    FarnebackFlow,
    FramePair,
    consistency,
    disocclusions,
    flow_tensor,
    gray,
    inside,
    motion_boundaries,
    reliable,
    warp,
)


def _image(height: int = 24, width: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(3))


def test_warp_by_zero_flow_is_the_identity() -> None:
    image = _image()
    assert torch.allclose(warp(image, torch.zeros(1, 2, 24, 32)), image, atol=1e-5)
    assert torch.allclose(warp(image, torch.zeros(1, 2, 24, 32), "bicubic"), image, atol=1e-5)


def test_warp_by_a_whole_pixel_shift_moves_the_image() -> None:
    image = _image()
    flow = torch.zeros(1, 2, 24, 32)
    flow[:, 0] = 2.0  # each pixel takes the one two to its right
    warped = warp(image, flow)
    assert torch.allclose(warped[..., :-2], image[..., 2:], atol=1e-5)
    assert torch.allclose(warped[..., -2:], image[..., -1:].expand(-1, -1, -1, 2), atol=1e-5)


def test_warp_is_differentiable() -> None:
    image = _image().requires_grad_(True)
    warp(image, torch.full((1, 2, 24, 32), 0.5)).sum().backward()
    assert image.grad is not None and float(image.grad.abs().sum()) > 0


def test_bicubic_warp_stays_in_the_image_range() -> None:
    image = (_image() > 0.5).float()  # hard edges make cubic weights overshoot
    warped = warp(image, torch.full((1, 2, 24, 32), 0.3), "bicubic")
    assert float(warped.min()) >= 0 and float(warped.max()) <= 1


@pytest.mark.parametrize("preset", ["ultrafast", "medium"])
def test_dis_recovers_a_known_shift(preset: str) -> None:
    first, second = pan(2, 64, 96, shift=3)
    flow = DISFlow(preset)(gray(second), gray(first))  # backward: frame 1 → frame 0
    interior = flow[8:-8, 8:-8]
    assert np.median(interior[..., 0]) == pytest.approx(3.0, abs=0.25)
    assert np.median(np.abs(interior[..., 1])) < 0.25


def test_farneback_recovers_a_known_shift() -> None:
    first, second = pan(2, 64, 96, shift=2)
    flow = FarnebackFlow()(gray(second), gray(first))
    assert np.median(flow[8:-8, 8:-8, 0]) == pytest.approx(2.0, abs=0.3)


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(BrushworkError, match="flow must be one of"):
        DISFlow("slowest")


def test_consistent_flows_are_reliable_everywhere() -> None:
    backward = np.zeros((20, 30, 2), np.float32)
    backward[..., 0] = 2.0
    forward = -backward
    assert reliable(forward, backward).all()


def test_disagreeing_flows_mark_disocclusions() -> None:
    """Eq. 6: where the forward flow, warped to frame t, does not undo the backward flow."""
    backward = np.zeros((20, 30, 2), np.float32)
    forward = np.zeros_like(backward)
    forward[5:10, 5:10, 0] = 3.0  # the forward flow says this patch moved; the backward not
    found = disocclusions(forward, backward)
    assert found[5:10, 5:10].all()
    assert not found[12:, :].any()


def test_motion_boundaries_follow_eq_7() -> None:
    backward = np.zeros((20, 30, 2), np.float32)
    backward[:, 15:, 0] = 4.0  # a moving half
    boundary = motion_boundaries(backward)
    assert boundary[:, 14].all()  # forward differences: the column before the step
    assert not boundary[:, :13].any() and not boundary[:, 16:].any()


def test_inside_marks_where_the_flow_stays_in_the_frame() -> None:
    flow = np.zeros((10, 10, 2), np.float32)
    flow[..., 0] = 3.0
    mask = inside(flow)
    assert mask[:, :7].all() and not mask[:, 7:].any()


def test_frame_pair_of_a_pan_is_reliable_inside() -> None:
    first, second = pan(2, 64, 96, shift=2)
    pair = FramePair.between(gray(first), gray(second), DISFlow("medium"))
    assert pair.mask[8:-8, 8:-8].mean() > 0.9
    assert pair.usable[:, -1].sum() == 0  # the last column comes from outside the frame
    warped = warp(
        torch.from_numpy(first).permute(2, 0, 1)[None].float(), flow_tensor(pair.backward)
    )
    target = torch.from_numpy(second).permute(2, 0, 1)[None].float()
    assert float((warped - target)[..., 8:-8, 8:-8].abs().mean()) < 6  # of 255


def test_a_pan_is_not_a_cut() -> None:
    first, second = pan(2, 64, 96, shift=3)
    pair = FramePair.between(gray(first), gray(second), DISFlow("medium"))
    assert not pair.cut and pair.change < 0.03


@pytest.mark.parametrize("first", ["another scene", "black", "grey"])
def test_a_scene_cut_is_found(first: str) -> None:
    """Different scenes, or a flat frame and then the picture: the flow fails there."""
    picture = texture(64, 96, seed=0)
    before = {
        "another scene": texture(64, 96, seed=7),
        "black": np.zeros_like(picture),
        "grey": np.full_like(picture, 128),
    }[first]
    pair = FramePair.between(gray(before), gray(picture), DISFlow("medium"))
    assert pair.cut


def test_soft_consistency_is_one_where_reliable_and_zero_where_not() -> None:
    backward = np.zeros((20, 30, 2), np.float32)
    backward[..., 0] = 2.0
    forward = -backward.copy()
    forward[5:10, 5:10, 0] = 3.0  # disagrees: disoccluded (eq. 6)
    soft = consistency(forward, backward)
    hard = reliable(forward, backward)
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    assert (soft[hard == 0] == 0).all()
    assert (soft[12:, 12:] == 1).all()


def test_gray_takes_arrays_and_tensors() -> None:
    rgb = texture(8, 8)
    assert gray(rgb).shape == (8, 8) and gray(rgb).dtype == np.uint8
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    assert np.abs(gray(tensor).astype(int) - gray(rgb).astype(int)).max() <= 1
