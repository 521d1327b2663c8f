"""One event stream for every long operation: optimization, feed-forward batches, training,
depth training, video, weight downloads.

Producers emit typed events; consumers are *sinks*, plain callables ``sink(event)``: a tqdm
bar (:class:`ProgressBar`), JSON lines (:class:`JsonLines`), a web page's server-sent events,
a test's list. A long operation takes ``events=`` (one sink, or a list of them) and binds it
for its duration (:func:`bound`), so code deep inside it (a mask that had to be stretched, an
unreadable training image, a download) reports through the same stream with :func:`emit` and
:func:`warn` without being handed the sink. The binding lives in a
:class:`contextvars.ContextVar`: each thread has its own, so two threads stylizing at once
never see each other's events.

Without any bound sink, :func:`warn` falls back to :func:`warnings.warn` with
:class:`~brushwork.errors.BrushworkWarning`, so library users still see warnings.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any

from brushwork.errors import BrushworkWarning


@dataclass(frozen=True)
class Event:
    """Base of every event; ``kind`` names it in JSON."""

    kind = "event"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (no tensors, no NaN)."""
        data: dict[str, Any] = {"event": self.kind}
        for name, value in vars(self).items():
            if name != "image":
                data[name] = finite(value)
        return data


@dataclass(frozen=True)
class Started(Event):
    """A stage began: ``total`` steps of ``unit`` (None: unknown)."""

    kind = "started"
    stage: str
    total: int | None = None
    unit: str = "step"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress(Event):
    """Step ``step`` (1-based) of ``total`` of a stage is done. ``losses``: the loss terms
    at that step; ``scale``: the coarse-to-fine scale (1-based) or None; ``image``: an
    optional preview (detached (1, 3, H, W) tensor in [0, 1]; do not modify)."""

    kind = "progress"
    stage: str
    step: int
    total: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    scale: int | None = None
    image: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Heartbeat(Event):
    """Work goes on inside one step of an outer stage (an optimization inside one video
    frame), whose own progress is not shown. Display sinks ignore it; a sink that stops
    work (a server's cancel or time limit) can raise here instead of waiting for the outer
    step to end."""

    kind = "heartbeat"
    stage: str


@dataclass(frozen=True)
class Warned(Event):
    """Something was adjusted to make the work possible; the message is one line."""

    kind = "warning"
    message: str


@dataclass(frozen=True)
class Finished(Event):
    """A stage ended (completely or not: ``details`` says)."""

    kind = "finished"
    stage: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


Sink = Callable[[Event], None]
Sinks = Sink | Sequence[Sink] | None

_current: ContextVar[Sink | None] = ContextVar("brushwork_events", default=None)
_warned: ContextVar[set[str] | None] = ContextVar("brushwork_warned", default=None)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def combine(sinks: Sinks) -> Sink | None:
    """One sink from one, several or none."""
    if sinks is None:
        return None
    if callable(sinks):
        return sinks
    chosen = [s for s in sinks if s is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]

    def fan_out(event: Event) -> None:
        for sink in chosen:
            sink(event)

    return fan_out


def current() -> Sink | None:
    """The sink bound in this thread, if any."""
    return _current.get()


@contextlib.contextmanager
def bound(sinks: Sinks) -> Iterator[Sink | None]:
    """Bind ``sinks`` (added to any already bound) for the block; yields the combined sink."""
    outer = _current.get()
    sink = combine([s for s in (outer, combine(sinks)) if s is not None])
    token = _current.set(sink)
    seen = _warned.set(set())
    try:
        yield sink
    finally:
        _warned.reset(seen)
        _current.reset(token)


class StepsInside:
    """Pass every event on to ``sink``, but the progress of stages other than ``stage`` as
    a :class:`Heartbeat`: steps inside one step of ``stage`` (an optimization inside a
    video frame, a method's passes inside a tile), not shown, where a sink may still stop
    the work."""

    def __init__(self, sink: Sink, stage: str) -> None:
        self.sink = sink
        self.stage = stage

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress) and event.stage != self.stage:
            event = Heartbeat(event.stage)
        self.sink(event)


@contextlib.contextmanager
def steps_inside(stage: str) -> Iterator[None]:
    """Within the block, the bound sink sees other stages' progress as heartbeats
    (:class:`StepsInside`)."""
    outer = _current.get()
    token = _current.set(None if outer is None else StepsInside(outer, stage))
    try:
        yield
    finally:
        _current.reset(token)


def emit(event: Event) -> None:
    """Send ``event`` to the bound sink (nothing happens without one)."""
    sink = _current.get()
    if sink is not None:
        sink(event)


def warn(message: str) -> None:
    """Report a warning through the bound sink, else as a :class:`BrushworkWarning`. Like
    Python's default warnings filter, a message repeated word for word within one binding
    (e.g. one mask per style, each stretched alike) is reported once."""
    sink = _current.get()
    if sink is None:
        warnings.warn(message, BrushworkWarning, stacklevel=3)
        return
    text = " ".join(str(message).split())
    seen = _warned.get()
    if seen is not None:
        if text in seen:
            return
        seen.add(text)
    sink(Warned(text))


class Collect:
    """A sink that keeps every event (tests, the service's job records)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class ProgressBar:
    """A tqdm bar per stage on stderr: steps, ETA and the loss terms; warnings are written
    above it as ``brushwork: warning: ...``. ``disable=None`` hides the bar (not the
    warnings) when stderr is not a terminal."""

    def __init__(self, *, disable: bool | None = None, stream: IO[str] | None = None) -> None:
        self.disable = disable
        self.stream = stream
        self._bars: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        from tqdm import tqdm

        stream = self.stream or sys.stderr
        if isinstance(event, Warned):
            tqdm.write(f"brushwork: warning: {event.message}", file=stream)
        elif isinstance(event, Started):
            self._close(event.stage)
            precision = event.details.get("precision")
            self._bars[event.stage] = tqdm(
                total=event.total,
                desc=f"{event.stage} {precision}" if precision else event.stage,
                unit=event.unit,
                disable=self.disable,
                dynamic_ncols=True,
                file=stream,
                initial=int(event.details.get("initial", 0)),
                unit_scale=bool(event.details.get("unit_scale", False)),
            )
        elif isinstance(event, Progress):
            bar = self._bars.get(event.stage)
            if bar is None:
                return
            if event.losses:
                bar.set_postfix({k: f"{v:.4g}" for k, v in event.losses.items()}, refresh=False)
            bar.update(max(0, event.step - bar.n))
        elif isinstance(event, Finished):
            self._close(event.stage)

    def _close(self, stage: str) -> None:
        bar = self._bars.pop(stage, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for stage in list(self._bars):
            self._close(stage)


class JsonLines:
    """Each event as one JSON line (images left out, non-finite numbers as null), flushed
    at once, for programs that follow a run."""

    def __init__(self, stream: IO[str] | None = None, *, every: int = 1) -> None:
        self.stream = stream
        self.every = max(1, every)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Heartbeat):
            return
        if isinstance(event, Progress) and event.step % self.every and event.step != event.total:
            return
        stream = self.stream or sys.stderr
        stream.write(json.dumps(event.to_json(), allow_nan=False) + "\n")
        stream.flush()


class Throttle:
    """Pass progress events to ``sink`` at most every ``seconds`` (the last step and
    every other kind of event always pass)."""

    def __init__(self, sink: Sink, seconds: float) -> None:
        self.sink = sink
        self.seconds = seconds
        self._last = -math.inf

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress) and event.step != event.total:
            now = time.monotonic()
            if now - self._last < self.seconds:
                return
            self._last = now
        self.sink(event)
