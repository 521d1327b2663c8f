"""``brushwork stylize CONTENT STYLE -o OUT [-m METHOD] [controls] [method options]``: one
:class:`~brushwork.painter.Painter` checks every input and output from headers and paths,
then paints; ``--save-every``, ``--plot-losses`` and ``--animation`` watch the event stream.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brushwork.cli.common import (
    _Parser,
    add_method_arguments,
    add_style_arguments,
    method_of,
    method_values,
    parse_known,
    parse_regions,
    progress_flags,
    progress_sinks,
    styles_from_args,
)
from brushwork.errors import BrushworkError


def stylize_parser(method: str) -> argparse.ArgumentParser:
    """The parser of ``brushwork stylize`` with ``method``'s options."""
    from brushwork.methods import get_entry

    entry = get_entry(method)
    parser = _Parser(
        prog="brushwork stylize",
        description=f"Paint a content image in the style of another. Method options below "
        f"are {method}'s ({entry.description}); `brushwork stylize -m METHOD "
        "--help` shows another method's, `brushwork methods` lists them.",
    )
    parser.add_argument("content", help="content image (JPEG, PNG, WebP, TIFF, BMP)")
    add_style_arguments(parser)
    parser.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    add_method_arguments(parser, method)
    _output_arguments(parser.add_argument_group("output"))
    return parser


def _output_arguments(out: Any) -> None:
    """What a run writes besides its image, and how it reports."""
    out.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save the image every N steps as OUTPUT_STEM.stepNNNN.EXT (optimization methods)",
    )
    out.add_argument(
        "--plot-losses",
        default=None,
        metavar="PNG",
        help="write a loss-curve plot at the end (optimization methods; needs matplotlib)",
    )
    out.add_argument(
        "--animation",
        default=None,
        metavar="GIF|MP4",
        help="write an animation of the optimization (.mp4 needs PyAV)",
    )
    out.add_argument(
        "--frame-every",
        type=int,
        default=None,
        metavar="N",
        help="animation frame every N steps (default: about 100 frames)",
    )
    out.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    out.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    progress_flags(out)


def _intermediate_path(output: Path, step: int) -> Path:
    """Where ``--save-every`` writes step ``step``'s image: OUTPUT_STEM.stepNNNN.EXT."""
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


def _check_flags(args: argparse.Namespace, method: str, has_losses: bool) -> None:
    """The output flags' values, and that the recording ones have steps to record."""
    for flag in ("save_every", "frame_every"):
        value = getattr(args, flag)
        least = 0 if flag == "save_every" else 1
        if value is not None and value < least:
            raise BrushworkError(f"--{flag.replace('_', '-')} must be >= {least}, not {value}")
    for flag, value in (
        ("--save-every", args.save_every),
        ("--plot-losses", args.plot_losses),
        ("--animation", args.animation),
    ):
        if value and not has_losses:
            raise BrushworkError(
                f"{flag} needs an optimization method; {method} makes its "
                "image in one pass, with no steps to show"
            )


def _plan_outputs(
    args: argparse.Namespace, styles: list[Any], values: dict[str, Any]
) -> tuple[Any, Path]:
    """Every file the run writes (but the intermediate images), checked against each other
    and against every input: the output plan and the output image's path."""
    from brushwork.outputs import OutputPlan, inputs_of
    from brushwork.recording import ANIMATION_EXTENSIONS, check_animation_deps

    read = [args.content, args.mask, [(s.image, s.mask) for s in styles], *values.values()]
    plan = OutputPlan(force=args.force, inputs=inputs_of(*read))
    output = plan.add(args.output, flag="-o")
    if args.plot_losses:
        plan.add(args.plot_losses, extensions=(".png",), what="loss plot", flag="--plot-losses")
    if args.animation:
        plan.add(
            args.animation, extensions=ANIMATION_EXTENSIONS, what="animation", flag="--animation"
        )
        check_animation_deps(args.animation)
    return plan, output


class _Watch:
    """What ``--save-every`` and ``--animation`` take from the event stream: intermediate
    images written as they come (``kept``) and animation frames (``recorder``)."""

    def __init__(self, args: argparse.Namespace, output: Path, total: int) -> None:
        from brushwork.recording import FrameRecorder

        self.every, self.output, self.force = args.save_every, output, args.force
        self.kept: list[Path] = []
        self.recorder = (
            FrameRecorder(every=args.frame_every or max(1, total // 100))
            if args.animation
            else None
        )

    @property
    def sinks(self) -> list[Any]:
        """The event sinks to bind during the run."""
        sinks: list[Any] = [self.save] if self.every else []
        return sinks + ([self.recorder] if self.recorder is not None else [])

    def save(self, event: Any) -> None:
        """Write every ``every``-th step's image."""
        from brushwork import events
        from brushwork.image import save_image

        if (
            isinstance(event, events.Progress)
            and event.image is not None
            and event.step % self.every == 0
        ):
            path = _intermediate_path(self.output, event.step)
            save_image(event.image, path, force=self.force)
            self.kept.append(path)

    def interrupted(self) -> str:
        """The line printed when Ctrl-C stops the run."""
        if not self.kept:
            return "brushwork: interrupted; no output written"
        return (
            f"brushwork: interrupted; {self.output} not written; kept {len(self.kept)} "
            f"intermediate image(s): {self.kept[0]} ... {self.kept[-1]}"
        )


def _record(args: argparse.Namespace, method: str, done: Any, watch: _Watch) -> None:
    """The loss plot and the animation of a finished run."""
    from brushwork import recording

    history = done.result.details.get("history", [])
    if args.plot_losses:
        recording.plot_losses(
            history,
            args.plot_losses,
            force=args.force,
            title=f"{method}: {Path(args.content).name}",
            scale_starts=done.result.details.get("scale_starts"),
        )
    if watch.recorder is not None:
        if watch.recorder.last_step != len(history):
            watch.recorder.add(done.image.convert("RGB"))
        recording.save_animation(watch.recorder.frames, args.animation, force=args.force)


def _summary(
    args: argparse.Namespace, painter: Any, styles: list[Any], done: Any, watch: _Watch
) -> dict[str, Any]:
    """What ``--json`` prints: inputs, sizes, precision, losses, steps, memory, seconds."""
    details = done.result.details
    return {
        "output": str(watch.output),
        "content": str(args.content),
        "styles": [{"image": str(s.image), "weight": s.weight, "layers": s.layers} for s in styles],
        "method": painter.method,
        "size": list(done.content_size),
        "style_size": None if done.style_size is None else list(done.style_size),
        "preserve_color": painter.stylizer.controls.preserve_color,
        "precision": done.precision.name,
        "precision_reason": done.precision.reason,
        "losses": done.result.losses,
        "steps": len(details.get("history", [])) or details.get("steps"),
        "scales": done.scales,
        "memory": {
            k: details[k]
            for k in ("memory_estimate", "checkpointing", "lbfgs_history")
            if k in details
        },
        "tiling": {k: details[k] for k in ("tiles", "tile", "overlap", "align") if k in details},
        "intermediate": [str(p) for p in watch.kept],
        "seconds": round(done.seconds, 3),
    }


def cmd_stylize(argv: Sequence[str]) -> int:
    """``brushwork stylize``: check everything, paint with one painter, write the image
    (and the plot, animation, intermediate images) and print its path or a JSON summary."""
    from brushwork import events
    from brushwork.image import check_output
    from brushwork.painter import Painter

    method = method_of(argv)
    args = parse_known(stylize_parser(method), argv, method)
    values = method_values(args)
    styles = styles_from_args(args)
    regions = parse_regions(args.regions)
    with progress_sinks(args) as sinks, events.bound(sinks):
        painter = Painter(method, values, cache_size=0)
        _check_flags(args, method, painter.stylizer.method.has_losses())
        outputs, output = _plan_outputs(args, styles, values)
        run_plan = painter.check(args.content, styles, args.mask)
        check_output(output, *run_plan.content_size, run_plan.bit_depth)
        if args.save_every:
            for step in range(args.save_every, run_plan.total_steps + 1, args.save_every):
                outputs.add(_intermediate_path(output, step), flag="--save-every")
        watch = _Watch(args, output, run_plan.total_steps)
        try:
            done = painter.paint(
                args.content,
                styles,
                mask=args.mask,
                regions=regions,
                events=watch.sinks,
                plan=run_plan,
            )
        except KeyboardInterrupt:
            print(watch.interrupted(), file=sys.stderr)
            return 130
        done.save(output, force=args.force)
        _record(args, method, done, watch)
    if args.json:
        summary = _summary(args, painter, styles, done, watch)
        print(json.dumps(events.finite(summary), indent=2, allow_nan=False))
    else:
        print(output)
    return 0
