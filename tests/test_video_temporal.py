"""Temporal consistency terms: Ruder et al.'s temporal loss and long-term weights, the
feed-forward texture tracker and blend (brushwork.video.temporal)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brushwork.video.temporal import TemporalLoss, TextureTracker, blend, long_term_weights


def _random(seed: int, height: int = 12, width: int = 16) -> torch.Tensor:
    return torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _shift_flow(height: int, width: int, dx: float) -> np.ndarray:
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = dx
    return flow


def test_long_term_weights_count_each_pixel_once_nearest_first() -> None:
    """Eq. 8: c_long^(t−j) = max(c^(t−j) − Σ_{k<j} c^(t−k), 0)."""
    near = np.array([[1, 0, 0]], np.float32)
    mid = np.array([[1, 1, 0]], np.float32)
    far = np.array([[1, 1, 1]], np.float32)
    weights = long_term_weights([near, mid, far])
    assert [w.tolist() for w in weights] == [[[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]]]


def test_temporal_loss_is_eq_5_times_the_weight() -> None:
    target = torch.zeros(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    loss = TemporalLoss([target], [mask], weight=4.0)
    image = torch.ones(1, 3, 2, 2)
    # 1/D Σ c (x − ω)² = 6 / 12 (two reliable pixels × three channels of 12 values)
    assert float(loss(image)) == pytest.approx(4.0 * 0.5)
    assert float(loss(torch.zeros(1, 3, 2, 2))) == 0.0


def test_temporal_loss_sums_several_earlier_frames_and_has_a_gradient() -> None:
    targets = [torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)]
    masks = [torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)]
    image = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)
    value = TemporalLoss(targets, masks, weight=1.0)(image)
    assert float(value.detach()) == pytest.approx(0.5)
    value.backward()
    assert image.grad is not None and float(image.grad.abs().sum()) == pytest.approx(0.0)


def test_blend_mixes_only_where_reliable() -> None:
    new, old = torch.zeros(1, 3, 1, 2), torch.ones(1, 3, 1, 2)
    mask = torch.tensor([[[[1.0, 0.0]]]])
    mixed = blend(new, old, mask, 0.25)
    assert mixed[0, :, 0, 0].tolist() == [0.25] * 3
    assert mixed[0, :, 0, 1].tolist() == [0.0] * 3


def test_tracked_texture_follows_the_motion_not_the_new_frames() -> None:
    """With a pure translation, every reliable pixel keeps the first frame's texture,
    moved: the tracker ignores the (random, 'boiling') new stylizations there."""
    tracker = TextureTracker(feather=0)
    first = _random(0)
    out = tracker.step(first)
    assert torch.equal(out, first)
    flow = _shift_flow(12, 16, 2.0)  # pixel p of frame t was at p + 2 in frame t − 1
    mask = np.ones((12, 16), np.float32)
    mask[:, -2:] = 0  # its source is outside the frame: painted anew
    painted = (first.clamp(0, 1) * 255).round() / 255
    for t in range(1, 4):
        fresh = _random(t)
        out = tracker.step(fresh, flow, mask)
        columns = 16 - 2 * t
        assert torch.allclose(out[..., :columns], painted[..., 2 * t :], atol=1e-6)
        assert torch.equal(out[..., -2:], fresh[..., -2:])


def test_seams_are_feathered_next_to_newly_painted_pixels() -> None:
    tracker = TextureTracker(feather=2.0)
    first = _random(0)
    tracker.step(first)
    fresh = _random(1)
    mask = np.ones((12, 16), np.float32)
    mask[:, 8:] = 0
    out = tracker.step(fresh, _shift_flow(12, 16, 0.0), mask)
    painted = (first * 255).round() / 255
    assert torch.equal(out[..., 8:], fresh[..., 8:])  # painted anew: the new frame
    assert torch.allclose(out[..., :2], painted[..., :2], atol=1e-3)  # far from the seam
    near = out[..., 7]  # next to the seam: between the two
    assert not torch.allclose(near, painted[..., 7]) and not torch.allclose(near, fresh[..., 7])


def test_unreliable_pixels_are_painted_anew() -> None:
    tracker = TextureTracker()
    tracker.step(_random(0))
    fresh = _random(1)
    out = tracker.step(fresh, _shift_flow(12, 16, 0.0), np.zeros((12, 16), np.float32))
    assert torch.equal(out, fresh)


def test_history_bounds_the_painted_frames_kept() -> None:
    tracker = TextureTracker(history=3)
    tracker.step(_random(0))
    mask = np.ones((12, 16), np.float32)
    for t in range(1, 10):
        mask = np.ones((12, 16), np.float32)
        mask[:, t % 16] = 0  # one new column a frame: a new painted frame each step
        tracker.step(_random(t), _shift_flow(12, 16, 0.0), mask)
        assert len(tracker.painted) <= 3
    assert set(tracker.painted) == set(TextureTracker.needed_by(tracker.state()))


def test_a_weaker_blend_averages_with_the_new_frame() -> None:
    tracker = TextureTracker(strength=0.5, feather=0)
    first = _random(0)
    tracker.step(first)
    fresh = _random(1)
    out = tracker.step(fresh, _shift_flow(12, 16, 0.0), np.ones((12, 16), np.float32))
    painted = (first * 255).round() / 255
    assert torch.allclose(out, 0.5 * fresh + 0.5 * painted, atol=1e-6)


def test_a_restored_tracker_continues_exactly() -> None:
    flow, mask = _shift_flow(12, 16, 1.5), np.ones((12, 16), np.float32)
    mask[:, -2:] = 0
    whole, first_half = TextureTracker(history=4), TextureTracker(history=4)
    for tracker in (whole, first_half):
        tracker.step(_random(0))
        for t in range(1, 3):
            tracker.step(_random(t), flow, mask)
    state = first_half.state()
    resumed = TextureTracker(history=4)
    resumed.restore(state, {k: first_half.painted[k] for k in TextureTracker.needed_by(state)})
    for t in range(3, 6):
        assert torch.equal(whole.step(_random(t), flow, mask), resumed.step(_random(t), flow, mask))
