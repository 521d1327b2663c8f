"""``brushwork batch`` never loses a user's file and never feeds on its own outputs (issue 18):
the manifest and the output folder are planned against every input before any work, a
folder scan or a pattern skips the output folder and ends on symlink loops, a batch no item
of which can run is refused up front, long names are shortened, and a refusal leaves no
folder behind. The tiny random encoder and a tiny decoder stand in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import expect_error, save_decoder
from servicekit import bomb_png, png_bytes

from brushwork.batch import MAX_NAME_BYTES, expand, output_name
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.outputs import made_folder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """photos/ (two images and a list file), styles/ (one), a pairs file; the current folder."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "styles").mkdir()
    for number in range(2):
        (tmp_path / f"photos/c{number}.png").write_bytes(png_bytes(40, 32, seed=number))
    (tmp_path / "styles/s0.png").write_bytes(png_bytes(32, 32, seed=10))
    (tmp_path / "list.txt").write_text("photos/c0.png\n")
    (tmp_path / "pairs.csv").write_text("photos/c0.png,styles/s0.png\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def model(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)


def batch(*argv: str) -> list[str]:
    """``brushwork batch`` of photos/ in the style of styles/s0.png with AdaIN at 32 px."""
    return ["batch", *argv, "-m", "adain", "--size", "32", "-q"]


def digest(path: Path) -> str:
    return "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its digest (folders as "dir")."""
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def refused(capsys: Any, root: Path, argv: list[str]) -> str:
    """Run a batch that must be refused; check the tree is as it was; the message."""
    before = tree(root)
    message = expect_error(capsys, argv)
    assert tree(root) == before
    return message


# ----------------------------------------------------------------------------- the manifest


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("manifest", "inputs"),
    [
        ("photos/c0.png", ["photos"]),
        ("styles/s0.png", ["photos"]),
        ("list.txt", ["list.txt"]),
    ],
)
def test_the_manifest_is_never_an_input(
    capsys: Any, ws: Path, manifest: str, inputs: list[str]
) -> None:
    argv = batch(*inputs, "--style", "styles", "-o", "out", "--manifest", manifest)
    message = refused(capsys, ws, argv)
    assert f"--manifest {manifest} is the input" in message
    assert "--force" not in message  # not even --force appends to an input
    assert refused(capsys, ws, [*argv, "--force"]) == message


@pytest.mark.usefixtures("no_work")
def test_the_manifest_is_never_the_pairs_file(capsys: Any, ws: Path) -> None:
    argv = batch("--pairs", "pairs.csv", "-o", "out", "--manifest", "pairs.csv")
    assert "--manifest pairs.csv is the input pairs.csv" in refused(capsys, ws, argv)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_text("the user's notes\n"), "not a brushwork manifest"),
        (lambda p: p.write_text('{"a": 1}\n'), "not a brushwork manifest"),
        (lambda p: p.write_bytes(b""), "not a brushwork manifest"),
        (lambda p: p.write_bytes(png_bytes(8, 8)), "not a brushwork manifest"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["text", "other JSON", "empty", "image", "folder"],
)
def test_an_existing_manifest_is_appended_only_when_brushwork_wrote_it(
    capsys: Any, ws: Path, make: Callable[[Path], object], expected: str
) -> None:
    make(ws / "log.jsonl")
    argv = batch("photos", "--style", "styles", "-o", "out", "--manifest", "log.jsonl")
    assert expected in refused(capsys, ws, argv)
    assert expected in refused(capsys, ws, [*argv, "--force"])


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("missing/log.jsonl", "output directory does not exist: missing"),
        ("out/c0--s0.png", "--manifest out/c0--s0.png is the output of"),
        ("x" * 300 + ".jsonl", "a name of 306 bytes, over the 241 bytes a file name may have"),
    ],
    ids=["missing folder", "an output", "name too long"],
)
def test_a_manifest_that_cannot_be_written_is_refused_up_front(
    capsys: Any, ws: Path, manifest: str, expected: str
) -> None:
    argv = batch("photos", "--style", "styles", "-o", "out", "--manifest", manifest)
    assert expected in refused(capsys, ws, argv)


def test_a_brushwork_manifest_is_appended_to(
    capsys: Any, ws: Path, model: Path, tiny_pretrained: VGG19
) -> None:
    argv = batch("photos", "--style", "styles", "-o", "out", "--model", str(model))
    assert main([*argv, "--manifest", "log.jsonl"]) == 0
    assert main([*argv, "--manifest", "log.jsonl"]) == 0
    lines = [json.loads(line) for line in (ws / "log.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines] == ["done", "done", "skipped", "skipped"]


# ----------------------------------------------------------------------------- the output folder


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["photos", "--style", "styles", "-o", "photos"], "-o photos is the input photos"),
        (["photos", "--style", "styles", "-o", "styles"], "-o styles is the input styles"),
        (["photos", "--style", "styles", "-o", "."], "-o . contains the input photos"),
        (["photos/*.png", "--style", "styles", "-o", "photos"], "-o photos is the input photos"),
        (["list.txt", "--style", "styles", "-o", "photos"], "-o photos contains the input"),
        (["--pairs", "pairs.csv", "-o", "styles"], "-o styles contains the input"),
        (["photos", "--style", "styles", "-o", "list.txt"], "-o list.txt exists and is not a"),
    ],
)
def test_the_output_folder_is_never_an_input_folder(
    capsys: Any, ws: Path, argv: list[str], expected: str
) -> None:
    assert expected in refused(capsys, ws, batch(*argv))
    assert expected in refused(capsys, ws, batch(*argv, "--force"))


@pytest.mark.parametrize(
    "inputs", [["photos", "--recursive"], ["photos/**/*.png"]], ids=["recursive", "glob"]
)
def test_an_output_folder_inside_the_inputs_is_not_read(
    capsys: Any, ws: Path, model: Path, tiny_pretrained: VGG19, inputs: list[str]
) -> None:
    """Each rerun resumes: the outputs are not taken for new inputs (``c0--s0--s0.png``)."""
    argv = batch(*inputs, "--style", "styles", "-o", "photos/out", "--model", str(model))
    for _ in range(3):
        assert main(argv) == 0
    assert sorted(p.name for p in (ws / "photos/out").glob("*.png")) == [
        "c0--s0.png",
        "c1--s0.png",
    ]
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().err


# ----------------------------------------------------------------------------- no hang


def test_patterns_and_scans_end_on_symlink_loops(ws: Path) -> None:
    """Two loops in one folder made the walk 2**40 paths long; each real folder is now
    entered once, a symlinked folder that is no loop included."""
    photos = ws / "photos"
    (photos / "sub").mkdir()
    (photos / "sub/c2.png").write_bytes(png_bytes(8, 8))
    (photos / "sub/.hidden.png").write_bytes(png_bytes(8, 8))
    for name in ("loop", "again"):
        (photos / name).symlink_to(photos, target_is_directory=True)
    (ws / "linked").symlink_to(photos / "sub", target_is_directory=True)
    (photos / "linked").symlink_to(ws / "linked", target_is_directory=True)
    names = sorted(p.relative_to("photos").as_posix() for p in expand("photos/**/*.png"))
    assert names == ["c0.png", "c1.png", "sub/c2.png"]
    scanned = sorted(p.relative_to("photos").as_posix() for p in expand("photos", recursive=True))
    assert scanned == ["c0.png", "c1.png", "sub/.hidden.png", "sub/c2.png"]
    assert [p.name for p in expand("photos/*/c?.png")] == ["c2.png"]
    assert [p.name for p in expand("*/c[01].png")] == ["c0.png", "c1.png"]


# ----------------------------------------------------------------------------- up front


@pytest.mark.usefixtures("no_work")
def test_a_size_no_item_can_take_is_refused_up_front(capsys: Any, ws: Path) -> None:
    argv = ["batch", "photos", "--style", "styles", "-o", "out", "-m", "adain", "--size", "60000"]
    message = refused(capsys, ws, argv)
    assert message.startswith("no item of this batch can run (photos/c0.png × styles/s0.png: ")
    assert "needs about" in message


@pytest.mark.usefixtures("no_work")
def test_a_huge_shared_style_is_refused_up_front(capsys: Any, ws: Path) -> None:
    (ws / "styles/s0.png").write_bytes(bomb_png(20000, 20000))  # 400 megapixels
    message = refused(capsys, ws, batch("photos", "--style", "styles", "-o", "out"))
    assert "no item of this batch can run" in message
    assert "over the limit of 40,000,000" in message


# ----------------------------------------------------------------------------- long names


def test_long_names_are_shortened_the_same_way_each_time(
    capsys: Any, ws: Path, model: Path, tiny_pretrained: VGG19
) -> None:
    long = "é" * 120 + "x" * 9  # 249 bytes in UTF-8
    (ws / f"photos/{long}.png").write_bytes(png_bytes(40, 32, seed=5))
    argv = batch("photos", "--style", "styles", "-o", "out", "--model", str(model))
    assert main(argv) == 0
    names = sorted(p.name for p in (ws / "out").glob("*.png"))
    assert len(names) == 3
    short = output_name(ws / f"photos/{long}.png", ws / "styles/s0.png", "png")
    assert short in names
    assert len(short.encode()) <= MAX_NAME_BYTES
    assert short.startswith("é" * 10) and "--s0-" in short
    assert main(argv) == 0  # the same names: resumed
    assert "0 done, 3 skipped, 0 failed" in capsys.readouterr().err


def test_a_listed_name_too_long_for_the_file_system_fails_only_its_item(
    capsys: Any, ws: Path, model: Path, tiny_pretrained: VGG19
) -> None:
    (ws / "list.txt").write_text(f"{'y' * 300}.png\nphotos/c0.png\n")
    argv = batch("list.txt", "--style", "styles", "-o", "out", "--model", str(model))
    assert main(argv) == 1
    assert "1 done, 0 skipped, 1 failed" in capsys.readouterr().err
    first = json.loads((ws / "out/manifest.jsonl").read_text().splitlines()[0])
    assert first["status"] == "failed"
    assert "cannot read: File name too long" in first["error"]


@pytest.mark.usefixtures("no_work")
def test_a_long_output_name_in_pairs_is_refused(capsys: Any, ws: Path) -> None:
    (ws / "pairs.csv").write_text(f"photos/c0.png,styles/s0.png,{'x' * 250}.png\n")
    message = refused(capsys, ws, batch("--pairs", "pairs.csv", "-o", "out"))
    assert "line 1: the output name is longer than" in message


# ----------------------------------------------------------------------------- leftovers


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("ray", "expected"),
    [
        (["--ray-cpus", "1000"], "a worker needs 1000 CPUs, more than this machine has"),
        (["--ray-workers", "1000"], "--ray-workers 1000: this machine has room for"),
        (["--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
    ],
)
def test_a_refused_ray_batch_leaves_no_folder(
    capsys: Any, ws: Path, ray: list[str], expected: str
) -> None:
    pytest.importorskip("ray.data")
    argv = batch("photos", "--style", "styles", "-o", "new/out", "--engine", "ray", *ray)
    assert expected in refused(capsys, ws, argv)


def test_a_run_refused_after_its_folder_was_made_removes_it(tmp_path: Path) -> None:
    """The folders made for a run that fails are removed while empty; what holds a file,
    and what existed before, stays."""
    with pytest.raises(BrushworkError), made_folder(tmp_path / "a/b/out"):
        raise BrushworkError("refused")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt), made_folder(tmp_path / "a/b/out"):
        (tmp_path / "a/b/kept.txt").write_text("written")
        raise KeyboardInterrupt
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a",
        "a/b",
        "a/b/kept.txt",
    ]
