"""The ``brushwork batch`` command: its parser, its items, and :func:`cmd_batch`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from brushwork import events as ev
from brushwork.batch.inputs import Item, expand, plan_items, read_pairs
from brushwork.batch.manifest import check_manifest
from brushwork.batch.run import STAGE, BatchResult, check_runnable, run_batch, to_do
from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan, made_folder

FORMATS = ("png", "jpg", "webp", "tif")


class _BatchEvents:
    """Passes only the batch's own events and warnings to the progress sinks (not each
    item's optimization steps)."""

    def __init__(self, sinks: Iterable[Callable[[ev.Event], None]]) -> None:
        self.sinks = list(sinks)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Warned) or getattr(event, "stage", None) == STAGE:
            for sink in self.sinks:
                sink(event)


def _input_arguments(parser: argparse.ArgumentParser) -> None:
    """The batch's inputs, outputs and manifest."""
    parser.add_argument("inputs", nargs="*", help="content images, folders, patterns or list files")
    parser.add_argument(
        "--style",
        dest="styles",
        action="append",
        default=[],
        metavar="PATH",
        help="style images, folders, patterns or list files (repeatable)",
    )
    parser.add_argument(
        "--pairs",
        default=None,
        metavar="FILE",
        help="content,style[,output] per line instead of all pairs",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="output folder (created)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="png", help="output format (default: png)"
    )
    parser.add_argument("--recursive", action="store_true", help="also images in subfolders")
    parser.add_argument(
        "--manifest",
        default=None,
        metavar="JSONL",
        help="the manifest (default: OUTPUT/manifest.jsonl; appended to, when brushwork wrote it)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="redo items whose output exists")


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and the Ray options."""
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: a Ray cluster (default: local)",
    )
    ray = parser.add_argument_group("ray (--engine ray)")
    ray.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="cluster to join: auto, ray://HOST:10001, HOST:6379 (default: "
        "$RAY_ADDRESS, else a local instance)",
    )
    ray.add_argument(
        "--ray-workers",
        type=int,
        default=None,
        metavar="N",
        help="stateful workers, each with its own model (default: the cluster's CPUs / --ray-cpus)",
    )
    ray.add_argument(
        "--ray-cpus", type=float, default=1.0, metavar="N", help="CPUs per worker (default: 1)"
    )
    ray.add_argument(
        "--ray-gpus", type=float, default=0.0, metavar="N", help="GPUs per worker (default: 0)"
    )


def batch_parser(method: str) -> argparse.ArgumentParser:
    from brushwork.cli.common import _Parser, add_method_arguments, progress_flags

    parser = _Parser(
        prog="brushwork batch",
        description="Stylize many images: every content × style pair (or the pairs of "
        "--pairs), skipping outputs that exist, recording each item in a "
        "JSON-lines manifest. Inputs: image files, folders, quoted glob "
        "patterns, or .txt list files. Exit status 1 when some items failed.",
    )
    _input_arguments(parser)
    _engine_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_method_arguments(parser, method)
    progress_flags(parser)
    return parser


def batch_items(args: argparse.Namespace, out_dir: Path) -> tuple[list[Item], list[Path]]:
    """The items of the command line and the paths it reads (list and pairs files,
    folders, images), its inputs never taken from ``out_dir``."""
    if args.pairs:
        items = read_pairs(Path(args.pairs), out_dir, args.format)
        read = [Path(args.pairs)]
    else:

        def images(specs: list[str]) -> list[Path]:
            return [p for s in specs for p in expand(s, recursive=args.recursive, output=out_dir)]

        contents, styles = images(args.inputs), images(args.styles)
        if not contents:
            raise BrushworkError("the inputs name no image")
        if not styles and args.styles:
            raise BrushworkError("--style names no image")
        items = plan_items(contents, styles or [None], out_dir, args.format)
        read = [Path(spec).expanduser() for spec in [*args.inputs, *args.styles]]
    files = {Path(p) for item in items for p in (item.content, item.style) if p}
    return items, [p for p in read if p.exists()] + sorted(files)


def _check_arguments(args: argparse.Namespace) -> None:
    """Inputs given one way (``--pairs``, or INPUTS with ``--style``), the Ray options."""
    from brushwork.batch.ray_engine import check_ray_options, require_ray
    from brushwork.cli.common import takes_style_images

    if args.pairs and (args.inputs or args.styles):
        raise BrushworkError("give either --pairs or INPUTS with --style, not both")
    if not args.pairs:
        if not args.inputs:
            raise BrushworkError(
                "no inputs: give content images, folders or list files (or --pairs)"
            )
        if not args.styles and takes_style_images(args.method):
            raise BrushworkError("no style: give --style PATH (or --pairs)")
    check_ray_options(args.ray_workers, args.ray_cpus, args.ray_gpus)
    if args.engine == "ray":
        require_ray()


def _manifest(
    args: argparse.Namespace, out_dir: Path, items: list[Item], inputs: list[Path]
) -> Path:
    """The manifest, once no output (the folder, the manifest, any item's) is an input."""
    plan = OutputPlan(force=args.force, inputs=inputs)
    plan.add_folder(out_dir, flag="-o", replaced=False)
    manifest = Path(args.manifest) if args.manifest else out_dir / "manifest.jsonl"
    check_manifest(plan, manifest, out_dir, items)
    return manifest


def cmd_batch(argv: Sequence[str]) -> int:
    """``brushwork batch``: see :mod:`brushwork.batch`. Everything is checked before the
    output folder is made: the options, the inputs, that no output is an input
    (:class:`~brushwork.outputs.OutputPlan`), that some item can run, and with Ray, the
    cluster and what it can hold."""
    from brushwork.batch.ray_engine import ray_connection
    from brushwork.cli.common import method_of, method_values, parse_known, progress_sinks
    from brushwork.painter import Painter

    method = method_of(argv)
    args = parse_known(batch_parser(method), argv, method)
    out_dir = Path(args.output).expanduser()
    _check_arguments(args)
    items, inputs = batch_items(args, out_dir)
    manifest = _manifest(args, out_dir, items, inputs)
    values = method_values(args)
    painter = Painter(method, values)  # every option checked once, before any work
    painter.stylizer.check_files()
    todo = to_do(items, args.force)
    check_runnable(painter, todo)
    ray_options = {
        "address": args.ray_address,
        "workers": args.ray_workers,
        "cpus_per_worker": args.ray_cpus,
        "gpus_per_worker": args.ray_gpus,
    }
    with contextlib.ExitStack() as stack:
        if args.engine == "ray" and todo:
            stack.enter_context(ray_connection(**ray_options))
        stack.enter_context(made_folder(out_dir))
        sinks = stack.enter_context(progress_sinks(args))
        result = run_batch(
            items,
            method,
            values,
            manifest=manifest,
            engine=args.engine,
            force=args.force,
            events=_BatchEvents(sinks),
            painter=painter,
            ray_options=ray_options,
        )
    _report(result, manifest, args.json)
    return 1 if result.failed else 0


def _report(result: BatchResult, manifest: Path, as_json: bool) -> None:
    """The summary line on stderr, and with ``--json`` the summary on stdout."""
    print(
        f"brushwork: {result.done} done, {result.skipped} skipped, {result.failed} "
        f"failed in {result.seconds:.1f} s; manifest: {manifest}",
        file=sys.stderr,
    )
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
