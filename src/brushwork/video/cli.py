"""``brushwork video INPUT STYLE -o OUTPUT [-m METHOD] [controls] [method options] [video
options]``: the command line of :func:`brushwork.video.runner.stylize_video`, generated like
``brushwork stylize``'s from the options dataclasses.

The method defaults to ``adain`` (one pass per frame); an optimization method takes its
``--iterations`` per frame. Ctrl-C (or SIGTERM) stops between frames: the output is not
written, the finished frames stay in the work folder and ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from brushwork.cli.common import (
    _Parser,
    add_method_arguments,
    add_options,
    add_style_arguments,
    given,
    method_of,
    parse_known,
    parse_regions,
    progress_flags,
    progress_sinks,
    styles_from_args,
)
from brushwork.defaults import DEFAULT_ONE_PASS_METHOD

DESCRIPTION = (
    "Stylize a video (a file or a folder of frames) with temporal consistency: each frame "
    "follows the previous stylized frame along the optical flow of the input, where the flow "
    "is reliable. Frame rate (variable too), rotation and audio are kept. Finished frames are "
    "kept in a work folder; an interrupted run continues with --resume. Method options "
    "below are {method}'s; `brushwork video -m METHOD --help` shows another's."
)


def video_parser(method: str) -> argparse.ArgumentParser:
    """The parser of ``brushwork video`` with ``method``'s options."""
    from brushwork.video.runner import VideoOptions

    parser = _Parser(prog="brushwork video", description=DESCRIPTION.format(method=method))
    parser.add_argument(
        "input", help="video file (MP4, MOV, MKV, WebM, animated GIF, ...) or a folder of frames"
    )
    add_style_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="video file (.mp4, .mov, .mkv, .webm, .gif) or a path without "
        "extension: a folder of PNG frames",
    )
    add_method_arguments(parser, method, DEFAULT_ONE_PASS_METHOD)
    add_options(parser.add_argument_group("video"), VideoOptions, "v_")
    out = parser.add_argument_group("output")
    out.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="replace an existing output file, or a frames or work folder brushwork wrote "
        "(never a folder of other files)",
    )
    out.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    progress_flags(out)
    return parser


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C: no output file, finished frames kept."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_video(argv: Sequence[str]) -> int:
    from brushwork.video.runner import frames_kept, stylize_video

    method = method_of(argv, DEFAULT_ONE_PASS_METHOD)
    args = parse_known(video_parser(method), argv, method)
    styles = styles_from_args(args)
    regions = parse_regions(args.regions)
    values = {**given(args, "c_"), **given(args, "m_"), **given(args, "v_")}
    try:
        with progress_sinks(args) as sinks, _terminate_as_interrupt():
            done = stylize_video(
                args.input,
                styles,
                args.output,
                method,
                mask=args.mask,
                regions=regions,
                events=sinks,
                force=args.force,
                **values,
            )
    except KeyboardInterrupt:
        folder, kept = frames_kept(args.output, values.get("work_dir"))
        if kept:
            print(
                f"brushwork: interrupted; {args.output} not written; {kept} finished "
                f"frame(s) kept in {folder}: --resume continues",
                file=sys.stderr,
            )
        else:
            print("brushwork: interrupted; no output written", file=sys.stderr)
        return 130
    return _summarize(args, done)


def _summarize(args: argparse.Namespace, done: Any) -> int:
    """Print what a finished run did: the output's path (and the warping error with
    ``--report``), or with ``--json`` a summary."""
    from brushwork import events

    if done.lost:
        print(
            f"brushwork: {done.lost} frame(s) of {args.input} did not decode and are not in "
            "the output",
            file=sys.stderr,
        )
    summary = {
        "output": str(done.output),
        "input": str(args.input),
        "method": done.method,
        "frames": done.frames,
        "stylized": done.stylized,
        "resumed": done.frames - done.stylized,
        "lost": done.lost,
        "size": list(done.size),
        "seconds": round(done.seconds, 3),
        "seconds_per_frame": round(done.frame_seconds, 4),
        "warping_error": done.warping_error,
    }
    if args.json:
        print(json.dumps(events.finite(summary), indent=2, allow_nan=False))
        return 0
    print(done.output)
    if done.warping_error is not None:
        error = done.warping_error
        print(
            f"warping error (Lai et al. 2018; Farneback flow of the input): output "
            f"{error['output']:.5f}, input {error['input']:.5f}"
        )
    return 0


__all__ = ["cmd_video", "video_parser"]
