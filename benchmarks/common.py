"""Shared helpers for the benchmark scripts: timing, machine facts, writing BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


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


def conv_ceiling(channels_last: bool, repeats: int = 7) -> float:
    """GFLOP/s of one large 3×3 convolution (256→256 channels, 128×128), forward, no grad:
    the practical peak of this machine for the work VGG-19 does."""
    c, size = 256, 128
    x = torch.randn(1, c, size, size)
    conv = torch.nn.Conv2d(c, c, 3, padding=1).requires_grad_(False)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        conv = conv.to(memory_format=torch.channels_last)
    flops = 2 * c * c * 9 * size * size
    with torch.inference_mode():
        return flops / median_seconds(lambda: conv(x), repeats, warmup=3) / 1e9


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def write_section(name: str, text: str) -> None:
    """Replace (or append) the section between ``<!-- name -->`` markers in BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else (
        "# Benchmarks\n\nEvery table here is written by a script under `benchmarks/`; "
        "the command is given with each table.\n"
    )
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else (
        current.rstrip() + "\n\n" + block + "\n"
    )
    BENCHMARKS_MD.write_text(updated)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
