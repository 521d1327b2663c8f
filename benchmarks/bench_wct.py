"""Benchmark of WCT on the CPU against its FLOP floor, and of Style Swap's two reconstructions.

WCT section (``--section wct``), per content size (default 512²; content astronaut, style
strokes, the bundled examples, both resized to S×S), in float32 and, on CPUs with bfloat16
units (``brushwork.precision.cpu_bf16_units``), in bfloat16 too:

* the median of ``--repeats`` end-to-end ``brushwork.run(..., method="wct")`` calls (after
  one warm-up) from PNG files to a saved PNG, the method's default levels (relu4_1 → relu1_1);
* the method's own parts: the FLOPs of every ``nn.Conv2d`` call, counted from the layer
  shapes with forward hooks during one stylization (the style's encoder pass to the first level, the
  content's encoder pass at each level, each level's decoder); the convolution ceiling
  (``harness.conv_ceiling``, both memory layouts, in the row's precision, before and after the
  timings; the best is used) and the floor = FLOPs / ceiling;
* the transforms, which are no convolutions and are timed on their own at each level's
  feature size (the features the run really transformed, captured during it):
  ``brushwork.ops.symmetric_power`` (the eigendecomposition of the content's covariance, in
  float64), ``coloring_statistics`` (the style's mean and coloring matrix, once per level)
  and ``whiten_color`` (the content's whole transform).

The bundled WCT decoders (``wct-relu5_1`` ... ``wct-relu1_1``) may be missing from a checkout
while they train: then random-initialized decoders of the same shape are saved in a temporary
folder and passed with the method's ``models`` option (the timing does not depend on the
weight values), and the table says so.

Inverse section (``--section inverse``): Style Swap's two reconstructions on the same pairs
(bundled examples, 256 px, float32): the optimization (``styleswap``, ``--iterations``
L-BFGS steps, default the method's 100) and the inverse network (the method
``styleswap-inverse``, model ``styleswap-inverse``, random-initialized if missing, as above);
seconds of each (median of ``--inverse-repeats`` ``brushwork.run`` calls, after one warm-up
of each kind), the speed-up, and the swap loss of each output computed alike for both: the
``swap`` term of a ``StyleSwapLoss`` built on the (unpadded) content, evaluated on each
output image. A contact sheet (content, style, optimization, inverse network) goes to
``--sheet`` (default ``docs/styleswap_inverse.png``; ``out/styleswap_inverse.png`` while the
inverse network is a random stand-in).

Writes the ``wct`` and ``styleswap-inverse`` sections of BENCHMARKS.md (``--no-write``: print
only; ``$BRUSHWORK_BENCHMARKS_MD`` writes another file).

    python -m benchmarks.bench_wct                                  # both sections
    python -m benchmarks.bench_wct --section wct --sizes 512 --repeats 5
    python -m benchmarks.bench_wct --sizes 64 --repeats 1 --inverse-size 64 --iterations 2 \\
        --inverse-repeats 1 --pairs 1 --no-write --sheet /tmp/sheet.png   # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from torch import Tensor, nn

from benchmarks.harness import (
    CONTENT,
    FLOAT32,
    ROOT,
    STYLE,
    add_precisions,
    add_repeats,
    add_sizes,
    arguments,
    best_ceiling,
    ceilings,
    ceilings_text,
    conv2d_flops,
    cpu_precisions,
    machine,
    markdown_table,
    median_seconds,
    merge_json,
    publish,
    random_decoder,
    recorded_command,
    save_stand_in,
    square_pair,
    temporary_folder,
)
from brushwork import models
from brushwork.api import run as brushwork_run
from brushwork.encoders import VGG19, cached_vgg19
from brushwork.examples import content_image, style_path
from brushwork.image import open_image, resize, save_image, to_tensor
from brushwork.methods import get_method
from brushwork.methods.base import StyleTarget
from brushwork.methods.styleswap import StyleSwap, StyleSwapLoss, StyleSwapOptions
from brushwork.methods.styleswap_inverse import INVERSE_LAYER
from brushwork.methods.wct import WCT, WCTOptions
from brushwork.ops import coloring_statistics, covariance, symmetric_power, whiten_color
from brushwork.precision import Precision
from scripts.contact_sheet import LABEL_HEIGHT, label, tile

WCT_SECTION, INVERSE_SECTION = "wct", "styleswap-inverse"
LEVELS = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")
INVERSE_PAIRS = (("astronaut", "strokes"), ("chelsea", "mosaic"), ("coffee", "strokes"))


# --- inputs and networks -----------------------------------------------------------------


def wct_models(folder: Path, encoder: VGG19) -> tuple[str, str, bool]:
    """The ``models`` option for WCT, a description, and whether the decoders are trained:
    the bundled decoders, or random stand-ins in ``folder`` when any is missing."""
    missing = [
        f"wct-{layer}" for layer in LEVELS if not models.MODELS[f"wct-{layer}"].path.is_file()
    ]
    if not missing:
        return "wct", "the bundled decoders wct-relu5_1 … wct-relu1_1", True
    for layer in LEVELS:
        save_stand_in(
            folder / f"{layer}.safetensors", "wct", random_decoder(layer, encoder), encoder
        )
    note = (
        f"random-initialized decoders of the bundled ones' shape ({', '.join(missing)} "
        "not in this checkout: still training), passed as the `models` folder; the timing "
        "does not depend on the weight values"
    )
    print(f"NOTE: {note}", flush=True)
    return str(folder), note, False


def inverse_model(folder: Path, encoder: VGG19) -> tuple[str, str, bool]:
    """Style Swap's inverse network: the bundled one, or a random stand-in saved in
    ``folder``; with a description and whether it is trained."""
    info = models.MODELS["styleswap-inverse"]
    if info.path.is_file():
        return info.name, "the bundled inverse network styleswap-inverse", True
    path = folder / "styleswap-inverse-random.safetensors"
    save_stand_in(path, "styleswap", random_decoder(INVERSE_LAYER, encoder), encoder)
    note = (
        "a random-initialized inverse network of the bundled one's shape "
        "(styleswap-inverse is not in this checkout: still training); its timing does not "
        "depend on the weight values, its images and swap losses mean nothing"
    )
    print(f"NOTE: {note}", flush=True)
    return str(path), note, False


# --- WCT ---------------------------------------------------------------------------------


class Recorder:
    """Counts conv FLOPs per part of one WCT stylization with forward hooks, and keeps the
    features each level transformed."""

    def __init__(self, method: WCT) -> None:
        self.method = method
        self.parts: dict[str, int] = {}
        self.pending = 0
        self.transformed: dict[str, tuple[Tensor, Any]] = {}

    def run(self, content: Tensor, style: Tensor) -> None:
        method = self.method
        encoder = method.get_encoder()
        decoders = method.decoders()
        handles = []

        def encoder_hook(module: nn.Conv2d, inputs: object, output: Tensor) -> None:
            self.pending += conv2d_flops(module, output)

        for module in encoder.modules():
            if isinstance(module, nn.Conv2d):
                handles.append(module.register_forward_hook(encoder_hook))
        for layer, decoder in decoders.items():

            def start(module: nn.Module, inputs: object, layer: str = layer) -> None:
                # the encoder pass since the last decoder fed this level
                self.parts[f"encoder to {layer} (content)"] = self.pending
                self.pending = 0

            def decoder_hook(
                module: nn.Conv2d, inputs: object, output: Tensor, layer: str = layer
            ) -> None:
                key = f"decoder from {layer}"
                self.parts[key] = self.parts.get(key, 0) + conv2d_flops(module, output)

            handles.append(decoder.register_forward_pre_hook(start))
            for module in decoder.modules():
                if isinstance(module, nn.Conv2d):
                    handles.append(module.register_forward_hook(decoder_hook))
        original = method.transform

        def transform(c: Tensor, statistics: Any, mask: Tensor | None, layer: str) -> Tensor:
            self.transformed[layer] = (c.detach().clone(), statistics)
            return original(c, statistics, mask, layer)

        method.transform = transform  # type: ignore[method-assign]
        try:
            prepared = method.prepare([StyleTarget(style)])
            self.parts = {f"encoder to {method.levels()[0]} (style, once)": self.pending}
            self.pending = 0
            method.stylize(content, prepared)
        finally:
            del method.transform
            for handle in handles:
                handle.remove()
        if self.pending:
            raise RuntimeError(f"{self.pending} encoder FLOPs not followed by a decoder")


def transform_times(
    method: WCT, recorder: Recorder, style: Tensor, repeats: int
) -> list[dict[str, Any]]:
    """Seconds of the transform's parts at each level, on the features the run used, in the
    context the method runs them in (inference mode, its precision's autocast)."""
    encoder = method.get_encoder()
    rows = []
    with torch.inference_mode(), method.precision.autocast():
        style_features = encoder(style, list(LEVELS))
        for layer in method.levels():
            content_features, (mean, coloring) = recorder.transformed[layer]
            _, cov = covariance(content_features)
            s = style_features[layer]
            rows.append(
                {
                    "level": layer,
                    "channels": int(content_features.shape[1]),
                    "content": list(content_features.shape[-2:]),
                    "style": list(s.shape[-2:]),
                    "dtype": str(content_features.dtype).removeprefix("torch."),
                    "symmetric_power": median_seconds(
                        lambda cov=cov: symmetric_power(cov, -0.5), repeats
                    ),
                    "coloring_statistics": median_seconds(
                        lambda s=s: coloring_statistics(s), repeats
                    ),
                    "whiten_color": median_seconds(
                        lambda f=content_features, m=mean, k=coloring: whiten_color(f, m, k),
                        repeats,
                    ),
                }
            )
    return rows


def wct_benchmark(args: argparse.Namespace, precisions: list[Precision]) -> dict:
    encoder = cached_vgg19("relu5_1", "max", "cpu")  # the one brushwork.run shares
    folder = temporary_folder("bench_wct_")
    models_option, note, trained = wct_models(folder, encoder)
    dtypes = [p.dtype for p in precisions]
    measured_ceilings = ceilings(dtypes)
    print(f"conv ceilings before: {json.dumps(measured_ceilings)}", flush=True)
    entries = []
    for size in args.sizes:
        content_pil, style_pil = square_pair(size)
        content_file, style_file = folder / f"content_{size}.png", folder / f"style_{size}.png"
        content_pil.save(content_file)
        style_pil.save(style_file)
        content, style = to_tensor(content_pil), to_tensor(style_pil)
        for precision in precisions:
            method = WCT(WCTOptions(models=models_option), encoder=encoder, precision=precision)
            recorder = Recorder(method)
            recorder.run(content, style)
            flops = sum(recorder.parts.values())
            parts = transform_times(method, recorder, style, max(5, args.repeats))

            def user_path(
                size: int = size,
                precision: Precision = precision,
                content_file: Path = content_file,
                style_file: Path = style_file,
            ) -> None:
                brushwork_run(
                    str(content_file),
                    str(style_file),
                    method="wct",
                    size=size,
                    device="cpu",
                    precision=precision.name,
                    models=models_option,
                ).image.save(folder / "output.png")

            seconds = median_seconds(user_path, args.repeats)
            transforms = sum(r["coloring_statistics"] + r["whiten_color"] for r in parts)
            entries.append(
                {
                    "size": size,
                    "precision": precision.name,
                    "seconds": seconds,
                    "gflop": flops / 1e9,
                    "parts": {k: v / 1e9 for k, v in recorder.parts.items()},
                    "levels": parts,
                    "transforms": transforms,
                }
            )
            print(
                f"{size}² {precision.name}: {seconds:.3f} s end to end, {flops / 1e9:.1f} "
                f"GFLOP, transforms {transforms:.3f} s",
                flush=True,
            )
    for key, values in ceilings(dtypes).items():
        measured_ceilings[key] += values
    print(f"conv ceilings before / after: {json.dumps(measured_ceilings)}", flush=True)
    best = {p.name: best_ceiling(measured_ceilings, p.name) for p in precisions}
    for entry in entries:
        entry["ceiling"] = best[entry["precision"]]
        entry["floor"] = entry["gflop"] / entry["ceiling"]
    return {
        "machine": machine(),
        "torch": torch.__version__,
        "model": note,
        "trained": trained,
        "ceilings": measured_ceilings,
        "repeats": args.repeats,
        "entries": entries,
    }


def wct_markdown(result: dict, command: str) -> str:
    rows = []
    for e in result["entries"]:
        floor, both = e["floor"], e["floor"] + e["transforms"]
        rows.append(
            [
                f"{e['size']}²",
                e["precision"],
                f"{e['seconds']:.3f}",
                f"{e['gflop']:.1f}",
                f"{e['ceiling']:.1f}",
                f"{floor:.3f}",
                f"{e['seconds'] / floor:.2f}×",
                f"{e['transforms']:.3f}",
                f"{both:.3f}",
                f"{e['seconds'] / both:.2f}×",
            ]
        )
    part_rows = []
    first = result["entries"][0] if result["entries"] else None
    for e in result["entries"]:
        if e["precision"] != first["precision"]:
            continue
        for name, gflop in e["parts"].items():
            part_rows.append([f"{e['size']}²", name, f"{gflop:.2f}", f"{gflop / e['gflop']:.0%}"])
    level_rows = []
    for e in result["entries"]:
        for r in e["levels"]:
            level_rows.append(
                [
                    f"{e['size']}²",
                    e["precision"],
                    r["level"],
                    f"{r['channels']} × {r['content'][0]}×{r['content'][1]} ({r['dtype']})",
                    f"{r['style'][0]}×{r['style'][1]}",
                    f"{r['symmetric_power'] * 1e3:.1f}",
                    f"{r['coloring_statistics'] * 1e3:.1f}",
                    f"{r['whiten_color'] * 1e3:.1f}",
                ]
            )
    default = WCTOptions().levels
    return (
        "## WCT: one stylization on the CPU, against the FLOP floor\n\n"
        f"`{command}` on {result['machine']}. Content {CONTENT}, style {STYLE} (bundled "
        f"examples), both resized to S×S; {result['model']}. End to end: median of "
        f'{result["repeats"]} `brushwork.run(..., method="wct", precision=...)` calls after '
        f"one warm-up, PNG files in, PNG out, the default levels {' → '.join(default)}, "
        f"alpha {WCTOptions().alpha:g}.\n\n"
        "GFLOP counts the convolutions only (2 × multiply-adds, from the layer shapes, with "
        "forward hooks on every `nn.Conv2d` during one stylization): the style's encoder pass "
        f"to {default[0]} (once), the content's encoder pass at each level (on the previous "
        "level's output) and each level's decoder. The **floor** is GFLOP divided by the "
        "convolution "
        "ceiling of the row's precision, the best rate of one 256→256-channel 3×3 convolution "
        "at 128² with input and weights in that precision (`harness.conv_ceiling`, GFLOP/s "
        f"before / after the timings: {ceilings_text(result['ceilings'])}). The WCT "
        "transforms are no "
        "convolutions: Σ over the levels of `coloring_statistics` (the style's, once per "
        "level) and `whiten_color` (the content's), timed alone on the features the run "
        "transformed (eigendecompositions in float64 whatever the precision); "
        "floor + transforms adds them to the floor.\n\n"
        + markdown_table(
            [
                "size",
                "precision",
                "median s",
                "GFLOP",
                "ceiling GFLOP/s",
                "floor s",
                "× floor",
                "transforms s",
                "floor + transforms s",
                "× (floor + transforms)",
            ],
            rows,
        )
        + "\n\nWhere the convolution FLOPs go:\n\n"
        + markdown_table(["size", "part", "GFLOP", "share"], part_rows)
        + "\n\nThe transform at each level (milliseconds, median of "
        f"{max(5, result['repeats'])}): `symmetric_power` is the eigendecomposition of the "
        "content's covariance (whitening, C^-1/2); `coloring_statistics` the style's mean and "
        "C^1/2 (covariance + eigendecomposition); `whiten_color` the content's whole transform "
        "(covariance, eigendecomposition, two C×C by C×HW products).\n\n"
        + markdown_table(
            [
                "size",
                "precision",
                "level",
                "content features (C × h×w)",
                "style features h×w",
                "symmetric_power ms",
                "coloring_statistics ms",
                "whiten_color ms",
            ],
            level_rows,
        )
        + "\n"
    )


# --- Style Swap: optimization vs the inverse network -------------------------------------


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def swap_loss(
    encoder: VGG19, content: Image.Image, style: Image.Image, options: StyleSwapOptions
) -> Callable[[Image.Image], float]:
    """The ``swap`` term of a StyleSwapLoss built on the unpadded content, as a function of
    an output image (the same measure for both reconstructions)."""
    c, s = to_tensor(content), [StyleTarget(to_tensor(style))]
    method = StyleSwap(options, encoder=encoder, precision=FLOAT32)
    with torch.no_grad():
        loss = StyleSwapLoss(encoder, c, s, method.prepare_styles(encoder, s), options)

    def measure(image: Image.Image) -> float:
        with torch.no_grad():
            return float(loss(to_tensor(image.convert("RGB")))["swap"])

    return measure


def inverse_benchmark(args: argparse.Namespace) -> dict:
    encoder = cached_vgg19(INVERSE_LAYER, "max", "cpu")
    folder = temporary_folder("bench_styleswap_")
    model, note, trained = inverse_model(folder, encoder)
    options = StyleSwapOptions(iterations=args.iterations)
    pairs = []
    for c_name, s_name in INVERSE_PAIRS[: args.pairs]:
        content = resize(content_image(c_name), size=args.inverse_size)
        style = resize(open_image(style_path(s_name)).convert("RGB"), size=args.inverse_size)
        pairs.append((f"{c_name} × {s_name}", content, style))

    def optimization(content: Image.Image, style: Image.Image, iterations: int) -> Any:
        return brushwork_run(
            content,
            style,
            method="styleswap",
            size=args.inverse_size,
            device="cpu",
            precision="float32",
            iterations=iterations,
        )

    def inverse(content: Image.Image, style: Image.Image) -> Any:
        return brushwork_run(
            content,
            style,
            method="styleswap-inverse",
            size=args.inverse_size,
            device="cpu",
            precision="float32",
            model=model,
        )

    # warm-up: the encoder and the inverse network load once, as a second call finds them
    optimization(pairs[0][1], pairs[0][2], 1)
    inverse(pairs[0][1], pairs[0][2])
    rows = []
    for name, content, style in pairs:
        measure = swap_loss(encoder, content, style, options)
        opt_seconds, opt = timed(
            lambda c=content, s=style: optimization(c, s, args.iterations), args.inverse_repeats
        )
        inv_seconds, inv = timed(lambda c=content, s=style: inverse(c, s), args.inverse_repeats)
        row = {
            "pair": name,
            "size": list(content.size),
            "optimization": opt_seconds,
            "inverse": inv_seconds,
            "speedup": opt_seconds / inv_seconds,
            "swap_optimization": measure(opt.image),
            "swap_inverse": measure(inv.image),
            "swap_content": measure(content),
            "images": (content, style, opt.image, inv.image),
        }
        rows.append(row)
        print(
            f"{name}: optimization {opt_seconds:.2f} s (swap {row['swap_optimization']:.4f}), "
            f"inverse {inv_seconds:.3f} s (swap {row['swap_inverse']:.4f}), "
            f"{row['speedup']:.0f}×",
            flush=True,
        )
    return {
        "machine": machine(),
        "torch": torch.__version__,
        "model": note,
        "trained": trained,
        "iterations": args.iterations,
        "size": args.inverse_size,
        "repeats": args.inverse_repeats,
        "rows": rows,
    }


def inverse_sheet(result: dict, tile_size: int) -> Image.Image:
    columns = [
        "content",
        "style",
        f"optimization ({result['iterations']} L-BFGS steps)",
        "inverse network" + ("" if result["trained"] else " (random stand-in)"),
    ]
    rows = result["rows"]
    sheet = Image.new(
        "RGB", (tile_size * len(columns), LABEL_HEIGHT + tile_size * len(rows)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(columns):
        draw.text((i * tile_size + 6, 5), name, fill="black")
    for r, row in enumerate(rows):
        top = LABEL_HEIGHT + r * tile_size
        for i, image in enumerate(row["images"]):
            sheet.paste(tile(image, tile_size), (i * tile_size, top))
        label(draw, (0, top), row["pair"].replace("×", "x"))  # the default font has no ×
        label(
            draw,
            (2 * tile_size, top),
            f"{row['optimization']:.1f} s, swap {row['swap_optimization']:.3f}",
        )
        label(draw, (3 * tile_size, top), f"{row['inverse']:.2f} s, swap {row['swap_inverse']:.3f}")
    return sheet


def inverse_markdown(result: dict, command: str, sheet: str | None) -> str:
    rows = [
        [
            r["pair"],
            f"{r['size'][0]}×{r['size'][1]}",
            f"{r['optimization']:.2f}",
            f"{r['inverse']:.3f}",
            f"{r['speedup']:.0f}×",
            f"{r['swap_optimization']:.4f}",
            f"{r['swap_inverse']:.4f}",
            f"{r['swap_content']:.4f}",
        ]
        for r in result["rows"]
    ]
    if len(result["rows"]) > 1:
        med = {
            k: statistics.median(r[k] for r in result["rows"])
            for k in (
                "optimization",
                "inverse",
                "speedup",
                "swap_optimization",
                "swap_inverse",
                "swap_content",
            )
        }
        rows.append(
            [
                "median over the pairs",
                "",
                f"{med['optimization']:.2f}",
                f"{med['inverse']:.3f}",
                f"{med['speedup']:.0f}×",
                f"{med['swap_optimization']:.4f}",
                f"{med['swap_inverse']:.4f}",
                f"{med['swap_content']:.4f}",
            ]
        )
    return (
        "## Style Swap: optimization vs the inverse network\n\n"
        f"`{command}` on {result['machine']}, float32. Bundled examples at {result['size']} px "
        f'(longest side); optimization: `method="styleswap"`, {result["iterations"]} L-BFGS '
        'steps; inverse network: `method="styleswap-inverse"`, '
        + result["model"]
        + ". Seconds: median of "
        f"{result['repeats']} `brushwork.run` calls after one warm-up of each kind (images in "
        "memory, no file I/O). Swap loss: the `swap` term of a `StyleSwapLoss` built on the "
        "unpadded content (relu3_1, 3×3 patches, stride 1; relative feature error to the "
        "swapped target, lower is closer), evaluated alike on each output image; the content "
        "itself for scale."
        + (f" Contact sheet: `{sheet}`." if sheet else "")
        + "\n\n"
        + markdown_table(
            [
                "pair",
                "px",
                "optimization s",
                "inverse s",
                "speed-up",
                "swap loss, optimization",
                "swap loss, inverse",
                "swap loss, content",
            ],
            rows,
        )
        + "\n"
    )


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = arguments(__doc__, json=True)
    parser.add_argument("--section", choices=["wct", "inverse", "all"], default="all")
    add_sizes(parser, [512], "WCT content sizes")
    add_repeats(parser, 5, "WCT end-to-end timed runs")
    add_precisions(parser, "WCT precisions")
    parser.add_argument(
        "--inverse-size", type=int, default=256, help="Style Swap output size (longest side)"
    )
    default_iterations = get_method("styleswap").default_options().iterations  # type: ignore[attr-defined]
    parser.add_argument(
        "--iterations",
        type=int,
        default=default_iterations,
        help="L-BFGS steps of the Style Swap optimization (default: the method's)",
    )
    parser.add_argument(
        "--inverse-repeats",
        type=int,
        default=3,
        help="timed runs of each Style Swap reconstruction",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=len(INVERSE_PAIRS),
        choices=range(1, len(INVERSE_PAIRS) + 1),
        help="how many of the Style Swap pairs (astronaut × strokes, chelsea × "
        "mosaic, coffee × strokes)",
    )
    parser.add_argument(
        "--sheet",
        default=None,
        help="the Style Swap contact sheet (default docs/styleswap_inverse.png; "
        "out/ while the inverse network is a random stand-in)",
    )
    parser.add_argument("--tile", type=int, default=256, help="contact sheet tile size")
    args = parser.parse_args()
    precisions = cpu_precisions(args.precisions)
    command = recorded_command(__file__)
    print(f"{machine()}; WCT precisions: {', '.join(p.name for p in precisions)}", flush=True)

    stored: dict[str, Any] = {}
    texts: dict[str, str] = {}
    if args.section in ("wct", "all"):
        result = wct_benchmark(args, precisions)
        texts[WCT_SECTION] = wct_markdown(result, command)
        stored["wct"] = result
    if args.section in ("inverse", "all"):
        result = inverse_benchmark(args)
        sheet = args.sheet or str(
            ROOT / ("docs" if result["trained"] else "out") / "styleswap_inverse.png"
        )
        Path(sheet).parent.mkdir(parents=True, exist_ok=True)
        save_image(inverse_sheet(result, args.tile), sheet, force=True)
        print(f"contact sheet: {sheet}")
        shown = Path(sheet).resolve()
        shown_sheet = str(shown.relative_to(ROOT)) if shown.is_relative_to(ROOT) else str(sheet)
        texts[INVERSE_SECTION] = inverse_markdown(result, command, shown_sheet)
        stored["inverse"] = {
            **result,
            "rows": [{k: v for k, v in r.items() if k != "images"} for r in result["rows"]],
        }
    if args.json:
        merge_json(args.json, {**stored, "command": command})
    publish(texts, args.no_write)


if __name__ == "__main__":
    main()
