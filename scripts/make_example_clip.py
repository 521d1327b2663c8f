"""Make the example video brushwork ships: a slow pan and zoom over a bundled photo.

    python scripts/make_example_clip.py                 # → docs/video/pan.mp4

The photo is scikit-image's ``astronaut`` (public domain, NASA; bundled with scikit-image).
A 16:9 window moves diagonally across it while zooming in by 15 %, sampled with bicubic
interpolation from the full-resolution photo: every frame is an exact affine warp of the
photo, so the clip has smooth, known motion and no flicker of its own (its warping error is
the floor a stylization can reach). H.264, 24 frames per second, no audio.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from brushwork.examples import content_image
from brushwork.recording import save_animation

ROOT = Path(__file__).resolve().parents[1]


def frames(photo: np.ndarray, width: int, height: int, count: int) -> list[np.ndarray]:
    """``count`` frames of a window (``width`` × ``height`` output pixels) panning from the
    photo's upper left to its lower right while zooming in."""
    side = photo.shape[1]
    out = []
    for index in range(count):
        t = index / max(1, count - 1)
        zoom = 1.0 + 0.15 * t  # output pixels per window pixel, relative to the start
        view = 0.62 * side / zoom  # window width in photo pixels
        scale = width / view
        left = 0.05 * side + t * (side - view - 0.1 * side)
        top = 0.08 * side + t * (side - view * height / width - 0.16 * side)
        matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], np.float64)
        out.append(
            cv2.warpAffine(
                photo, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "video" / "pan.mp4")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    photo = np.asarray(content_image("astronaut"))
    clip = frames(photo, args.width, args.height, round(args.seconds * args.fps))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_animation(clip, args.out, fps=args.fps, force=True)
    print(f"{args.out} ({len(clip)} frames, {args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
