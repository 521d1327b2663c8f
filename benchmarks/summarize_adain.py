"""Head-to-head figures from ``compare_adain.py --records FILE``, and how large a depth error is.

* For each decoder against ``adain``: on how many pairs its depth error is lower, the median
  difference, and its median style (mean/std) error as a multiple of ``adain``'s;
  ``adain-depth`` against ``adain-laplacian`` too (comparisons of decoders the records lack
  are left out; rows of other methods, ``compare_adain.py --methods``, are ignored).
* Per content photo, two references for the depth error (SSI against the content's own depth
  map, as ``compare_adain.py`` computes it): a top-to-bottom ramp
  (:func:`brushwork.depth.metrics.baseline`) and the content turned grey.

Usage: ``python -m benchmarks.summarize_adain out/logs/full96.jsonl [--size 512]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from brushwork.depth.estimator import load_estimator, predict_depth
from brushwork.depth.metrics import baseline
from brushwork.image import open_image, resize, to_tensor
from brushwork.losses import scale_shift_invariant_loss

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def head_to_head(records: list[dict], model: str, other: str) -> str:
    wins = sum(r[model]["depth"] < r[other]["depth"] for r in records)
    diff = statistics.median(r[model]["depth"] - r[other]["depth"] for r in records)
    style = statistics.median(
        r[model]["style (mean/std)"] / r[other]["style (mean/std)"] for r in records
    )
    worse = sum(r[model]["style (mean/std)"] > r[other]["style (mean/std)"] for r in records)
    return (
        f"| {model} vs {other} | {wins}/{len(records)} | {diff:+.3f} | {style:.2f}× | "
        f"{worse}/{len(records)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", help="JSON lines written by compare_adain.py --records")
    parser.add_argument("--size", type=int, default=512, help="as compare_adain.py's --size")
    args = parser.parse_args()
    records = [
        json.loads(line) for line in Path(args.records).read_text().splitlines() if line.strip()
    ]
    if not records:
        sys.exit(f"no records in {args.records}")
    print(
        "| decoders | lower depth error on | median depth difference | median style "
        "error ratio | higher style error on |"
    )
    print("|---|---|---|---|---|")
    for model, other in (
        ("adain-laplacian", "adain"),
        ("adain-depth", "adain"),
        ("adain-depth", "adain-laplacian"),
    ):
        if all(model in r and other in r for r in records):
            print(head_to_head(records, model, other))

    net = load_estimator(None)
    print("\n| content | ramp | grey content |")
    print("|---|---|---|")
    with torch.inference_mode():
        for name in sorted({r["content"] for r in records}):
            path = SHARED / "content" / f"{name}.jpg"
            if not path.is_file():
                print(f"| {name} | (image not found) | |")
                continue
            image = to_tensor(resize(open_image(path).convert("RGB"), size=args.size))
            target = predict_depth(net, image)
            ramp = scale_shift_invariant_loss(baseline("ramp", tuple(target.shape)), target)
            grey = image.mean(1, keepdim=True).expand_as(image)
            grey_error = scale_shift_invariant_loss(predict_depth(net, grey), target)
            print(f"| {name} | {float(ramp):.2f} | {float(grey_error):.2f} |")


if __name__ == "__main__":
    main()
