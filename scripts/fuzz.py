"""A long fuzz run of brushwork's input checks, with the counts of what happened.

    python scripts/fuzz.py --images 5000 --options 5000 --cli 2000 --outputs 2000

Four targets, each fed seeded random inputs:

* the image loader (``probe_image`` then ``open_image``): valid JPEG, PNG, TIFF and WebP
  files with bytes flipped, slices cut or inserted, or cut short, and pure noise;
* ``Options.validate`` of every options class (controls, each method's, each trainer's,
  run and export options): one field set to a value of any kind;
* the ``stylize`` command line: up to three flags of gatys, adain or styleswap with
  hostile values; the expensive parts are replaced by a stand-in that counts runs that
  passed every check;
* output paths and options of every command that writes (stylize, depth, export, video,
  batch, train, demo): an output drawn from {an input file, an input's folder, the current
  folder, an ancestor, a folder of the user's files, an existing file, a symlink to an
  input, a new path, hostile strings}, with or without ``--force``, plus up to three
  hostile flags of the command. Besides the outcome, every file of the workspace must
  still be there with its bytes (an "escape" otherwise).

An outcome is "ok" (the input worked), "refused" (one BrushworkError / exit status 2 with
one ``brushwork: error:`` line), or "escape" (any other exception or output): the run
exits non-zero if there is any escape and prints the first ones. The bounded version of
these properties runs in the test suite (tests/test_fuzz.py; the output paths in
tests/test_data_safety.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import random
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import torch
from PIL import Image

import brushwork.encoders
from brushwork.errors import BrushworkError
from brushwork.image import open_image, probe_image, to_pil
from brushwork.options import fields_of

FORMATS = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF", "webp": "WEBP"}


def smooth(height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 6, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 1)


def seeds() -> dict[str, bytes]:
    image = to_pil(smooth(24, 20, 1))
    found = {}
    for suffix, fmt in FORMATS.items():
        buffer = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6
        extra = {"exif": exif.tobytes()} if fmt != "TIFF" else {}
        (image.convert("RGBA") if fmt in ("PNG", "WEBP") else image).save(buffer, fmt, **extra)
        found[suffix] = buffer.getvalue()
    return found


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice(("flip", "cut", "insert", "truncate"))
        at = rng.randint(0, max(0, len(out) - 1))
        if kind == "flip" and out:
            out[at] = rng.randint(0, 255)
        elif kind == "cut":
            del out[at : at + rng.randint(1, 64)]
        elif kind == "insert":
            out[at:at] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 32)))
        else:
            out = out[:at]
    return bytes(out)


def fuzz_images(
    count: int, rng: random.Random, folder: Path, escapes: list[str]
) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    base = seeds()
    for index in range(count):
        suffix = rng.choice(sorted(base))
        data = (
            bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 512)))
            if index % 10 == 0
            else mutate(rng, base[suffix])
        )
        path = folder / f"f{index % 50}.{suffix}"
        path.write_bytes(data)
        try:
            probe_image(path, max_pixels=1_000_000)
            open_image(path, max_pixels=1_000_000)
            counts["ok"] += 1
        except BrushworkError:
            counts["refused"] += 1
        except Exception:
            counts["escape"] += 1
            escapes.append(f"image {suffix} #{index}: {traceback.format_exc(limit=3)}")
    return counts


def hostile(rng: random.Random) -> object:
    choices = [
        None,
        True,
        False,
        0,
        -1,
        1,
        2**70,
        -(2**70),
        0.5,
        -0.0,
        float("nan"),
        float("inf"),
        -float("inf"),
        1e309,
        "",
        "none",
        "relu1_1",
        "relu9_9",
        "adam",
        "max",
        "luminance",
        "auto",
        "bfloat16",
        "float16",
        "-1",
        "x" * 300,
        "\x00",
        (),
        ("relu1_1",),
        ("relu1_1", "bogus"),
        (1, 2),
        (0,),
        (float("nan"),),
        [1, 2],
        {"a": 1},
        b"bytes",
    ]
    return rng.choice(choices)


def options_classes() -> list[type]:
    from brushwork.export import ExportOptions
    from brushwork.methods import REGISTRY
    from brushwork.stylizer import Controls
    from brushwork.training import get_objective, trainers
    from brushwork.training.trainer import RunOptions

    classes = [Controls, RunOptions, ExportOptions]
    classes += [entry.load().options_class for entry in REGISTRY.values()]
    classes += [get_objective(name).config_class for name in trainers()]
    return list(dict.fromkeys(classes))


def fuzz_options(count: int, rng: random.Random, escapes: list[str]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    classes = options_classes()
    for index in range(count):
        cls = rng.choice(classes)
        specs = fields_of(cls)
        values = {s.name: "x" for s in specs if s.required}
        for _ in range(rng.randint(1, 3)):
            values[rng.choice(specs).name] = hostile(rng)
        try:
            cls(**values).validate()
            counts["ok"] += 1
        except BrushworkError:
            counts["refused"] += 1
        except Exception:
            counts["escape"] += 1
            escapes.append(f"{cls.__name__} {values} #{index}: {traceback.format_exc(limit=3)}")
    return counts


class ReachedWork(BaseException):
    """Raised by the stand-ins of the expensive parts (not an Exception: a batch's
    per-item error handling must not swallow it)."""


def fuzz_cli(
    count: int, rng: random.Random, folder: Path, escapes: list[str]
) -> collections.Counter[str]:
    from brushwork.cli import main
    from brushwork.cli.stylize import stylize_parser
    from brushwork.methods import feedforward, optimization

    def reached(*args: object, **kwargs: object) -> None:
        raise ReachedWork

    brushwork.encoders.cached_vgg19 = reached  # type: ignore[assignment]
    optimization.optimize_image = reached  # type: ignore[assignment]
    feedforward.FeedForwardMethod.prepare = reached  # type: ignore[assignment,method-assign]
    content, style = folder / "c.png", folder / "s.png"
    to_pil(smooth(32, 32, 1)).save(content)
    to_pil(smooth(32, 32, 2)).save(style)
    flags = {
        m: sorted(
            {
                o
                for a in stylize_parser(m)._actions
                for o in a.option_strings
                if o.startswith("--") and o not in ("--help", "--force")
            }
        )
        for m in ("gatys", "adain", "styleswap")
    }
    texts = [
        "",
        ",",
        ",,",
        "none",
        "8G",
        "-1",
        "0",
        "1",
        "3",
        "0.5",
        "nan",
        "inf",
        "1e309",
        "#-1-1-1",
        "relu1_1,",
        "relu4_1,relu9_9",
        "x@y",
        "a:b",
        str(2**70),
        "-" * 5,
        "luminance",
        "adam",
        "bfloat16",
        "float16",
        "\u00e9",
        str(content),
    ]
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        method = rng.choice(sorted(flags))
        argv = [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(folder / "o.png"),
            "-m",
            method,
            "-q",
        ]
        for flag in rng.sample(flags[method], rng.randint(1, 3)):
            argv.append(f"{flag}={rng.choice(texts)}")
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except ReachedWork:
            counts["ok"] += 1
            continue
        except Exception:
            counts["escape"] += 1
            escapes.append(f"{argv}: {traceback.format_exc(limit=3)}")
            continue
        lines = err.getvalue().strip().splitlines()
        if code == 2 and len(lines) == 1 and lines[0].startswith("brushwork: error: "):
            counts["refused"] += 1
        elif code == 0:
            counts["ok"] += 1
        else:
            counts["escape"] += 1
            escapes.append(f"{argv}: exit {code}, stderr {lines}")
    return counts


# ----------------------------------------------------------------------------- output paths


def _workspace(root: Path) -> Path:
    """Inputs, the user's files and a current folder ``project/sub`` under ``root``."""
    for name in ("in/photos", "in/styles", "in/clip", "unrelated", "project/sub"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(("in/photos/a.png", "in/styles/s.png", "in/clip/000001.png")):
        to_pil(smooth(32, 32, index)).save(root / name)
    (root / "unrelated/notes.txt").write_text("the user's notes")
    (root / "project/sub/keep.txt").write_text("the user's work")
    (root / "existing.png").write_bytes(b"an existing file")
    link = root / "link.png"
    if not link.is_symlink():
        link.symlink_to(root / "in/photos/a.png")
    return root / "project/sub"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _output_paths(root: Path) -> list[str]:
    return [
        str(root / "in/photos/a.png"),
        str(root / "in/photos"),
        str(root / "in/clip"),
        ".",
        "..",
        "../..",
        str(root),
        str(root / "unrelated"),
        str(root / "existing.png"),
        str(root / "link.png"),
        "new.png",
        "new",
        "new/",
        "missing/folder/out.png",
        "x" * 300 + ".png",
        "",
        "/",
        "out.mp4",
        "model.onnx",
        str(root / "unrelated/notes.txt"),
    ]


def _command(rng: random.Random, root: Path, out: str) -> list[str]:
    photos, style, clip = root / "in/photos", root / "in/styles/s.png", root / "in/clip"
    image = str(photos / "a.png")
    command = rng.choice(
        [
            ["stylize", image, str(style), "-o", out, "-q"],
            ["stylize", image, str(style), "-o", out, "-m", "adain", "-q"],
            ["depth", image, "-o", out, "--side", "32"],
            ["export", "wct", "-o", out, "--levels", "relu1_1"],
            ["export", "adain", "-o", out],
            ["video", str(clip), str(style), "-o", out, "-q"],
            ["batch", str(photos), "--style", str(style), "-o", out, "-q"],
            ["batch", "--pairs", image, "-o", out, "--manifest", out, "-q"],
            ["train", "adain", "--content-dir", str(photos), "--style-dir", str(style.parent)],
            ["demo", "--out", out, "--size", "16"],
        ]
    )
    if command[0] == "train":
        command += ["--out", out, "-q"]
    return command


def _command_flags(argv: list[str]) -> list[str]:
    from brushwork.batch import batch_parser
    from brushwork.cli.stylize import stylize_parser
    from brushwork.cli.train import train_parser
    from brushwork.video.cli import video_parser

    parsers = {
        "stylize": lambda: stylize_parser("adain" if "adain" in argv else "gatys"),
        "video": lambda: video_parser("adain"),
        "batch": lambda: batch_parser("adain"),
        "train": lambda: train_parser("adain"),
    }
    if argv[0] not in parsers:
        return []
    skip = {"--help", "--force", "--engine", "--ray-address", "--output", "--out"}
    return sorted(
        {
            o
            for action in parsers[argv[0]]()._actions
            for o in action.option_strings
            if o.startswith("--") and o not in skip
        }
    )


def fuzz_outputs(
    count: int, rng: random.Random, folder: Path, escapes: list[str]
) -> collections.Counter[str]:
    """Every command that writes, with hostile output paths and flags (see the module
    docstring); the expensive parts are stand-ins that count runs that passed every check."""
    import brushwork.training.trainer
    from brushwork.cli import main
    from brushwork.methods import feedforward, optimization

    def reached(*args: object, **kwargs: object) -> None:
        raise ReachedWork

    brushwork.encoders.cached_vgg19 = reached  # type: ignore[assignment]
    brushwork.encoders.load_vgg19 = reached  # type: ignore[assignment]
    optimization.optimize_image = reached  # type: ignore[assignment]
    feedforward.FeedForwardMethod.prepare = reached  # type: ignore[assignment,method-assign]
    brushwork.training.trainer.train = reached  # type: ignore[assignment]
    root = folder / "outputs"
    cwd = _workspace(root)
    before = _files(root)
    texts = ["0", "-1", "1", "nan", "inf", "1e308", "60000", "", "x" * 300, str(root), "."]
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        out = rng.choice(_output_paths(root))
        argv = _command(rng, root, out)
        flags = _command_flags(argv)
        for flag in rng.sample(flags, min(len(flags), rng.randint(0, 3))):
            argv.append(f"{flag}={rng.choice(texts)}")
        force = rng.random() < 0.5
        outcome = _outcome(main, [*argv, *(["--force"] if force else [])], cwd, escapes)
        after = _files(root)
        replaceable = (
            str(Path(out).relative_to(root)) if force and out.startswith(str(root)) else ""
        )
        lost = [n for n, data in before.items() if after.get(n) != data and n != replaceable]
        if lost:
            outcome = "escape"
            escapes.append(f"{argv}: lost or changed {lost}")
        counts[outcome] += 1
        shutil.rmtree(root)
        cwd = _workspace(root)
    return counts


def _outcome(main: Any, argv: list[str], cwd: Path, escapes: list[str]) -> str:
    err = io.StringIO()
    try:
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            code = main(argv)
    except ReachedWork:
        return "ok"
    except SystemExit as exit_:  # argparse's --help
        return "ok" if exit_.code == 0 else "escape"
    except Exception:
        escapes.append(f"{argv}: {traceback.format_exc(limit=3)}")
        return "escape"
    lines = err.getvalue().strip().splitlines()
    if code == 2 and len(lines) == 1 and lines[0].startswith("brushwork: error: "):
        return "refused"
    if code == 0:
        return "ok"
    escapes.append(f"{argv}: exit {code}, stderr {lines}")
    return "escape"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--options", type=int, default=5000)
    parser.add_argument("--cli", type=int, default=2000)
    parser.add_argument("--outputs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    escapes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {
            "image loader": fuzz_images(args.images, rng, folder, escapes),
            "Options.validate": fuzz_options(args.options, rng, escapes),
            "stylize command line": fuzz_cli(args.cli, rng, folder, escapes),
            "output paths": fuzz_outputs(args.outputs, rng, folder, escapes),
        }
    for target, counts in results.items():
        print(
            f"{target:<22} {sum(counts.values()):>6} inputs: {counts['ok']} ok, "
            f"{counts['refused']} refused with a one-line error, {counts['escape']} escapes"
        )
    for escape in escapes[:5]:
        print("ESCAPE:", escape, file=sys.stderr)
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
