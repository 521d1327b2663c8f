"""Output files: checked all together before any work, written atomically, never replacing a
file that appeared meanwhile, never an input, and never a folder brushwork did not write.

**The output-safety rule** (every command and the service go through it):

* ``--force`` replaces a *file* at an output path, or a folder that brushwork itself wrote
  (it holds a :data:`MARKER` listing what brushwork put there, and nothing else); never a
  folder of other files, never the current folder or one of its ancestors;
* no output (image, video, frames folder, export folder, manifest, work folder, run
  folder, plot, animation) may be an input, contain an input, or be or contain another
  output: :class:`OutputPlan` checks each against the command's inputs and the outputs
  added before, all before any work;
* a folder is written beside its target and swapped in (:func:`write_folder`); the folder
  it replaces is removed only when it passed the check above.

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
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from brushwork.errors import BrushworkError

PathLike = str | os.PathLike[str]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
MARKER = ".brushwork-output.json"
"""The file a folder brushwork wrote holds: ``{"files": [names]}``, what brushwork put
there. ``--force`` replaces such a folder only while it holds nothing else."""
MAX_NAME_BYTES = 255 - len("..XXXXXXXX.tmp")
"""The longest name an output may have: the 255 bytes file systems allow, less what the
temporary file or folder written beside it (``.NAME.XXXXXXXX.tmp``) adds."""


def check_name_length(path: PathLike) -> None:
    """Refuse an output whose name is over :data:`MAX_NAME_BYTES` (or a folder in its path
    over 255 bytes): the file system would refuse it, or its temporary file, at the end."""
    parts = Path(path).parts
    for number, part in enumerate(parts, 1):
        size = len(os.fsencode(part))
        if size > (MAX_NAME_BYTES if number == len(parts) else 255):
            raise BrushworkError(
                f"{path}: a name of {size} bytes, over the {MAX_NAME_BYTES} bytes a file "
                "name may have here; shorten it"
            )


def check_output_path(
    path: PathLike,
    *,
    force: bool = False,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    what: str = "output",
) -> Path:
    """Validate one output path before doing any expensive work; return it as a ``Path``."""
    check_name_length(path)
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


def _resolved(path: PathLike) -> Path:
    """``path`` made absolute with links and ``..`` resolved (as far as it exists)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def is_within(inner: PathLike, outer: PathLike) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it (after resolving links)."""
    inner_path, outer_path = _resolved(inner), _resolved(outer)
    return inner_path == outer_path or outer_path in inner_path.parents


def exists(path: PathLike) -> bool:
    """Whether ``path`` names something on disk (False for a name no file system takes:
    too long, or with a NUL byte)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def inputs_of(*values: object) -> list[Path]:
    """The paths among ``values`` (option values: strings, paths, lists of them) that name
    something on disk: the files and folders a command reads, which no output may be."""
    found: list[Path] = []
    for value in values:
        if isinstance(value, (list, tuple)):
            found.extend(inputs_of(*value))
        elif isinstance(value, (str, os.PathLike)) and str(value):
            path = Path(value).expanduser()
            if exists(path):
                found.append(path)
    return found


def check_not_input(
    path: PathLike, inputs: Iterable[PathLike], *, label: str = "output", folder: bool = False
) -> None:
    """Refuse an output that is one of ``inputs`` (also through a link) or, for a
    ``folder`` output, one that contains an input: writing it would destroy what the run
    reads."""
    for source in inputs:
        if same_file(Path(path), Path(source)):
            raise BrushworkError(f"{label} {path} is the input {source}; choose another path")
        if folder and is_within(source, path):
            raise BrushworkError(f"{label} {path} contains the input {source}; choose another path")


def folder_marker(folder: PathLike) -> set[str] | None:
    """The names brushwork wrote into ``folder`` (from its :data:`MARKER`), or None when
    the folder has no readable marker (brushwork did not write it)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        return None
    return set(files)


def mark_folder(folder: PathLike, names: Iterable[str]) -> None:
    """Record in ``folder`` that brushwork wrote ``names`` there (see :data:`MARKER`)."""
    from brushwork import __version__

    path = Path(folder) / MARKER
    known = folder_marker(folder) or set()
    body = {"brushwork": __version__, "files": sorted(known | set(names))}
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")


def brushwork_folder(folder: PathLike) -> bool:
    """Whether ``folder`` holds only what brushwork wrote there (its marker says so)."""
    names = folder_marker(folder)
    if names is None:
        return False
    try:
        present = {entry.name for entry in os.scandir(folder)}
    except OSError:
        return False
    return present <= names | {MARKER}


def check_replaceable(path: PathLike, *, force: bool, label: str = "output") -> None:
    """Refuse to replace an existing folder at ``path`` unless ``force`` is given and
    brushwork wrote the folder (see the module docstring); a file at a folder output's
    path is refused too."""
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        return
    if not p.is_dir():
        raise BrushworkError(f"{label} {path} exists and is not a folder")
    if is_within(Path.cwd(), p):
        raise BrushworkError(
            f"{label} {path} is the current folder or one of its ancestors; brushwork "
            "never replaces it: choose a new folder"
        )
    if not brushwork_folder(p):
        raise BrushworkError(
            f"{label} {path} is a folder brushwork did not write (or holds other files); "
            "brushwork replaces only a file or a folder it wrote: choose a new path "
            "or remove it yourself"
        )
    if not force:
        raise BrushworkError(f"{label} {path} exists; pass --force to replace it")


def write_folder(
    target: PathLike,
    fill: Callable[[Path], Iterable[str] | None],
    *,
    replace: bool,
    label: str = "output",
) -> Path:
    """Fill a new folder beside ``target`` with ``fill(folder)``, mark it as brushwork's
    (:func:`mark_folder`, with the names ``fill`` returns or every entry it made) and put it
    in ``target``'s place. An existing ``target`` is replaced only with ``replace`` and when
    :func:`check_replaceable` allows it (checked again at the swap); on any failure the new
    folder is removed and ``target`` is left as it was."""
    target = Path(target)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        names = fill(temporary)
        mark_folder(temporary, names if names is not None else os.listdir(temporary))
        if target.exists() or target.is_symlink():
            if not replace:
                raise BrushworkError(
                    f"{target} appeared while brushwork was working (another "
                    "run?); it was not replaced: pass --force to overwrite"
                )
            check_replaceable(target, force=True, label=label)
            old = Path(
                tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old")
            )
            os.rename(target, old / "previous")
            os.rename(temporary, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temporary, target)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError):
            raise BrushworkError(f"cannot write {target}: {error.strerror or error}") from error
        raise
    return target


class OutputPlan:
    """Every file and folder one command writes, checked together, and against the
    command's inputs, before the work starts (the module docstring's rule)."""

    def __init__(self, force: bool = False, inputs: Iterable[PathLike] = ()) -> None:
        self.force = force
        self.inputs = [Path(p) for p in inputs if p is not None and str(p)]
        self.planned: list[tuple[Path, str]] = []
        self.folders: list[tuple[Path, str]] = []
        self.written: list[Path] = []

    def add_input(self, path: PathLike) -> None:
        """Also protect ``path`` (an input found after the plan was made)."""
        self.inputs.append(Path(path))

    def add(
        self,
        path: PathLike,
        *,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        what: str = "output",
        flag: str | None = None,
    ) -> Path:
        """Check one output file (see :func:`check_output_path`) against the inputs and
        every output added before; ``flag`` names the option in messages."""
        label = flag or what
        self._check_outside_folders(Path(path), label)
        p = check_output_path(path, force=self.force, extensions=extensions, what=what)
        check_not_input(p, self.inputs, label=label)
        for other, other_label in self.planned:
            if same_file(p, other):
                raise BrushworkError(
                    f"{label} {path} is the same file as {other_label} "
                    f"{other}; give each output its own path"
                )
        self.planned.append((p, label))
        return p

    def add_folder(
        self, path: PathLike, *, flag: str, replaced: bool = True, reused: bool = False
    ) -> Path:
        """Check an output folder: not an input nor containing one, its parent writable.
        A ``replaced`` folder (frames, an export, a work folder) is brushwork's alone: it may
        not contain another output, and an existing one is replaced only as
        :func:`check_replaceable` allows, or with ``reused`` (a work folder that ``--resume``
        continues) continued only when brushwork wrote it; a folder that only receives files
        (a batch's outputs, a training run) may already exist and hold other files."""
        check_name_length(path)
        p = Path(path)
        check_not_input(p, self.inputs, label=flag, folder=True)
        if is_within(Path.cwd(), p) and replaced:
            raise BrushworkError(
                f"{flag} {path} is the current folder or one of its ancestors; choose a new folder"
            )
        parent = _existing_parent(p)
        if p.exists() and not p.is_dir():
            raise BrushworkError(f"{flag} {path} exists and is not a folder")
        if replaced and not p.parent.is_dir():
            raise BrushworkError(f"output directory does not exist: {p.parent}")
        if not parent.is_dir():
            raise BrushworkError(f"output directory is not a directory: {parent}")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise BrushworkError(f"output directory is not writable: {parent}")
        if replaced:
            for other, other_label in [*self.planned, *self.folders]:
                if is_within(other, p) or is_within(p, other):
                    raise BrushworkError(
                        f"{flag} {path} and {other_label} {other} overlap; give each output "
                        "its own place"
                    )
            if reused and p.exists():
                if not brushwork_folder(p):
                    raise BrushworkError(
                        f"{flag} {path} is a folder brushwork did not write (or holds other "
                        "files); brushwork continues only its own"
                    )
            else:
                check_replaceable(p, force=self.force, label=flag)
            self.folders.append((p, flag))
        else:
            self._check_outside_folders(p, flag)
        return p

    def _check_outside_folders(self, path: Path, label: str) -> None:
        for folder, folder_label in self.folders:
            if is_within(path, folder):
                raise BrushworkError(
                    f"{label} {path} lies inside {folder_label} {folder}, which brushwork "
                    "replaces or removes; choose another path"
                )

    def write(self, target: Path, write: Callable[[str], None]) -> Path:
        """Write one planned file (atomically, replacing only with ``force``)."""
        write_atomically(target, write, replace=self.force)
        self.written.append(target)
        return target


def _existing_parent(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (where a new folder would be made)."""
    parent = _resolved(path).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_room(path: PathLike, need: int, what: str = "output") -> None:
    """Refuse, before any work, a file of about ``need`` bytes the disk that would hold
    ``path`` has no room for."""
    free = shutil.disk_usage(_existing_parent(Path(path))).free
    if need > free:
        raise BrushworkError(
            f"the {what} {path} needs about {need / 2**20:,.0f} MiB, and its disk has "
            f"{free / 2**20:,.0f} MiB free; free some space or write it elsewhere"
        )


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


def _temporary_name(target: Path) -> re.Pattern[str]:
    """The names of the temporary files and folders brushwork writes ``target`` through
    (:func:`write_atomically`, :func:`write_folder`): ``.NAME.`` and :mod:`tempfile`'s eight
    random characters, then ``.tmp`` (or ``.old`` for a folder being replaced)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.(tmp|old)")


def clear_temporaries(target: PathLike) -> list[Path]:
    """Remove what an interrupted (killed) write of ``target`` left beside it: brushwork's
    own temporary files and folders for that exact target, nothing else; the paths removed.
    Call it only once the run owns ``target`` (its checks passed)."""
    target = Path(target)
    pattern = _temporary_name(target)
    try:
        stale = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return []
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return stale


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


@contextlib.contextmanager
def made_folder(folder: Path) -> Iterator[None]:
    """Create ``folder`` (and its missing parents) for the block; when the block fails,
    remove the folders made here that are still empty: a refused run leaves nothing."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BrushworkError(
            f"cannot create output folder {folder}: {error.strerror or error}"
        ) from None
    try:
        yield
    except BaseException:
        for path in made:  # innermost first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
