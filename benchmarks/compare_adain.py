"""Compare AdaIN decoders (the bundled variants, or any checkpoints) on content × style pairs.

For every pair and model it stylizes at ``--size`` and measures, with the pretrained VGG-19:

* content: relative relu4_1 feature error to the content image, ‖f(out) − f(c)‖² / ‖f(c)‖²;
* style (mean/std): the training's style loss, Σ over relu1_1..relu4_1 of the relative error
  of channel means and deviations to the style image's (Huang & Belongie 2017, eq. 13);
* style (Gram): Σ over the same layers of ‖G(out) − G(s)‖² / ‖G(s)‖² (Gatys et al. 2016);
* Laplacian: relative error of the 4×4-pooled Laplacian to the content's (Li et al. 2017),
  what the +Laplacian variant trains for; and SSIM of the luminance to the content's.

Lower is better for the losses; higher SSIM is closer to the content. It prints a table
(means over the pairs, and how often each model has the lower value), writes its section of
BENCHMARKS.md, and a contact sheet (content, style, one column per model).

    python benchmarks/compare_adain.py                      # ../shared/data, sheet → out/
    python benchmarks/compare_adain.py --bundled -o docs/adain.png   # bundled images only
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.metrics import structural_similarity

import brushwork
from brushwork.api import cached_vgg19
from brushwork.examples import content_image, style_path
from brushwork.image import open_image, resize, save_image, to_tensor
from brushwork.methods.adain import STYLE_LAYERS
from brushwork.ops import gram_matrix, mean_std, pooled_laplacian

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table, write_section
from contact_sheet import LABEL_HEIGHT, label, tile

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_STYLES = ("starry_night", "mondrian", "brushstrokes", "picasso_self_portrait",
                  "the_resevoir_at_poitiers", "woman_in_peasant_dress")
METRICS = ("content", "style (mean/std)", "style (Gram)", "Laplacian", "SSIM")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))


def measure(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
            encoder: torch.nn.Module) -> dict[str, float]:
    layers = list(STYLE_LAYERS)
    with torch.inference_mode():
        out_f, content_f, style_f = (encoder(x, layers) for x in (output, content, style))
        style_stats = 0.0
        gram = 0.0
        for layer in layers:
            (m, s), (sm, ss) = mean_std(out_f[layer]), mean_std(style_f[layer])
            style_stats += float(((m - sm).pow(2).mean() + (s - ss).pow(2).mean())
                                 / (sm.pow(2) + ss.pow(2)).mean())
            gram += _relative(gram_matrix(out_f[layer]), gram_matrix(style_f[layer]))
        lap = _relative(pooled_laplacian(output, 4), pooled_laplacian(content, 4))
    gray = [np.asarray(x[0].mul(255).round().byte().permute(1, 2, 0).numpy()) @
            np.array([0.299, 0.587, 0.114]) for x in (output, content)]
    ssim = structural_similarity(gray[0], gray[1], data_range=255.0)
    return {"content": _relative(out_f["relu4_1"], content_f["relu4_1"]),
            "style (mean/std)": style_stats, "style (Gram)": gram, "Laplacian": lap,
            "SSIM": float(ssim)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["adain", "adain-laplacian"])
    parser.add_argument("--bundled", action="store_true",
                        help="use the bundled example images instead of ../shared/data")
    parser.add_argument("--contents", nargs="*", default=None, help="content image files")
    parser.add_argument("--styles", nargs="*", default=None, help="style image files")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("-o", "--output", default="out/adain_compare.png")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()

    if args.bundled:
        contents = {name: content_image(name) for name in ("astronaut", "chelsea", "coffee")}
        styles = {name: open_image(style_path(name)) for name in ("strokes", "mosaic")}
        source = "the bundled examples (astronaut, chelsea, coffee × strokes, mosaic)"
    else:
        content_files = [Path(p) for p in args.contents] if args.contents else sorted(
            (SHARED / "content").glob("*.jpg"))
        style_files = [Path(p) for p in args.styles] if args.styles else [
            SHARED / "style" / f"{name}.jpg" for name in DEFAULT_STYLES]
        missing = [p for p in (*content_files, *style_files) if not p.is_file()]
        if missing or not content_files:
            sys.exit(f"missing images (is ../shared/data there?): {missing[:3]}")
        contents = {p.stem: open_image(p) for p in content_files}
        styles = {p.stem: open_image(p) for p in style_files}
        source = (f"../shared/data: {len(contents)} contents × {len(styles)} styles "
                  f"({', '.join(styles)})")

    encoder = cached_vgg19("relu4_1", "max", "cpu")
    results: dict[str, list[dict[str, float]]] = {m: [] for m in args.models}
    sheet_rows = []
    for (c_name, content), (s_name, style) in itertools.product(contents.items(),
                                                                styles.items()):
        content_small = resize(content.convert("RGB"), size=args.size)
        style_small = resize(style.convert("RGB"), size=args.size)
        c, s = to_tensor(content_small), to_tensor(style_small)
        row = [content_small, style_small]
        for model in args.models:
            image = brushwork.stylize(content_small, style_small, "adain", model=model,
                                      size=None, device="cpu")
            results[model].append(measure(to_tensor(image), c, s, encoder))
            row.append(image)
        sheet_rows.append((f"{c_name} / {s_name}", row))
        print(f"{c_name} × {s_name}: " + "; ".join(
            f"{m} c={results[m][-1]['content']:.3f} s={results[m][-1]['style (mean/std)']:.3f}"
            for m in args.models), flush=True)

    rows = []
    for model in args.models:
        means = {k: float(np.mean([r[k] for r in results[model]])) for k in METRICS}
        rows.append([model, *(f"{means[k]:.3f}" for k in METRICS)])
    if len(args.models) == 2:
        a, b = args.models
        wins = []
        for k in METRICS:
            better = sum((ra[k] > rb[k]) if k == "SSIM" else (ra[k] < rb[k])
                         for ra, rb in zip(results[a], results[b], strict=True))
            wins.append(f"{better}/{len(results[a])}")
        rows.append([f"pairs where {a} is better", *wins])
    table = markdown_table(["model", *(f"{k} ↓" if k != "SSIM" else "SSIM to content ↑"
                                       for k in METRICS)], rows)
    print(table)

    columns = ["content", "style", *args.models]
    t = args.tile
    sheet = Image.new("RGB", (t * len(columns), LABEL_HEIGHT + t * len(sheet_rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(columns):
        draw.text((i * t + 6, 5), name, fill="black")
    for r, (name, images) in enumerate(sheet_rows):
        for i, image in enumerate(images):
            sheet.paste(tile(image, t), (i * t, LABEL_HEIGHT + r * t))
        label(draw, (0, LABEL_HEIGHT + r * t), name)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_image(sheet, args.output, force=True)
    print(f"contact sheet: {args.output}")

    if not args.no_write:
        command = "python benchmarks/compare_adain.py " + " ".join(sys.argv[1:])
        write_section("adain-variants", (
            "## AdaIN variants compared\n\n"
            f"`{command.strip()}` on {machine()}, {args.size} px, images from {source}. "
            "Means over the pairs; relative errors (lower: closer to the content's features "
            "or the style's statistics), SSIM of the luminance to the content (higher: more "
            "of the content's structure kept). The last row counts the pairs on which the "
            "first model has the better value.\n\n" + table + "\n"
        ))


if __name__ == "__main__":
    main()
