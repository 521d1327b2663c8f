"""Quality of every one-pass method on the same pairs: issue 20's report.

For every method of the registry whose kind is not ``optimization`` (nothing here names a
method), on photo × painting pairs at ``--size`` px (float32, the method's defaults):

* content, style and sliced-Wasserstein distances (:func:`brushwork.metrics.distances`:
  relu4_1 feature error, channel statistics at relu1_1..relu4_1, Heitz et al. 2021), means
  over the pairs;
* the border ratio (:func:`brushwork.metrics.border_ratio`: the picture stylized as it is
  and reflect-padded by 64 px, mean difference within 16 px of the border over the mean
  inside), mean and max over the pairs, with the method's margin off (``margin = 0``,
  "before") and as shipped ("after");
* seconds per image: the median over the pairs of one ``stylize`` with the style prepared,
  after the margin-off passes have warmed the networks (the shipped margin's cost is in it).

Run through ``python -m benchmarks.bench_feedforward --quality``; writes the
``feedforward-quality`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch
from PIL import Image
from torch import Tensor

from benchmarks.harness import (
    ROOT,
    machine,
    markdown_table,
    merge_json,
    one_pass_methods,
    publish,
)
from brushwork.encoders import cached_vgg19
from brushwork.examples import content_image, style_path
from brushwork.image import load_image, to_tensor
from brushwork.metrics import Reference, border_ratio, distances
from brushwork.stylizer import make_stylizer

SHARED = ROOT.parent / "shared" / "data"
SHARED_CONTENTS = ("chicago", "golden_gate", "hoovertowernight")
"""A skyline, a bridge under a plain sky, a night sky: where issue 20 saw frames, blotches
and halos."""
SHARED_STYLES = ("starry_night", "mondrian", "brushstrokes")
BUNDLED_CONTENTS = ("astronaut", "chelsea", "coffee")
BUNDLED_STYLES = ("strokes", "mosaic")
PAD, EDGE = 64, 16
SECTION = "feedforward-quality"

Pairs = list[tuple[str, Tensor, str, Tensor]]
Stylize = Callable[[Tensor], Tensor]


def load_pairs(size: int, bundled: bool) -> tuple[Pairs, str]:
    """Every content × style at ``size`` px (longest side), from ../shared/data when it is
    there (unless ``bundled``), else the bundled examples; and how the section names them."""
    if not bundled and SHARED.is_dir():
        contents = {
            c: load_image(next((SHARED / "content").glob(f"{c}.*")), size=size)
            for c in SHARED_CONTENTS
        }
        styles = {
            s: load_image(next((SHARED / "style").glob(f"{s}.*")), size=size) for s in SHARED_STYLES
        }
        source = "../shared/data"
    else:
        contents = {c: to_tensor(fit(content_image(c), size)) for c in BUNDLED_CONTENTS}
        styles = {s: load_image(style_path(s), size=size) for s in BUNDLED_STYLES}
        source = "the bundled examples"
    pairs = [(c, ci, s, si) for c, ci in contents.items() for s, si in styles.items()]
    described = f"{source}: {', '.join(contents)} × {', '.join(styles)} ({len(pairs)} pairs)"
    return pairs, described


def fit(image: Image.Image, size: int) -> Image.Image:
    """``image`` resized so that its longest side is ``size``."""
    scale = size / max(image.size)
    shape = (round(image.width * scale), round(image.height * scale))
    return image.resize(shape, Image.Resampling.LANCZOS)


@contextlib.contextmanager
def margin_off(method: object) -> Iterator[bool]:
    """The method's border margin set to 0 (issue 20's "before"); yields whether it has one."""
    if not hasattr(type(method), "margin"):
        yield False
        return
    with mock.patch.object(type(method), "margin", 0):
        yield True


def reusing(first: Tensor, content: Tensor, stylize: Stylize) -> Stylize:
    """``stylize``, answering ``content`` itself with ``first`` (already painted)."""
    return lambda x: first if x is content else stylize(x)


def measure_pair(
    method: Any, prepared: Any, content: Tensor, references: tuple[Reference, Reference]
) -> dict[str, float]:
    """One pair's distances, border ratios (margin off, shipped) and seconds."""

    def stylize(x: Tensor) -> Tensor:
        return method.stylize(x, prepared).image

    with margin_off(method) as has_margin:
        before = border_ratio(stylize, content, PAD, EDGE) if has_margin else float("nan")
    start = time.perf_counter()
    output = stylize(content)
    seconds = time.perf_counter() - start
    after = border_ratio(reusing(output, content, stylize), content, PAD, EDGE)
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    found = distances(output.float(), *references, encoder, ssim=False)
    if not method.style_images:  # it paints its own style, not the pair's
        found |= {"style": math.nan, "sliced_wasserstein": math.nan}
    return {**found, "border_before": before, "border_after": after, "seconds": seconds}


def measure_method(name: str, pairs: Pairs) -> list[dict[str, float]]:
    """Every pair's measures for one method (float32, CPU, its defaults)."""
    stylizer = make_stylizer(name, device="cpu", precision="float32")
    stylizer.load_encoder()
    method, encoder = stylizer.method, cached_vgg19("relu4_1", "max", "cpu")
    rows, prepared_styles = [], {}
    for content_name, content, style_name, style in pairs:
        if style_name not in prepared_styles:
            prepared_styles[style_name] = method.prepare(style if method.style_images else [])
        references = (Reference.of(content, encoder), Reference.of(style, encoder))
        row = measure_pair(method, prepared_styles[style_name], content, references)
        print(
            f"{name} {content_name} × {style_name}: content {row['content']:.3f}, style "
            f"{row['style']:.3f}, SW {row['sliced_wasserstein']:.3f}, border "
            f"{row['border_before']:.2f} → {row['border_after']:.2f}, {row['seconds']:.2f} s",
            flush=True,
        )
        rows.append(row)
    return rows


def benchmark(size: int, bundled: bool) -> dict[str, Any]:
    """Every one-pass method over every pair."""
    torch.manual_seed(0)
    pairs, source = load_pairs(size, bundled)
    start, load = time.perf_counter(), os.getloadavg()[0]
    results = {name: measure_method(name, pairs) for name in one_pass_methods()}
    return {
        "size": size,
        "source": source,
        "machine": machine(),
        "minutes": (time.perf_counter() - start) / 60,
        "load": [load, os.getloadavg()[0]],
        "methods": results,
    }


def summary(rows: list[dict[str, float]]) -> list[str]:
    """A method's table cells: means over its pairs (border: mean before → after, max)."""

    def mean(key: str) -> float:
        return statistics.mean(r[key] for r in rows)

    def shown(key: str) -> str:  # "—": not measured (a method painting its own styles)
        return "—" if math.isnan(mean(key)) else f"{mean(key):.3f}"

    before = "" if math.isnan(mean("border_before")) else f"{mean('border_before'):.2f} → "
    return [
        shown("content"),
        shown("style"),
        shown("sliced_wasserstein"),
        f"{before}**{mean('border_after'):.2f}**",
        f"{max(r['border_after'] for r in rows):.2f}",
        f"{statistics.median(r['seconds'] for r in rows):.2f}",
    ]


def markdown(result: dict[str, Any], command: str) -> str:
    """The section: what was measured, how, and the table."""
    rows = [[name, *summary(found)] for name, found in result["methods"].items()]
    header = [
        "method",
        "content",
        "style",
        "sliced W.",
        "border before → after",
        "border max",
        "s / image",
    ]
    return (
        f"## Quality of every one-pass method (issue 20)\n\n"
        f"`{command}` on {result['machine']} ({result['minutes']:.1f} min, load average "
        f"{result['load'][0]:.1f} at the start, {result['load'][1]:.1f} at the end). Pairs: "
        f"{result['source']}, longest side {result['size']} px, float32, each method's "
        "defaults. Distances (`brushwork.metrics.distances`, means over the pairs): content, "
        "relu4_1 feature error; style, channel means and deviations at relu1_1..relu4_1; "
        "sliced W., sliced Wasserstein over the same layers (Heitz et al. 2021, 64 "
        "projections). Border: `brushwork.metrics.border_ratio`, the picture stylized as it "
        f"is and reflect-padded by {PAD} px, mean difference within {EDGE} px of the border "
        "over the mean inside (1: no frame; issue 20's goal ≤ 1.5), mean over the pairs with "
        "the method's margin off (`margin = 0`) → as shipped, and the largest as shipped. "
        "s / image: the median over the pairs of one `stylize` with the style prepared, "
        "after the margin-off passes warmed the networks. A method that paints its "
        "network's own styles has no style distance to the pair's painting (—).\n\n"
        + markdown_table(header, rows)
        + "\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quality`` and its options."""
    parser.add_argument(
        "--quality",
        action="store_true",
        help="the quality report of every one-pass method instead of one method's timings",
    )
    parser.add_argument(
        "--quality-size", type=int, default=512, help="longest side for --quality (512)"
    )
    parser.add_argument("--bundled", action="store_true", help="--quality on the bundled examples")


def run(args: argparse.Namespace, command: str) -> None:
    """Measure, print, write the section and merge the results into ``--json``."""
    print(machine(), flush=True)
    result = benchmark(args.quality_size, args.bundled)
    text = markdown(result, command)
    if args.json:
        merge_json(args.json, {SECTION: {**result, "command": command, "markdown": text}})
    publish({SECTION: text}, args.no_write)
