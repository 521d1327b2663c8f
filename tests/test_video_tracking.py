"""Texture tracking of the feed-forward methods (brushwork.video.tracking): the texture
follows the motion, is sampled once, and cannot accumulate: scene cuts re-anchor, the age
limit renews, inconsistent regions take the current frame, a black first frame works."""

from __future__ import annotations

import numpy as np
import torch
from videoclips import texture

from brushwork.video.flow import DISFlow, FramePair, gray
from brushwork.video.tracking import TextureTracker, gaussian, match_colours

HEIGHT, WIDTH = 24, 32


def _random(seed: int) -> torch.Tensor:
    """A frame's own 'stylization': a texture unlike any other frame's."""
    return torch.rand(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))


def _quantized(image: torch.Tensor) -> torch.Tensor:
    return image.mul(255).round().div(255)


def _pair(dx: float = 0.0, mask: np.ndarray | None = None, change: float = 0.0) -> FramePair:
    """A frame pair whose backward flow moves every pixel by ``dx`` (reliable where
    ``mask``, default everywhere)."""
    flow = np.zeros((HEIGHT, WIDTH, 2), np.float32)
    flow[..., 0] = dx
    reliable = np.ones((HEIGHT, WIDTH), np.float32) if mask is None else mask
    return FramePair(flow, reliable, None, change)


def _input(shift: int = 0) -> np.ndarray:
    """An input frame with texture (not flat), moved ``shift`` px left: frame t of a pan."""
    wide = texture(HEIGHT, WIDTH + 16, seed=3)
    return np.ascontiguousarray(wide[:, shift : shift + WIDTH])


def test_the_texture_follows_the_motion_sampled_once_from_its_frame() -> None:
    """A pan by 2 px a frame: every tracked pixel is the first frame's own stylization,
    moved (never a warp of a warp); what enters the frame is the current frame's."""
    tracker = TextureTracker(feather=0, match=0)
    first = _random(0)
    assert torch.equal(tracker.step(first, _input(0)), first)
    for t in range(1, 4):
        fresh = _random(t)
        out = tracker.step(fresh, _input(2 * t), _pair(2.0))
        assert tracker.source is not None
        tracked = tracker.source == 0
        columns = int(tracked.all(0).sum())
        assert columns >= WIDTH - 2 * t - 4  # the entering band and its border, not more
        moved = _quantized(first)[..., 2 * t : 2 * t + columns]
        # (the first columns compare a blurred input whose edge is mirrored: not exact)
        assert torch.allclose(out[..., 2:columns], moved[..., 2:], atol=1e-6)
        assert torch.equal(out[..., ~tracked], fresh[..., ~tracked])


def test_a_scene_cut_restarts_from_the_current_frame() -> None:
    """The flow fails (a cut) or the input changes even along it: the output is the current
    frame's stylization, and the texture is tracked from it on."""
    for cut in (_pair(mask=np.zeros((HEIGHT, WIDTH), np.float32)), _pair(change=0.5)):
        tracker = TextureTracker()
        tracker.step(_random(0), _input())
        tracker.step(_random(1), _input(), _pair())
        fresh = _random(2)
        assert cut.cut
        assert torch.equal(tracker.step(fresh, _input(), cut), fresh)
        assert tracker.source is not None and bool((tracker.source == 2).all())
        assert tracker.anchored and list(tracker.painted) == [2]


def test_a_black_first_frame_is_followed_by_the_picture_not_its_texture() -> None:
    """A black frame, then the picture: a cut; the picture's frame is its own stylization."""
    tracker = TextureTracker()
    black = np.zeros((HEIGHT * 2, WIDTH * 2, 3), np.uint8)
    picture = texture(HEIGHT * 2, WIDTH * 2, seed=1)
    tracker.step(torch.rand(1, 3, HEIGHT * 2, WIDTH * 2), black)
    fresh = torch.rand(1, 3, HEIGHT * 2, WIDTH * 2, generator=torch.Generator().manual_seed(9))
    pair = FramePair.between(gray(black), gray(picture), DISFlow("medium"))
    assert torch.equal(tracker.step(fresh, picture, pair), fresh)


def test_the_age_limit_bounds_how_long_a_pixel_is_carried() -> None:
    """A still shot: each pixel keeps its texture for at most ``max_age`` frames, then takes
    the current frame's; the renewals are staggered (part of the frame at a time)."""
    tracker = TextureTracker(max_age=8, every=2)
    tracker.step(_random(0), _input())
    renewed = []
    for t in range(1, 30):
        tracker.step(_random(t), _input(), _pair())
        assert tracker.source is not None
        carried = t - tracker.source[tracker.source >= 0]
        assert int(carried.max()) <= 8 and int(tracker.age.max()) <= 8
        renewed.append(float((tracker.source == t).float().mean()))
    assert 0 < max(renewed) < 0.5  # one region at a time
    assert int(tracker.source.min()) >= 30 - 1 - 8


def test_an_inconsistent_region_takes_the_current_frame() -> None:
    """Where the flow's forward–backward check fails, or the input there is no longer what
    it was at the source, the output is the current frame's stylization, exactly."""
    tracker = TextureTracker()
    tracker.step(_random(0), _input())
    mask = np.ones((HEIGHT, WIDTH), np.float32)
    mask[4:12, 4:12] = 0
    fresh = _random(1)
    out = tracker.step(fresh, _input(), _pair(mask=mask))
    assert torch.equal(out[..., 4:12, 4:12], fresh[..., 4:12, 4:12])
    assert not torch.allclose(out[..., 16:, 16:], fresh[..., 16:, 16:])
    changed = _input().copy()
    changed[12:20, 18:28] = (255, 0, 0)  # something red comes in; the flow does not see it
    fresh = _random(2)
    out = tracker.step(fresh, changed, _pair())
    assert torch.equal(out[..., 12:20, 18:28], fresh[..., 12:20, 18:28])


def test_flat_input_keeps_its_texture_without_the_flow() -> None:
    """On flat input (sky) the flow cannot be checked and need not be right: the texture
    stays instead of being painted anew each frame."""
    tracker = TextureTracker(feather=0, match=0)
    flat = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    first = _random(0)
    tracker.step(first, flat)
    mask = np.ones((HEIGHT, WIDTH), np.float32)
    mask[:, : WIDTH // 2] = 0  # the flow fails its check on half the frame
    out = tracker.step(_random(1), flat, _pair(mask=mask))
    assert torch.allclose(out, _quantized(first), atol=1e-6)


def test_history_bounds_the_source_frames_kept() -> None:
    tracker = TextureTracker(history=3, max_age=100, every=1)
    tracker.step(_random(0), _input())
    for t in range(1, 12):
        mask = np.ones((HEIGHT, WIDTH), np.float32)
        mask[:, (3 * t) % WIDTH] = 0  # a new column a frame: a new source each step
        tracker.step(_random(t), _input(), _pair(mask=mask))
        assert len(tracker.painted) <= 3 and set(tracker.inputs) == set(tracker.painted)
    assert set(tracker.painted) == set(TextureTracker.needed_by(tracker.state()))


def test_a_weaker_blend_mixes_in_the_new_frame_keeping_contrast() -> None:
    """Half and half: both textures' deviations from the local mean, summed with weights
    whose squares add to one (Heitz & Neyret 2018), not averaged into a fainter one."""
    tracker = TextureTracker(strength=0.5, feather=0, match=0)
    first = _random(0)
    tracker.step(first, _input())
    fresh = _random(1)
    out = tracker.step(fresh, _input(), _pair())
    mean = gaussian(fresh, 4.0)
    wanted = mean + (0.5 * (_quantized(first) - mean) + 0.5 * (fresh - mean)) / 0.5**0.5
    assert torch.allclose(out, wanted.clamp(0, 1), atol=1e-5)
    average = 0.5 * fresh + 0.5 * _quantized(first)
    assert float(out.std()) > float(average.std()) * 1.2


def test_the_tracked_texture_takes_the_current_frames_colours() -> None:
    """Matched to the current frame's colour covariance (Pitié & Kokaram 2007)."""
    image, reference = _random(0), _random(1) * torch.tensor([0.2, 0.5, 1.0]).view(1, 3, 1, 1)
    matched = match_colours(image, reference).flatten(2)[0].double()
    assert torch.allclose(matched.mean(1), reference.flatten(2)[0].double().mean(1), atol=1e-3)
    assert torch.allclose(
        torch.cov(matched), torch.cov(reference.flatten(2)[0].double()), atol=2e-3
    )


def test_a_restored_tracker_continues_exactly() -> None:
    mask = np.ones((HEIGHT, WIDTH), np.float32)
    mask[:, -2:] = 0
    options = {"history": 4, "max_age": 6, "every": 2}
    whole, first_half = TextureTracker(**options), TextureTracker(**options)
    for tracker in (whole, first_half):
        tracker.step(_random(0), _input(0))
        for t in range(1, 5):
            tracker.step(_random(t), _input(t), _pair(1.0, mask))
    state = first_half.state()
    needed = TextureTracker.needed_by(state)
    resumed = TextureTracker(**options)
    inputs = {k: _input(k) for k in needed}
    resumed.restore(state, {k: first_half.painted[k] for k in needed}, inputs)
    for t in range(5, 12):
        a = whole.step(_random(t), _input(t), _pair(1.0, mask))
        b = resumed.step(_random(t), _input(t), _pair(1.0, mask))
        assert torch.equal(a, b)
