"""Output files (brushwork.outputs): planned together before any work, written atomically,
never replacing a file that appeared meanwhile without force."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from brushwork.errors import BrushworkError
from brushwork.outputs import (
    MARKER,
    OutputPlan,
    inputs_of,
    mark_folder,
    write_atomically,
    write_atomically_together,
    write_folder,
)


def text(content: str):
    def write(tmp: str) -> None:
        Path(tmp).write_text(content)

    return write


def test_plan_refuses_clashing_outputs(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    plan = OutputPlan()
    plan.add(tmp_path / "out.png", flag="-o")
    with pytest.raises(BrushworkError, match=r"--plot-losses .* is the same file as -o"):
        plan.add(tmp_path / "sub" / ".." / "out.png", flag="--plot-losses")
    plan.add(tmp_path / "sub" / "out.png", flag="--animation")  # another file: fine


def test_plan_refuses_a_hard_link_to_a_planned_file(tmp_path: Path) -> None:
    first = tmp_path / "a.png"
    first.write_bytes(b"x")
    os.link(first, tmp_path / "b.png")
    plan = OutputPlan(force=True)
    plan.add(first)
    with pytest.raises(BrushworkError, match="same file"):
        plan.add(tmp_path / "b.png")


def test_plan_checks_each_path(tmp_path: Path) -> None:
    plan = OutputPlan()
    with pytest.raises(BrushworkError, match="unsupported output format"):
        plan.add(tmp_path / "out.gif")
    with pytest.raises(BrushworkError, match="does not exist"):
        plan.add(tmp_path / "missing" / "out.png")
    (tmp_path / "old.png").write_bytes(b"x")
    with pytest.raises(BrushworkError, match="exists; pass --force"):
        plan.add(tmp_path / "old.png")
    assert OutputPlan(force=True).add(tmp_path / "old.png") == tmp_path / "old.png"


def test_a_file_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    def write(tmp: str) -> None:
        Path(tmp).write_text("mine")
        target.write_text("theirs")  # another run published first

    with pytest.raises(BrushworkError, match="appeared while brushwork was working"):
        write_atomically(target, write, replace=False)
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left


def test_replace_overwrites_and_new_paths_publish(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_atomically(target, text("one"), replace=False)
    assert target.read_text() == "one"
    write_atomically(target, text("two"), replace=True)
    assert target.read_text() == "two"


def test_together_is_all_or_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"

    def fail(tmp: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically_together([(a, text("a")), (b, fail)])
    assert list(tmp_path.iterdir()) == []
    b.write_text("theirs")
    with pytest.raises(BrushworkError, match="appeared"):
        write_atomically_together([(a, text("a")), (b, text("b"))], replace=False)
    assert not a.exists() and b.read_text() == "theirs"


def test_unwritable_folder_is_one_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(BrushworkError, match="not writable"):
        OutputPlan().add(folder / "out.png")


# ----------------------------------------------------------------------------- the safety rule


def test_an_output_may_not_be_an_input_even_with_force(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"photo")
    (tmp_path / "link.png").symlink_to(photo)
    plan = OutputPlan(force=True, inputs=[photo])
    with pytest.raises(BrushworkError, match=r"-o .*photo\.jpg is the input"):
        plan.add(photo, flag="-o")
    with pytest.raises(BrushworkError, match=r"link\.png is the input .*photo\.jpg"):
        plan.add(tmp_path / "link.png", flag="-o")
    with pytest.raises(BrushworkError, match="contains the input"):
        plan.add_folder(tmp_path, flag="--work-dir")
    assert photo.read_bytes() == b"photo"


def test_inputs_of_finds_the_paths_among_option_values(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"a")
    found = inputs_of(str(tmp_path / "a.png"), None, 3, "luminance", [str(tmp_path), ("x",)])
    assert found == [tmp_path / "a.png", tmp_path]


def test_force_replaces_only_a_folder_brushwork_wrote(tmp_path: Path, monkeypatch) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(BrushworkError, match="brushwork did not write"):
            OutputPlan(force=force).add_folder(user, flag="-o")
    monkeypatch.chdir(user)
    for folder in (Path("."), tmp_path):
        with pytest.raises(BrushworkError, match="current folder"):
            OutputPlan(force=True).add_folder(folder, flag="-o")
    monkeypatch.chdir(tmp_path)

    def fill(folder: Path) -> list[str]:
        (folder / "frame.png").write_bytes(b"1")
        return ["frame.png"]

    made = write_folder(tmp_path / "frames", fill, replace=False)
    assert sorted(p.name for p in made.iterdir()) == [MARKER, "frame.png"]
    with pytest.raises(BrushworkError, match="exists; pass --force"):
        OutputPlan().add_folder(made, flag="-o")
    OutputPlan(force=True).add_folder(made, flag="-o")  # brushwork's own: replaceable
    write_folder(made, fill, replace=True)
    (made / "notes.txt").write_text("added by the user")
    with pytest.raises(BrushworkError, match="holds other files"):
        OutputPlan(force=True).add_folder(made, flag="-o")
    with pytest.raises(BrushworkError, match="holds other files"):
        write_folder(made, fill, replace=True)
    assert (made / "notes.txt").exists() and (user / "notes.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_replaced_folder_may_not_hold_another_output(tmp_path: Path) -> None:
    (tmp_path / "renders").mkdir()
    plan = OutputPlan()
    plan.add(tmp_path / "renders" / "out.mp4", extensions=(".mp4",), flag="-o")
    with pytest.raises(BrushworkError, match=r"--work-dir .* and -o .* overlap"):
        plan.add_folder(tmp_path / "renders", flag="--work-dir")
    other = OutputPlan()
    other.add_folder(tmp_path / "work", flag="--work-dir")
    with pytest.raises(BrushworkError, match="lies inside --work-dir"):
        other.add(tmp_path / "work" / "x.png", flag="-o")
    receiving = OutputPlan()
    receiving.add_folder(tmp_path / "renders", flag="-o", replaced=False)  # receives files
    receiving.add(tmp_path / "renders" / "a.png", flag="--manifest")


def test_a_marker_lists_what_brushwork_wrote(tmp_path: Path) -> None:
    mark_folder(tmp_path, ["a.png"])
    mark_folder(tmp_path, ["b.png"])
    assert json.loads((tmp_path / MARKER).read_text())["files"] == ["a.png", "b.png"]
