"""``brushwork batch``: stylize folders of images, resumably, on one machine or on Ray.

    brushwork batch photos/ --style styles/ -o out/ -m adain          # every photo × style
    brushwork batch 'shots/*.jpg' list.txt --style starry.jpg -o out/ --size 384
    brushwork batch --pairs pairs.csv -o out/ -m gatys --iterations 200
    brushwork batch photos/ --style styles/ -o out/ --engine ray --ray-address auto

Inputs are image files, folders (their images, sorted; ``--recursive`` for subfolders),
glob patterns (quoted, expanded here) or list files (``.txt``: one path or pattern a line,
relative to the list, ``#`` comments). Every content is paired with every style, or the
pairs come from ``--pairs`` (``content,style[,output]`` lines). An output that already
exists is skipped (a rerun resumes), each item's result goes to a JSON-lines manifest
(``OUT/manifest.jsonl``: status, seconds, error, losses), and a bad file fails only its
item. Exit status: 0 when every item is done or skipped, 1 when some failed, 2 for an
error before any work.

The work is one :class:`~brushwork.painter.Painter` per worker: the encoder and decoders
load once, the styles are prepared once per size. ``--engine ray`` (``pip install
'brushwork[ray]'``) runs the same items as a Ray Data ``map_batches`` over a pool of
stateful workers (:mod:`brushwork.batch.ray_engine`); inputs and outputs are paths every
Ray node can reach (a shared file system).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from brushwork import events as ev
from brushwork.errors import BrushworkError

LIST_SUFFIXES = (".txt", ".lst", ".list")
FORMATS = ("png", "jpg", "webp")
STAGE = "batch"


@dataclass(frozen=True)
class Item:
    """One content × style pair and where its output goes."""

    content: str
    style: str
    output: str


# ----------------------------------------------------------------------------- inputs


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    from brushwork.image import is_image_path

    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_image_path(p))


def expand(
    spec: str,
    *,
    recursive: bool = False,
    base: Path | None = None,
    strict: bool = True,
    depth: int = 0,
) -> list[Path]:
    """The image paths one input names (see the module docstring). ``strict``: a path
    that does not exist is an error (on the command line), else kept as an item that will
    fail (in a list file)."""
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():
        return _images_in(path, recursive)
    if path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES:
            if depth > 0:
                raise BrushworkError(f"{path}: a list file inside a list file is not read")
            return read_list(path, recursive=recursive)
        return [path]
    if any(c in spec for c in "*?["):
        pattern = str(path)
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        found = [p for p in matches if p.is_file()]
        if not found and strict:
            raise BrushworkError(f"{spec}: matches no file")
        return found
    if strict:
        raise BrushworkError(f"{spec}: no such file or folder")
    return [path]


def read_list(path: Path, *, recursive: bool = False) -> list[Path]:
    """The paths of a list file: one path, folder or pattern a line, relative to the
    file; blank lines and ``#`` comments skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BrushworkError(f"{path}: cannot read the list: {error}") from None
    found: list[Path] = []
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            found.extend(
                expand(entry, recursive=recursive, base=path.parent, strict=False, depth=1)
            )
    return found


def output_name(content: Path, style: Path, fmt: str) -> str:
    return f"{content.stem}--{style.stem}.{fmt}"


def plan_items(
    contents: Sequence[Path], styles: Sequence[Path], out_dir: Path, fmt: str
) -> list[Item]:
    """Every content × style pair (styles outermost, so a worker reuses each prepared
    style); two pairs that would write one file are refused."""
    items = [
        Item(str(c), str(s), str(out_dir / output_name(c, s, fmt)))
        for s in styles
        for c in contents
    ]
    _check_unique(items)
    return items


def read_pairs(path: Path, out_dir: Path, fmt: str) -> list[Item]:
    """The items of a pairs file: ``content,style[,output]`` (comma or tab separated),
    paths relative to the file, outputs relative to ``out_dir``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BrushworkError(f"--pairs {path}: cannot read: {error}") from None
    rows = csv.reader(
        [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")],
        delimiter="\t" if "\t" in text else ",",
    )
    items = []
    for number, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if number == 1 and [c.lower() for c in cells[:2]] == ["content", "style"]:
            continue
        if len(cells) not in (2, 3) or not all(cells):
            raise BrushworkError(
                f"--pairs {path}, line {number}: expected content,style or "
                f"content,style,output, not {','.join(cells)!r}"
            )
        content, style = (path.parent / cells[0], path.parent / cells[1])
        if len(cells) == 3:
            output = Path(cells[2])
            if output.is_absolute() or ".." in output.parts:
                raise BrushworkError(
                    f"--pairs {path}, line {number}: the output must be a "
                    f"path inside the output folder, not {cells[2]!r}"
                )
            from brushwork.outputs import IMAGE_EXTENSIONS

            if output.suffix.lower() not in IMAGE_EXTENSIONS:
                raise BrushworkError(
                    f"--pairs {path}, line {number}: unsupported output "
                    f"format {output.suffix or '(none)'!r}"
                )
            target = out_dir / output
        else:
            target = out_dir / output_name(content, style, fmt)
        items.append(Item(str(content), str(style), str(target)))
    if not items:
        raise BrushworkError(f"--pairs {path}: no pairs")
    _check_unique(items)
    return items


def _check_unique(items: Sequence[Item]) -> None:
    seen: dict[str, Item] = {}
    for item in items:
        other = seen.get(item.output)
        if other is not None:
            raise BrushworkError(
                f"{other.content} × {other.style} and {item.content} × {item.style} would "
                f"both write {item.output}; rename one, or give outputs with --pairs"
            )
        seen[item.output] = item


# ----------------------------------------------------------------------------- one item


def item_record(
    item: Item, method: str, status: str, seconds: float = 0.0, **more: Any
) -> dict[str, Any]:
    """One manifest record: the item, its method, status, seconds and error (None unless
    ``more`` gives one), then ``more``."""
    return {
        "content": item.content,
        "style": item.style,
        "output": item.output,
        "method": method,
        "status": status,
        "seconds": round(seconds, 3),
        "error": None,
        **more,
    }


def skipped_record(item: Item, method: str) -> dict[str, Any]:
    """The record of an item whose output already exists."""
    return item_record(item, method, "skipped", reason="the output exists")


def paint_item(painter: Any, item: Item, *, force: bool = False) -> dict[str, Any]:
    """Stylize one item with ``painter`` and write its output; its manifest record. A
    failure of this item (bad file, no memory, any exception) is recorded, not raised;
    an interrupt is not an exception here and stops the batch."""
    from brushwork.api import Style
    from brushwork.image import save_image

    start = time.perf_counter()
    if Path(item.output).exists() and not force:
        return skipped_record(item, painter.method)
    try:
        painting = painter.paint(item.content, [Style(item.style)])
        Path(item.output).parent.mkdir(parents=True, exist_ok=True)
        save_image(painting.image, item.output, force=force)
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


# ----------------------------------------------------------------------------- running


class Manifest:
    """The JSON-lines record of a batch, appended to (a rerun adds its lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts = {"done": 0, "skipped": 0, "failed": 0}

    def write(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
        line = json.dumps(ev.finite({**record, "time": round(time.time(), 3)}), allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()


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
    total = len(items)
    with ev.bound(events):
        ev.emit(ev.Started(STAGE, total, unit="image"))
        count = 0

        def record(entry: dict[str, Any]) -> None:
            nonlocal count
            count += 1
            book.write({**entry, "engine": engine})
            ev.emit(
                ev.Progress(
                    STAGE,
                    count,
                    total,
                    seconds=time.perf_counter() - start,
                    details={k: entry.get(k) for k in ("status", "output")},
                )
            )
            if entry["status"] == "failed":
                ev.warn(f"item {count} of {total} failed: {entry['error']}")

        todo = [item for item in items if force or not Path(item.output).exists()]
        waiting = set(todo)
        for item in items:
            if item not in waiting:
                record(skipped_record(item, method))
        if engine == "local":
            for item in todo:
                record(paint_item(painter, item, force=force))
        elif engine == "ray":
            from brushwork.batch.ray_engine import run_ray

            run_ray(
                todo,
                method,
                values,
                force=force,
                encoder=encoder,
                on_record=record,
                **(ray_options or {}),
            )
        else:
            raise BrushworkError(f"unknown engine {engine!r}; engines: local, ray")
        seconds = time.perf_counter() - start
        ev.emit(ev.Finished(STAGE, seconds, details=dict(book.counts)))
    return BatchResult(
        total,
        book.counts["done"],
        book.counts["skipped"],
        book.counts["failed"],
        seconds,
        str(manifest),
        engine,
    )


# ----------------------------------------------------------------------------- command


class _BatchEvents:
    """Passes only the batch's own events and warnings to the progress sinks (not each
    item's optimization steps)."""

    def __init__(self, sinks: Iterable[Callable[[ev.Event], None]]) -> None:
        self.sinks = list(sinks)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Warned) or getattr(event, "stage", None) == STAGE:
            for sink in self.sinks:
                sink(event)


def batch_parser(method: str) -> argparse.ArgumentParser:
    from brushwork.cli import _Parser, add_method_arguments, progress_flags

    parser = _Parser(
        prog="brushwork batch",
        description="Stylize many images: every content × style pair (or the pairs of "
        "--pairs), skipping outputs that exist, recording each item in a "
        "JSON-lines manifest. Inputs: image files, folders, quoted glob "
        "patterns, or .txt list files. Exit status 1 when some items failed.",
    )
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
        help="the manifest (default: OUTPUT/manifest.jsonl; appended to)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="redo items whose output exists")
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
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    add_method_arguments(parser, method)
    progress_flags(parser)
    return parser


def cmd_batch(argv: Sequence[str]) -> int:
    """``brushwork batch``: see the module docstring."""
    from brushwork.cli import method_of, method_values, parse_known, progress_sinks

    method = method_of(argv)
    args = parse_known(batch_parser(method), argv, method)
    out_dir = Path(args.output).expanduser()
    if args.pairs and (args.inputs or args.styles):
        raise BrushworkError("give either --pairs or INPUTS with --style, not both")
    if not args.pairs:
        if not args.inputs:
            raise BrushworkError(
                "no inputs: give content images, folders or list files (or --pairs)"
            )
        if not args.styles:
            raise BrushworkError("no style: give --style PATH (or --pairs)")
    if out_dir.exists() and not out_dir.is_dir():
        raise BrushworkError(f"-o {out_dir}: not a folder")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise BrushworkError(f"--ray-workers must be >= 1, not {args.ray_workers}")
    if not args.ray_cpus > 0 or args.ray_gpus < 0:
        raise BrushworkError("--ray-cpus must be > 0 and --ray-gpus >= 0")
    if args.pairs:
        items = read_pairs(Path(args.pairs), out_dir, args.format)
    else:
        contents = [p for spec in args.inputs for p in expand(spec, recursive=args.recursive)]
        styles = [p for spec in args.styles for p in expand(spec, recursive=args.recursive)]
        if not contents:
            raise BrushworkError("the inputs name no image")
        if not styles:
            raise BrushworkError("--style names no image")
        items = plan_items(contents, styles, out_dir, args.format)
    from brushwork.painter import Painter

    values = method_values(args)
    painter = Painter(method, values)  # every option checked once, before any work
    painter.stylizer.check_files()
    if args.engine == "ray":
        from brushwork.batch.ray_engine import require_ray

        require_ray()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BrushworkError(
            f"cannot create output folder {out_dir}: {error.strerror or error}"
        ) from None
    manifest = Path(args.manifest) if args.manifest else out_dir / "manifest.jsonl"
    with progress_sinks(args) as sinks:
        result = run_batch(
            items,
            method,
            values,
            manifest=manifest,
            engine=args.engine,
            force=args.force,
            events=_BatchEvents(sinks),
            painter=painter,
            ray_options={
                "address": args.ray_address,
                "workers": args.ray_workers,
                "cpus_per_worker": args.ray_cpus,
                "gpus_per_worker": args.ray_gpus,
            },
        )
    print(
        f"brushwork: {result.done} done, {result.skipped} skipped, {result.failed} "
        f"failed in {result.seconds:.1f} s; manifest: {manifest}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    return 1 if result.failed else 0


__all__ = [
    "BatchResult",
    "Item",
    "cmd_batch",
    "expand",
    "item_record",
    "paint_item",
    "plan_items",
    "read_pairs",
    "run_batch",
]
