"""The work folder of a video run: every stylized frame, kept as it finishes, so that an
interrupted run continues where it stopped (``--resume``).

Layout: ``manifest.json`` (what the frames were made from: the input's fingerprint and every
setting that changes a stylized frame) and ``frames/000001.png`` ... (8-bit RGB, each written
to a temporary file and renamed, so a frame on disk is always whole). Feed-forward runs with
temporal consistency also keep the frames their texture is tracked from (their own
stylization in ``painted/``, their input in ``inputs/``) and the texture tracker's state
after the last finished frame (``tracker.npz``,
:class:`brushwork.video.tracking.TextureTracker`).

The work folder is an output like any other (:func:`plan_work_folder`, the rule of
:mod:`brushwork.outputs`): it holds no input and no output, is made whole beside its place
and swapped in, and carries brushwork's marker; only a folder brushwork made is continued,
replaced (``--force``) or removed, and the cleanup removes only what brushwork wrote in it.

A resumed run checks that its input and settings are the manifest's, refusing with the first
difference otherwise; settings that only change the encoding (container, codec, quality,
audio) may differ. The frames that follow each other from the first are taken as done.

The previous frames a temporal method reads are always the 8-bit frames as saved, so a
resumed run computes exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from brushwork.errors import BrushworkError
from brushwork.outputs import (
    MARKER,
    OutputPlan,
    brushwork_folder,
    clear_temporaries,
    folder_marker,
    write_folder,
)
from brushwork.video.io import VideoInfo, frame_name

MANIFEST = "manifest.json"
FRAMES = "frames"
PAINTED = "painted"
INPUTS = "inputs"
TRACKER = "tracker.npz"
WRITTEN = (MANIFEST, FRAMES, PAINTED, INPUTS, TRACKER)
"""Everything brushwork writes in a work folder (what its marker lists)."""
LABEL = "work folder"
_HASHED = 1 << 20
"""Bytes hashed at each end of an input file (its fingerprint)."""


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    """``OUTPUT.work`` beside the output."""
    output = Path(output)
    return output.with_name(output.name.rstrip(os.sep) + ".work")


def file_digest(path: Path, ends_only: bool = False) -> str:
    """sha256 of a file (or of its first and last MiB and its size)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f:
        if ends_only and size > 2 * _HASHED:
            digest.update(f.read(_HASHED))
            f.seek(size - _HASHED)
            digest.update(f.read(_HASHED))
            digest.update(str(size).encode())
        else:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(info: VideoInfo) -> dict[str, Any]:
    """What identifies an input: its frames and a hash of its bytes (a video file's first
    and last MiB; a folder's file names and its first and last frame)."""
    if info.folder:
        names = hashlib.sha256("\n".join(p.name for p in info.files).encode()).hexdigest()
        return {
            "kind": "folder",
            "name": info.path.name,
            "frames": info.frames,
            "names_sha256": names,
            "first_sha256": file_digest(info.files[0]),
            "last_sha256": file_digest(info.files[-1]),
        }
    return {
        "kind": "file",
        "name": info.path.name,
        "bytes": info.path.stat().st_size,
        "frames": info.frames,
        "sha256": file_digest(info.path, ends_only=True),
    }


def digest(value: Any) -> str | None:
    """A hash of a style or mask input (file, PIL image or tensor; None otherwise)."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return file_digest(Path(value))
    if isinstance(value, Image.Image):
        return hashlib.sha256(value.tobytes() + repr((value.mode, value.size)).encode()).hexdigest()
    if isinstance(value, Tensor):
        return hashlib.sha256(value.detach().cpu().float().numpy().tobytes()).hexdigest()
    return None


def settings(
    stylizer: Any,
    size: tuple[int, int],
    styles: Sequence[Any],
    mask: Any,
    regions: Mapping[str, int | None] | None,
    temporal: dict[str, Any],
) -> dict[str, Any]:
    """Everything that changes a stylized frame (what a resumed run must share): the
    method and its options, the controls, the styles and masks (hashed), the temporal
    settings."""
    c = stylizer.controls
    return {
        "method": stylizer.name,
        "options": stylizer.method.options.as_dict(),
        "controls": {
            "size": list(size),
            "style_size": c.style_size,
            "style_scale": c.style_scale,
            "preserve_color": c.preserve_color,
            "start_size": c.start_size,
            "scale_iterations": c.scale_iterations,
            "precision": stylizer.precision.name,
            "weights": c.weights,
        },
        "styles": [
            {
                "image": digest(st.image),
                "weight": st.weight,
                "layers": st.layers,
                "mask": digest(st.mask),
            }
            for st in styles
        ],
        "mask": digest(mask),
        "regions": dict(regions or {}),
        "temporal": temporal,
    }


def _difference(here: Any, there: Any, path: str = "") -> str | None:
    """The first setting that differs between two manifests, as ``name: here ≠ there``."""
    if isinstance(here, dict) and isinstance(there, dict):
        for key in sorted(set(here) | set(there)):
            found = _difference(here.get(key), there.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if here != there:
        return f"{path}: {json.dumps(here)} now, {json.dumps(there)} there"
    return None


def _describe(found: Any) -> str:
    """An input fingerprint in words."""
    if not isinstance(found, dict):
        return "unknown"
    digest = found.get("sha256") or found.get("first_sha256") or ""
    parts = [str(found.get("name", "?")), f"{found.get('frames', '?')} frames"]
    if digest:
        parts.append(f"sha256 {str(digest)[:12]}")
    return ", ".join(parts)


def plan_work_folder(plan: OutputPlan, path: str | os.PathLike[str], *, resume: bool) -> Path:
    """Check the work folder with the run's inputs and outputs, before any work (the rule of
    :mod:`brushwork.outputs`: brushwork's alone, holding no input and no output, never the
    current folder). An earlier run's is continued with ``resume`` or replaced with
    ``force`` (once the temporary files a killed run left in it are cleared); a folder
    brushwork did not make is neither."""
    path = Path(path)
    if folder_marker(path) is not None:
        _clear_temporaries(path)
    if resume:
        if not (path / MANIFEST).is_file():
            raise BrushworkError(f"nothing to resume: {path / MANIFEST} does not exist")
        return plan.add_folder(path, flag=LABEL, reused=True)
    if not plan.force and path.is_dir() and brushwork_folder(path):
        raise BrushworkError(
            f"{LABEL} {path} holds an earlier run's frames; pass --resume to continue it, "
            "or --force to start over"
        )
    return plan.add_folder(path, flag=LABEL)


def _clear_temporaries(path: Path) -> None:
    """The temporary files a killed run left in its work folder: the tracker state's and
    those of the frame it was finishing (frames are finished in order)."""
    done = WorkFolder(path, {}).done()
    for target in (
        path / TRACKER,
        path / FRAMES / frame_name(done),
        path / PAINTED / frame_name(done),
        path / INPUTS / frame_name(done),
    ):
        clear_temporaries(target)


def _cannot_resume(reason: str) -> BrushworkError:
    """The error for a work folder that cannot be continued, and how to start over."""
    return BrushworkError(f"cannot resume: {reason}; --force without --resume starts over")


class WorkFolder:
    """One run's finished frames and manifest (see the module docstring)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.frames = path / FRAMES

    @classmethod
    def prepare(
        cls,
        path: str | os.PathLike[str],
        manifest: dict[str, Any],
        *,
        resume: bool,
        replace: bool = False,
    ) -> WorkFolder:
        """Make the work folder (whole, then swapped in; an earlier run's is replaced only
        with ``replace``), or with ``resume`` open an earlier run's after checking that it
        was made from the same input and settings; after :func:`plan_work_folder`."""
        path = Path(path)
        if not resume:

            def fill(folder: Path) -> tuple[str, ...]:
                (folder / FRAMES).mkdir()
                (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
                return WRITTEN

            write_folder(path, fill, replace=replace, label=LABEL)
            return cls(path, manifest)
        written = path / MANIFEST
        if not written.is_file():
            raise BrushworkError(f"nothing to resume: {written} does not exist")
        try:
            saved = json.loads(written.read_text())
        except (OSError, ValueError) as error:
            raise _cannot_resume(f"the manifest of {path} does not read ({error})") from None
        here, there = manifest.get("input"), saved.get("input")
        if _difference(here, there):
            raise _cannot_resume(
                f"{path} was made from another input ({_describe(there)}; this one is "
                f"{_describe(here)})"
            )
        difference = _difference(manifest.get("settings"), saved.get("settings"))
        if difference:
            raise _cannot_resume(f"{path} was made with other settings ({difference})")
        return cls(path, saved)

    def frame(self, index: int, folder: str = FRAMES) -> Path:
        return self.path / folder / frame_name(index)

    def done(self) -> int:
        """How many frames from the first are finished."""
        count = 0
        while self.frame(count).is_file():
            count += 1
        return count

    def _write(self, target: Path, write: Any) -> Path:
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(error, OSError):
                raise BrushworkError(f"cannot write {target}: {error.strerror or error}") from error
            raise
        return target

    def save(self, index: int, rgb: np.ndarray, folder: str = FRAMES) -> Path:
        """Keep a finished frame (atomically: a frame on disk is always whole)."""
        return self._write(
            self.frame(index, folder),
            lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG", compress_level=1),
        )

    def save_state(self, state: dict[str, Any]) -> None:
        """Keep the texture tracker's state (replacing the previous one)."""

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **state)

        self._write(self.path / TRACKER, write)

    def load_state(self) -> dict[str, Any] | None:
        path = self.path / TRACKER
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError) as error:
            raise BrushworkError(f"cannot resume: {path} does not read ({error})") from None

    def load(self, index: int, folder: str = FRAMES, mode: str = "RGB") -> np.ndarray:
        """A finished frame as RGB uint8 (H, W, 3) (``mode`` "L": grey, (H, W))."""
        path = self.frame(index, folder)
        try:
            with Image.open(path) as image:
                return np.array(image.convert(mode), dtype=np.uint8)
        except OSError as error:
            raise BrushworkError(
                f"cannot resume: {path} does not read ({error}); remove it and resume again"
            ) from None

    def remove(self) -> None:
        """Remove what brushwork wrote here, then the folder if that leaves it empty; a
        folder without brushwork's marker is left alone."""
        if folder_marker(self.path) is None:
            return
        for name in (*WRITTEN, MARKER):
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    target.unlink()
        with contextlib.suppress(OSError):
            self.path.rmdir()
