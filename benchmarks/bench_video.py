"""Video: flicker (warping error) and speed of every temporal option, written as the
``video`` section of BENCHMARKS.md.

    python -m benchmarks.bench_video                     # both clips, all rows, fps table
    python -m benchmarks.bench_video --quick             # fewer frames, for a smoke run
    python -m benchmarks.bench_video --temporal-decoder runs/adain-temporal/model.safetensors

Quality, per clip (``../shared/data/video/cutBunny.mp4`` when present, and the project's
``docs/video/pan.mp4``, made by ``scripts/make_example_clip.py``), at ``--size`` px:

* the warping error of Lai et al. 2018 (:class:`brushwork.metrics.WarpingError`) with the
  flow and occlusion mask of the *input* frames, from OpenCV's Farnebäck flow (the temporal
  methods use DIS, so no method is scored with its own flow): for the input itself (the
  floor), per-frame stylization (``temporal=False``) and each temporal option;
* the mean per-frame content and style distances of :func:`brushwork.metrics.distances`
  (content: relu4_1 relative error to the frame; style: mean/std at relu1_1..relu4_1 to the
  style image), so that flicker is not traded for a washed-out style; "style vs per-frame"
  is the change of the style distance against the method's per-frame row.

Speed: seconds per stylized frame (flow, stylization, saving the frame; decoding and
encoding excluded) and fps, at 256 and 512 px, per method, on the first frames of the pan.
Everything runs through :func:`brushwork.stylize_video` with the pretrained VGG-19.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    ROOT,
    arguments,
    machine,
    markdown_table,
    merge_json,
    recorded_command,
    write_section,
)
from brushwork.encoders import cached_vgg19
from brushwork.examples import style_path
from brushwork.image import load_image
from brushwork.metrics import Reference, WarpingError, distances
from brushwork.video.flow import FarnebackFlow, FramePair, flow_tensor, gray, warp
from brushwork.video.io import read_frames, scan
from brushwork.video.runner import stylize_video

BUNNY = ROOT.parent / "shared" / "data" / "video" / "cutBunny.mp4"
PAN = ROOT / "docs" / "video" / "pan.mp4"
STYLE = "strokes"


def rows_for(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, method, options) of every quality row."""
    gatys = {
        "iterations": args.iterations,
        "later_iterations": args.later_iterations,
        "max_frames": args.gatys_frames,
    }
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("adain, per frame", "adain", {"temporal": False}),
    ]
    rows += [(f"adain, texture tracking, blend {b:g}", "adain", {"blend": b}) for b in args.blends]
    if args.temporal_decoder:
        rows.append(
            (
                "adain, temporal decoder",
                "adain",
                {"temporal": False, "model": args.temporal_decoder},
            )
        )
        rows.append(
            (
                "adain, temporal decoder + texture tracking",
                "adain",
                {"model": args.temporal_decoder, "blend": args.blends[0]},
            )
        )
    if args.gatys:
        rows += [
            (
                "gatys, per frame",
                "gatys",
                {"temporal": False, "iterations": args.iterations, "max_frames": args.gatys_frames},
            ),
            ("gatys, warped start", "gatys", {**gatys, "temporal_weight": 0.0}),
        ]
        rows += [
            (f"gatys, warped start + temporal loss {w:g}", "gatys", {**gatys, "temporal_weight": w})
            for w in args.weights
        ]
        if args.long_term:
            rows.append(
                (
                    f"gatys, + long-term 1,2,4 (weight {args.weights[0]:g})",
                    "gatys",
                    {**gatys, "temporal_weight": args.weights[0], "temporal_frames": (1, 2, 4)},
                )
            )
    return rows


def clip_frames(path: Path, size: int, count: int) -> list[torch.Tensor]:
    """The input frames at the size the runs use (longest side ``size``)."""
    from brushwork.stylizer import scaled_size
    from brushwork.video.io import even

    info = scan(path)
    width, height = scaled_size(*info.size, size)
    width, height = even(width), even(height)
    return [
        torch.from_numpy(f.copy()).permute(2, 0, 1)[None].float() / 255
        for f in read_frames(info, (width, height), count)
    ]


def measure(
    frames: list[torch.Tensor],
    inputs: list[torch.Tensor],
    flows: list[FramePair],
    encoder: Any,
    style: Reference,
) -> dict[str, float]:
    """Warping error and mean content/style distances of a stylized clip."""
    inputs = inputs[: len(frames)]
    error = WarpingError()
    for t in range(1, len(frames)):
        pair = flows[t - 1]
        error.add(
            frames[t], warp(frames[t - 1], flow_tensor(pair.backward)), torch.from_numpy(pair.mask)
        )
    content, styled = [], []
    for frame, source in zip(frames, inputs, strict=True):
        d = distances(frame, Reference.of(source, encoder), style, encoder, ssim=False)
        content.append(d["content"])
        styled.append(d["style"])
    return {
        "warping_error": error.value,
        "content": float(np.mean(content)),
        "style": float(np.mean(styled)),
    }


def run_clip(path: Path, args: argparse.Namespace, encoder: Any) -> list[dict[str, Any]]:
    from PIL import Image

    inputs = clip_frames(path, args.size, args.frames)
    greys = [gray(f) for f in inputs]
    metric = FarnebackFlow()
    flows = [FramePair.between(greys[t - 1], greys[t], metric) for t in range(1, len(greys))]
    style_image = load_image(style_path(STYLE), size=args.size)
    style = Reference.of(style_image, encoder)
    floor = WarpingError()
    for t in range(1, len(inputs)):
        floor.add(
            inputs[t],
            warp(inputs[t - 1], flow_tensor(flows[t - 1].backward)),
            torch.from_numpy(flows[t - 1].mask),
        )
    results = [
        {
            "clip": path.name,
            "row": "input (floor)",
            "warping_error": floor.value,
            "frames": len(inputs),
        }
    ]
    if args.gatys and args.gatys_frames < args.frames:
        short = WarpingError()
        short.errors = floor.errors[: args.gatys_frames - 1]
        results.append(
            {
                "clip": path.name,
                "row": f"input (floor), first {args.gatys_frames}",
                "warping_error": short.value,
                "frames": args.gatys_frames,
            }
        )
    for label, method, options in rows_for(args):
        if args.only and not re.search(args.only, label):
            continue
        options = {"max_frames": args.frames, **options}
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "frames"
            start = time.perf_counter()
            done = stylize_video(
                path, style_path(STYLE), out, method, size=args.size, precision="float32", **options
            )
            seconds = time.perf_counter() - start
            frames = [
                torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).copy())
                .permute(2, 0, 1)[None]
                .float()
                / 255
                for p in sorted(out.glob("*.png"))
            ]
        row = {
            "clip": path.name,
            "row": label,
            "method": method,
            "frames": len(frames),
            **measure(frames, inputs, flows, encoder, style),
            "seconds_per_frame": done.frame_seconds,
            "seconds": seconds,
            "options": {k: v for k, v in options.items()},
        }
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def speed(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seconds per stylized frame per method and size on the pan clip."""
    from brushwork.models import for_method

    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("adain, per frame", "adain", {"temporal": False}),
        ("adain, texture tracking", "adain", {}),
    ]
    if all(m.path.is_file() for m in for_method("wct")):
        cases.append(("wct, texture tracking", "wct", {}))
    if args.gatys:
        cases.append(
            (
                f"gatys, {args.later_iterations} steps per frame, temporal loss",
                "gatys",
                {"iterations": args.later_iterations, "temporal_weight": args.weights[0]},
            )
        )
    found = []
    for size in args.fps_sizes:
        for label, method, options in cases:
            count = args.fps_frames if method != "gatys" else max(2, args.fps_frames // 4)
            with tempfile.TemporaryDirectory() as folder:
                done = stylize_video(
                    PAN,
                    style_path(STYLE),
                    Path(folder) / "frames",
                    method,
                    size=size,
                    max_frames=count + 1,
                    precision="float32",
                    **options,
                )
            row = {
                "size": size,
                "row": label,
                "frames": done.stylized,
                "seconds_per_frame": done.frame_seconds,
                "fps": done.fps,
            }
            print(json.dumps(row), flush=True)
            found.append(row)
    return found


def write(
    args: argparse.Namespace, quality: list[dict[str, Any]], speeds: list[dict[str, Any]]
) -> None:
    header = [
        "clip",
        "row",
        "frames",
        "warping error ↓",
        "content distance",
        "style distance ↓",
        "style vs per-frame",
        "s / frame",
    ]
    table = []
    base: dict[tuple[str, str], float] = {}
    for r in quality:
        if r["row"].endswith("per frame"):
            base[(r["clip"], r["method"])] = r["style"]
    seen = set()
    for r in quality:
        if "style" not in r:
            if (r["clip"], r["row"]) in seen:  # the floor, once per clip and length
                continue
            seen.add((r["clip"], r["row"]))
            table.append(
                [r["clip"], r["row"], r["frames"], f"{r['warping_error']:.5f}", "", "", "", ""]
            )
            continue
        ref = base.get((r["clip"], r["method"]))
        change = (
            ""
            if ref is None or r["row"].endswith("per frame")
            else f"{100 * (r['style'] - ref) / ref:+.1f} %"
        )
        table.append(
            [
                r["clip"],
                r["row"],
                r["frames"],
                f"{r['warping_error']:.5f}",
                f"{r['content']:.3f}",
                f"{r['style']:.3f}",
                change,
                f"{r['seconds_per_frame']:.2f}",
            ]
        )
    fps_table = [
        [f"{r['size']} px", r["row"], f"{r['seconds_per_frame']:.3f}", f"{r['fps']:.2f}"]
        for r in speeds
    ]
    commands: list[str] = []
    for r in [*quality, *speeds]:
        if r.get("command") and r["command"] not in commands:
            commands.append(r["command"])
    made = "; ".join(f"`{c}`" for c in commands) or f"`{recorded_command(__file__)}`"
    note = f" {args.note}" if args.note else ""
    text = f"""## Video: flicker and speed

Made with {made} on {machine()}; `python -m benchmarks.bench_video` alone measures every row
(hours on a 2-core CPU: Gatys takes most of them). Style `{STYLE}` (bundled), {args.size} px
(longest side), float32, the first frames of each clip (the frames column). Gatys:
{args.iterations} L-BFGS steps for the first frame, {args.later_iterations} for each later one
(which starts from the previous output); per-frame Gatys runs {args.iterations} steps on every
frame from the content. Compare each row's warping error with the floor of as many
frames.{note}

Warping error (Lai et al. 2018): mean over frame pairs of Σ M·(O_t − warp(O_t−1))² / (3 Σ M),
images in [0, 1], with the flow and mask M (Ruder et al.'s eq. 6–7) of the *input* frames from
OpenCV's Farnebäck flow (the temporal methods use DIS flow, so none is scored by its own flow).
Content and style distances: `brushwork.metrics.distances`, mean over frames (content: relu4_1
relative error to the frame; style: mean/std at relu1_1..relu4_1 to the style image); "style
vs per-frame" compares with the same method's per-frame row (negative = closer to the style).

{markdown_table(header, table)}

Speed: seconds per stylized frame (optical flow, stylization and saving the frame; decoding and
encoding not counted) and frames per second, on the first frames of `docs/video/pan.mp4`.

{markdown_table(["size", "method", "s / frame", "fps"], fps_table)}
"""
    if not args.no_write:
        write_section("video", text)
    else:
        print(text)


def main() -> None:
    parser = arguments(__doc__, json=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--later-iterations", type=int, default=50)
    parser.add_argument("--gatys-frames", type=int, default=24)
    parser.add_argument("--blends", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--weights", type=float, nargs="+", default=[100.0, 1000.0])
    parser.add_argument("--no-gatys", dest="gatys", action="store_false")
    parser.add_argument("--long-term", action="store_true")
    parser.add_argument("--temporal-decoder", default=None, metavar="PATH")
    parser.add_argument("--clips", nargs="+", default=["bunny", "pan"], choices=["bunny", "pan"])
    parser.add_argument("--fps-sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--fps-frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="6 frames, 10/5 Gatys steps")
    parser.add_argument(
        "--only",
        default=None,
        metavar="REGEX",
        help="measure only the quality rows whose label matches",
    )
    parser.add_argument("--no-speed", dest="speed", action="store_false", help="skip the fps table")
    parser.add_argument(
        "--no-quality", dest="quality", action="store_false", help="skip the warping-error table"
    )
    parser.add_argument("--note", default="", help="a sentence for the section (machine load)")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="write the section from an earlier --json file, measuring nothing",
    )
    args = parser.parse_args()
    if args.quick:
        args.frames, args.iterations, args.later_iterations, args.fps_frames = 6, 10, 5, 2
        args.gatys_frames = 6
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        write(args, saved["quality"], saved["speed"])
        return
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    clips = {"bunny": BUNNY, "pan": PAN}
    quality = []
    for name in args.clips if args.quality else ():
        if not clips[name].is_file():
            print(f"skipping {name}: {clips[name]} not found", file=sys.stderr)
            continue
        quality += run_clip(clips[name], args, encoder)
    speeds = speed(args) if args.speed else []
    for row in [*quality, *speeds]:
        row["command"] = recorded_command(__file__)
    if args.json:
        merge_json(args.json, {"quality": quality, "speed": speeds})
    write(args, quality, speeds)


if __name__ == "__main__":
    main()
