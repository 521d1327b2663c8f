"""Does a depth loss keep the depth layout, or does it fool the estimator?

A stylization optimized against a depth estimator at one input size is re-measured with the
estimator at other sizes (160, 224, 288 px): a real gain survives, an adversarial pattern
does not. Two parts, on bundled images only:

* ``gatys``: astronaut × strokes at 192 px, 100 L-BFGS steps, ``depth_weight`` 0 and 1, and
  1 with the estimator shown a 112 px version (its input side, patched for the run);
* ``adain``: 4 scikit-image photos × 2 bundled styles at 256 px through the three bundled
  decoders (adain-depth was trained with the depth loss on 256 px crops).

Prints the scale-and-shift-invariant depth error (lower = the content's layout is kept);
``None`` is the size the optimization saw. Every stylization runs in float32
(``precision="float32"``: ``auto`` would pick bfloat16 on CPUs with bfloat16 units). Usage:
``python -m benchmarks.depth_robustness [--part gatys|adain|both]``. Takes a few minutes on a
2-core CPU; ``--gatys-size 64 --iterations 2 --adain-size 64 --photos 1`` checks the script in
seconds.
"""

from __future__ import annotations

import argparse
import time

import torch
from PIL import Image
from skimage import data

from benchmarks.harness import machine
from brushwork import api
from brushwork.depth.estimator import load_estimator, predict_depth
from brushwork.examples import content_image, style_path
from brushwork.image import to_tensor
from brushwork.losses import scale_shift_invariant_loss
from brushwork.methods import gatys

SIDES = (160, 224, 288)


def depth_error(
    net: torch.nn.Module, output: torch.Tensor, content: torch.Tensor, side: int | None
) -> float:
    return float(
        scale_shift_invariant_loss(
            predict_depth(net, output, side), predict_depth(net, content, side)
        )
    )


def gatys_part(net: torch.nn.Module, size: int, iterations: int) -> None:
    content = content_image("astronaut").resize((size, size))
    c = to_tensor(content)
    original = gatys.depth_input
    print(
        "| depth weight | estimator input | as optimized | "
        + " | ".join(f"{s} px" for s in SIDES)
        + " | seconds |"
    )
    print("|---|---|---|" + "---|" * len(SIDES) + "---|")
    for weight, side in ((0.0, None), (1.0, None), (1.0, 112)):
        if side is not None:
            gatys.depth_input = lambda image, s=side: original(image, s)  # type: ignore[misc]
        started = time.perf_counter()
        try:
            done = api.run(
                content,
                style_path("strokes"),
                "gatys",
                size=size,
                iterations=iterations,
                depth_weight=weight,
                precision="float32",
            )
        finally:
            gatys.depth_input = original
        seconds = time.perf_counter() - started
        o = to_tensor(done.image)
        seen = depth_error(net, o, c, side)  # images up to 224 px pass depth_input unchanged
        others = [depth_error(net, o, c, s) for s in SIDES]
        print(
            f"| {weight:g} | {side or f'own size ({size})'} | {seen:.3f} | "
            + " | ".join(f"{v:.3f}" for v in others)
            + f" | {seconds:.0f} |"
        )


def adain_part(net: torch.nn.Module, size: int, count: int) -> None:
    photos = {
        name: Image.fromarray(getattr(data, name)())
        for name in ("astronaut", "coffee", "chelsea", "rocket")[:count]
    }
    models = ("adain", "adain-laplacian", "adain-depth")
    errors: dict[tuple[str, int], list[float]] = {}
    for photo in photos.values():
        c = to_tensor(photo)
        for style in ("strokes", "mosaic")[: 2 if count > 1 else 1]:
            for model in models:
                o = to_tensor(
                    api.run(
                        photo,
                        style_path(style),
                        "adain",
                        size=size,
                        model=model,
                        precision="float32",
                    ).image
                )
                cc = torch.nn.functional.interpolate(
                    c, size=o.shape[-2:], mode="bilinear", antialias=True
                )
                for side in SIDES:
                    errors.setdefault((model, side), []).append(depth_error(net, o, cc, side))
    print("| decoder | " + " | ".join(f"estimator at {s} px" for s in SIDES) + " |")
    print("|---|" + "---|" * len(SIDES))
    for model in models:
        means = [sum(errors[model, s]) / len(errors[model, s]) for s in SIDES]
        print(f"| {model} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("gatys", "adain", "both"), default="both")
    parser.add_argument("--gatys-size", type=int, default=192, help="Gatys output size")
    parser.add_argument("--iterations", type=int, default=100, help="Gatys L-BFGS steps")
    parser.add_argument("--adain-size", type=int, default=256, help="AdaIN output size")
    parser.add_argument(
        "--photos",
        type=int,
        default=4,
        choices=range(1, 5),
        help="photos of the AdaIN part (1: one photo and one style)",
    )
    args = parser.parse_args()
    print(f"{machine()}, float32")
    net = load_estimator(None)
    if args.part in ("gatys", "both"):
        gatys_part(net, args.gatys_size, args.iterations)
    if args.part in ("adain", "both"):
        adain_part(net, args.adain_size, args.photos)


if __name__ == "__main__":
    main()
