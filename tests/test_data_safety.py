"""The data-safety suite: no command that writes may lose a user's file.

For every command that writes (stylize, depth, export, video, batch, train, demo), a property
test draws an output path from {an input file, an input's folder, the current folder, an
ancestor of it, a folder of unrelated files, an existing file, a symlink to an input}, spelled
in several ways, with and without ``--force``, runs the command on tiny inputs and networks,
and checks that every file that existed before still exists with the same bytes afterwards,
unless it is the one file ``--force`` was allowed to replace; a refused command (exit 2)
leaves the tree exactly as it was, with nothing added.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import save_decoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servicekit import png_bytes

import brushwork.encoders
from brushwork.cli import main
from brushwork.encoders import VGG19

pytestmark = pytest.mark.usefixtures("one_thread")

TARGETS = (
    "input file",
    "input folder",
    "current folder",
    "ancestor",
    "unrelated folder",
    "existing file",
    "symlink to input",
    "new path",
)


@dataclass(frozen=True)
class Command:
    """One command that writes: its argv for an output path, the extension its output
    file takes (None: it writes a folder), the input file it reads, and the existing folders
    it may write into (its output folder only receives new files: a batch, a training run
    where the folder holds none of the run's files)."""

    argv: Callable[[Path, str], list[str]]
    extension: str | None
    input_file: str
    receives: tuple[str, ...] = ()
    has_force: bool = True


def _adain(ws: Path) -> list[str]:
    return ["-m", "adain", "--model", str(ws / "in" / "tiny.safetensors"), "--size", "32"]


COMMANDS: dict[str, Command] = {
    "stylize": Command(
        lambda ws, out: [
            "stylize",
            str(ws / "in/photos/photo.png"),
            str(ws / "in/styles/style.png"),
            "-o",
            out,
            *_adain(ws),
            "-q",
        ],
        ".png",
        "in/photos/photo.png",
    ),
    "depth": Command(
        lambda ws, out: ["depth", str(ws / "in/photos/photo.png"), "-o", out, "--side", "32"],
        ".png",
        "in/photos/photo.png",
    ),
    "export adain": Command(
        lambda ws, out: ["export", "adain", "-o", out, "--model", str(ws / "in/tiny.safetensors")],
        ".onnx",
        "in/tiny.safetensors",
    ),
    "export wct": Command(
        lambda ws, out: [
            "export",
            "wct",
            "-o",
            out,
            "--models",
            str(ws / "in/wct"),
            "--levels",
            "relu1_1",
        ],
        None,
        "in/wct/relu1_1.safetensors",
    ),
    "video": Command(
        lambda ws, out: [
            "video",
            str(ws / "in/clip"),
            str(ws / "in/styles/style.png"),
            "-o",
            out,
            *_adain(ws),
            "-q",
        ],
        None,
        "in/clip/000001.png",
    ),
    "batch": Command(
        lambda ws, out: [
            "batch",
            str(ws / "in/photos"),
            "--style",
            str(ws / "in/styles/style.png"),
            "-o",
            out,
            *_adain(ws),
            "-q",
        ],
        None,
        "in/photos/photo.png",
        receives=("unrelated folder", "current folder", "ancestor"),
    ),
    "train": Command(
        lambda ws, out: [
            "train",
            "adain",
            "--content-dir",
            str(ws / "in/photos"),
            "--style-dir",
            str(ws / "in/styles"),
            "--out",
            out,
            "--iterations",
            "1",
            "--batch-size",
            "1",
            "--crop-size",
            "16",
            "--load-size",
            "32",
            "--workers",
            "0",
            "-q",
        ],
        None,
        "in/photos/photo.png",
        receives=("ancestor",),  # the others hold a losses.csv or a model.safetensors
        has_force=False,  # a run folder is continued with --resume, never replaced
    ),
}


def make_workspace(ws: Path, encoder: VGG19) -> Path:
    """Inputs under ``in/``, the user's other files, and the current folder ``project/sub``."""
    for folder in ("in/photos", "in/styles", "in/clip", "in/wct", "unrelated", "project/sub"):
        (ws / folder).mkdir(parents=True)
    (ws / "in/photos/photo.png").write_bytes(png_bytes(40, 32, seed=1))
    (ws / "in/photos/photo2.png").write_bytes(png_bytes(36, 32, seed=2))
    (ws / "in/styles/style.png").write_bytes(png_bytes(32, 32, seed=3))
    for index in range(2):
        (ws / f"in/clip/{index + 1:06d}.png").write_bytes(png_bytes(32, 24, seed=4 + index))
    save_decoder(ws / "in/tiny.safetensors", encoder)
    save_decoder(ws / "in/wct/relu1_1.safetensors", encoder, "wct", "relu1_1")
    (ws / "unrelated/notes.txt").write_text("the user's notes")
    (ws / "unrelated/holiday.png").write_bytes(png_bytes(20, 20, seed=9))
    (ws / "project/sub/keep.txt").write_text("the user's work")
    (ws / "project/sub/model.safetensors").write_bytes(b"the user's model")
    (ws / "unrelated/losses.csv").write_text("the user's table")
    return ws / "project/sub"


def target_path(ws: Path, command: Command, target: str, spelling: str) -> tuple[str, Path | None]:
    """The output argument for ``target`` and the one file ``--force`` may replace."""
    extension = command.extension or ""
    replaceable = None
    if target == "input file":
        path = ws / command.input_file
    elif target == "input folder":
        path = (ws / command.input_file).parent
    elif target == "current folder":
        path = ws / "project/sub"
    elif target == "ancestor":
        path = ws / "project"
    elif target == "unrelated folder":
        path = ws / "unrelated"
    elif target == "existing file":
        path = ws / f"existing{extension}"
        path.write_bytes(b"an existing file")
        replaceable = path if command.extension else None
    elif target == "symlink to input":
        path = ws / f"link{extension}"
        path.symlink_to(ws / command.input_file)
    else:
        path = ws / f"new{extension}"
    cwd = ws / "project/sub"
    if spelling == "relative":
        return os.path.relpath(path, cwd), replaceable
    if spelling == "dotted":
        return str(path.parent / "." / ".." / path.parent.name / path.name), replaceable
    if spelling == "trailing slash" and path.is_dir():
        return f"{path}{os.sep}", replaceable
    return str(path), replaceable


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file's digest, a link's target, or "dir"."""
    found: dict[str, str] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture
def tiny_everywhere(monkeypatch: pytest.MonkeyPatch, tiny_encoder: VGG19) -> VGG19:
    """The tiny encoder wherever a command loads the VGG-19 (shared or its own copy)."""
    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", lambda *a, **k: tiny_encoder)
    monkeypatch.setattr(brushwork.encoders, "load_vgg19", lambda *a, **k: tiny_encoder)
    return tiny_encoder


@pytest.mark.parametrize(
    ("name", "target", "force"),
    [
        pytest.param(name, target, force, id=f"{name}-{target}-{'force' if force else 'plain'}")
        for name, command in COMMANDS.items()
        for target in TARGETS
        for force in (False, True)
        if command.has_force or not force
    ],
)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(spelling=st.sampled_from(("absolute", "relative", "dotted", "trailing slash")))
def test_no_command_loses_a_file(
    tiny_everywhere: VGG19, capsys, name: str, force: bool, target: str, spelling: str
) -> None:
    if name.startswith("export"):
        pytest.importorskip("onnx")
    command = COMMANDS[name]
    ws = Path(tempfile.mkdtemp(prefix="safety-"))
    try:
        cwd = make_workspace(ws, tiny_everywhere)
        out, replaceable = target_path(ws, command, target, spelling)
        before = snapshot(ws)
        with inside(cwd):
            code = main([*command.argv(ws, out), *(["--force"] if force else [])])
        capsys.readouterr()
        after = snapshot(ws)
        for key, digest in before.items():
            if replaceable is not None and force and ws / key == replaceable:
                continue
            assert after.get(key) == digest, f"{key} changed or lost ({name} -o {out})"
        if code == 2:
            assert after == before, f"a refused {name} left {set(after) - set(before)}"
        allowed = target == "new path" or (target == "existing file" and force)
        allowed |= target in command.receives
        allowed &= not (target == "existing file" and command.extension is None)
        assert (code == 0) == allowed, f"{name} -o {out}: exit {code}"
    finally:
        shutil.rmtree(ws, ignore_errors=True)
