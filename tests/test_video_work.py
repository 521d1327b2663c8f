"""The work folder of a video run (brushwork.video.work): manifest checks, finished frames,
the tracker state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videoclips import pan, write_clip

from brushwork.errors import BrushworkError
from brushwork.video.io import scan
from brushwork.video.work import WorkFolder, _difference, default_work_dir, fingerprint


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
    with pytest.raises(BrushworkError, match="its manifest does not read"):
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
