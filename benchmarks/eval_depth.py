"""Evaluate the depth estimator against the trivial baselines on held-out depth pairs.

Parts (from ``brushwork.training.depth.split_pairs``, the split the bundled model was
trained with): NYU Depth v2 validation (scenes never trained on), NYU raw Kinect frames
(``heldout``), every outdoor pair, and each outdoor batch on its own. The model runs at its
training scale (``predict_depth``'s default: shorter side 224, prediction resized back); the
baselines are ``constant`` (one depth everywhere) and ``ramp`` (far at the top, near at the
bottom). Every prediction is aligned to the ground truth per image (least-squares scale and
shift in inverse depth) and scored in depth space by ``brushwork.depth.metrics.depth_errors``:
AbsRel (lower is better) and δ<1.25 (higher is better), means over the images of the part.
The last column counts the images on which the model's AbsRel is below each baseline's.

    python -m benchmarks.eval_depth                 # ../shared/depth, writes BENCHMARKS.md
    python -m benchmarks.eval_depth --data DIR --model runs/depth/model.safetensors --no-write
    python -m benchmarks.eval_depth --limit 4 --no-write   # check the script in seconds
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import (
    ROOT,
    arguments,
    machine,
    markdown_table,
    recorded_command,
    write_section,
)
from brushwork.depth.estimator import TRAINING_SIDE, load_estimator, predict_depth
from brushwork.depth.metrics import BASELINES, baseline, depth_errors
from brushwork.errors import BrushworkError
from brushwork.training.depth import load_pairs, read_pairs, split_pairs

DEFAULT_DATA = ROOT.parent / "shared" / "depth"
PREDICTORS = ("model", *BASELINES)


def _parts(loaded: list, parts: dict[str, str]) -> list[tuple[str, list[int]]]:
    """(part name, indices into ``loaded``), in the order of the table."""

    def where(test) -> list[int]:
        return [i for i, (pair, _, _) in enumerate(loaded) if test(pair)]

    out = [
        ("NYU validation (held-out scenes)", where(lambda p: parts[p.stem] == "val")),
        ("NYU raw Kinect (heldout)", where(lambda p: parts[p.stem] == "heldout")),
        ("outdoor, all", where(lambda p: parts[p.stem] == "outdoor")),
    ]
    batches = sorted({pair.batch for pair, _, _ in loaded if parts[pair.stem] == "outdoor"})
    out += [
        (f"outdoor: {batch}", where(lambda p, b=batch: parts[p.stem] == "outdoor" and p.batch == b))
        for batch in batches
    ]
    return [(name, idx) for name, idx in out if idx]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help="folder with pairs.csv, rgb/ and depth/ (default ../shared/depth)",
    )
    parser.add_argument(
        "--model", default=None, help="bundled estimator name or checkpoint path (default: bundled)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="evaluate only the first N pairs of each part (a quick check; implies --no-write)",
    )
    args = parser.parse_args()
    if args.limit is not None:
        args.no_write = True

    data = Path(args.data).expanduser()
    if not data.is_dir():
        print(f"eval_depth: depth data folder {data} not found (pass --data DIR)", file=sys.stderr)
        sys.exit(2)
    try:
        pairs = read_pairs(data)
        net = load_estimator(args.model)
    except BrushworkError as error:
        print(f"eval_depth: {error}", file=sys.stderr)
        sys.exit(2)

    start = time.perf_counter()
    parts = split_pairs(pairs)
    wanted = [p for p in pairs if parts[p.stem] in ("val", "heldout", "outdoor")]
    if args.limit is not None:
        taken: dict[str, int] = {}
        kept = []
        for p in wanted:
            taken[parts[p.stem]] = taken.get(parts[p.stem], 0) + 1
            if taken[parts[p.stem]] <= args.limit:
                kept.append(p)
        wanted = kept
    loaded, skipped = load_pairs(wanted, warn=False)
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)

    # scores[predictor][i] = {"absrel", "delta1"} of image i
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in PREDICTORS}
    with torch.inference_mode():
        for _pair, rgb, target in loaded:
            image = rgb[None].float() / 255.0
            target = target[None]
            predictions = {"model": predict_depth(net, image)}
            predictions.update((name, baseline(name, target.shape)) for name in BASELINES)
            for name, prediction in predictions.items():
                scores[name].append(depth_errors(prediction, target))
    seconds = time.perf_counter() - start

    rows = []
    wins: dict[str, dict[str, int]] = {}
    sizes: dict[str, int] = {}
    for part, idx in _parts(loaded, parts):
        sizes[part] = len(idx)
        means = {
            name: {
                k: float(np.mean([scores[name][i][k] for i in idx])) for k in ("absrel", "delta1")
            }
            for name in PREDICTORS
        }
        wins[part] = {
            b: sum(scores["model"][i]["absrel"] < scores[b][i]["absrel"] for i in idx)
            for b in BASELINES
        }
        rows.append(
            [
                part,
                len(idx),
                *(f"{means[n]['absrel']:.3f}" for n in PREDICTORS),
                *(f"{means[n]['delta1']:.3f}" for n in PREDICTORS),
                " / ".join(f"{wins[part][b]}/{len(idx)}" for b in BASELINES),
            ]
        )
    header = [
        "part",
        "pairs",
        *(f"AbsRel ↓ {n}" for n in PREDICTORS),
        *(f"δ<1.25 ↑ {n}" for n in PREDICTORS),
        "model beats constant / ramp (AbsRel, images)",
    ]
    table = markdown_table(header, rows)
    print(table)
    val = next((p for p in wins if p.startswith("NYU validation")), None)
    if val is not None:
        n = sizes[val]
        print(
            f"\nNYU validation: the model's AbsRel is lower than the constant baseline's on "
            f"{wins[val]['constant']}/{n} images and lower than the ramp's on "
            f"{wins[val]['ramp']}/{n}."
        )
    print(
        f"{machine()}; {len(loaded)} pairs evaluated in {seconds:.1f} s"
        + (f"; {len(skipped)} skipped" if skipped else "")
    )

    if not args.no_write:
        command = recorded_command(__file__)
        model = args.model or "depth (bundled)"
        write_section(
            "depth",
            (
                "## Depth estimator: held-out NYU scenes and outdoor pairs\n\n"
                f"`{command.strip()}` on {machine()}; model {model}, data "
                f"{'../shared/depth' if data.resolve() == DEFAULT_DATA.resolve() else data}, "
                f"{len(loaded)} pairs in {seconds:.0f} s.\n\n" + table + "\n\n"
                f"Protocol: the model runs at its training scale (shorter side {TRAINING_SIDE} px, "
                "prediction resized back); model and baselines (constant depth; ramp = far at the "
                "top, near at the bottom) are each aligned per image by least-squares scale and "
                "shift in inverse depth (clamped at the farthest ground-truth point), then AbsRel "
                "and δ<1.25 are computed in depth space over the valid pixels (NYU border cropped, "
                "metric depths beyond 70 m masked) and averaged over the images; NYU validation = "
                "the scene blocks `split_pairs` held out of training, the other parts were never "
                "trained on.\n"
            ),
        )


if __name__ == "__main__":
    main()
