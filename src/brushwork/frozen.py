"""The content statistics of a large picture, shared by every tile it is painted in.

A tile normalized by its own statistics would be painted unlike its neighbours. The ops
that normalize content (:func:`brushwork.ops.adain`'s mean and deviation,
:func:`brushwork.ops.whiten_color`'s whitening, the instance norms of per-style networks)
therefore ask :func:`moments` for them, and a tiled run fills a :class:`StatisticsTable`
one of two ways:

* **thumbnail** (URST: Chen et al. 2022, "Towards Ultra-Resolution Neural Style Transfer
  via Thumbnail Instance Normalization", §3.2): the method paints a small copy of the
  whole picture while the table records every statistic, and each tile replays them.
  Right for networks whose later normalizations see the output of earlier ones (WCT's
  levels, a transform network's instance norms).
* **streamed**: where every statistic is of the content's own features in one pass
  (AdaIN), a first pass over the tiles merges each tile's share of them
  (:class:`~brushwork.ops.Moments`, the features of the pixels the tile owns) and stops
  each tile as soon as the last one is taken; tiles then replay the whole picture's
  statistics at full resolution, exactly what a pass over the whole picture computes.

::

    with recording() as table:          # the thumbnail: statistics computed and kept
        method.stylize(thumbnail, prepared)
    with replaying(table):               # one tile: the same statistics, in order
        method.stylize(tile, prepared_for_tile)

Outside these blocks :func:`moments` just computes. Statistics are keyed by the
:func:`scope` they are asked in (a level, a style) and their order within it, so a style
whose region is empty in one tile does not shift the keys of the others.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from torch import Tensor

from brushwork import ops
from brushwork.errors import BrushworkError

Key = tuple[tuple[str, ...], int]
Owned = tuple[int | None, int | None, int | None, int | None]


class StreamDone(Exception):
    """A streamed tile gave its share of the last statistic: the rest of its pass is not
    needed."""


@dataclass
class StatisticsTable:
    """Statistics by (scope, order within the scope): recorded, replayed or streamed."""

    values: dict[Key, ops.Moments] = field(default_factory=dict)
    mode: str = "record"
    owned: Owned | None = None
    """Streaming: the pixels of the tile that are its share of the picture, (top, bottom,
    left, right) in the tile; None on a side where the picture ends (the share then
    takes the method's frame there too, as a pass over the whole picture does)."""
    framing: tuple[int, int, int] | None = None
    """Streaming: (rows added above, columns added left, rows in all) when the method
    framed the tile (:func:`framed`)."""
    streamed: set[Key] = field(default_factory=set)
    """Streaming: the statistics some tile has given its share of."""
    last_key: Key | None = None
    """Streaming: the last statistic a pass asks for (the tile's pass stops there)."""
    _scope: tuple[str, ...] = ()
    _counts: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def next_key(self) -> Key:
        scope = self._scope
        self._counts[scope] += 1
        return scope, self._counts[scope]

    def owned_part(self, features: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The features (and mask) of the pixels the tile owns."""
        assert self.owned is not None
        top, left, rows = self.framing or (0, 0, None)
        stride = (rows or features.shape[-2]) // features.shape[-2]
        offsets = (top, top, left, left)
        y0, y1, x0, x1 = (
            None if v is None else (v + o) // stride
            for v, o in zip(self.owned, offsets, strict=True)
        )
        part = (..., slice(y0, y1), slice(x0, x1))
        return features[part], None if mask is None else mask[part]


_ACTIVE: ContextVar[StatisticsTable | None] = ContextVar("brushwork_frozen", default=None)


def moments(features: Tensor, mask: Tensor | None = None, full: bool = False) -> ops.Moments:
    """The :class:`~brushwork.ops.Moments` of content ``features`` (within ``mask``, at
    their resolution) a normalization uses: computed (and kept, when recording), or the
    whole picture's when replaying; when streaming, the tile's share is merged in."""
    table = _ACTIVE.get()
    if table is None:
        return ops.Moments.of(features, full, mask)
    key = table.next_key()
    if table.mode == "record":
        table.values[key] = value = ops.Moments.of(features, full, mask)
        return value
    if table.mode == "stream":
        region, weight = table.owned_part(features, mask)
        part = ops.Moments.of(region, full, weight)
        if part.count > 0:
            table.values[key] = part if key not in table.streamed else table.values[key] + part
            table.streamed.add(key)
        if key == table.last_key:
            raise StreamDone
        return table.values[key]
    if key not in table.values:
        raise BrushworkError(
            f"a tile asked for statistics the thumbnail did not record ({'/'.join(key[0])} "
            f"#{key[1]}); this method cannot tile"
        )
    return table.values[key]


def framed(top: int, left: int, rows: int) -> None:
    """A method framed the image it paints: ``top`` rows and ``left`` columns added above
    and left of it, ``rows`` rows in all (so streamed statistics find a tile's own
    pixels in its features)."""
    table = _ACTIVE.get()
    if table is not None and table.mode == "stream":
        table.framing = (top, left, rows)


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Statistics asked within the block are keyed under ``name`` (nested scopes join)."""
    table = _ACTIVE.get()
    if table is None:
        yield
        return
    outer = table._scope
    table._scope = (*outer, name)
    try:
        yield
    finally:
        table._scope = outer


@contextlib.contextmanager
def _active(table: StatisticsTable) -> Iterator[StatisticsTable]:
    token = _ACTIVE.set(table)
    try:
        yield table
    finally:
        _ACTIVE.reset(token)


def recording() -> contextlib.AbstractContextManager[StatisticsTable]:
    """Within the block, statistics are computed and kept in the table yielded."""
    return _active(StatisticsTable())


def replaying(table: StatisticsTable) -> contextlib.AbstractContextManager[StatisticsTable]:
    """Within the block, statistics are those ``table`` holds, in the order they were
    recorded: one block per pass of the method (a tile)."""
    return _active(StatisticsTable(table.values, mode="replay"))


def streaming(
    table: StatisticsTable, owned: Owned
) -> contextlib.AbstractContextManager[StatisticsTable]:
    """Within the block (one tile's pass, stopped by :class:`StreamDone`), each statistic's
    share from the ``owned`` pixels of the tile is merged into ``table`` (which recorded a
    thumbnail's first: its keys, and values for any no tile streams)."""
    last = next(reversed(table.values), None)
    return _active(StatisticsTable(table.values, "stream", owned, None, table.streamed, last))


def active() -> bool:
    """Whether statistics are being recorded, replayed or streamed."""
    return _ACTIVE.get() is not None
