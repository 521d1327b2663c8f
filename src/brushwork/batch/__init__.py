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

Everything is checked before the output folder is made (and a run refused after that
removes the folders it made): neither the output folder nor the manifest may be or contain
an input (:class:`~brushwork.outputs.OutputPlan`), a folder scan or a pattern never reads
the output folder and ends on symlink loops (:func:`walk`), an existing manifest is
appended to only when brushwork wrote it, a batch none of whose items can run (a --size
over the memory, a style over the pixel limit) is refused, and an output name over the
file system's limit is shortened with a digest (:func:`output_name`).

The work is one :class:`~brushwork.painter.Painter` per worker: the encoder and decoders
load once, the styles are prepared once per size. ``--engine ray`` (``pip install
'brushwork[ray]'``) runs the same items as a Ray Data ``map_batches`` over a pool of
stateful workers (:mod:`brushwork.batch.ray_engine`); inputs and outputs are paths every
Ray node can reach (a shared file system).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from brushwork import events as ev
from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.outputs import (
    MAX_NAME_BYTES,
    OutputPlan,
    check_name_length,
    check_not_input,
    is_within,
    made_folder,
)

LIST_SUFFIXES = (".txt", ".lst", ".list")
RECORD_KEYS = frozenset({"content", "style", "output", "status"})
"""What every manifest record brushwork writes has (see :func:`item_record`)."""
FORMATS = ("png", "jpg", "webp")
STAGE = "batch"


@dataclass(frozen=True)
class Item:
    """One content × style pair and where its output goes."""

    content: str
    style: str
    output: str


# ----------------------------------------------------------------------------- inputs


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def _closure(parts: Sequence[str], positions: Iterable[int]) -> frozenset[int]:
    """``positions`` in ``parts`` with those a ``**`` may skip to (it matches no folder too)."""
    found = set(positions)
    for position in sorted(found):
        while parts[position] == "**":
            position += 1
            found.add(position)
    return frozenset(found)


def _matches(name: str, part: str, hidden: bool) -> bool:
    """Whether one name matches one pattern component; a hidden name only a component
    that starts with a dot, unless ``hidden`` (as :mod:`glob` does)."""
    if name.startswith(".") and not (hidden or part.startswith(".")):
        return False
    return fnmatch.fnmatchcase(name, part)


def _step(
    name: str, parts: Sequence[str], positions: Iterable[int], hidden: bool
) -> tuple[bool, set[int]]:
    """For an entry ``name`` of a folder walked at ``positions`` of ``parts``: whether it
    matches the whole pattern, and the positions to walk it at if it is a folder."""
    matched, follow = False, set()
    for position in positions:
        part = parts[position]
        if part == "**":
            if hidden or not name.startswith("."):
                follow.add(position)
        elif _matches(name, part, hidden):
            if position == len(parts) - 1:
                matched = True
            else:
                follow.add(position + 1)
    return matched, follow


def _enter(folder: Path, entered: set[tuple[int, int]]) -> list[os.DirEntry[str]]:
    """The entries of ``folder`` by name, or none when its real folder was entered before
    (it is marked entered now) or cannot be read."""
    try:
        status = folder.stat()
        if (status.st_dev, status.st_ino) in entered:
            return []
        entered.add((status.st_dev, status.st_ino))
        with os.scandir(folder) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return []


def walk(root: Path, parts: Sequence[str], *, hidden: bool, skip: Path | None = None) -> list[Path]:
    """The paths under ``root`` that match the pattern components ``parts`` (``**``: any
    number of folders), like :func:`glob.glob`, but each real folder is entered once: a
    symlinked folder is followed unless it leads to a folder already entered (a loop, or
    a second way to one folder), and folders reached without a symlink are entered first,
    so the walk ends and names each file by its real path where it has one. ``skip``: a
    folder never entered (the output folder)."""
    parts = (*parts, "*") if parts[-1] == "**" else tuple(parts)
    entered: set[tuple[int, int]] = set()
    with contextlib.suppress(OSError):
        if skip is not None:
            status = skip.stat()
            entered.add((status.st_dev, status.st_ino))
    found: list[Path] = []
    direct = [(root, _closure(parts, [0]))]
    linked: list[tuple[Path, frozenset[int]]] = []
    while direct or linked:
        folder, positions = direct.pop() if direct else linked.pop(0)
        for entry in _enter(folder, entered):
            matched, follow = _step(entry.name, parts, positions, hidden)
            if matched:
                found.append(folder / entry.name)
            with contextlib.suppress(OSError):
                if follow and entry.is_dir():
                    queue = linked if entry.is_symlink() else direct
                    queue.append((folder / entry.name, _closure(parts, follow)))
    return found


def _scanned(folder: Path, output: Path | None) -> None:
    """Refuse an output folder that is or holds a folder the inputs scan."""
    if output is not None:
        check_not_input(output, [folder], label="-o", folder=True)


def _images_in(folder: Path, recursive: bool, output: Path | None) -> list[Path]:
    from brushwork.image import is_image_path

    _scanned(folder, output)
    found = walk(folder, ("**", "*") if recursive else ("*",), hidden=True, skip=output)
    return sorted(p for p in found if p.is_file() and is_image_path(p))


def _pattern(path: Path) -> tuple[Path, tuple[str, ...]]:
    """A pattern's fixed folder (its components up to the first wildcard) and the rest."""
    parts = path.parts
    fixed = next((n for n, part in enumerate(parts) if _has_magic(part)), len(parts))
    return Path(*parts[:fixed]), parts[fixed:]


def expand(
    spec: str,
    *,
    recursive: bool = False,
    base: Path | None = None,
    strict: bool = True,
    depth: int = 0,
    output: Path | None = None,
) -> list[Path]:
    """The image paths one input names (see the module docstring). ``strict``: a path
    that does not exist is an error (on the command line), else kept as an item that will
    fail (in a list file). Folders and patterns are walked by :func:`walk`, never into
    ``output`` (the output folder: its files are not inputs); an output folder that is or
    holds a folder the input scans is refused."""
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as error:  # a name too long, ...
        if strict:
            raise BrushworkError(f"{spec}: {error.strerror or error}") from None
        return [path]
    if is_dir:
        return _images_in(path, recursive, output)
    if is_file:
        if path.suffix.lower() in LIST_SUFFIXES:
            if depth > 0:
                raise BrushworkError(f"{path}: a list file inside a list file is not read")
            return read_list(path, recursive=recursive, output=output)
        return [path]
    if _has_magic(spec):
        root, parts = _pattern(path)
        _scanned(root, output)
        found = sorted(p for p in walk(root, parts, hidden=False, skip=output) if p.is_file())
        if not found and strict:
            raise BrushworkError(f"{spec}: matches no file")
        return found
    if strict:
        raise BrushworkError(f"{spec}: no such file or folder")
    return [path]


def read_list(path: Path, *, recursive: bool = False, output: Path | None = None) -> list[Path]:
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
                expand(
                    entry,
                    recursive=recursive,
                    base=path.parent,
                    strict=False,
                    depth=1,
                    output=output,
                )
            )
    return found


def _clip(text: str, size: int) -> str:
    """The longest start of ``text`` that takes at most ``size`` bytes as a file name."""
    while len(os.fsencode(text)) > size:
        text = text[:-1]
    return text


def output_name(content: Path, style: Path, fmt: str) -> str:
    """``CONTENT--STYLE.FMT``. A name over :data:`MAX_NAME_BYTES` keeps the start of both
    names and ends with a digest of the whole name: the same name each run (a rerun
    resumes), a different one for different inputs."""
    name = f"{content.stem}--{style.stem}.{fmt}"
    if len(os.fsencode(name)) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    room = MAX_NAME_BYTES - len(f"---{digest}.{fmt}")
    style_part = _clip(style.stem, room // 2)
    content_part = _clip(content.stem, room - len(os.fsencode(style_part)))
    return f"{content_part}--{style_part}-{digest}.{fmt}"


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
            if any(len(os.fsencode(part)) > MAX_NAME_BYTES for part in output.parts):
                raise BrushworkError(
                    f"--pairs {path}, line {number}: the output name is longer than the "
                    f"{MAX_NAME_BYTES} bytes a file name may have here; shorten it"
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
    from brushwork.image import save_image
    from brushwork.inputs import Style

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


def to_do(items: Sequence[Item], force: bool) -> list[Item]:
    """The items to paint: those whose output does not exist yet (all of them with force)."""
    return [item for item in items if force or not Path(item.output).exists()]


def check_runnable(painter: Any, items: Sequence[Item]) -> None:
    """Refuse, before any work, a batch none of whose ``items`` can run (a --size, a memory
    need or a style that fails every item): items are planned from their files' headers
    (:meth:`~brushwork.painter.Painter.check`: sizes, memory; nothing decoded) until one
    passes. When some can run, the others fail alone, each recorded in the manifest."""
    from brushwork.inputs import Style

    first: tuple[Item, BrushworkError] | None = None
    with warnings.catch_warnings():  # the painting warns again, where it is reported
        warnings.simplefilter("ignore", BrushworkWarning)
        for item in items:
            try:
                painter.check(item.content, [Style(item.style)])
                return
            except BrushworkError as error:
                first = first or (item, error)
    if first is not None:
        item, error = first
        raise BrushworkError(
            f"no item of this batch can run ({item.content} × {item.style}: {error})"
        )


# ----------------------------------------------------------------------------- running


def is_manifest(path: Path) -> bool:
    """Whether ``path`` holds records brushwork wrote and nothing else: one JSON object a
    line, each with an item's content, style, output and status."""
    records = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    if not (isinstance(record, dict) and record.keys() >= RECORD_KEYS):
                        return False
                    records += 1
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return False
    return records > 0


def check_manifest(plan: OutputPlan, path: Path, out_dir: Path, items: Sequence[Item]) -> None:
    """Refuse, before any work, a manifest that is an input or an item's output, overlaps
    the output folder, lies in a missing folder or is a folder; an existing file is
    appended to only when brushwork wrote it (:func:`is_manifest`), even with --force.
    ``plan`` holds the batch's inputs and output folder."""
    check_name_length(path)
    check_not_input(path, plan.inputs, label="--manifest")
    if is_within(out_dir, path):
        raise BrushworkError(
            f"--manifest {path} and -o {out_dir} overlap; give the manifest its own path"
        )
    target = os.path.abspath(path)
    for item in items:
        if os.path.abspath(item.output) == target:
            raise BrushworkError(
                f"--manifest {path} is the output of {item.content} × {item.style}; "
                "choose another path"
            )
    if path.is_file():
        if not is_manifest(path):
            raise BrushworkError(
                f"--manifest {path} exists and is not a brushwork manifest (JSON lines "
                "brushwork wrote); brushwork appends only to its own: choose another path"
            )
        if not os.access(path, os.W_OK):
            raise BrushworkError(f"cannot write the manifest {path}: permission denied")
    elif out_dir.exists() or os.path.abspath(path.parent) != os.path.abspath(out_dir):
        plan.add(path, extensions=(), flag="--manifest")  # else made with the output folder


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

        todo = to_do(items, force)
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
    from brushwork.cli.common import _Parser, add_method_arguments, progress_flags

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
        help="the manifest (default: OUTPUT/manifest.jsonl; appended to, when brushwork wrote it)",
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
        if not styles:
            raise BrushworkError("--style names no image")
        items = plan_items(contents, styles, out_dir, args.format)
        read = [Path(spec).expanduser() for spec in [*args.inputs, *args.styles]]
    files = {Path(p) for item in items for p in (item.content, item.style)}
    return items, [p for p in read if p.exists()] + sorted(files)


def cmd_batch(argv: Sequence[str]) -> int:
    """``brushwork batch``: see the module docstring. Everything is checked before the
    output folder is made: the options, the inputs, that no output is an input
    (:class:`~brushwork.outputs.OutputPlan`), that some item can run, and with Ray, the
    cluster and what it can hold."""
    from brushwork.batch.ray_engine import check_ray_options, ray_connection, require_ray
    from brushwork.cli.common import method_of, method_values, parse_known, progress_sinks

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
    check_ray_options(args.ray_workers, args.ray_cpus, args.ray_gpus)
    if args.engine == "ray":
        require_ray()
    items, inputs = batch_items(args, out_dir)
    plan = OutputPlan(force=args.force, inputs=inputs)
    plan.add_folder(out_dir, flag="-o", replaced=False)
    manifest = Path(args.manifest) if args.manifest else out_dir / "manifest.jsonl"
    check_manifest(plan, manifest, out_dir, items)
    from brushwork.painter import Painter

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
    print(
        f"brushwork: {result.done} done, {result.skipped} skipped, {result.failed} "
        f"failed in {result.seconds:.1f} s; manifest: {manifest}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    return 1 if result.failed else 0


__all__ = [
    "MAX_NAME_BYTES",
    "BatchResult",
    "Item",
    "check_manifest",
    "check_runnable",
    "cmd_batch",
    "expand",
    "is_manifest",
    "item_record",
    "output_name",
    "paint_item",
    "plan_items",
    "read_pairs",
    "run_batch",
    "walk",
]
