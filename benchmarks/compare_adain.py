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

import argparse
import contextlib
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

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


# --- arguments and the rows ------------------------------------------------------------------


def add_row_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the rows: methods, AdaIN decoders, method options, precision."""
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


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the images, the pairs and the depth estimator."""
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


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The options of what is written: sizes, the contact sheet, the section, the records."""
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


def check_rows(rows: list[Row], precision: str) -> None:
    """Every row's network files exist, before any work."""
    for row in rows:
        try:
            make_stylizer(
                row.method, size=None, device="cpu", precision=precision, **row.options
            ).check_files()
        except BrushworkError as error:
            hint = "--models" if row.adain else f"--set {row.method}.NAME=VALUE"
            raise BrushworkError(f"{row.label}: {error} (other networks: {hint})") from None


def wanted_rows(args: argparse.Namespace) -> list[Row]:
    """The rows the arguments ask for, their network files checked."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = build_rows(methods, args.models, args.set)
    if not rows:
        raise BrushworkError("--methods names no method")
    check_rows(rows, args.precision)
    return rows


def parse_arguments() -> tuple[argparse.ArgumentParser, argparse.Namespace, list[Row]]:
    """The parser (for later errors), the arguments and the checked rows."""
    parser = arguments(__doc__)
    add_row_options(parser)
    add_image_options(parser)
    add_output_options(parser)
    args = parser.parse_args()
    if args.bundled and (args.contents or args.styles):
        parser.error(
            "--bundled uses the bundled example images; it takes no --contents or "
            "--styles (the decoders compared are --models, all bundled by default)"
        )
    try:
        rows = wanted_rows(args)
    except BrushworkError as error:
        parser.error(str(error))
    return parser, args, rows


# --- the images and the pairs ----------------------------------------------------------------

Images = dict[str, Image.Image]
Pair = tuple[str, ...]
"""(content, style) names; a ``--pairs`` entry without a slash is one name (and unknown)."""


def bundled_images() -> tuple[Images, Images, str]:
    """The bundled contents and styles, and how the section names them."""
    contents = {name: content_image(name) for name in ("astronaut", "chelsea", "coffee")}
    styles = {name: open_image(style_path(name)) for name in ("strokes", "mosaic")}
    return contents, styles, "the bundled examples (astronaut, chelsea, coffee × strokes, mosaic)"


def shared_images(
    content_args: list[str] | None, style_args: list[str] | None
) -> tuple[Images, Images, str]:
    """The given files, or ../shared/data's contents and default styles, and how the section
    names them; exits when one is missing."""
    content_files = (
        [Path(p) for p in content_args]
        if content_args
        else sorted((SHARED / "content").glob("*.jpg"))
    )
    style_files = (
        [Path(p) for p in style_args]
        if style_args
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
    return contents, styles, source


def load_images(args: argparse.Namespace) -> tuple[Images, Images, str]:
    """The contents and styles (``--bundled`` or ../shared/data), and how the section names
    them."""
    if args.bundled:
        return bundled_images()
    return shared_images(args.contents, args.styles)


def select_pairs(
    parser: argparse.ArgumentParser,
    wanted_args: list[str] | None,
    contents: Images,
    styles: Images,
    source: str,
) -> tuple[list[Pair], str]:
    """All contents × styles, or the ``--pairs`` among them, and ``source`` saying so."""
    pairs: list[Pair] = list(itertools.product(contents, styles))
    if wanted_args is None:
        return pairs, source
    wanted = [tuple(p.split("/", 1)) for p in wanted_args]
    unknown = [p for p in wanted if p not in pairs]
    if unknown:
        parser.error("not among the contents × styles: " + ", ".join("/".join(p) for p in unknown))
    return wanted, source + f", {len(wanted)} of the pairs"


# --- measuring -------------------------------------------------------------------------------

SheetRow = tuple[str, list[Image.Image], list[tuple[Image.Image, str]]]
"""One pair in the contact sheet: its name, its tiles, its depth tiles with their labels."""


class Measurer:
    """The networks and the resized images, and the references computed so far."""

    def __init__(self, contents: Images, styles: Images, args: argparse.Namespace) -> None:
        self.precision = args.precision
        self.encoder = cached_vgg19("relu4_1", "max", "cpu")
        self.depth_net = load_estimator(args.depth_model).to(memory_format=torch.channels_last)
        self.depth_net.encoder.use_channels_last(True)
        self.contents = {n: resize(im.convert("RGB"), size=args.size) for n, im in contents.items()}
        self.styles = {n: resize(im.convert("RGB"), size=args.size) for n, im in styles.items()}
        self.content_refs: dict[str, Reference] = {}
        self.style_refs: dict[str, Reference] = {}

    def references(self, c_name: str, s_name: str) -> tuple[Reference, Reference]:
        """The references of a content and a style, computed on first use."""
        if c_name not in self.content_refs:
            image = to_tensor(self.contents[c_name])
            self.content_refs[c_name] = Reference(image, self.encoder, self.depth_net)
        if s_name not in self.style_refs:
            self.style_refs[s_name] = Reference(to_tensor(self.styles[s_name]), self.encoder)
        return self.content_refs[c_name], self.style_refs[s_name]

    def stylize(
        self, row: Row, c_name: str, s_name: str
    ) -> tuple[Image.Image, dict[str, float], torch.Tensor]:
        """One row's stylization of a pair, its measures (with ``seconds``, the stylization's
        time) and its depth map."""
        c_ref, s_ref = self.references(c_name, s_name)
        start = time.perf_counter()
        image = brushwork.stylize(
            self.contents[c_name],
            self.styles[s_name],
            row.method,
            size=None,
            device="cpu",
            precision=self.precision,
            **row.options,
        )
        seconds = time.perf_counter() - start
        values, out_depth = measure(to_tensor(image), c_ref, s_ref, self.encoder, self.depth_net)
        values["seconds"] = seconds
        return image, values, out_depth


def measure_pair(
    measurer: Measurer, rows: list[Row], pair: Pair, args: argparse.Namespace
) -> tuple[dict[str, dict[str, float]], SheetRow]:
    """Every row's measures of one pair (by row label), and the pair's contact-sheet row."""
    c_name, s_name = pair
    c_ref, _ = measurer.references(c_name, s_name)
    t = args.tile
    tiles = [tile(measurer.contents[c_name], t), tile(measurer.styles[s_name], t)]
    depth_tiles = [(depth_tile(c_ref.depth, c_ref.depth, t), "content depth")]
    measured: dict[str, dict[str, float]] = {}
    for row in rows:
        image, values, out_depth = measurer.stylize(row, c_name, s_name)
        measured[row.label] = values
        tiles.append(tile(image, t))
        if args.sheet_depth:
            depth_tiles.append(
                (depth_tile(out_depth, c_ref.depth, t), f"SSI {values['depth']:.3f}")
            )
    return measured, (f"{c_name} / {s_name}", tiles, depth_tiles)


def pair_line(pair: Pair, measured: dict[str, dict[str, float]], names: list[str]) -> str:
    """The progress line of one pair, without its time: each row's main measures."""
    c_name, s_name = pair
    return f"{c_name} × {s_name}: " + "; ".join(
        f"{n} c={v['content']:.3f} s={v['style (mean/std)']:.3f}"
        f" d={v['depth']:.3f} t={v['seconds']:.2f}s"
        for v, n in zip(measured.values(), names, strict=True)
    )


def open_records(path: str | None) -> contextlib.AbstractContextManager[TextIO | None]:
    """The ``--records`` file, opened for writing (its folder made), or nothing."""
    if not path:
        return contextlib.nullcontext()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return open(path, "w")


@dataclass
class Measurements:
    """What measuring all pairs gives: each row's measures per pair (by row label), the
    contact-sheet rows, the contents in the order measured, and the seconds it took."""

    results: dict[str, list[dict[str, float]]]
    sheet_rows: list[SheetRow] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    seconds: float = 0.0


def measure_all(
    args: argparse.Namespace, rows: list[Row], contents: Images, styles: Images, pairs: list[Pair]
) -> Measurements:
    """Stylize and measure every pair with every row, printing a line per pair and writing
    it to ``--records`` (as it goes)."""
    start = time.perf_counter()
    measurer = Measurer(contents, styles, args)
    names = [short_name(row) for row in rows]
    found = Measurements({row.label: [] for row in rows})
    with open_records(args.records) as records:
        for pair in pairs:
            pair_start = time.perf_counter()
            measured, sheet_row = measure_pair(measurer, rows, pair, args)
            for key, values in measured.items():
                found.results[key].append(values)
            found.sheet_rows.append(sheet_row)
            elapsed = time.perf_counter() - pair_start
            print(pair_line(pair, measured, names) + f" ({elapsed:.0f} s)", flush=True)
            if records is not None:
                c_name, s_name = pair
                records.write(json.dumps({"content": c_name, "style": s_name, **measured}) + "\n")
                records.flush()
    found.seconds = time.perf_counter() - start
    found.contents = list(measurer.content_refs)
    return found


# --- the tables, the contact sheet, the section ----------------------------------------------


def summary_table(
    results: dict[str, list[dict[str, float]]], names: list[str], only_adain: bool
) -> str:
    """Each row's means over the pairs and median seconds per image, and, for several rows,
    on how many pairs each has the best value."""
    rows = []
    for key, values in results.items():
        means = {k: float(np.mean([r[k] for r in values])) for k in METRICS}
        seconds_per_image = statistics.median(r["seconds"] for r in values)
        rows.append([key, *(f"{means[k]:.3f}" for k in METRICS), f"{seconds_per_image:.2f}"])
    if len(results) > 1:
        rows.append(
            [
                f"best on pairs ({' / '.join(names)})",
                *(" / ".join(map(str, best_counts(results, k))) for k in METRICS),
                "",
            ]
        )
    header = [
        "model" if only_adain else "method / model",
        *(HEADERS.get(k, f"{k} ↓") for k in METRICS),
        "s / image",
    ]
    return markdown_table(header, rows)


def depth_table(found: Measurements, pairs: list[Pair], names: list[str]) -> str:
    """The depth measure per content image: each row's mean over its styles, and on how many
    of its pairs each row has the best value."""
    labels = list(found.results)
    per_content: list[list[object]] = []
    for c_name in found.contents:
        index = [i for i, (c, _) in enumerate(pairs) if c == c_name]
        subset = {m: [found.results[m][i] for i in index] for m in labels}
        per_content.append(
            [
                c_name,
                len(index),
                *(f"{np.mean([r['depth'] for r in subset[m]]):.3f}" for m in labels),
                " / ".join(map(str, best_counts(subset, "depth"))) if len(labels) > 1 else "",
            ]
        )
    header = [
        "content",
        "pairs",
        *(f"{n} ↓" for n in names),
        f"best on pairs ({' / '.join(names)})",
    ]
    return markdown_table(header, per_content)


def paste_depth_row(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    depth_tiles: list[tuple[Image.Image, str]],
    top: int,
    t: int,
) -> None:
    """A pair's depth maps at ``top``: the content's under the content, the rows' under their
    tiles, with a note under the style."""
    for i, (image, text) in enumerate(depth_tiles):
        x = 0 if i == 0 else (i + 1) * t
        sheet.paste(image, (x, top))
        label(draw, (x, top), text)
    draw.text(
        (t + 6, top + 6),
        "depth maps below:\nbright = near,\neach aligned to the\ncontent's (scale, shift)",
        fill="black",
    )


def contact_sheet(
    sheet_rows: list[SheetRow], columns: list[str], t: int, with_depth: bool
) -> Image.Image:
    """Content, style and one column per row, a row per pair (and its depth maps)."""
    row_height = t * (2 if with_depth else 1)
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
        if with_depth:
            paste_depth_row(sheet, draw, depth_tiles, top + t, t)
    return sheet


def save_contact_sheet(
    sheet_rows: list[SheetRow], labels: list[str], args: argparse.Namespace
) -> None:
    """The contact sheet, saved to ``--output``."""
    sheet = contact_sheet(sheet_rows, ["content", "style", *labels], args.tile, args.sheet_depth)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_image(sheet, args.output, force=True)
    print(f"contact sheet: {args.output}")


def section_text(heading: str, setup: str, names: list[str], table: str, content_table: str) -> str:
    """The BENCHMARKS.md section: ``setup`` (the command, machine, images, time), what the
    columns mean, and the two tables."""
    return (
        f"## {heading} compared\n\n"
        f"{setup} "
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
        "The depth error per content image (mean over its styles):\n\n" + content_table + "\n"
    )


def write_results_section(
    args: argparse.Namespace,
    source: str,
    seconds: float,
    names: list[str],
    only_adain: bool,
    tables: tuple[str, str],
) -> None:
    """Write the section (``--section``, else by whether every row is an AdaIN decoder)."""
    command = shown_command(sys.argv[1:])
    section = args.section or ("adain-variants" if only_adain else "feedforward")
    heading = "AdaIN variants" if only_adain else "Feed-forward methods"
    setup = (
        f"`{command}` on {machine()}, {args.size} px, {args.precision}, images from "
        f"{source}; {seconds / 60:.0f} min."
    )
    write_section(section, section_text(heading, setup, names, *tables))


def main() -> None:
    parser, args, rows = parse_arguments()
    only_adain = all(row.adain for row in rows)
    contents, styles, source = load_images(args)
    pairs, source = select_pairs(parser, args.pairs, contents, styles, source)
    found = measure_all(args, rows, contents, styles, pairs)

    names = [short_name(row) for row in rows]
    table = summary_table(found.results, names, only_adain)
    print(table)
    content_table = depth_table(found, pairs, names)
    print("depth (SSI) per content image, mean over its styles:")
    print(content_table)
    print(f"{len(pairs)} pairs × {len(rows)} rows in {found.seconds / 60:.1f} min; {machine()}")
    save_contact_sheet(found.sheet_rows, [row.label for row in rows], args)
    if not args.no_write:
        write_results_section(
            args, source, found.seconds, names, only_adain, (table, content_table)
        )


if __name__ == "__main__":
    main()
