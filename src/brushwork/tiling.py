"""Print-size output from one-pass methods: a large picture painted tile by tile, tiles
blended where they overlap, finished rows handed on in horizontal bands.

URST (Chen et al. 2022, "Towards Ultra-Resolution Neural Style Transfer via Thumbnail
Instance Normalization") paints padded patches with normalization statistics frozen from a
thumbnail (:mod:`brushwork.frozen`) and crops them edge to edge. Here neighbouring tiles
overlap by at least ``overlap`` pixels and are cross-faded over a ramp centred in that
overlap, so no tile's border pixels (painted with less context) reach the output, and the
grid follows the picture's own size (no rounding up to a multiple of the tile).

    grid = TileGrid(height, width, tile=1024, overlap=64, align=8)
    paint_tiles(grid, paint, write)   # paint(window) → (1, 3, h, w); write(band, top)

:func:`plan_tiles` picks the tile from the memory limit; the stylizer
(:meth:`~brushwork.stylizer.Stylizer.stylize_tiled`) fills the statistics and paints.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from brushwork import frozen
from brushwork.errors import BrushworkError
from brushwork.frozen import Owned
from brushwork.memory import GIB, memory_limit, require
from brushwork.methods.base import MemoryPlan, PreparedStyle

Window = tuple[int, int, int, int]
"""(top, bottom, left, right) of a tile, bottom and right exclusive."""
STREAM_KEYS_THUMBNAIL = 256
"""The thumbnail a run that streams its statistics paints first, only to learn which
statistics a pass asks for."""
THUMBNAIL = 1024
"""The longest side of the thumbnail whose statistics every tile is normalized by: URST's
1024 px (or the picture's own side, if smaller; a tile's, where memory allows no more)."""


def spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """(start, end) of the tiles along one side: as few as cover ``length`` with
    neighbours overlapping by about ``overlap``, spread evenly from edge to edge, each
    starting at a multiple of ``align`` (a network's stride: every tile then pools on the
    whole picture's grid, so its features are the picture's), ``tile`` long but the last,
    which ends at the side's end (up to ``align`` − 1 longer)."""
    if length <= tile:
        return [(0, length)]
    last = (length - tile) // align * align
    if last == 0:
        return [(0, length)]
    step = max(align, (tile - overlap) // align * align)
    count = math.ceil(last / step) + 1
    # as many tiles, no larger than they need to be to overlap by ``overlap``
    snug = -(-(length + (count - 1) * overlap) // count // align) * align + align
    if snug < tile:
        tile = snug
        last = (length - tile) // align * align
    # spread evenly, each start floored to the alignment: no gap exceeds ``step``
    starts = sorted({i * last // (count - 1) // align * align for i in range(count)})
    return [(start, start + tile) for start in starts[:-1]] + [(starts[-1], length)]


def seams(parts: list[tuple[int, int]], overlap: int) -> list[tuple[int, int]]:
    """(start, end) of the cross-fade between each pair of neighbouring ``parts``: a ramp
    of ``overlap`` pixels centred in their overlap (narrower where tiles start closer
    together than that, so that ramps never meet and two weights sum to 1)."""
    steps = [b[0] - a[0] for a, b in itertools.pairwise(parts)]
    width = min([overlap, *steps])
    result = []
    for (_, end), (start, _) in itertools.pairwise(parts):
        centre = (start + end) / 2
        first = math.floor(centre - width / 2)
        result.append((first, first + width))
    return result


def ramp(
    part: tuple[int, int], before: tuple[int, int] | None, after: tuple[int, int] | None
) -> np.ndarray:
    """A tile's blend weight along one side: 0 before the seam with the tile ``before``,
    rising linearly across it, 1 inside, falling across the seam with the tile ``after``,
    0 beyond. Two neighbours' weights sum to 1 at every pixel."""
    start, end = part
    positions = np.arange(start, end) + 0.5
    weight = np.ones(end - start, dtype=np.float32)
    if before is not None:
        low, high = before
        weight *= np.clip((positions - low) / max(high - low, 1e-9), 0, 1).astype(np.float32)
    if after is not None:
        low, high = after
        weight *= np.clip((high - positions) / max(high - low, 1e-9), 0, 1).astype(np.float32)
    return weight


@dataclass(frozen=True)
class TileGrid:
    """Tiles of at most ``tile`` × ``tile`` pixels over a ``height`` × ``width`` picture,
    neighbours overlapping by at least ``overlap``."""

    height: int
    width: int
    tile: int
    overlap: int
    thumbnail: int = THUMBNAIL
    """The longest side of the thumbnail whose statistics every tile is normalized by."""
    align: int = 1
    """Tiles start at multiples of this (the method's stride)."""
    streamed: bool = False
    """Whether the statistics are streamed from every tile first (a second pass over the
    tiles), rather than recorded from a thumbnail."""

    def __post_init__(self) -> None:
        if self.overlap < 0:
            raise BrushworkError(f"the tile overlap must be >= 0 px, not {self.overlap}")
        if 2 * self.overlap > self.tile:
            raise BrushworkError(
                f"a tile overlap of {self.overlap} px is more than half the {self.tile} px "
                "tile; use a smaller --tile-overlap or a larger --tile"
            )

    @property
    def rows(self) -> list[tuple[int, int]]:
        return spans(self.height, self.tile, self.overlap, self.align)

    @property
    def columns(self) -> list[tuple[int, int]]:
        return spans(self.width, self.tile, self.overlap, self.align)

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.columns)

    @property
    def steps(self) -> int:
        """Tile passes: one per tile, two when the statistics are streamed."""
        return self.count * (2 if self.streamed else 1)

    @functools.cached_property
    def _ramps(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return _ramps(self.rows, self.overlap), _ramps(self.columns, self.overlap)

    def weights(self, row: int, column: int) -> np.ndarray:
        """The blend weight of tile (``row``, ``column``), (h, w) float32."""
        rows, columns = self._ramps
        return np.outer(rows[row], columns[column])

    def owned(self, row: int, column: int) -> Owned:
        """The pixels of tile (``row``, ``column``) no other tile owns, in the tile's
        coordinates, None where the picture ends: the owned parts of all tiles cover the
        picture once (cut at the middle of each seam)."""
        rows, columns = self.rows, self.columns
        y0, y1 = _owned(rows, self.overlap, row)
        x0, x1 = _owned(columns, self.overlap, column)
        top, left = rows[row][0], columns[column][0]
        return (
            None if row == 0 else y0 - top,
            None if row == len(rows) - 1 else y1 - top,
            None if column == 0 else x0 - left,
            None if column == len(columns) - 1 else x1 - left,
        )

    def windows(self) -> Iterator[tuple[int, int, Window]]:
        """(row, column, window) of every tile, row by row."""
        for i, (top, bottom) in enumerate(self.rows):
            for j, (left, right) in enumerate(self.columns):
                yield i, j, (top, bottom, left, right)


def _owned(parts: list[tuple[int, int]], overlap: int, index: int) -> tuple[int, int]:
    cuts = [(first + last) // 2 for first, last in seams(parts, overlap)]
    bounds = [parts[0][0], *cuts, parts[-1][1]]
    return bounds[index], bounds[index + 1]


def _ramps(parts: list[tuple[int, int]], overlap: int) -> list[np.ndarray]:
    cuts = seams(parts, overlap)
    return [
        ramp(part, cuts[i - 1] if i > 0 else None, cuts[i] if i < len(cuts) else None)
        for i, part in enumerate(parts)
    ]


def paint_tiles(
    grid: TileGrid,
    paint: Callable[[Window], Tensor],
    write: Callable[[np.ndarray, int], None],
    done: Callable[[int], None] = lambda _: None,
) -> None:
    """Paint every tile of ``grid``: ``paint(window)`` gives its (1, 3, h, w) output in
    [0, 1]; outputs are blended by :meth:`TileGrid.weights` and each
    band of finished rows goes to ``write(band, top)`` ((rows, width, 3) float32, top to
    bottom, every row once) as soon as no later tile touches it; ``done(n)`` after the n-th
    tile. Memory: one row of tiles, float32."""
    row_seams = seams(grid.rows, grid.overlap)
    carried: np.ndarray | None = None  # rows of the last seam, already weighted
    emitted = 0
    for number, (i, j, (top, bottom, left, right)) in enumerate(grid.windows(), 1):
        if j == 0:
            band = np.zeros((bottom - top, grid.width, 3), dtype=np.float32)
            if carried is not None:
                band[emitted - top : emitted - top + len(carried)] += carried
        output = paint((top, bottom, left, right))[0].float().clamp(0, 1)
        pixels = output.permute(1, 2, 0).cpu().numpy()
        band[:, left:right] += pixels * grid.weights(i, j)[:, :, None]
        done(number)
        if j == len(grid.columns) - 1:
            finished = row_seams[i][0] if i < len(row_seams) else grid.height
            write(band[emitted - top : finished - top], emitted)
            carried = band[finished - top :].copy() if i < len(row_seams) else None
            emitted = finished


def shared_statistics(
    grid: TileGrid,
    content: np.ndarray,
    paint: Callable[[Window | None, Tensor], Tensor],
    read: Callable[[Window], Tensor],
    done: Callable[[int], None],
) -> frozen.StatisticsTable:
    """The statistics every tile of ``content`` is normalized by: those recorded while
    ``paint(None, thumbnail)`` paints a thumbnail of :attr:`TileGrid.thumbnail` px, or,
    for a grid that streams them, the whole picture's merged from each tile's share
    (``paint(window, read(window))`` stopped at the last statistic; ``done(n)`` after the
    n-th tile), the thumbnail then only telling which statistics a pass asks for."""
    side = STREAM_KEYS_THUMBNAIL if grid.streamed else grid.thumbnail
    with frozen.recording() as statistics:
        paint(None, thumbnail_tensor(content, side))
    if grid.streamed:
        for number, (i, j, window) in enumerate(grid.windows(), 1):
            with frozen.streaming(statistics, grid.owned(i, j)), suppress(frozen.StreamDone):
                paint(window, read(window))
            done(number)
    return statistics


LARGEST_TILE = 1024
"""The largest tile the planner picks: on a 2-core CPU AdaIN costs 4.3 µs a pixel (margin
included) in tiles of 768 or 1024 px and 4.9 µs in tiles of 1408 px (bfloat16; larger
activations outgrow the caches), so larger ones gain nothing."""


@dataclass(frozen=True)
class TileRequest:
    """What the user asked of a tiled run: the tile side (None: the largest that fits),
    the overlap, the output's bits per channel, the memory limit (None: 80 % of what is
    available)."""

    tile: int | None
    overlap: int
    bit_depth: int = 8
    limit: int | None = None


def whole_picture_bytes(
    height: int, width: int, styles: Sequence[tuple[int, int]], bit_depth: int
) -> int:
    """What a tiled run holds whole besides its tile: the content (8 bits a channel), the
    output (8 or 16) and the style images ((H, W) each, float32)."""
    return 3 * height * width * (1 + bit_depth // 8) + sum(12 * h * w for h, w in styles)


def band_bytes(tile: int, width: int) -> int:
    """The float32 rows of tiles being blended (a band and the seam carried to the next)
    and one tile's output."""
    return 2 * 12 * tile * width + 12 * tile * tile


def plan_tiles(
    method: Any,
    size: tuple[int, int],
    styles: Sequence[tuple[int, int]],
    request: TileRequest,
    device: Any = None,
) -> tuple[MemoryPlan, TileGrid]:
    """The tiles a one-pass ``method`` paints an (H, W) ``size`` picture in: the asked
    tile, or the largest (a multiple of its stride, at most :data:`LARGEST_TILE`) whose
    pass, with everything the run holds whole (:func:`whole_picture_bytes`, :func:`band_bytes`),
    fits the limit. Refused up front: options the method cannot tile with, a tile smaller
    than its receptive field, an overlap over half the tile, a limit too small for even the
    least tile."""
    method.check_tiling()
    height, width = size
    least = method.receptive_field()
    held = whole_picture_bytes(height, width, styles, request.bit_depth)
    scale = min(1.0, THUMBNAIL / max(height, width))
    thumbnail = method.need(round(height * scale), round(width * scale), styles)

    stride = method.stride()

    def need(side: int, whole_thumbnail: bool = True) -> int:
        longest = side + stride - 1  # (the last tile of a row or column)
        tile = method.need(min(longest, height), min(longest, width), styles)
        if whole_thumbnail:
            tile = max(tile, thumbnail)
        return int(tile + held + band_bytes(side, width))

    if request.tile is not None:
        if request.tile < least:
            raise BrushworkError(
                f"a tile of {request.tile} px is smaller than the {least} px of content "
                f"{method.name} paints each pixel from (its receptive field); use --tile "
                f"{least} or more"
            )
        side = request.tile
    else:
        allowed, source = memory_limit(request.limit, device)
        side = LARGEST_TILE
        while side >= least and need(side, False) > allowed:
            side -= stride
        if side < least:
            raise BrushworkError(
                f"a {width}x{height} {method.name} run needs about "
                f"{need(least, False) / GIB:.1f} GiB even in tiles of {least} px (the least its "
                f"receptive field allows), over {source} ({allowed / GIB:.1f} GiB); use a "
                "smaller --size or a larger --max-memory"
            )
    allowed = memory_limit(request.limit, device)[0]
    whole_thumbnail = need(side) <= allowed
    grid = TileGrid(
        height,
        width,
        side,
        request.overlap,
        THUMBNAIL if whole_thumbnail else side,
        stride,
        method.streamed_statistics,
    )
    require(
        need(side, whole_thumbnail),
        f"a {width}x{height} {method.name} run in {grid.count} tiles of {side} px",
        request.limit,
        device,
        "use a smaller --tile or --size, or a machine with more memory",
    )
    return MemoryPlan(need(side, whole_thumbnail)), grid


def thumbnail_tensor(pixels: np.ndarray, side: int) -> Tensor:
    """(H, W, 3) uint8 → a (1, 3, h, w) float32 copy in [0, 1] whose longest side is
    ``side`` (or less: never enlarged), antialiased, without a float copy of the whole."""
    height, width = pixels.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    if size != (height, width):
        image = F.interpolate(image, size=size, mode="bilinear", antialias=True)
    return image.float() / 255


def tile_style(style: PreparedStyle, window: Window | None, image: Tensor) -> PreparedStyle:
    """``style`` (prepared for the whole picture) for one tile: its masks cropped to
    ``window`` (None: the whole picture, resized to ``image``, the thumbnail)."""
    if style.content_size is None:
        return style
    height, width = image.shape[-2:]
    targets = []
    for target in style.targets:
        mask = target.mask
        if mask is not None and window is not None:
            mask = mask[..., window[0] : window[1], window[2] : window[3]]
        elif mask is not None:
            mask = F.interpolate(mask, size=(height, width), mode="bilinear", antialias=True)
        targets.append(dataclasses.replace(target, mask=mask))
    return dataclasses.replace(style, targets=targets, content_size=(height, width))
