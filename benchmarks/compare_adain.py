"""Compare feed-forward methods and AdaIN decoders on content × style pairs.

The rows are AdaIN decoders (``--models``: the bundled variants, or any checkpoints) and any
other method of the registry (``--methods adain,wct``: ``adain`` stands for the ``--models``
rows, every other method is one row with its default options; ``--set wct.models=DIR`` and
the like change a method's options). For every pair and row it stylizes at ``--size`` (in
``--precision``, float32 by default), times the call (the table gives the median seconds per
image) and measures, with the pretrained VGG-19:

* content: relative relu4_1 feature error to the content image, ‖f(out) − f(c)‖² / ‖f(c)‖²;
* style (mean/std): the training's style loss, Σ over relu1_1..relu4_1 of the relative error
  of channel means and deviations to the style image's (Huang & Belongie 2017, eq. 13);
* style (Gram): Σ over the same layers of ‖G(out) − G(s)‖² / ‖G(s)‖² (Gatys et al. 2016);
* Laplacian: relative error of the 4×4-pooled Laplacian to the content's (Li et al. 2017),
  what the +Laplacian variant trains for; and SSIM of the luminance to the content's;
* depth: the scale-and-shift-invariant error (1 − r², :func:`brushwork.losses.
  scale_shift_invariant_loss`) between brushwork's depth estimator on the output and on the
  content, what the +depth variant trains for. The estimator was trained on indoor scenes
  (NYU) only: this measures whether the stylization keeps what *it* sees, a proxy for the
  depth layout. δ<1.25 (:func:`brushwork.depth.metrics.depth_errors`) is not reported: it
  needs a positive target, and the estimator's relative inverse depth on these photos is
  ≤ 0 on 28–46 % of the pixels; shifting it positive would pick a depth range δ depends on.

Lower is better for the losses; higher SSIM is closer to the content. It prints a table
(means over the pairs, and on how many pairs each row has the best value), the depth error
per content image, writes its section of BENCHMARKS.md (``adain-variants`` when every row is
an AdaIN decoder, else ``feedforward``), and a contact sheet (content, style, one column per
row; with ``--sheet-depth`` a row of depth maps under each pair).

    python -m benchmarks.compare_adain --styles ../shared/data/style/*   # 96 pairs, sheet → out/
    python -m benchmarks.compare_adain --pairs golden_gate/starry_night sailboat/mondrian \\
        --styles ../shared/data/style/* --sheet-depth --no-write -o out/adain_variants.png
    python -m benchmarks.compare_adain --bundled --no-write --tile 176 -o docs/adain.png
    python -m benchmarks.compare_adain --methods adain,wct --models adain \\
        --styles ../shared/data/style/* -o out/feedforward_compare.png
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.metrics import structural_similarity

import brushwork
from benchmarks.harness import arguments, machine, markdown_table, recorded_command, write_section
from brushwork import models
from brushwork.depth.estimator import load_estimator, predict_depth
from brushwork.encoders import cached_vgg19
from brushwork.errors import BrushworkError
from brushwork.examples import content_image, style_path
from brushwork.image import open_image, resize, save_image, to_tensor
from brushwork.losses import align_scale_shift, scale_shift_invariant_loss
from brushwork.methods import REGISTRY, get_method
from brushwork.methods.adain import STYLE_LAYERS
from brushwork.ops import gram_matrix, mean_std, pooled_laplacian
from brushwork.options import fields_of
from brushwork.stylizer import make_stylizer
from scripts.contact_sheet import LABEL_HEIGHT, label, tile

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_STYLES = (
    "starry_night",
    "mondrian",
    "brushstrokes",
    "picasso_self_portrait",
    "the_resevoir_at_poitiers",
    "woman_in_peasant_dress",
)
METRICS = ("content", "style (mean/std)", "style (Gram)", "Laplacian", "SSIM", "depth")
HIGHER_IS_BETTER = {"SSIM"}
HEADERS = {"SSIM": "SSIM to content ↑", "depth": "depth (SSI) ↓"}
ADAIN_MODELS = [m.name for m in models.for_method("adain")]
PRECISIONS = ("float32", "bfloat16", "auto")


@dataclass
class Row:
    """One compared row: an AdaIN decoder (``label`` is its name or path, as before) or
    another method (``label`` is the method's name), with the options it runs with."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    adain: bool = False


def short_name(row: Row) -> str:
    """``adain-laplacian`` → ``laplacian``; a checkpoint path → its file name's stem; another
    method → its name."""
    if not row.adain:
        return row.label
    name = Path(row.label).stem if row.label not in models.MODELS else row.label
    return name.removeprefix("adain-") if name != "adain" else name


def parse_value(method: str, text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` of one of ``method``'s options → (name, typed value)."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    specs = {spec.name: spec for spec in fields_of(get_method(method).options_class)}
    if not sep or name not in specs:
        raise BrushworkError(
            f"--set {method}.{text}: {method}'s options are "
            f"{', '.join(sorted(specs))} (give NAME=VALUE)"
        )
    spec = specs[name]
    if spec.optional and value.lower() == "none":
        return name, None

    def one(kind: str, item: str) -> Any:
        if kind == "bool":
            if item.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise BrushworkError(f"--set {method}.{name}: true or false, not {item!r}")
            return item.lower() in ("true", "1", "yes")
        try:
            return int(item) if kind == "int" else float(item) if kind == "float" else item
        except ValueError:
            raise BrushworkError(f"--set {method}.{name}: not a number: {item!r}") from None

    if spec.kind == "list":
        return name, tuple(one(spec.item or "str", v.strip()) for v in value.split(","))
    return name, one(spec.kind, value)


def build_rows(methods: list[str], adain_models: list[str], settings: list[str]) -> list[Row]:
    """The rows: one per AdaIN decoder where ``adain`` is among ``methods``, one per other
    method; ``settings`` (``METHOD.NAME=VALUE``) change the methods' options."""
    options: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for setting in settings:
        method, dot, rest = setting.partition(".")
        if not dot or method not in options:
            raise BrushworkError(
                f"--set {setting}: give METHOD.NAME=VALUE for one of the "
                f"--methods ({', '.join(methods)})"
            )
        name, value = parse_value(method, rest)
        options[method][name] = value
    rows = []
    for method in methods:
        if method not in REGISTRY:
            raise BrushworkError(f"unknown method {method!r}; available: {', '.join(REGISTRY)}")
        if method == "adain":
            if "model" in options[method]:
                raise BrushworkError("AdaIN's decoders are --models, not --set adain.model")
            rows += [
                Row(model, "adain", {**options[method], "model": model}, adain=True)
                for model in adain_models
            ]
        else:
            rows.append(Row(method, method, options[method]))
    labels = [row.label for row in rows]
    if len(set(labels)) != len(labels):
        raise BrushworkError(f"the rows must differ: {', '.join(labels)}")
    return rows


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).sum() / b.pow(2).sum().clamp_min(1e-12))


def _gray(image: torch.Tensor) -> np.ndarray:
    return np.asarray(image[0].mul(255).round().byte().permute(1, 2, 0).numpy()) @ np.array(
        [0.299, 0.587, 0.114]
    )


class Reference:
    """What the measures compare an output with, computed once per content or style."""

    def __init__(
        self,
        image: torch.Tensor,
        encoder: torch.nn.Module,
        depth_net: torch.nn.Module | None = None,
    ) -> None:
        self.image = image
        with torch.inference_mode():
            features = encoder(image, list(STYLE_LAYERS))
            self.relu4_1 = features["relu4_1"]
            self.stats = {k: mean_std(v) for k, v in features.items()}
            self.grams = {k: gram_matrix(v) for k, v in features.items()}
            self.laplacian = pooled_laplacian(image, 4)
        self.gray = _gray(image)
        self.depth = None if depth_net is None else depth(depth_net, image)


def depth(net: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    return predict_depth(net, image.contiguous(memory_format=torch.channels_last)).float()


def measure(
    output: torch.Tensor,
    content: Reference,
    style: Reference,
    encoder: torch.nn.Module,
    depth_net: torch.nn.Module,
) -> tuple[dict[str, float], torch.Tensor]:
    """The measures of one output, and its depth map."""
    layers = list(STYLE_LAYERS)
    with torch.inference_mode():
        out_f = encoder(output, layers)
        style_stats = 0.0
        gram = 0.0
        for layer in layers:
            (m, s), (sm, ss) = mean_std(out_f[layer]), style.stats[layer]
            style_stats += float(
                ((m - sm).pow(2).mean() + (s - ss).pow(2).mean()) / (sm.pow(2) + ss.pow(2)).mean()
            )
            gram += _relative(gram_matrix(out_f[layer]), style.grams[layer])
        lap = _relative(pooled_laplacian(output, 4), content.laplacian)
    ssim = structural_similarity(_gray(output), content.gray, data_range=255.0)
    out_depth = depth(depth_net, output)
    ssi = float(scale_shift_invariant_loss(out_depth, content.depth))
    return {
        "content": _relative(out_f["relu4_1"], content.relu4_1),
        "style (mean/std)": style_stats,
        "style (Gram)": gram,
        "Laplacian": lap,
        "SSIM": float(ssim),
        "depth": ssi,
    }, out_depth


def depth_tile(inverse_depth: torch.Tensor, reference: torch.Tensor, size: int) -> Image.Image:
    """A depth map as a grey image, bright = near: aligned (scale ≥ 0 and shift) to the
    content's map and shown on the content map's range (2nd to 98th percentile), so the
    tiles of one row compare."""
    aligned = align_scale_shift(inverse_depth, reference)
    low, high = (float(q) for q in torch.quantile(reference.flatten(), torch.tensor([0.02, 0.98])))
    values = ((aligned - low) / max(high - low, 1e-6)).clamp(0, 1)[0, 0]
    image = Image.fromarray(values.mul(255).round().byte().numpy(), "L")
    return tile(image, size)


def shown_command(argv: list[str]) -> str:
    """The command line as typed: a run of files that is a whole folder back to ``folder/*``."""
    shown: list[str] = []
    run: list[str] = []

    def flush() -> None:
        parents = {str(Path(a).parent) for a in run}
        if len(run) > 1 and len(parents) == 1:
            folder = Path(run[0]).parent
            everything = {
                f.name for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
            }
            if {Path(a).name for a in run} == everything:
                shown.append(f"{parents.pop()}/*")
                run.clear()
                return
        shown.extend(run)
        run.clear()

    for arg in argv:
        if arg.startswith("-") or not Path(arg).is_file():
            flush()
            shown.append(arg)
        else:
            run.append(arg)
    flush()
    return recorded_command(__file__, shown)


def best_counts(results: dict[str, list[dict[str, float]]], metric: str) -> list[int]:
    """On how many pairs each row has the best value of ``metric`` (ties: the first)."""
    models = list(results)
    counts = [0] * len(models)
    for values in zip(*(results[m] for m in models), strict=True):
        column = [v[metric] for v in values]
        counts[int(np.argmax(column) if metric in HIGHER_IS_BETTER else np.argmin(column))] += 1
    return counts


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--methods",
        default="adain",
        help="comma-separated methods to compare, e.g. adain,wct (default: "
        "adain); adain stands for one row per --models decoder",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=ADAIN_MODELS,
        help="AdaIN decoders: bundled names or checkpoint files (default: all "
        f"bundled: {', '.join(ADAIN_MODELS)})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="METHOD.NAME=VALUE",
        help="an option of one method, e.g. wct.models=DIR or wct.alpha=1 (repeatable)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="precision of the stylizations (default float32; the measures always run in float32)",
    )
    parser.add_argument(
        "--bundled",
        action="store_true",
        help="use the bundled example images instead of ../shared/data",
    )
    parser.add_argument("--contents", nargs="*", default=None, help="content image files")
    parser.add_argument("--styles", nargs="*", default=None, help="style image files")
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=None,
        metavar="CONTENT/STYLE",
        help="only these pairs of the contents × styles (file stems)",
    )
    parser.add_argument(
        "--depth-model",
        default=None,
        help="depth estimator for the depth measure (default: the bundled one)",
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument(
        "--sheet-depth",
        action="store_true",
        help="add a row of depth maps under each pair in the contact sheet",
    )
    parser.add_argument("-o", "--output", default="out/adain_compare.png")
    parser.add_argument(
        "--section",
        default=None,
        help="BENCHMARKS.md section (default: adain-variants when every row is "
        "an AdaIN decoder, else feedforward)",
    )
    parser.add_argument(
        "--records", default=None, help="also write every pair's measures to this JSON-lines file"
    )
    args = parser.parse_args()
    if args.bundled and (args.contents or args.styles):
        parser.error(
            "--bundled uses the bundled example images; it takes no --contents or "
            "--styles (the decoders compared are --models, all bundled by default)"
        )
    try:
        rows_wanted = build_rows(
            [m.strip() for m in args.methods.split(",") if m.strip()], args.models, args.set
        )
        if not rows_wanted:
            raise BrushworkError("--methods names no method")
        for row in rows_wanted:  # every decoder file exists, before any work
            try:
                make_stylizer(
                    row.method, size=None, device="cpu", precision=args.precision, **row.options
                ).check_files()
            except BrushworkError as error:
                hint = "--models" if row.adain else f"--set {row.method}.NAME=VALUE"
                raise BrushworkError(f"{row.label}: {error} (other networks: {hint})") from None
    except BrushworkError as error:
        parser.error(str(error))
    only_adain = all(row.adain for row in rows_wanted)

    if args.bundled:
        contents = {name: content_image(name) for name in ("astronaut", "chelsea", "coffee")}
        styles = {name: open_image(style_path(name)) for name in ("strokes", "mosaic")}
        source = "the bundled examples (astronaut, chelsea, coffee × strokes, mosaic)"
    else:
        content_files = (
            [Path(p) for p in args.contents]
            if args.contents
            else sorted((SHARED / "content").glob("*.jpg"))
        )
        style_files = (
            [Path(p) for p in args.styles]
            if args.styles
            else [SHARED / "style" / f"{name}.jpg" for name in DEFAULT_STYLES]
        )
        missing = [p for p in (*content_files, *style_files) if not p.is_file()]
        if missing or not content_files:
            sys.exit(f"missing images (is ../shared/data there?): {missing[:3]}")
        contents = {p.stem: open_image(p) for p in content_files}
        styles = {p.stem: open_image(p) for p in style_files}
        source = (
            f"../shared/data: {len(contents)} contents × {len(styles)} styles ({', '.join(styles)})"
        )
    pairs = list(itertools.product(contents, styles))
    if args.pairs is not None:
        wanted = [tuple(p.split("/", 1)) for p in args.pairs]
        unknown = [p for p in wanted if p not in pairs]
        if unknown:
            parser.error(
                "not among the contents × styles: " + ", ".join("/".join(p) for p in unknown)
            )
        pairs = wanted
        source += f", {len(pairs)} of the pairs"

    start = time.perf_counter()
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    depth_net = load_estimator(args.depth_model).to(memory_format=torch.channels_last)
    depth_net.encoder.use_channels_last(True)
    content_small = {n: resize(im.convert("RGB"), size=args.size) for n, im in contents.items()}
    style_small = {n: resize(im.convert("RGB"), size=args.size) for n, im in styles.items()}
    content_refs: dict[str, Reference] = {}
    style_refs: dict[str, Reference] = {}

    labels = [row.label for row in rows_wanted]
    names = [short_name(row) for row in rows_wanted]
    results: dict[str, list[dict[str, float]]] = {key: [] for key in labels}
    t = args.tile
    sheet_rows: list[tuple[str, list[Image.Image], list[tuple[Image.Image, str]]]] = []
    records = None
    if args.records:
        Path(args.records).parent.mkdir(parents=True, exist_ok=True)
        records = open(args.records, "w")  # noqa: SIM115 (written pair by pair)
    for c_name, s_name in pairs:
        pair_start = time.perf_counter()
        if c_name not in content_refs:
            content_refs[c_name] = Reference(to_tensor(content_small[c_name]), encoder, depth_net)
        if s_name not in style_refs:
            style_refs[s_name] = Reference(to_tensor(style_small[s_name]), encoder)
        c_ref, s_ref = content_refs[c_name], style_refs[s_name]
        tiles = [tile(content_small[c_name], t), tile(style_small[s_name], t)]
        depth_tiles = [(depth_tile(c_ref.depth, c_ref.depth, t), "content depth")]
        for row in rows_wanted:
            stylize_start = time.perf_counter()
            image = brushwork.stylize(
                content_small[c_name],
                style_small[s_name],
                row.method,
                size=None,
                device="cpu",
                precision=args.precision,
                **row.options,
            )
            stylize_seconds = time.perf_counter() - stylize_start
            values, out_depth = measure(to_tensor(image), c_ref, s_ref, encoder, depth_net)
            values["seconds"] = stylize_seconds
            results[row.label].append(values)
            tiles.append(tile(image, t))
            if args.sheet_depth:
                depth_tiles.append(
                    (depth_tile(out_depth, c_ref.depth, t), f"SSI {values['depth']:.3f}")
                )
        sheet_rows.append((f"{c_name} / {s_name}", tiles, depth_tiles))
        print(
            f"{c_name} × {s_name}: "
            + "; ".join(
                f"{n} c={results[m][-1]['content']:.3f} s={results[m][-1]['style (mean/std)']:.3f}"
                f" d={results[m][-1]['depth']:.3f} t={results[m][-1]['seconds']:.2f}s"
                for m, n in zip(labels, names, strict=True)
            )
            + f" ({time.perf_counter() - pair_start:.0f} s)",
            flush=True,
        )
        if records:
            records.write(
                json.dumps(
                    {"content": c_name, "style": s_name, **{m: results[m][-1] for m in labels}}
                )
                + "\n"
            )
            records.flush()
    if records:
        records.close()
    seconds = time.perf_counter() - start

    rows = []
    for key in labels:
        means = {k: float(np.mean([r[k] for r in results[key]])) for k in METRICS}
        seconds_per_image = statistics.median(r["seconds"] for r in results[key])
        rows.append([key, *(f"{means[k]:.3f}" for k in METRICS), f"{seconds_per_image:.2f}"])
    if len(labels) > 1:
        rows.append(
            [
                f"best on pairs ({' / '.join(names)})",
                *(" / ".join(map(str, best_counts(results, k))) for k in METRICS),
                "",
            ]
        )
    table = markdown_table(
        [
            "model" if only_adain else "method / model",
            *(HEADERS.get(k, f"{k} ↓") for k in METRICS),
            "s / image",
        ],
        rows,
    )
    print(table)

    # the depth measure per content image: mean over its styles, and the best model's count
    per_content = []
    for c_name in content_refs:
        index = [i for i, (c, _) in enumerate(pairs) if c == c_name]
        subset = {m: [results[m][i] for i in index] for m in labels}
        per_content.append(
            [
                c_name,
                len(index),
                *(f"{np.mean([r['depth'] for r in subset[m]]):.3f}" for m in labels),
                " / ".join(map(str, best_counts(subset, "depth"))) if len(labels) > 1 else "",
            ]
        )
    content_table = markdown_table(
        ["content", "pairs", *(f"{n} ↓" for n in names), f"best on pairs ({' / '.join(names)})"],
        per_content,
    )
    print("depth (SSI) per content image, mean over its styles:")
    print(content_table)
    print(f"{len(pairs)} pairs × {len(labels)} rows in {seconds / 60:.1f} min; {machine()}")

    columns = ["content", "style", *labels]
    row_height = t * (2 if args.sheet_depth else 1)
    sheet = Image.new(
        "RGB", (t * len(columns), LABEL_HEIGHT + row_height * len(sheet_rows)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(columns):
        draw.text((i * t + 6, 5), name, fill="black")
    for r, (name, tiles, depth_tiles) in enumerate(sheet_rows):
        top = LABEL_HEIGHT + r * row_height
        for i, image in enumerate(tiles):
            sheet.paste(image, (i * t, top))
        label(draw, (0, top), name)
        if args.sheet_depth:
            for i, (image, text) in enumerate(depth_tiles):
                x = 0 if i == 0 else (i + 1) * t
                sheet.paste(image, (x, top + t))
                label(draw, (x, top + t), text)
            draw.text(
                (t + 6, top + t + 6),
                "depth maps below:\nbright = near,\neach aligned to the\ncontent's (scale, shift)",
                fill="black",
            )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_image(sheet, args.output, force=True)
    print(f"contact sheet: {args.output}")

    if not args.no_write:
        command = shown_command(sys.argv[1:])
        section = args.section or ("adain-variants" if only_adain else "feedforward")
        heading = "AdaIN variants" if only_adain else "Feed-forward methods"
        write_section(
            section,
            (
                f"## {heading} compared\n\n"
                f"`{command}` on {machine()}, {args.size} px, {args.precision}, images from "
                f"{source}; {seconds / 60:.0f} min. "
                "Means over the pairs; relative errors (lower: closer to the content's features "
                "or the style's statistics), SSIM of the luminance to the content (higher: more "
                "of the content's structure kept), depth: the scale-and-shift-invariant error "
                "1 − r² between brushwork's depth estimator (trained on indoor NYU scenes only, so "
                "a proxy) on the output and on the content (lower: the depth layout the "
                "estimator sees is kept); s / image: the median seconds of one stylization "
                "call (`brushwork.stylize`, decoded images in, image out). The last row counts "
                "the pairs on which each row has the best value ("
                + " / ".join(names)
                + ").\n\n"
                + table
                + "\n\n"
                "The depth error per content image (mean over its styles):\n\n"
                + content_table
                + "\n"
            ),
        )


if __name__ == "__main__":
    main()
