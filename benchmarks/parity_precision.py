"""Quality parity of bfloat16 against float32: the same runs in both precisions, compared.

For each method and size (default: gatys, gatys-laplacian and styleswap at 256 and 512 px;
adain with each bundled decoder, and wct, at 512 px) and each content × style pair of
``../shared/data`` (``--pairs``), both precisions run from the same inputs, and the table
gives, per method and size, means over the pairs of:

* the final loss terms (optimization methods) in each precision;
* the content and style distances of :mod:`brushwork.metrics` (relu4_1 feature error to the
  content; mean/std error to the style at relu1_1..relu4_1) in each precision, and their
  relative change (the goal: within 2 %);
* the output difference: mean and largest absolute difference in 8-bit levels, and the
  difference of the mean colour (a colour shift shows there);

and writes ``out/parity/METHOD-SIZE-PAIR.png`` (float32 | bfloat16 | difference ×10) to look
at. Writes the ``precision-parity`` section of BENCHMARKS.md.

    python -m benchmarks.parity_precision \
        --pairs golden_gate:starry_night,sailboat:picasso_self_portrait
"""

from __future__ import annotations

import statistics
import time

import torch
from PIL import Image

from benchmarks.harness import ROOT, arguments, markdown_table, recorded_command, write_section
from brushwork import api, models
from brushwork.encoders import cached_vgg19
from brushwork.image import load_image, to_pil, to_tensor
from brushwork.metrics import Reference, distances
from brushwork.precision import cpu_bf16_units, cpu_name

SHARED = ROOT.parent / "shared" / "data"
SECTION = "precision-parity"


def runs(sizes_opt: tuple[int, ...], iterations: dict[int, int]) -> list[tuple[str, dict, int]]:
    """(method, options, size) of every run."""
    found = []
    for method in ("gatys", "gatys-laplacian", "styleswap"):
        for size in sizes_opt:
            extra = {} if method == "styleswap" else {"iterations": iterations[size]}
            found.append((method, extra, size))
    for info in models.for_method("adain"):
        found.append(("adain", {"model": info.name}, 512))
    if all(m.path.is_file() for m in models.for_method("wct")):
        found.append(("wct", {}, 512))
    return found


def label(method: str, options: dict) -> str:
    return options.get("model", method)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--pairs",
        default="golden_gate:starry_night,sailboat:picasso_self_portrait",
        help="content:style names in ../shared/data, comma-separated",
    )
    parser.add_argument("--sizes", default="256,512", help="sizes of the optimization runs")
    parser.add_argument(
        "--iterations",
        default="200,100",
        help="L-BFGS iterations at each of --sizes (Gatys; Style Swap uses its own default)",
    )
    parser.add_argument("--only", default=None, help="only this method")
    args = parser.parse_args()
    if not cpu_bf16_units():
        print(
            "this CPU has no bfloat16 units: bfloat16 runs emulated here (slow), measuring anyway"
        )
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    sizes = tuple(int(s) for s in args.sizes.split(","))
    iterations = dict(zip(sizes, (int(n) for n in args.iterations.split(",")), strict=True))
    out = ROOT / "out" / "parity"
    out.mkdir(parents=True, exist_ok=True)
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    rows = []
    for method, options, size in runs(sizes, iterations):
        if args.only and method != args.only:
            continue
        found: dict[str, list[dict[str, float]]] = {"float32": [], "bfloat16": []}
        diffs, means, seconds = [], [], {"float32": 0.0, "bfloat16": 0.0}
        for content_name, style_name in pairs:
            content_path = next((SHARED / "content").glob(f"{content_name}.*"))
            style_path = next((SHARED / "style").glob(f"{style_name}.*"))
            images = {}
            for precision in ("float32", "bfloat16"):
                start = time.perf_counter()
                done = api.run(
                    str(content_path),
                    str(style_path),
                    method,
                    size=size,
                    precision=precision,
                    **options,
                )
                seconds[precision] += time.perf_counter() - start
                image = to_tensor(done.image.convert("RGB"))
                images[precision] = image
                content = to_tensor(
                    Image.open(content_path)
                    .convert("RGB")
                    .resize(done.image.size, Image.Resampling.LANCZOS)
                )
                style = load_image(style_path, size=size)
                measures = distances(
                    image,
                    Reference.of(content, encoder),
                    Reference.of(style, encoder),
                    encoder,
                    ssim=False,
                )
                found[precision].append(
                    {**measures, **{f"loss {k}": v for k, v in done.result.losses.items()}}
                )
            difference = (images["bfloat16"] - images["float32"]) * 255
            diffs.append((float(difference.abs().mean()), float(difference.abs().max())))
            means.append(
                float(
                    (images["bfloat16"].mean((2, 3)) - images["float32"].mean((2, 3))).abs().max()
                    * 255
                )
            )
            sheet = Image.new("RGB", (images["float32"].shape[-1] * 3, images["float32"].shape[-2]))
            for index, tile in enumerate(
                (images["float32"], images["bfloat16"], (difference.abs() * 10 / 255).clamp(0, 1))
            ):
                sheet.paste(to_pil(tile), (index * images["float32"].shape[-1], 0))
            sheet.save(out / f"{label(method, options)}-{size}-{content_name}-{style_name}.png")
        mean = {p: {k: statistics.mean(r[k] for r in found[p]) for k in found[p][0]} for p in found}
        change = {
            k: (mean["bfloat16"][k] - mean["float32"][k]) / max(abs(mean["float32"][k]), 1e-12)
            for k in ("content", "style")
        }
        losses = [k for k in mean["float32"] if k.startswith("loss ") and k != "loss total"]
        row = [
            label(method, options),
            size,
            " / ".join(f"{mean['float32'][k]:.4g}" for k in losses) or "—",
            " / ".join(f"{mean['bfloat16'][k]:.4g}" for k in losses) or "—",
            f"{mean['float32']['content']:.4f} / {mean['bfloat16']['content']:.4f} "
            f"({100 * change['content']:+.1f} %)",
            f"{mean['float32']['style']:.4f} / {mean['bfloat16']['style']:.4f} "
            f"({100 * change['style']:+.1f} %)",
            f"{statistics.mean(d[0] for d in diffs):.2f} / {max(d[1] for d in diffs):.0f}",
            f"{max(means):.2f}",
            f"{seconds['float32'] / seconds['bfloat16']:.2f}×",
        ]
        rows.append(row)
        print(row, flush=True)
    header = [
        "method",
        "px",
        "final losses float32",
        "final losses bfloat16",
        "content distance f32 / bf16 (change)",
        "style distance f32 / bf16 (change)",
        "output difference mean / max (8-bit levels)",
        "mean colour shift (levels)",
        "bf16 speed-up",
    ]
    text = (
        f"CPU: {cpu_name()} (bfloat16 units: {', '.join(cpu_bf16_units()) or 'none'}), "
        f"torch {torch.__version__}. `{recorded_command(__file__)}` "
        f"({time.strftime('%Y-%m-%d')}). Each row: the means over the pairs of the same "
        "run in float32 and bfloat16 from the same inputs; distances from "
        "`brushwork.metrics` (relative errors, lower is closer); loss terms in the "
        "method's order (content / style / tv / lap for Gatys, swap / tv for Style "
        "Swap). Side-by-side images (float32 | bfloat16 | difference ×10) in "
        "`out/parity/`.\n\n" + markdown_table(header, rows)
    )
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
