"""The work folder of a video run (brushwork.video.work): manifest checks, finished frames,
the tracker state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videoclips import pan, write_clip

from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan, brushwork_folder
from brushwork.video.io import scan
from brushwork.video.work import (
    WorkFolder,
    _difference,
    default_work_dir,
    fingerprint,
    plan_work_folder,
)


def _manifest(**settings: object) -> dict:
    return {
        "input": {"kind": "file", "name": "a.mp4", "frames": 3, "sha256": "0" * 64},
        "settings": {"method": "adain", "options": {"alpha": 1.0}, **settings},
    }


def test_the_default_work_folder_is_beside_the_output(tmp_path: Path) -> None:
    assert default_work_dir(tmp_path / "out.mp4") == tmp_path / "out.mp4.work"
    assert default_work_dir(tmp_path / "frames") == tmp_path / "frames.work"


def test_the_first_difference_is_named() -> None:
    here, there = _manifest(), _manifest()
    assert _difference(here, there) is None
    there["settings"]["options"]["alpha"] = 0.5
    assert _difference(here, there) == "settings.options.alpha: 1.0 now, 0.5 there"


def test_finished_frames_count_from_the_first(tmp_path: Path) -> None:
    work = WorkFolder.prepare(tmp_path / "w", _manifest(), resume=False)
    frame = np.zeros((4, 6, 3), np.uint8)
    work.save(0, frame)
    work.save(1, frame + 7)
    work.save(3, frame)  # a gap: frame 2 is missing, so 3 does not count
    assert work.done() == 2
    assert np.array_equal(work.load(1), frame + 7)
    assert [
        p.name for p in (tmp_path / "w" / "frames").iterdir() if p.name.startswith(".")
    ] == []  # no temporary files left


def test_resume_checks_the_manifest(tmp_path: Path) -> None:
    WorkFolder.prepare(tmp_path / "w", _manifest(), resume=False)
    assert WorkFolder.prepare(tmp_path / "w", _manifest(), resume=True).done() == 0
    other = _manifest()
    other["settings"]["method"] = "wct"
    with pytest.raises(
        BrushworkError,
        match=r'other settings \(method: "wct" now, "adain" '
        r"there\)",
    ):
        WorkFolder.prepare(tmp_path / "w", other, resume=True)
    moved = _manifest()
    moved["input"]["frames"] = 4
    with pytest.raises(
        BrushworkError,
        match=r"another input \(a.mp4, 3 frames, sha256 "
        r"000000000000; this one is a.mp4, 4 frames",
    ):
        WorkFolder.prepare(tmp_path / "w", moved, resume=True)


def test_a_broken_manifest_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "manifest.json").write_text("{not json")
    with pytest.raises(
        BrushworkError,
        match=r"the manifest of .*w does not read .*; --force without --resume starts over",
    ):
        WorkFolder.prepare(tmp_path / "w", _manifest(), resume=True)


def test_the_tracker_state_round_trips(tmp_path: Path) -> None:
    work = WorkFolder.prepare(tmp_path / "w", _manifest(), resume=False)
    assert work.load_state() is None
    state = {
        "frame": 4,
        "births": np.arange(6, dtype=np.int32).reshape(2, 3),
        "x": np.ones((2, 3), np.float32),
        "y": np.zeros((2, 3), np.float32),
    }
    work.save_state(state)
    loaded = work.load_state()
    assert loaded is not None and int(loaded["frame"]) == 4
    assert np.array_equal(loaded["births"], state["births"])


def test_the_fingerprint_follows_the_bytes(tmp_path: Path) -> None:
    a = fingerprint(scan(write_clip(tmp_path / "a.mp4", pan(3))))
    b = fingerprint(scan(write_clip(tmp_path / "b.mp4", pan(3, seed=5))))
    assert a["frames"] == b["frames"] == 3 and a["sha256"] != b["sha256"]


# ----------------------------------------------------------------------------- output safety


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_work_folder_is_marked_as_brushwork_s(tmp_path: Path) -> None:
    work = WorkFolder.prepare(tmp_path / "w", _manifest(), resume=False)
    work.save(0, np.zeros((4, 6, 3), np.uint8))
    work.save_state({"frame": 0})
    assert brushwork_folder(work.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # nothing left beside it


def test_the_cleanup_removes_only_what_brushwork_wrote(tmp_path: Path) -> None:
    work = WorkFolder.prepare(tmp_path / "w", _manifest(), resume=False)
    work.save(0, np.zeros((4, 6, 3), np.uint8))
    (work.path / "notes.txt").write_text("the user's")
    work.remove()
    assert _files(work.path) == {"notes.txt": b"the user's"}
    work.path.joinpath("notes.txt").unlink()
    work.remove()  # no marker any more: brushwork did not make what is left
    assert work.path.is_dir()


def test_the_cleanup_removes_the_folder_it_made(tmp_path: Path) -> None:
    work = WorkFolder.prepare(tmp_path / "w", _manifest(), resume=False)
    work.save(0, np.zeros((4, 6, 3), np.uint8))
    work.remove()
    assert list(tmp_path.iterdir()) == []


def test_a_stale_work_folder_says_how_to_go_on_and_force_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "w"
    WorkFolder.prepare(path, _manifest(), resume=False).save(0, np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(
        BrushworkError,
        match=r"work folder .*w holds an earlier run's frames; pass --resume to continue "
        r"it, or --force to start over",
    ):
        plan_work_folder(OutputPlan(), path, resume=False)
    plan_work_folder(OutputPlan(force=True), path, resume=False)
    work = WorkFolder.prepare(path, _manifest(alpha=0.5), resume=False, replace=True)
    assert work.done() == 0 and brushwork_folder(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_brushwork_did_not_make_is_never_a_work_folder(
    tmp_path: Path, force: bool, resume: bool
) -> None:
    path = tmp_path / "renders"
    path.mkdir()
    (path / "manifest.json").write_text("{}")
    (path / "holiday.png").write_bytes(b"mine")
    with pytest.raises(
        BrushworkError, match=r"renders (exists; pass --force|is a folder brushwork did not write)"
    ):
        plan_work_folder(OutputPlan(force=force), path, resume=resume)
    assert _files(path) == {"manifest.json": b"{}", "holiday.png": b"mine"}


def test_resume_clears_the_temporary_files_an_interrupted_run_left(tmp_path: Path) -> None:
    path = tmp_path / "w"
    WorkFolder.prepare(path, _manifest(), resume=False).save(0, np.zeros((4, 6, 3), np.uint8))
    stale = [path / ".tracker.npz.k1l2m3n4.tmp", path / "frames" / ".000002.png.ab_cd123.tmp"]
    kept = [path / "frames" / ".000002.png.mine.tmp"]
    for file in [*stale, *kept]:
        file.write_bytes(b"partial")
    plan_work_folder(OutputPlan(), path, resume=True)
    assert [f.exists() for f in stale + kept] == [False, False, True]


def test_nothing_to_resume(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match=r"nothing to resume: .*manifest\.json does not exist"):
        plan_work_folder(OutputPlan(), tmp_path / "w", resume=True)
    assert list(tmp_path.iterdir()) == []
