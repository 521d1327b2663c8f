"""The event stream (brushwork.events): sinks, binding per thread, warnings, JSON lines."""

from __future__ import annotations

import io
import json
import threading

import pytest

from brushwork import events
from brushwork.errors import BrushworkWarning


def test_bound_sinks_receive_emitted_events_and_nest() -> None:
    outer, inner = events.Collect(), events.Collect()
    events.emit(events.Started("nobody"))  # no sink: nothing happens
    with events.bound(outer):
        events.emit(events.Started("a", 3))
        with events.bound(inner):
            events.emit(events.Progress("a", 1, 3, {"loss": 1.0}))
        events.emit(events.Finished("a", 0.5))
    assert [type(e) for e in outer.events] == [events.Started, events.Progress, events.Finished]
    assert [type(e) for e in inner.events] == [events.Progress]
    assert events.current() is None


def test_warn_goes_to_the_sink_or_to_warnings() -> None:
    with pytest.warns(BrushworkWarning, match="stretched"):
        events.warn("mask stretched")
    sink = events.Collect()
    with events.bound(sink):
        events.warn("mask   stretched\n to fit")
    assert sink.of(events.Warned)[0].message == "mask stretched to fit"


def test_each_thread_has_its_own_binding() -> None:
    seen: dict[str, list[events.Event]] = {}
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        sink = events.Collect()
        with events.bound(sink):
            barrier.wait()
            for step in range(1, 4):
                events.emit(events.Progress(name, step, 3))
                barrier.wait()
        seen[name] = sink.events

    threads = [threading.Thread(target=work, args=(n,)) for n in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {e.stage for e in seen["x"]} == {"x"} and {e.stage for e in seen["y"]} == {"y"}
    assert len(seen["x"]) == len(seen["y"]) == 3


def test_json_lines_are_valid_json_without_images_or_nan() -> None:
    stream = io.StringIO()
    sink = events.JsonLines(stream)
    sink(
        events.Progress("gatys", 1, 2, {"total": float("nan"), "tv": float("inf")}, image=object())
    )
    sink(events.Warned("careful"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "progress" and "image" not in lines[0]
    assert lines[0]["losses"] == {"total": None, "tv": None}
    assert lines[1] == {"event": "warning", "message": "careful"}


def test_json_lines_every_n_keeps_the_last_step() -> None:
    stream = io.StringIO()
    sink = events.JsonLines(stream, every=10)
    for step in range(1, 26):
        sink(events.Progress("s", step, 25))
    steps = [json.loads(line)["step"] for line in stream.getvalue().splitlines()]
    assert steps == [10, 20, 25]


def test_heartbeats_are_not_written_or_shown() -> None:
    stream = io.StringIO()
    events.JsonLines(stream)(events.Heartbeat("gatys"))
    assert stream.getvalue() == ""
    bar_stream = io.StringIO()
    bar = events.ProgressBar(disable=False, stream=bar_stream)
    bar(events.Heartbeat("gatys"))
    bar.close()
    assert bar_stream.getvalue() == ""


def test_throttle_passes_the_last_step_and_other_events() -> None:
    sink = events.Collect()
    throttled = events.Throttle(sink, seconds=3600)
    for step in range(1, 6):
        throttled(events.Progress("s", step, 5))
    throttled(events.Warned("w"))
    assert [getattr(e, "step", None) for e in sink.events] == [1, 5, None]


def test_progress_bar_shows_steps_losses_and_warnings() -> None:
    stream = io.StringIO()
    bar = events.ProgressBar(disable=False, stream=stream)
    bar(events.Started("gatys", 4, details={"precision": "bfloat16"}))
    for step in range(1, 5):
        bar(events.Progress("gatys", step, 4, {"total": 0.5}))
    bar(events.Warned("something adjusted"))
    bar(events.Finished("gatys"))
    text = stream.getvalue()
    assert "4/4" in text and "total=0.5" in text
    assert "gatys bfloat16" in text  # the progress line says which precision runs
    assert "brushwork: warning: something adjusted" in text


def test_steps_inside_a_step_reach_the_sink_as_heartbeats() -> None:
    """Within ``steps_inside("outer")`` another stage's progress becomes a heartbeat (not
    shown, a place to stop), the outer stage's and warnings pass as they are."""
    collected = events.Collect()
    with events.bound(collected):
        with events.steps_inside("outer"):
            events.emit(events.Progress("outer tile", 1, 1))
            events.emit(events.Progress("outer", 1, 2))
            events.warn("careful")
        events.emit(events.Progress("outer tile", 1, 1))
    kinds = [type(e).__name__ for e in collected.events]
    assert kinds == ["Heartbeat", "Progress", "Warned", "Progress"]
