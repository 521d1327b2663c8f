"""Shared helpers for the benchmark scripts: timing, machine facts, writing BENCHMARKS.md.

``BRUSHWORK_BENCHMARKS_MD`` (a file path) makes :func:`write_section` write there instead of
the repository's BENCHMARKS.md: smoke runs of the scripts write into a temporary copy.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from brushwork.precision import Precision, cpu_bf16_units, cpu_name

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_ENV = "BRUSHWORK_BENCHMARKS_MD"
BENCHMARKS_MD = Path(os.environ.get(BENCHMARKS_ENV) or ROOT / "BENCHMARKS.md")

FLOAT32 = Precision("float32", "cpu", "benchmark")
"""The precision the CPU tables are measured in unless they say otherwise: named explicitly,
so that ``auto`` (bfloat16 on CPUs with bfloat16 units) never changes what a float32 table
means."""
BFLOAT16 = Precision("bfloat16", "cpu", "benchmark")


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_ceiling(
    channels_last: bool, repeats: int = 7, dtype: torch.dtype = torch.float32
) -> float:
    """GFLOP/s of one large 3×3 convolution (256→256 channels, 128×128), forward, no grad,
    with input and weights in ``dtype`` (float32 or bfloat16): the practical peak of this
    machine for the work VGG-19 does."""
    c, size = 256, 128
    x = torch.randn(1, c, size, size).to(dtype)
    conv = torch.nn.Conv2d(c, c, 3, padding=1).requires_grad_(False).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        conv = conv.to(memory_format=torch.channels_last)
    flops = 2 * c * c * 9 * size * size
    with torch.inference_mode():
        return flops / median_seconds(lambda: conv(x), repeats, warmup=3) / 1e9


def conv2d_flops(module: torch.nn.Conv2d, output: torch.Tensor) -> int:
    """FLOPs (2 × multiply-adds) of one ``nn.Conv2d`` call from its shapes: output elements
    × input channels / groups × kernel area (bias not counted)."""
    kernel = module.kernel_size[0] * module.kernel_size[1]
    return 2 * output.numel() * module.in_channels // module.groups * kernel


def bf16_note() -> str:
    """The CPU's bfloat16 units, as the tables state them."""
    units = cpu_bf16_units()
    return f"bfloat16 units: {', '.join(units)}" if units else "no bfloat16 units"


def machine() -> str:
    """The CPU (``brushwork.precision.cpu_name``), its bfloat16 units, cores, torch, threads."""
    return (
        f"{cpu_name()} ({bf16_note()}), {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads"
    )


def write_section(name: str, text: str) -> None:
    """Replace (or append) the section between ``<!-- name -->`` markers in BENCHMARKS.md
    (or in ``$BRUSHWORK_BENCHMARKS_MD``)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = (
        BENCHMARKS_MD.read_text()
        if BENCHMARKS_MD.exists()
        else (
            "# Benchmarks\n\nEvery table here is written by a script under `benchmarks/`; "
            "the command is given with each table.\n"
        )
    )
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    updated = (
        pattern.sub(lambda _: block, current)
        if pattern.search(current)
        else (current.rstrip() + "\n\n" + block + "\n")
    )
    BENCHMARKS_MD.write_text(updated)
    print(f"wrote the {name} section of {BENCHMARKS_MD}")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
