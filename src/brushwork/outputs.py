"""Output files: checked all together before any work, written atomically, never replacing a
file that appeared meanwhile.

:class:`OutputPlan` collects every file a command will write (the image, intermediate
steps, a loss plot, an animation, a manifest) and checks, before any work: the extension,
the folder (exists, is a folder, writable), that no file is overwritten without ``force``,
and that no two outputs are the same file.

:func:`write_atomically` writes to a temporary file beside the target, fsyncs it and then
publishes it: with ``replace=True`` by :func:`os.replace`; with ``replace=False`` by a hard
link, which fails if the target appeared since the plan was checked (another run writing the
same new path), so one run never silently replaces another's output. A failed or
interrupted write leaves no partial file and never damages an existing one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from brushwork.errors import BrushworkError

PathLike = str | os.PathLike[str]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def check_output_path(
    path: PathLike,
    *,
    force: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    what: str = "output",
) -> Path:
    """Validate one output path before doing any expensive work; return it as a ``Path``."""
    p = Path(path)
    if extensions and p.suffix.lower() not in extensions:
        found = f"extension {p.suffix!r}" if p.suffix else "no extension"
        supported = (
            extensions[0]
            if len(extensions) == 1
            else (", ".join(extensions[:-1]) + " or " + extensions[-1])
        )
        raise BrushworkError(f"{path}: unsupported {what} format ({found}); use {supported}")
    if p.is_dir():
        raise BrushworkError(f"{path}: is a directory")
    parent = p.parent
    if not parent.exists():
        raise BrushworkError(f"output directory does not exist: {parent}")
    if not parent.is_dir():
        raise BrushworkError(f"output directory is not a directory: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BrushworkError(f"output directory is not writable: {parent}")
    if (p.exists() or p.is_symlink()) and not force:
        raise BrushworkError(f"{path} exists; pass --force to overwrite")
    return p


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links and ``..``)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class OutputPlan:
    """Every file one command writes, checked together before the work starts."""

    def __init__(self, force: bool = False) -> None:
        self.force = force
        self.planned: list[tuple[Path, str]] = []
        self.written: list[Path] = []

    def add(
        self,
        path: PathLike,
        *,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        what: str = "output",
        flag: str | None = None,
    ) -> Path:
        """Check ``path`` (see :func:`check_output_path`) and against every path added
        before; ``flag`` names the option in messages."""
        p = check_output_path(path, force=self.force, extensions=extensions, what=what)
        label = flag or what
        for other, other_label in self.planned:
            if same_file(p, other):
                raise BrushworkError(
                    f"{label} {path} is the same file as {other_label} "
                    f"{other}; give each output its own path"
                )
        self.planned.append((p, label))
        return p

    def write(self, target: Path, write: Callable[[str], None]) -> Path:
        """Write one planned file (atomically, replacing only with ``force``)."""
        write_atomically(target, write, replace=self.force)
        self.written.append(target)
        return target


def _file_mode() -> int:
    """Permissions a plain ``open(path, "w")`` would give (temp files are created 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(target: Path, write: Callable[[str], None], *, replace: bool = True) -> None:
    """Call ``write(temp_path)`` on a temp file next to ``target``, then publish it.

    ``replace=False`` refuses (with :class:`BrushworkError`, leaving the other file alone)
    if ``target`` exists at the moment of publishing. On any failure (including
    KeyboardInterrupt) the temp file is removed and ``target`` is left as it was; an
    ``OSError`` becomes a :class:`BrushworkError`.
    """
    write_atomically_together([(Path(target), write)], replace=replace)


def _publish(tmp: str, target: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise BrushworkError(
            f"{target} appeared while brushwork was working (another run?); "
            "it was not replaced: pass --force to overwrite"
        ) from None
    except OSError as error:
        if error.errno not in (
            errno.EPERM,
            errno.ENOTSUP,
            errno.EOPNOTSUPP,
            errno.EXDEV,
            errno.EMLINK,
        ):
            raise
        # no hard links on this filesystem: the plain check, then a rename
        if target.exists() or target.is_symlink():
            raise BrushworkError(
                f"{target} appeared while brushwork was working (another "
                "run?); it was not replaced: pass --force to overwrite"
            ) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def write_atomically_together(
    files: Sequence[tuple[Path, Callable[[str], None]]], *, replace: bool = True
) -> None:
    """:func:`write_atomically` for several files, all or nothing: each ``write(temp_path)``
    writes a temp file beside its target, and only when all are written are they published;
    if one cannot be, the files already published are removed (with ``replace``, the files
    they replaced are then gone too). An ``OSError`` becomes a :class:`BrushworkError`."""
    temps: list[str] = []
    moved: list[Path] = []
    target = Path(files[0][0])
    try:
        for target, write in files:
            target = Path(target)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            temps.append(tmp)
            write(tmp)
            with open(tmp, "rb+") as f:
                if hasattr(os, "fchmod"):
                    os.fchmod(f.fileno(), _file_mode())
                os.fsync(f.fileno())
        for (target, _), tmp in zip(files, temps, strict=True):
            _publish(tmp, Path(target), replace)
            moved.append(Path(target))
    except BaseException as exc:
        for path in [*temps, *moved]:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise BrushworkError(f"cannot write {target}: {reason}") from exc
        raise
