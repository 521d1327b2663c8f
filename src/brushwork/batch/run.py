"""Running a batch: one item painted and recorded, the batch checked for an item that can
run, and the items run on the local or the Ray engine (:func:`run_batch`)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from brushwork import events as ev
from brushwork.batch.inputs import Item
from brushwork.batch.manifest import Manifest, item_record, skipped_record
from brushwork.errors import BrushworkError, BrushworkWarning

STAGE = "batch"


def paint_item(painter: Any, item: Item, *, force: bool = False) -> dict[str, Any]:
    """Stylize one item with ``painter`` and write its output; its manifest record. A
    failure of this item (bad file, no memory, any exception) is recorded, not raised;
    an interrupt is not an exception here and stops the batch."""
    from brushwork.image import check_output

    start = time.perf_counter()
    if Path(item.output).exists() and not force:
        return skipped_record(item, painter.method)
    try:
        plan = painter.check(item.content, item.styles())
        width, height = plan.content_size
        check_output(item.output, width, height, plan.bit_depth)
        painting = painter.paint(item.content, item.styles(), plan=plan)
        Path(item.output).parent.mkdir(parents=True, exist_ok=True)
        painting.save(item.output, force=force)
    except BrushworkError as error:
        return item_record(
            item, painter.method, "failed", time.perf_counter() - start, error=str(error)
        )
    except Exception as error:
        return item_record(
            item,
            painter.method,
            "failed",
            time.perf_counter() - start,
            error=f"{type(error).__name__}: {error}",
        )
    return item_record(
        item,
        painter.method,
        "done",
        time.perf_counter() - start,
        size=list(painting.plan.content_size),
        losses=ev.finite(painting.result.losses),
        reused_style=painting.reused_styles,
    )


def to_do(items: Sequence[Item], force: bool) -> list[Item]:
    """The items to paint: those whose output does not exist yet (all of them with force)."""
    return [item for item in items if force or not Path(item.output).exists()]


def check_runnable(painter: Any, items: Sequence[Item]) -> None:
    """Refuse, before any work, a batch none of whose ``items`` can run (a --size, a memory
    need or a style that fails every item): items are planned from their files' headers
    (:meth:`~brushwork.painter.Painter.check`: sizes, memory; nothing decoded) until one
    passes. When some can run, the others fail alone, each recorded in the manifest."""

    first: tuple[Item, BrushworkError] | None = None
    with warnings.catch_warnings():  # the painting warns again, where it is reported
        warnings.simplefilter("ignore", BrushworkWarning)
        for item in items:
            try:
                painter.check(item.content, item.styles())
                return
            except BrushworkError as error:
                first = first or (item, error)
    if first is not None:
        item, reason = first
        raise BrushworkError(
            f"no item of this batch can run ({item.content} × {item.style}: {reason})"
        )


@dataclass
class BatchResult:
    """What a batch did: counts per status, seconds, items per second, the manifest."""

    total: int
    done: int
    skipped: int
    failed: int
    seconds: float
    manifest: str
    engine: str

    @property
    def items_per_second(self) -> float:
        worked = self.done + self.failed
        return worked / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "items_per_second": round(self.items_per_second, 4)}


class _Recorder:
    """Writes each item's record to the manifest and reports it as one progress step (a
    failed item also as a warning)."""

    def __init__(self, book: Manifest, engine: str, total: int, start: float) -> None:
        self.book = book
        self.engine = engine
        self.total = total
        self.start = start
        self.count = 0

    def __call__(self, entry: dict[str, Any]) -> None:
        self.count += 1
        self.book.write({**entry, "engine": self.engine})
        ev.emit(
            ev.Progress(
                STAGE,
                self.count,
                self.total,
                seconds=time.perf_counter() - self.start,
                details={k: entry.get(k) for k in ("status", "output")},
            )
        )
        if entry["status"] == "failed":
            ev.warn(f"item {self.count} of {self.total} failed: {entry['error']}")


def _run_elsewhere(
    engine: str,
    todo: list[Item],
    method: str,
    values: dict[str, Any],
    force: bool,
    encoder: Any,
    record: _Recorder,
    ray_options: dict[str, Any] | None,
) -> None:
    """Paint ``todo`` on an engine other than this process (``ray``)."""
    if engine != "ray":
        raise BrushworkError(f"unknown engine {engine!r}; engines: local, ray")
    from brushwork.batch.ray_engine import run_ray

    options = ray_options or {}
    run_ray(todo, method, values, force=force, encoder=encoder, on_record=record, **options)


def run_batch(
    items: Sequence[Item],
    method: str,
    values: dict[str, Any] | None = None,
    *,
    manifest: Path,
    engine: str = "local",
    force: bool = False,
    encoder: Any = None,
    events: ev.Sinks = None,
    ray_options: dict[str, Any] | None = None,
    painter: Any = None,
) -> BatchResult:
    """Run ``items`` with ``method`` and ``values`` (controls and method options), writing
    each record to ``manifest``; progress (one step per item) goes to ``events``.
    ``painter``: the :class:`~brushwork.painter.Painter` of ``method`` and ``values`` if
    the caller built it already (the local engine paints with it; Ray workers build their
    own), else it is built here, which checks every option before any item runs."""
    from brushwork.painter import Painter

    values = dict(values or {})
    if painter is None:
        painter = Painter(method, values, encoder=encoder)
    book = Manifest(manifest)
    start = time.perf_counter()
    with ev.bound(events):
        ev.emit(ev.Started(STAGE, len(items), unit="image"))
        record = _Recorder(book, engine, len(items), start)
        todo = to_do(items, force)
        waiting = set(todo)
        for item in items:
            if item not in waiting:
                record(skipped_record(item, method))
        if engine == "local":
            for item in todo:
                record(paint_item(painter, item, force=force))
        else:
            _run_elsewhere(engine, todo, method, values, force, encoder, record, ray_options)
        seconds = time.perf_counter() - start
        ev.emit(ev.Finished(STAGE, seconds, details=dict(book.counts)))
    counts = book.counts
    return BatchResult(
        len(items),
        counts["done"],
        counts["skipped"],
        counts["failed"],
        seconds,
        str(manifest),
        engine,
    )
