"""The video figures in docs/: the example clip stylized with and without temporal
consistency, side by side, and a contact strip of frames with their flicker.

    python scripts/make_example_clip.py     # docs/video/pan.mp4, if it is not there
    python scripts/video_sheet.py           # → docs/video/pan-adain.mp4, docs/video_strip.png

``pan-adain.mp4``: input | AdaIN frame by frame | AdaIN with texture tracking (brushwork's
default), 256 px each, the bundled ``strokes`` style. ``video_strip.png``: rows input,
per-frame, temporal, and for both stylizations the flicker of each frame,
|O_t − warp(O_t−1)| where the input's flow is reliable (grey: unreliable; brighter = more
change), from the same flow and mask as the warping error (Farnebäck flow of the input).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from brushwork.examples import style_path
from brushwork.recording import save_animation
from brushwork.video.flow import FarnebackFlow, FramePair, flow_tensor, gray, warp
from brushwork.video.io import read_frames, scan
from brushwork.video.runner import stylize_video

ROOT = Path(__file__).resolve().parents[1]
LABEL = 18


def stylized(source: Path, size: int, temporal: bool) -> list[np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "frames"
        stylize_video(
            source,
            style_path("strokes"),
            out,
            "adain",
            size=size,
            temporal=temporal,
            precision="float32",
        )
        return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(out.glob("*.png"))]


def flicker(frames: list[np.ndarray], pairs: list[FramePair]) -> list[np.ndarray]:
    """|O_t − warp(O_t−1)| per pixel (×4, grey where unreliable); the first frame blank."""
    maps = [np.full_like(frames[0], 128)]
    for t in range(1, len(frames)):
        current = torch.from_numpy(frames[t].copy()).permute(2, 0, 1)[None].float() / 255
        previous = torch.from_numpy(frames[t - 1].copy()).permute(2, 0, 1)[None].float() / 255
        warped = warp(previous, flow_tensor(pairs[t - 1].backward))
        change = (current - warped).abs().mean(1)[0].numpy()
        value = np.clip(change * 4 * 255, 0, 255).astype(np.uint8)
        shown = np.where(pairs[t - 1].mask > 0, value, 128).astype(np.uint8)
        maps.append(np.stack([shown] * 3, -1))
    return maps


def labelled(row: list[np.ndarray], text: str) -> Image.Image:
    strip = Image.fromarray(np.concatenate(row, 1))
    canvas = Image.new("RGB", (strip.width, strip.height + LABEL), "white")
    canvas.paste(strip, (0, LABEL))
    ImageDraw.Draw(canvas).text((4, 3), text, fill="black")
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "docs" / "video" / "pan.mp4")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--video", type=Path, default=ROOT / "docs" / "video" / "pan-adain.mp4")
    parser.add_argument("--strip", type=Path, default=ROOT / "docs" / "video_strip.png")
    parser.add_argument("--columns", type=int, nargs="+", default=[1, 16, 32, 48, 63])
    args = parser.parse_args()
    torch.set_num_threads(1)
    per_frame = stylized(args.clip, args.size, temporal=False)
    temporal = stylized(args.clip, args.size, temporal=True)
    height, width = per_frame[0].shape[:2]
    info = scan(args.clip)
    inputs = list(read_frames(info, (width, height)))
    side = [
        np.concatenate([a, b, c], 1) for a, b, c in zip(inputs, per_frame, temporal, strict=True)
    ]
    save_animation(side, args.video, fps=float(info.rate), force=True)
    greys = [gray(f) for f in inputs]
    pairs = [
        FramePair.between(greys[t - 1], greys[t], FarnebackFlow()) for t in range(1, len(greys))
    ]
    rows = [
        (f"input ({args.clip.name})", inputs),
        ("AdaIN, frame by frame (--no-temporal)", per_frame),
        ("AdaIN, texture tracking (default)", temporal),
        ("flicker, frame by frame: |O_t - warp(O_t-1)| x4", flicker(per_frame, pairs)),
        ("flicker, texture tracking", flicker(temporal, pairs)),
    ]
    sheet = [
        labelled(
            [frames[c] for c in args.columns],
            f"{text}; frames {', '.join(str(c + 1) for c in args.columns)}",
        )
        for text, frames in rows
    ]
    canvas = Image.new("RGB", (sheet[0].width, sum(s.height for s in sheet)), "white")
    top = 0
    for part in sheet:
        canvas.paste(part, (0, top))
        top += part.height
    canvas.save(args.strip, optimize=True)
    for path in (args.video, args.strip):
        print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
