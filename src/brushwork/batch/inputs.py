"""The items of a batch: input paths expanded (files, folders, patterns, list files),
walked without loops or the output folder, paired with styles, and their output names."""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError
from brushwork.outputs import MAX_NAME_BYTES, check_not_input

LIST_SUFFIXES = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class Item:
    """One content × style pair and where its output goes (``style`` empty: the content
    alone, for a method whose network paints its own styles)."""

    content: str
    style: str
    output: str

    def styles(self) -> list[Any]:
        """The item's styles as a painter takes them (none without a style image)."""
        from brushwork.inputs import Style

        return [Style(self.style)] if self.style else []


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
    """The image paths one input names (see :mod:`brushwork.batch`). ``strict``: a path
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


def output_name(content: Path, style: Path | None, fmt: str) -> str:
    """``CONTENT--STYLE.FMT`` (``CONTENT.FMT`` without a style image). A name over
    :data:`MAX_NAME_BYTES` keeps the start of both names and ends with a digest of the
    whole name: the same name each run (a rerun resumes), a different one for different
    inputs."""
    name = f"{content.stem}--{style.stem}.{fmt}" if style else f"{content.stem}.{fmt}"
    if len(os.fsencode(name)) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    room = MAX_NAME_BYTES - len(f"---{digest}.{fmt}")
    style_part = _clip(style.stem, room // 2) if style else ""
    content_part = _clip(content.stem, room - len(os.fsencode(style_part)))
    return f"{content_part}--{style_part}-{digest}.{fmt}"


def plan_items(
    contents: Sequence[Path], styles: Sequence[Path | None], out_dir: Path, fmt: str
) -> list[Item]:
    """Every content × style pair (styles outermost, so a worker reuses each prepared
    style; ``[None]``: each content alone); two pairs that would write one file are
    refused."""
    items = [
        Item(str(c), str(s or ""), str(out_dir / output_name(c, s, fmt)))
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
            target = out_dir / _pair_output(cells[2], f"--pairs {path}, line {number}")
        else:
            target = out_dir / output_name(content, style, fmt)
        items.append(Item(str(content), str(style), str(target)))
    if not items:
        raise BrushworkError(f"--pairs {path}: no pairs")
    _check_unique(items)
    return items


def _pair_output(cell: str, where: str) -> Path:
    """A pairs file's output cell: a relative path inside the output folder, of an image
    format, each name within the file system's limit (``where``: the line, for errors)."""
    from brushwork.outputs import IMAGE_EXTENSIONS

    output = Path(cell)
    if output.is_absolute() or ".." in output.parts:
        raise BrushworkError(
            f"{where}: the output must be a path inside the output folder, not {cell!r}"
        )
    if output.suffix.lower() not in IMAGE_EXTENSIONS:
        raise BrushworkError(f"{where}: unsupported output format {output.suffix or '(none)'!r}")
    if any(len(os.fsencode(part)) > MAX_NAME_BYTES for part in output.parts):
        raise BrushworkError(
            f"{where}: the output name is longer than the {MAX_NAME_BYTES} bytes a file name "
            "may have here; shorten it"
        )
    return output


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
