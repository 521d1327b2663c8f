"""Benchmark of any one-pass method in the registry: seconds per image against the FLOP floor.

``-m NAME`` picks a method whose kind is not ``optimization`` (AdaIN, WCT, Style Swap's
inverse network, and whatever is registered next: nothing here names a method). Per content size
(default 256², 512², 1024²; content astronaut, style strokes, both resized to S×S) and per
precision this machine runs (float32; bfloat16 on CPUs with bfloat16 units, float16 too on
a GPU):

* seconds per image: the median of ``--repeats`` calls (after one warm-up) of the method's
  ``stylize`` on the content with the style prepared once (as ``brushwork.Painter`` and the
  service reuse it), timed with CUDA events on a GPU; the style's preparation is timed alike;
* GFLOP: every ``nn.Conv2d`` call of one stylization, counted from the layer shapes with a
  global forward hook (:func:`harness.conv_flops`: the method's networks need not be known);
* the floor: GFLOP / the convolution ceiling in that precision (:func:`harness.conv_ceiling`,
  both layouts, before and after the timings, the best): the time if every convolution ran
  at that rate and all else were free;
* peak memory of one stylization above what was in use before it
  (:func:`harness.peak_bytes`: the resident set on the CPU, the allocator's peak on a GPU),
  beside the method's own plan (``Method.plan``, what brushwork refuses runs by).

The method runs with its default options (its bundled models) and any ``--option
KEY=VALUE`` (e.g. ``--option model=adain-laplacian``). Writes the ``feedforward-NAME``
section of BENCHMARKS.md (``feedforward-MODEL`` with a ``model`` option).

``--quality`` instead measures every one-pass method on photo × painting pairs at 512 px:
content, style and sliced-Wasserstein distances, the border ratio with the margin off and
as shipped, seconds per image (:mod:`benchmarks.quality`; the ``feedforward-quality``
section).

    python -m benchmarks.bench_feedforward -m adain
    python -m benchmarks.bench_feedforward -m wct --sizes 256 512 --precisions float32
    python -m benchmarks.bench_feedforward -m adain --sizes 64 --repeats 1 --no-write  # smoke
    python -m benchmarks.bench_feedforward --quality       # ../shared/data, 3 × 3 pairs
    python -m benchmarks.bench_feedforward --quality --bundled --quality-size 64 --no-write
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

import torch

from benchmarks import quality
from benchmarks.harness import (
    CONTENT,
    STYLE,
    add_precisions,
    add_repeats,
    add_sizes,
    arguments,
    best_ceiling,
    ceilings,
    ceilings_text,
    conv_flops,
    cpu_precisions,
    device_seconds,
    machine,
    markdown_table,
    merge_json,
    one_pass_methods,
    peak_bytes,
    publish,
    recorded_command,
    square_pair,
)
from brushwork.image import to_tensor
from brushwork.methods.base import StyleTarget
from brushwork.precision import Precision
from brushwork.stylizer import make_stylizer

MIB = 2**20


def option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → (key, value): a Python literal where it parses as one, else text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def precisions_for(device: torch.device, text: str | None) -> list[Precision]:
    """The precisions to time: the CPU's (:func:`harness.cpu_precisions`), or on a GPU
    float32, bfloat16 and float16 unless ``text`` names some."""
    if device.type == "cpu":
        return cpu_precisions(text)
    names = text.split(",") if text else ["float32", "bfloat16", "float16"]
    return [Precision(n.strip(), device.type, "benchmark") for n in names if n.strip()]


def measure(name: str, size: int, precision: Precision, args: argparse.Namespace) -> dict[str, Any]:
    """One row: seconds per image, style preparation, conv FLOPs, peak and planned memory of
    ``name`` at size × size in ``precision``."""
    stylizer = make_stylizer(
        name, device=args.device, precision=precision.name, **dict(args.option)
    )
    stylizer.load_encoder()
    method, device = stylizer.method, torch.device(args.device)
    content_image, style_image = square_pair(size)
    content, style = to_tensor(content_image).to(device), to_tensor(style_image).to(device)
    targets = [StyleTarget(style)] if method.style_images else []  # johnson: its own
    prepare_seconds = device_seconds(lambda: method.prepare(targets), args.repeats, device)
    prepared = method.prepare(targets)

    def paint() -> object:
        return method.stylize(content, prepared)

    plan = method.plan(size, size, [(size, size)] if targets else [], device)
    flops = conv_flops(paint)  # also loads the networks: not counted in the peak
    peak = peak_bytes(paint, device)
    seconds = device_seconds(paint, args.repeats, device)
    return {
        "size": size,
        "precision": precision.name,
        "seconds": seconds,
        "prepare_seconds": prepare_seconds,
        "gflop": flops / 1e9,
        "peak_mib": peak / MIB,
        "planned_mib": plan.estimate / MIB,
    }


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every size × precision row, with the ceilings measured before and after them."""
    device = torch.device(args.device)
    precisions = precisions_for(device, args.precisions)
    dtypes = [p.dtype for p in precisions if device.type == "cpu"]
    measured = ceilings(dtypes)
    rows = []
    for size in args.sizes:
        for precision in precisions:
            row = measure(args.method, size, precision, args)
            print(
                f"{size}² {precision.name}: {row['seconds']:.3f} s, {row['gflop']:.1f} GFLOP, "
                f"peak {row['peak_mib']:.0f} MiB",
                flush=True,
            )
            rows.append(row)
    for key, values in ceilings(dtypes).items():
        measured[key] += values
    for row in rows:
        if device.type == "cpu":
            row["ceiling"] = best_ceiling(measured, row["precision"])
            row["floor"] = row["gflop"] / row["ceiling"]
    return {
        "method": args.method,
        "options": dict(args.option),
        "machine": machine() if device.type == "cpu" else torch.cuda.get_device_name(device),
        "device": device.type,
        "repeats": args.repeats,
        "ceilings": measured,
        "rows": rows,
    }


def model_title(result: dict[str, Any]) -> str:
    model = result["options"].get("model")
    return f" (`{model}`)" if model else ""


def markdown(result: dict[str, Any], command: str) -> str:
    """The section: what was timed, how, and the table."""
    on_cpu = result["device"] == "cpu"
    rows = [
        [
            f"{r['size']}²",
            r["precision"],
            f"{r['seconds']:.3f}",
            f"{r['prepare_seconds']:.3f}",
            f"{r['gflop']:.1f}",
            f"{r['floor']:.3f}" if on_cpu else "",
            f"{r['seconds'] / r['floor']:.2f}×" if on_cpu else "",
            f"{r['peak_mib']:.0f}",
            f"{r['planned_mib']:.0f}",
        ]
        for r in result["rows"]
    ]
    options = ", ".join(f"{k}={v!r}" for k, v in result["options"].items()) or "defaults"
    return (
        f"## {result['method']}{model_title(result)}: one stylization against the FLOP floor\n\n"
        f"`{command}` on {result['machine']}. Content {CONTENT}, style {STYLE} (bundled "
        f"examples), both resized to S×S; method options: {options}. s / image: median of "
        f"{result['repeats']} `stylize` calls after one warm-up, the style prepared once "
        "(prepare s: its preparation, timed alike)"
        + (", timed with CUDA events" if not on_cpu else "")
        + ". GFLOP counts the convolutions only (2 × multiply-adds, from the layer shapes, "
        "a forward hook on every `nn.Conv2d` during one stylization)."
        + (
            " The **floor** is GFLOP divided by the convolution ceiling of the row's "
            "precision, the best rate of one 256→256-channel 3×3 convolution at 128² "
            "(`harness.conv_ceiling`, GFLOP/s before / after the timings: "
            f"{ceilings_text(result['ceilings'])})."
            if on_cpu
            else ""
        )
        + " Peak MiB: memory in use at the peak of one stylization above what was in use "
        + ("before it (resident set, sampled every ms)" if on_cpu else "before it (allocator)")
        + "; planned MiB: the method's own plan (`Method.plan`), by which brushwork refuses "
        "runs that would not fit.\n\n"
        + markdown_table(
            [
                "size",
                "precision",
                "s / image",
                "prepare s",
                "GFLOP",
                "floor s",
                "× floor",
                "peak MiB",
                "planned MiB",
            ],
            rows,
        )
        + "\n"
    )


def main() -> None:
    """Parse, refuse a method that is not one-pass, measure, print and write."""
    parser = arguments(__doc__, json=True)
    parser.add_argument("-m", "--method", help=f"one of {', '.join(one_pass_methods())}")
    add_sizes(parser, [256, 512, 1024], "content sizes")
    add_repeats(parser, 5, "timed runs per row")
    add_precisions(parser)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--option", type=option, action="append", default=[], metavar="KEY=VALUE")
    quality.add_arguments(parser)
    args = parser.parse_args()
    command = recorded_command(__file__)
    if args.quality:
        quality.run(args, command)
        return
    if args.method not in one_pass_methods():
        parser.error(f"{args.method!r} is not a one-pass method: {', '.join(one_pass_methods())}")
    print(machine(), flush=True)
    result = benchmark(args)
    model = dict(args.option).get("model")  # another model of the method: its own section
    section = f"feedforward-{Path(str(model)).stem if model else args.method}"
    text = markdown(result, command)
    if args.json:
        merge_json(args.json, {section: {**result, "command": command, "markdown": text}})
    publish({section: text}, args.no_write)


if __name__ == "__main__":
    main()
