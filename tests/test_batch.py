"""``brushwork batch``: inputs (folders, globs, list files, pairs), resuming, the manifest,
bad files, the exit status, progress events, and the Ray engine on a local Ray instance
with two worker processes. The tiny random encoder and a tiny decoder stand in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import expect_error, save_decoder
from PIL import Image
from servicekit import png_bytes

from brushwork import events
from brushwork.batch import expand, plan_items, read_pairs, run_batch
from brushwork.cli import main
from brushwork.encoders import VGG19

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    contents = tmp_path / "photos"
    styles = tmp_path / "styles"
    contents.mkdir()
    styles.mkdir()
    for number in range(3):
        (contents / f"c{number}.png").write_bytes(png_bytes(40, 32, seed=number))
    (contents / "notes.txt").write_text("not an input")  # not an image name: ignored
    for number in range(2):
        (styles / f"s{number}.png").write_bytes(png_bytes(32, 32, seed=10 + number))
    return {"contents": contents, "styles": styles, "out": tmp_path / "out"}


@pytest.fixture
def model(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_content_with_every_style(
    capsys: Any, folders: dict[str, Path], model: Path, tiny_pretrained: VGG19
) -> None:
    out = folders["out"]
    argv = [
        "batch",
        str(folders["contents"]),
        "--style",
        str(folders["styles"]),
        "-o",
        str(out),
        "-m",
        "adain",
        "--model",
        str(model),
        "--size",
        "32",
        "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["done"], summary["failed"]) == (6, 6, 0)
    assert summary["items_per_second"] > 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(f"c{c}--s{s}.png" for c in range(3) for s in range(2))
    assert Image.open(out / "c0--s1.png").size == (32, 26)
    first = records(out / "manifest.jsonl")
    assert [r["status"] for r in first] == ["done"] * 6
    assert all(r["seconds"] >= 0 and r["error"] is None for r in first)
    # a style is prepared once and reused for the next contents
    assert [r["reused_style"] for r in first] == [False, True, True] * 2

    # a rerun resumes: nothing to do, everything recorded as skipped
    before = (out / "c0--s0.png").stat().st_mtime_ns
    assert main(argv) == 0
    again = records(out / "manifest.jsonl")[6:]
    assert [r["status"] for r in again] == ["skipped"] * 6
    assert (out / "c0--s0.png").stat().st_mtime_ns == before
    # --force redoes them
    assert main([*argv, "--force", "-q"]) == 0
    assert [r["status"] for r in records(out / "manifest.jsonl")[12:]] == ["done"] * 6


def test_a_bad_file_fails_only_its_item(
    capsys: Any, folders: dict[str, Path], model: Path, tiny_pretrained: VGG19
) -> None:
    (folders["contents"] / "broken.png").write_bytes(b"\x89PNG truncated")
    (folders["contents"] / "big.png").write_bytes(png_bytes(200, 150))
    out = folders["out"]
    argv = [
        "batch",
        str(folders["contents"]),
        "--style",
        str(folders["styles"] / "s0.png"),
        "-o",
        str(out),
        "-m",
        "adain",
        "--model",
        str(model),
        "--size",
        "32",
        "--max-pixels",
        "20000",
    ]
    assert main(argv) == 1  # some items failed
    err = capsys.readouterr().err
    assert "3 done, 0 skipped, 2 failed" in err
    found = {Path(r["content"]).name: r for r in records(out / "manifest.jsonl")}
    assert found["broken.png"]["status"] == "failed"
    assert "broken.png: not an image PIL can read" in found["broken.png"]["error"]
    assert "over the limit of 20,000" in found["big.png"]["error"]
    assert {found[f"c{n}.png"]["status"] for n in range(3)} == {"done"}
    assert not (out / "broken--s0.png").exists()
    # fixing the input and rerunning does only what is left
    (folders["contents"] / "broken.png").unlink()
    (folders["contents"] / "big.png").unlink()
    assert main(argv) == 0


def test_globs_lists_and_pairs(tmp_path: Path, folders: dict[str, Path]) -> None:
    contents = folders["contents"]
    assert [p.name for p in expand(str(contents / "c*.png"))] == ["c0.png", "c1.png", "c2.png"]
    listing = tmp_path / "list.txt"
    listing.write_text("# my photos\nphotos/c2.png\n\nphotos/c0.png\nmissing.png\n")
    found = expand(str(listing))
    assert [p.name for p in found] == ["c2.png", "c0.png", "missing.png"]  # kept: fails
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "content,style,output\nphotos/c0.png,styles/s1.png,mine/first.jpg\n"
        "photos/c1.png,styles/s0.png\n"
    )
    items = read_pairs(pairs, tmp_path / "out", "png")
    assert [Path(i.output).relative_to(tmp_path / "out").as_posix() for i in items] == [
        "mine/first.jpg",
        "c1--s0.png",
    ]
    assert Path(items[0].style).name == "s1.png"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nope/", "--style", "x.png", "-o", "out"], "nope/: no such file or folder"),
        (["in/*.jpg", "--style", "x.png", "-o", "out"], "in/*.jpg: matches no file"),
        (["photos", "-o", "out"], "no style: give --style PATH"),
        (["--style", "styles", "-o", "out"], "no inputs"),
        (
            ["photos", "--style", "styles", "--pairs", "p.csv", "-o", "out"],
            "give either --pairs or INPUTS",
        ),
        (
            ["photos", "--style", "styles", "-o", "out", "-m", "adain", "--alpha", "3"],
            "alpha must be <= 1",
        ),
        (
            ["photos", "--style", "styles", "-o", "out", "--iterations", "0"],
            "iterations must be >= 1",
        ),
        (["photos", "--style", "styles", "-o", "out", "-m", "nope"], "unknown method 'nope'"),
        (["--pairs", "bad.csv", "-o", "out"], "line 1: the output must be a path inside"),
        (["photos", "photos/c0.png", "--style", "styles", "-o", "out"], "would both write"),
    ],
)
def test_bad_batches_stop_before_any_work(
    capsys: Any,
    tmp_path: Path,
    folders: dict[str, Path],
    monkeypatch: Any,
    no_work: None,
    argv: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("photos/c0.png,styles/s0.png,../../escape.png\n")
    (tmp_path / "p.csv").write_text("photos/c0.png,styles/s0.png\n")
    assert expected in expect_error(capsys, ["batch", *argv])
    assert not (tmp_path / "out").exists()


def test_one_painter_per_batch(
    capsys: Any, folders: dict[str, Path], model: Path, tiny_pretrained: VGG19, monkeypatch: Any
) -> None:
    """The command checks the options and paints every item with one painter."""
    from brushwork.painter import Painter

    built = []
    init = Painter.__init__
    monkeypatch.setattr(
        Painter, "__init__", lambda self, *a, **k: built.append(1) or init(self, *a, **k)
    )
    argv = ["batch", str(folders["contents"]), "--style", str(folders["styles"] / "s0.png")]
    argv += ["-o", str(folders["out"]), "-m", "adain", "--model", str(model), "--size", "32"]
    assert main(argv) == 0
    assert len(built) == 1


def test_progress_is_one_step_per_item(
    folders: dict[str, Path], model: Path, tiny_encoder: VGG19
) -> None:
    items = plan_items(
        expand(str(folders["contents"])), expand(str(folders["styles"])), folders["out"], "png"
    )
    collect = events.Collect()
    folders["out"].mkdir()
    result = run_batch(
        items,
        "adain",
        {"model": str(model), "size": 32},
        manifest=folders["out"] / "m.jsonl",
        encoder=tiny_encoder,
        events=collect,
    )
    assert result.done == 6
    started = [e for e in collect.of(events.Started) if e.stage == "batch"]
    assert [(e.total, e.unit) for e in started] == [(6, "image")]
    steps = [e.step for e in collect.of(events.Progress) if e.stage == "batch"]
    assert steps == list(range(1, 7))
    finished = [e for e in collect.of(events.Finished) if e.stage == "batch"]
    assert finished[0].details == {"done": 6, "skipped": 0, "failed": 0}


def test_ray_engine(folders: dict[str, Path], model: Path, tiny_encoder: VGG19) -> None:
    """The same batch on a local Ray instance with two stateful worker processes gives the
    same files and records as the local engine."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'brushwork[ray]'")
    pytest.importorskip("ray.data")
    (folders["contents"] / "broken.png").write_bytes(b"not a png")
    items = plan_items(
        expand(str(folders["contents"])), expand(str(folders["styles"])), folders["out"], "png"
    )
    folders["out"].mkdir()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_batch(
            items,
            "adain",
            {"model": str(model), "size": 32},
            manifest=folders["out"] / "ray.jsonl",
            engine="ray",
            encoder=tiny_encoder,
            ray_options={"workers": 2},
            events=events.Collect(),
        )
    finally:
        ray.shutdown()
    assert (result.total, result.done, result.failed) == (8, 6, 2)
    found = records(folders["out"] / "ray.jsonl")
    assert {r["engine"] for r in found} == {"ray"}
    worked = [r for r in found if r["status"] != "skipped"]
    # two worker processes painted, each with the one painter (one model load) it built
    assert len({r["worker"] for r in worked}) == 2, worked
    assert {r["painters"] for r in worked} == {1}
    assert sorted(Path(r["output"]).name for r in found if r["status"] == "done") == sorted(
        p.name for p in folders["out"].glob("*.png")
    )
    assert all("not an image" in r["error"] for r in found if r["status"] == "failed")
    # the local engine paints the same images
    local = folders["out"].parent / "local"
    local.mkdir()
    local_items = plan_items(
        expand(str(folders["contents"])), expand(str(folders["styles"])), local, "png"
    )
    run_batch(
        local_items,
        "adain",
        {"model": str(model), "size": 32},
        manifest=local / "m.jsonl",
        encoder=tiny_encoder,
        events=events.Collect(),
    )
    for path in local.glob("*.png"):
        ray_image = Image.open(folders["out"] / path.name)
        assert ray_image.tobytes() == Image.open(path).tobytes()
