"""Print-size output (brushwork.tiling, brushwork.frozen): the tile grid covers the picture
once with weights that sum to 1, finished rows leave in order, the statistics a tile is
normalized by are the whole picture's, and the planner picks tiles from the memory limit or
refuses up front."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from conftest import smooth_image
from hypothesis import given, settings
from hypothesis import strategies as st

from brushwork import frozen
from brushwork.errors import BrushworkError
from brushwork.image import array_to_tensor
from brushwork.memory import GIB
from brushwork.ops import Moments, adain, encoded_moments, mean_std
from brushwork.tiling import (
    TileGrid,
    TileRequest,
    Window,
    paint_tiles,
    plan_tiles,
    spans,
    thumbnail_tensor,
)

grids = st.builds(
    lambda height, width, tile, share, align: TileGrid(
        height, width, tile, int(tile * share), align=align
    ),
    st.integers(1, 300),
    st.integers(1, 300),
    st.integers(16, 120),
    st.floats(0, 0.5),
    st.sampled_from([1, 4, 8]),
)


def identity(pixels: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]], Any, Any]:
    """Paint every tile of a grid as the picture itself: what comes out, and the bands."""
    height, width = pixels.shape[:2]
    output = np.full((height, width, 3), np.nan, dtype=np.float32)
    bands: list[tuple[int, int]] = []

    def paint(window: Window) -> torch.Tensor:
        y0, y1, x0, x1 = window
        return array_to_tensor(pixels[y0:y1, x0:x1])

    def write(band: np.ndarray, row: int) -> None:
        output[row : row + len(band)] = band
        bands.append((row, len(band)))

    return output, bands, paint, write


@settings(max_examples=60, deadline=None)
@given(grids)
def test_tiles_blended_by_their_weights_give_back_the_picture(grid: TileGrid) -> None:
    """Weights of overlapping tiles sum to 1 at every pixel: painting each tile as itself
    gives back the picture; every row leaves once, top to bottom."""
    pixels = np.random.default_rng(0).integers(0, 256, (grid.height, grid.width, 3), np.uint8)
    output, bands, paint, write = identity(pixels)
    paint_tiles(grid, paint, write)
    assert np.abs(output * 255 - pixels).max() < 1e-3
    assert [row for row, _ in bands] == list(np.cumsum([0] + [n for _, n in bands[:-1]]))
    assert sum(n for _, n in bands) == grid.height


@settings(max_examples=60, deadline=None)
@given(grids)
def test_tiles_start_on_the_stride_and_their_owned_parts_cover_the_picture_once(
    grid: TileGrid,
) -> None:
    coverage = np.zeros((grid.height, grid.width), dtype=int)
    for i, j, (top, bottom, left, right) in grid.windows():
        assert top % grid.align == 0 and left % grid.align == 0
        assert bottom - top <= max(grid.tile + grid.align - 1, grid.height)
        y0, y1, x0, x1 = grid.owned(i, j)
        coverage[
            top + (y0 or 0) : top + (bottom - top if y1 is None else y1),
            left + (x0 or 0) : left + (right - left if x1 is None else x1),
        ] += 1
    assert (coverage == 1).all()


def test_spans_overlap_by_at_least_the_overlap_and_end_at_the_side() -> None:
    parts = spans(1000, 256, 64, align=8)
    assert parts[0][0] == 0 and parts[-1][1] == 1000
    assert all(b[0] < a[1] - 56 for a, b in itertools.pairwise(parts))
    assert spans(200, 256, 64) == [(0, 200)]


def test_an_overlap_over_half_the_tile_is_refused() -> None:
    with pytest.raises(BrushworkError, match="more than half"):
        TileGrid(500, 500, 100, 51)
    with pytest.raises(BrushworkError, match=">= 0"):
        TileGrid(500, 500, 100, -1)


# ----------------------------------------------------------------------------- statistics


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.booleans())
def test_moments_merged_over_parts_are_those_of_the_whole(cut: int, full: bool) -> None:
    """Chan et al.'s pairwise update: the moments of two parts of a feature map merge into
    those of the whole, weighted by a mask too."""
    torch.manual_seed(cut)
    features = torch.randn(1, 5, 7, 9) * 3 + 2
    mask = torch.rand(1, 1, 7, 9)
    for weight in (None, mask):
        whole = Moments.of(features, full, weight)
        top = Moments.of(
            features[..., :cut, :], full, None if weight is None else weight[..., :cut, :]
        )
        bottom = Moments.of(
            features[..., cut:, :], full, None if weight is None else weight[..., cut:, :]
        )
        merged = top + bottom
        torch.testing.assert_close(merged.mean, whole.mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(merged.scatter, whole.scatter, rtol=1e-5, atol=1e-4)
    mean, std = Moments.of(features, full).mean_std()
    expected = mean_std(features)
    torch.testing.assert_close(mean, expected[0])
    torch.testing.assert_close(std, expected[1])


def test_a_large_style_is_encoded_in_tiles_with_the_moments_of_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Encoded tile by tile with a context around each tile, a style's moments are those
    of one pass over it, but near the tiles' borders (the encoder's padding)."""
    from brushwork.encoders import VGG19

    torch.manual_seed(0)
    encoder = VGG19(last_layer="relu3_1", width=1 / 8).eval()
    image = smooth_image(96, 120, seed=5)
    layers = ["relu1_1", "relu3_1"]
    with torch.no_grad():
        whole = encoded_moments(encoder, image, layers, full=True)
        monkeypatch.setattr("brushwork.ops.STYLE_TILE_LIMIT", 32 * 32)
        monkeypatch.setattr("brushwork.ops.STYLE_TILE", 32)
        monkeypatch.setattr("brushwork.ops.STYLE_CONTEXT", 16)
        tiled = encoded_moments(encoder, image, layers, full=True)
    for layer in layers:
        assert tiled[layer].count == whole[layer].count
        scale = float(whole[layer].mean.abs().mean())
        assert float((tiled[layer].mean - whole[layer].mean).abs().max()) < 0.05 * scale


def test_replayed_statistics_are_the_recorded_ones_and_unknown_ones_are_refused() -> None:
    torch.manual_seed(1)
    picture = torch.randn(1, 4, 12, 12) * 2 + 1
    style_mean, style_std = torch.zeros(1, 4, 1, 1), torch.ones(1, 4, 1, 1)
    with frozen.recording() as table, frozen.scope("level"):
        whole = adain(picture, style_mean, style_std)
    with frozen.replaying(table), frozen.scope("level"):
        tile = adain(picture[..., :6, :6], style_mean, style_std)
    torch.testing.assert_close(tile, whole[..., :6, :6])  # the picture's statistics
    with frozen.replaying(table), pytest.raises(BrushworkError, match="did not record"):
        adain(picture, style_mean, style_std)  # outside the recorded scope
    assert not frozen.active()


def test_streamed_statistics_are_the_whole_picture_s() -> None:
    """Each tile's share (the pixels it owns, at the features' stride after its frame)
    merged over the tiles gives the statistics of the whole picture; the pass stops at
    the last statistic."""
    torch.manual_seed(2)
    picture = torch.randn(1, 3, 16, 24)
    style = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    with frozen.recording() as table:
        adain(picture[..., :4, :4], *style)  # a thumbnail: the keys
    for owned, window in (
        ((None, 10, None, None), (0, 16, 0, 24)),
        ((10, None, None, None), (0, 16, 0, 24)),
    ):
        with frozen.streaming(table, owned), pytest.raises(frozen.StreamDone):
            frozen.framed(0, 0, 16)
            adain(picture[..., window[0] : window[1], window[2] : window[3]], *style)
    (streamed,) = table.values.values()
    torch.testing.assert_close(streamed.mean_std()[0], mean_std(picture)[0])
    torch.testing.assert_close(streamed.mean_std()[1], mean_std(picture)[1])


def test_a_thumbnail_is_made_without_a_float_copy_of_the_picture() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (300, 500, 3), np.uint8)
    thumbnail = thumbnail_tensor(pixels, 100)
    assert thumbnail.shape == (1, 3, 60, 100) and thumbnail.dtype == torch.float32
    assert thumbnail_tensor(pixels, 1000).shape == (1, 3, 300, 500)  # never enlarged


# ----------------------------------------------------------------------------- planning


class Sized:
    """A one-pass method's planning surface: bytes per pixel, stride, receptive field."""

    name = "sized"
    streamed_statistics = False

    def __init__(self, bytes_per_pixel: int = 1000, field: int = 136) -> None:
        self.bytes_per_pixel = bytes_per_pixel
        self.field = field

    def receptive_field(self) -> int:
        return self.field

    def check_tiling(self) -> None:
        pass

    def stride(self) -> int:
        return 8

    def need(self, height: int, width: int, styles: list[tuple[int, int]]) -> int:
        return 400 * 2**20 + self.bytes_per_pixel * (height + 64) * (width + 64)


def test_the_planner_picks_the_largest_tile_within_the_limit() -> None:
    memory, grid = plan_tiles(
        Sized(), (8192, 8192), [(512, 512)], TileRequest(None, 64, 8, 8 * GIB)
    )
    assert memory.estimate <= 8 * GIB
    assert grid.tile % 8 == 0 and grid.tile <= 2048
    _, smaller = plan_tiles(Sized(), (8192, 8192), [(512, 512)], TileRequest(None, 64, 8, 2 * GIB))
    assert smaller.tile < grid.tile


def test_a_tile_under_the_receptive_field_or_a_limit_too_small_is_refused() -> None:
    with pytest.raises(BrushworkError, match="receptive field") as error:
        plan_tiles(Sized(), (4096, 4096), [], TileRequest(100, 16, 8, None))
    assert "--tile 136" in str(error.value)
    with pytest.raises(BrushworkError, match="even in tiles of 136 px") as small:
        plan_tiles(Sized(), (16384, 16384), [], TileRequest(None, 64, 8, GIB))
    assert "GiB" in str(small.value) and "--max-memory" in str(small.value)
