"""Output files (brushwork.outputs): planned together before any work, written atomically,
never replacing a file that appeared meanwhile without force."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan, write_atomically, write_atomically_together


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
