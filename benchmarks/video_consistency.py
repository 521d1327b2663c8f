"""Video that keeps the style: texture tracking against frame-by-frame stylization, frame by
frame, written as the ``video-consistency`` section of BENCHMARKS.md and plotted in
docs/video_consistency.png.

    python -m benchmarks.video_consistency                   # both clips, 64 frames, 256 px
    python -m benchmarks.video_consistency --frames 16 --no-write --no-figure   # a smoke run

For each clip (the project's ``docs/video/pan.mp4`` and ``../shared/data/video/cutBunny.mp4``
when present), its first ``--frames`` frames at ``--size`` px are stylized by AdaIN with the
bundled ``strokes`` style (float32) through :func:`brushwork.stylize_video`, once frame by
frame (``temporal=False``) and once with texture tracking (the default;
:mod:`brushwork.video.tracking`). Each frame gets

* its warping error (Lai et al. 2018; :class:`brushwork.metrics.WarpingError`): the output
  against the previous output warped along the *input*'s Farnebäck flow, where that flow is
  reliable (Ruder et al. 2016, eq. 6-7); the tracker follows DIS flow, so it is not scored
  by its own flow;
* its style distance (:func:`brushwork.metrics.distances`: channel means and deviations at
  relu1_1..relu4_1 against the style's).

The goals: a mean warping error at most half of frame-by-frame's, and a style distance
within 5 % of frame-by-frame's at every frame. The per-frame table is printed; the section
gives the mean and the worst frame of each ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

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

CLIPS = {
    "pan": ROOT / "docs" / "video" / "pan.mp4",
    "bunny": ROOT.parent / "shared" / "data" / "video" / "cutBunny.mp4",
}
STYLE = "strokes"
FIGURE = ROOT / "docs" / "video_consistency.png"


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def stylized(clip: Path, size: int, frames: int, temporal: bool) -> tuple[list[np.ndarray], float]:
    """The stylized frames of a run, and its seconds per frame."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "frames"
        done = stylize_video(
            clip,
            style_path(STYLE),
            out,
            "adain",
            size=size,
            max_frames=frames,
            temporal=temporal,
            precision="float32",
            audio=False,
        )
        images = [np.array(Image.open(p).convert("RGB")) for p in sorted(out.glob("*.png"))]
    return images, done.frame_seconds


def per_frame(
    outputs: list[np.ndarray], inputs: list[np.ndarray], pairs: list[FramePair], style: Reference
) -> dict[str, list[float]]:
    """Each frame's warping error (NaN for the first) and style distance."""
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    errors = [float("nan")]
    for t in range(1, len(outputs)):
        warped = warp(_tensor(outputs[t - 1]), flow_tensor(pairs[t - 1].backward))
        mask = torch.from_numpy(pairs[t - 1].mask)
        errors.append(WarpingError().add(_tensor(outputs[t]), warped, mask))
    styles = []
    for output, source in zip(outputs, inputs, strict=True):
        found = distances(
            _tensor(output), Reference.of(_tensor(source), encoder), style, encoder, ssim=False
        )
        styles.append(found["style"])
    return {"warping_error": errors, "style": styles}


def measure_clip(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both runs of one clip, measured frame by frame."""
    alone, alone_seconds = stylized(CLIPS[name], args.size, args.frames, temporal=False)
    tracked, tracked_seconds = stylized(CLIPS[name], args.size, args.frames, temporal=True)
    height, width = alone[0].shape[:2]
    inputs = list(read_frames(scan(CLIPS[name]), (width, height), len(alone)))
    greys = [gray(f) for f in inputs]
    metric = FarnebackFlow()
    pairs = [FramePair.between(greys[t - 1], greys[t], metric) for t in range(1, len(greys))]
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    style = Reference.of(load_image(style_path(STYLE), size=args.size), encoder)
    return {
        "clip": CLIPS[name].name,
        "size": [width, height],
        "frames": len(alone),
        "per_frame": per_frame(alone, inputs, pairs, style),
        "tracked": per_frame(tracked, inputs, pairs, style),
        "seconds_per_frame": {"per_frame": alone_seconds, "tracked": tracked_seconds},
        "cuts": [t + 1 for t, pair in enumerate(pairs) if pair.cut],
    }


def summary(result: dict[str, Any]) -> dict[str, float]:
    """Means and worst frames of the two ratios (tracked / frame by frame)."""
    alone, tracked = result["per_frame"], result["tracked"]
    errors = np.array(tracked["warping_error"][1:]) / np.array(alone["warping_error"][1:])
    styles = np.array(tracked["style"]) / np.array(alone["style"])
    return {
        "warping_error": float(np.mean(tracked["warping_error"][1:])),
        "warping_error_per_frame": float(np.mean(alone["warping_error"][1:])),
        "warping_ratio": float(np.mean(tracked["warping_error"][1:]))
        / float(np.mean(alone["warping_error"][1:])),
        "warping_ratio_worst": float(errors.max()),
        "warping_ratio_worst_frame": int(errors.argmax()) + 2,
        "style": float(np.mean(tracked["style"])),
        "style_per_frame": float(np.mean(alone["style"])),
        "style_ratio_mean": float(styles.mean()),
        "style_ratio_worst": float(styles.max()),
        "style_ratio_worst_frame": int(styles.argmax()) + 1,
    }


def print_table(name: str, result: dict[str, Any]) -> None:
    alone, tracked = result["per_frame"], result["tracked"]
    print(f"\n{name} ({result['clip']}, {result['size'][0]}x{result['size'][1]} px)")
    print("frame  WE per-frame  WE tracked  ratio   SD per-frame  SD tracked  ratio")
    for t in range(result["frames"]):
        a, b = alone["warping_error"][t], tracked["warping_error"][t]
        ratio = b / a if t else float("nan")
        print(
            f"{t + 1:5d}  {a:12.5f}  {b:10.5f}  {ratio:5.2f}   {alone['style'][t]:12.3f}  "
            f"{tracked['style'][t]:10.3f}  {tracked['style'][t] / alone['style'][t]:5.3f}"
        )


def figure(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Per clip: the warping error per frame, and the style-distance ratio per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5.5 * len(results), 6), squeeze=False)
    for column, result in enumerate(results.values()):
        alone, tracked = result["per_frame"], result["tracked"]
        frames = np.arange(1, result["frames"] + 1)
        top, bottom = axes[0][column], axes[1][column]
        top.plot(frames, alone["warping_error"], label="frame by frame")
        top.plot(frames, tracked["warping_error"], label="texture tracking")
        top.set_title(f"{result['clip']}: warping error")
        top.legend()
        ratio = np.array(tracked["style"]) / np.array(alone["style"])
        bottom.plot(frames, ratio, color="C1")
        bottom.axhline(1.05, color="grey", linestyle="--", linewidth=1)
        bottom.axhline(1.0, color="grey", linewidth=0.5)
        bottom.set_title("style distance, tracking / frame by frame")
        bottom.set_xlabel("frame")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"{path}")


def write(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    rows = []
    for result in results.values():
        found = summary(result)
        rows.append(
            [
                result["clip"],
                result["frames"],
                f"{found['warping_error_per_frame']:.5f}",
                f"{found['warping_error']:.5f}",
                f"{found['warping_ratio']:.2f}",
                f"{found['warping_ratio_worst']:.2f} (frame {found['warping_ratio_worst_frame']})",
                f"{found['style_per_frame']:.3f}",
                f"{found['style']:.3f}",
                f"{found['style_ratio_mean']:.3f}",
                f"{found['style_ratio_worst']:.3f} (frame {found['style_ratio_worst_frame']})",
            ]
        )
    header = [
        "clip",
        "frames",
        "warping error, frame by frame",
        "tracked",
        "ratio of means ↓ (goal ≤ 0.5)",
        "worst frame's ratio",
        "style distance, frame by frame",
        "tracked",
        "mean ratio",
        "worst frame's ratio (goal ≤ 1.05)",
    ]
    text = f"""## Video: texture tracking frame by frame

Made with `{recorded_command(__file__)}` on {machine()}. AdaIN, style `{STYLE}` (bundled),
{args.size} px (longest side), float32, the first frames of each clip; texture tracking is
brushwork's default for feed-forward video (`brushwork.video.tracking`). Warping error as in
the video section (Farnebäck flow of the input); style distance of each frame as there; each
ratio is tracked / frame by frame, the worst over the frames. Per frame:
[docs/video_consistency.png](docs/video_consistency.png) (and printed by the command).

{markdown_table(header, rows)}
"""
    if args.no_write:
        print(text)
    else:
        write_section("video-consistency", text)


def main() -> None:
    parser = arguments(__doc__, json=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--no-figure", dest="figure", action="store_const", const=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    for name in args.clips:
        if not CLIPS[name].is_file():
            print(f"skipping {name}: {CLIPS[name]} not found")
            continue
        results[name] = measure_clip(name, args)
        print_table(name, results[name])
        print(json.dumps({name: summary(results[name])}), flush=True)
    if args.json:
        merge_json(args.json, {"video_consistency": results})
    if args.figure is not None and results:
        figure(results, args.figure)
    write(args, results)


if __name__ == "__main__":
    main()
