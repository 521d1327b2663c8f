"""What every benchmark script shares: its arguments, the command it records, its JSON
results, its BENCHMARKS.md sections, timing (CPU wall clock, CUDA events), conv FLOP counts,
the convolution ceiling, peak memory, the machine's description and stand-in networks.

Scripts run as modules from the repository root (``python -m benchmarks.bench_adain``), so
they import this module and ``scripts/`` without touching ``sys.path``.

``BRUSHWORK_BENCHMARKS_MD`` (a file path) makes :func:`write_section` write there instead of
the repository's BENCHMARKS.md: smoke runs of the scripts write into a temporary copy.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from brushwork.checkpoints import Checkpoint, save_checkpoint
from brushwork.encoders import VGG19
from brushwork.examples import content_image, style_path
from brushwork.image import open_image
from brushwork.methods import REGISTRY
from brushwork.methods.feedforward import Decoder, decoder_id, decoder_width
from brushwork.precision import Precision, cpu_bf16_units, cpu_name

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_ENV = "BRUSHWORK_BENCHMARKS_MD"
BENCHMARKS_MD = Path(os.environ.get(BENCHMARKS_ENV) or ROOT / "BENCHMARKS.md")
CONTENT, STYLE = "astronaut", "strokes"
"""The bundled content and style the speed tables stylize."""

FLOAT32 = Precision("float32", "cpu", "benchmark")
"""The precision the CPU tables are measured in unless they say otherwise: named explicitly,
so that ``auto`` (bfloat16 on CPUs with bfloat16 units) never changes what a float32 table
means."""
BFLOAT16 = Precision("bfloat16", "cpu", "benchmark")
PRECISIONS = {"float32": FLOAT32, "bfloat16": BFLOAT16}


# --- arguments, the recorded command, results ---------------------------------------------


def arguments(
    doc: str | None, *, json: bool = False, json_default: Path | None = None
) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with the options every script
    shares: ``--no-write`` (print only) and, where the script keeps its results (``json`` or
    a ``json_default``), ``--json`` (the results file, merged per section by
    :func:`merge_json`)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    if json or json_default is not None:
        shown = f" (default {json_default.relative_to(ROOT)})" if json_default else ""
        parser.add_argument(
            "--json",
            type=Path,
            default=json_default,
            help=f"results file, merged per section{shown}",
        )
    return parser


def add_sizes(parser: argparse.ArgumentParser, default: list[int], what: str = "sizes") -> None:
    """``--sizes S ...``: square sides, S×S."""
    parser.add_argument("--sizes", type=int, nargs="+", default=default, help=f"{what} (S×S)")


def add_repeats(parser: argparse.ArgumentParser, default: int, what: str = "timed runs") -> None:
    """``--repeats N``: timed runs per row, after one warm-up."""
    parser.add_argument("--repeats", type=int, default=default, help=what)


def add_precisions(parser: argparse.ArgumentParser, what: str = "precisions") -> None:
    """``--precisions P,...`` (see :func:`cpu_precisions`)."""
    parser.add_argument(
        "--precisions",
        default=None,
        metavar="P,...",
        help=f"{what} (default: float32, and bfloat16 on CPUs with bfloat16 units)",
    )


def cpu_precisions(text: str | None) -> list[Precision]:
    """The CPU precisions named in ``text`` (comma-separated), or float32 and, on CPUs with
    bfloat16 units (``brushwork.precision.cpu_bf16_units``), bfloat16."""
    if text is None:
        return [FLOAT32, BFLOAT16] if cpu_bf16_units() else [FLOAT32]
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown or not names:
        raise SystemExit(f"--precisions: choose from {', '.join(PRECISIONS)}, not {text!r}")
    return [PRECISIONS[n] for n in names]


def recorded_command(script: str, argv: list[str] | None = None) -> str:
    """The command a table states: ``python -m benchmarks.NAME`` and the arguments given
    (``script`` is the module's ``__file__``)."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", f"benchmarks.{Path(script).stem}", *args])


def merge_json(path: Path, results: dict[str, Any]) -> None:
    """Merge ``results`` (one key per section) into the JSON file at ``path``: sections this
    run did not measure keep their stored values."""
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stored.update(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"results merged into {path}")


def publish(texts: dict[str, str], no_write: bool) -> None:
    """Print each section's markdown; write it into BENCHMARKS.md unless ``no_write``."""
    for text in texts.values():
        print("\n" + text)
    if not no_write:
        for section, text in texts.items():
            write_section(section, text)


def temporary_folder(prefix: str) -> Path:
    """A temporary folder removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# --- timing ----------------------------------------------------------------------------------


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


def cuda_median_seconds(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median GPU time of ``fn()`` between CUDA events, over ``repeats`` runs."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    pairs = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        pairs.append((start, end))
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in pairs) / 1e3


def device_seconds(
    fn: Callable[[], object], repeats: int, device: torch.device, warmup: int = 1
) -> float:
    """Median seconds of ``fn()`` on ``device``: CUDA events on a GPU (the queued work is
    timed, not its launch), wall clock elsewhere."""
    if device.type == "cuda":
        return cuda_median_seconds(fn, repeats, warmup)
    return median_seconds(fn, repeats, warmup)


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak memory of one ``fn()`` above what was in use before it: on a GPU the allocator's
    peak (``torch.cuda.max_memory_allocated``); on the CPU the process's resident set,
    sampled every millisecond from ``/proc/self/statm`` (Linux; 0 elsewhere), after glibc's
    ``malloc_trim`` has handed freed memory back (else its reuse would not show)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    statm = Path("/proc/self/statm")
    if not statm.is_file():
        return 0
    page = os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)

    def resident() -> int:
        return int(statm.read_text().split()[1]) * page

    before, peak, done = resident(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(0, max(peak[0], resident()) - before)


# --- FLOPs and the convolution ceiling ---------------------------------------------------------


def conv2d_flops(module: nn.Conv2d, output: Tensor) -> int:
    """FLOPs (2 × multiply-adds) of one ``nn.Conv2d`` call from its shapes: output elements
    × input channels / groups × kernel area (bias not counted)."""
    kernel = module.kernel_size[0] * module.kernel_size[1]
    return 2 * output.numel() * module.in_channels // module.groups * kernel


def conv_flops(fn: Callable[[], object], modules: Iterable[nn.Module] | None = None) -> int:
    """Conv FLOPs (:func:`conv2d_flops`) of one ``fn()`` in inference mode, counted with
    forward hooks on the ``nn.Conv2d`` among ``modules``, or on every ``nn.Conv2d`` that runs
    (a global hook) when ``modules`` is None: any method's networks, without knowing them."""
    total = 0

    def hook(module: nn.Module, inputs: object, output: Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += conv2d_flops(module, output)

    if modules is None:
        handles = [nn.modules.module.register_module_forward_hook(hook)]
    else:
        handles = [m.register_forward_hook(hook) for m in modules if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            fn()
    finally:
        for handle in handles:
            handle.remove()
    return total


def conv_ceiling(
    channels_last: bool, repeats: int = 7, dtype: torch.dtype = torch.float32
) -> float:
    """GFLOP/s of one large 3×3 convolution (256→256 channels, 128×128), forward, no grad,
    with input and weights in ``dtype`` (float32 or bfloat16): the practical peak of this
    machine for the work VGG-19 does."""
    c, size = 256, 128
    x = torch.randn(1, c, size, size).to(dtype)
    conv = nn.Conv2d(c, c, 3, padding=1).requires_grad_(False).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        conv = conv.to(memory_format=torch.channels_last)
    flops = 2 * c * c * 9 * size * size
    with torch.inference_mode():
        return flops / median_seconds(lambda: conv(x), repeats, warmup=3) / 1e9


def ceilings(dtypes: list[torch.dtype]) -> dict[str, list[float]]:
    """One measurement of the conv ceiling per dtype and layout, keyed ``"float32
    channels_last"`` etc.; call before and after the timings and merge the lists."""
    found: dict[str, list[float]] = {}
    for dtype in dtypes:
        name = str(dtype).removeprefix("torch.")
        for channels_last in (True, False):
            key = f"{name} {'channels_last' if channels_last else 'contiguous'}"
            found.setdefault(key, []).append(conv_ceiling(channels_last, dtype=dtype))
    return found


def ceilings_text(measured: dict[str, list[float]]) -> str:
    """The ceilings of :func:`ceilings` as the tables state them: ``float32 channels_last
    80.1 / 79.5; ...`` (GFLOP/s before / after the timings)."""
    return "; ".join(
        f"{k} " + " / ".join(f"{v:.1f}" for v in values) for k, values in measured.items()
    )


def best_ceiling(measured: dict[str, list[float]], precision: str) -> float:
    """The best GFLOP/s measured for ``precision`` in either layout (:func:`ceilings`)."""
    return max(v for k, values in measured.items() if k.startswith(precision) for v in values)


# --- the machine ----------------------------------------------------------------------------


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


# --- methods, images and stand-in networks -------------------------------------------


def one_pass_methods() -> list[str]:
    """The registry's methods whose kind is not ``optimization`` (nothing names them)."""
    return [name for name, entry in REGISTRY.items() if entry.kind != "optimization"]


def square_pair(
    size: int, content: str = CONTENT, style: str = STYLE
) -> tuple[Image.Image, Image.Image]:
    """A bundled content and style, both resized to size × size."""
    style_image = open_image(style_path(style)).convert("RGB")
    return (
        content_image(content).resize((size, size), Image.Resampling.LANCZOS),
        style_image.resize((size, size), Image.Resampling.LANCZOS),
    )


def random_decoder(layer: str, encoder: VGG19) -> Decoder:
    """A random-initialized decoder from ``layer`` of the shape the bundled ones have for
    ``encoder`` (seeded: the same stand-in each run), for timing where a trained one is
    missing: the timing does not depend on the weight values."""
    torch.manual_seed(0)
    channels = encoder.out_channels[layer]
    return Decoder(layer, width=decoder_width(layer, channels)).requires_grad_(False).eval()


def save_stand_in(path: Path, method: str, decoder: Decoder, encoder: VGG19) -> Path:
    """``decoder`` saved as a shipped checkpoint of ``method`` (float16), for
    ``brushwork.run``'s model options."""
    channels = encoder.out_channels[decoder.layer]
    checkpoint = Checkpoint(method, decoder_id(decoder.layer, channels), decoder.state_dict())
    return save_checkpoint(path, checkpoint, dtype=torch.float16)


# --- whole processes ---------------------------------------------------------------------------

PEAK_WRAPPER = (
    "import resource, sys\n"
    "from brushwork.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_cli(argv: list[str]) -> dict[str, Any]:
    """``brushwork ARGV`` in a process of its own: ``wall`` seconds, ``peak`` RSS bytes
    (its own), ``stdout``, and ``error`` (the one-line message, or the end of stderr) when
    it failed."""
    import subprocess

    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, *argv], capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    lines = done.stderr.splitlines()
    peak = next((int(x.split()[1]) * 1024 for x in lines if x.startswith("PEAK_KIB")), 0)
    result: dict[str, Any] = {"wall": wall, "peak": peak, "stdout": done.stdout}
    if done.returncode != 0:
        result["error"] = next(
            (x for x in lines if x.startswith("brushwork: error")), done.stderr.strip()[-300:]
        )
    return result


# --- BENCHMARKS.md ----------------------------------------------------------------------------


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
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
