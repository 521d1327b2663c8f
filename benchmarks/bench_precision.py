"""Benchmark of the precision policy: every precision this CPU runs well, measured in one run.

For float32 and (where the CPU has bfloat16 units, or with ``--all``) bfloat16:

* the convolution ceiling: GFLOP/s of one 256→256-channel 3×3 convolution at 128², forward,
  channels-last, in that precision (the practical peak for VGG-19's work);
* Gatys: seconds per L-BFGS iteration at 256² and 512² (median of the timed steps after
  warm-up steps; VGG-19 to relu5_1, default options), its FLOPs per iteration counted from
  the layer shapes (each 3×3 convolution forward and backward to its input, the Gram
  matrices) and the achieved fraction of that precision's ceiling;
* AdaIN: ``brushwork.run(method="adain")`` at 512² in-process from PIL images (median of
  ``--repeats`` after a warm-up), against its FLOP floor: the conv FLOPs of one stylization
  (counted with forward hooks) at the ceiling's rate;
* training: steps/s of the AdaIN decoder's training step (batch 4 of 256² crops, Adam,
  autocast with float32 master weights), median of timed steps.

Prints the CPU and its bfloat16 flags with the table and writes the ``precision`` section of
BENCHMARKS.md. ``python -m benchmarks.bench_precision`` (about 10 minutes on 2 cores);
``--quick`` for a smoke test.
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.bench_gatys import iteration_flops
from benchmarks.harness import (
    add_repeats,
    arguments,
    conv_ceiling,
    conv_flops,
    markdown_table,
    median_seconds,
    recorded_command,
    write_section,
)
from brushwork import events
from brushwork.encoders import cached_vgg19, load_vgg19
from brushwork.examples import content_image, style_path
from brushwork.methods.gatys import Gatys, GatysOptions
from brushwork.precision import Precision, cpu_bf16_units, cpu_flags, cpu_name

SECTION = "precision"


def ceiling(dtype: torch.dtype, repeats: int = 7) -> float:
    """GFLOP/s of one 256→256 3×3 convolution at 128², forward, channels-last
    (:func:`harness.conv_ceiling`)."""
    return conv_ceiling(True, repeats, dtype)


def gatys_iteration(precision: Precision, side: int, warmup: int, steps: int) -> float:
    """Median seconds per L-BFGS iteration (the steps after ``warmup``)."""
    encoder = cached_vgg19("relu5_1", "max", "cpu")
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, side, side, generator=generator)
    style = torch.rand(1, 3, side, side, generator=generator)
    stamps: list[float] = []

    def stamp(event: events.Event) -> None:
        if isinstance(event, events.Progress):
            stamps.append(event.seconds)

    Gatys(encoder=encoder, precision=precision, iterations=warmup + steps).stylize(
        content, style, events=stamp
    )
    gaps = [b - a for a, b in zip(stamps[warmup - 1 :], stamps[warmup:], strict=False)]
    return statistics.median(gaps)


def adain_flops(side: int) -> int:
    """Conv FLOPs of one AdaIN stylization at side² (content and style), from the shapes
    (:func:`harness.conv_flops`)."""
    from brushwork.methods.adain import AdaIN

    method = AdaIN(encoder=load_vgg19("relu4_1"))
    return conv_flops(
        lambda: method.stylize(torch.rand(1, 3, side, side), torch.rand(1, 3, side, side))
    )


def adain_run(precision: str, side: int, repeats: int) -> float:
    from brushwork.api import run

    content = content_image("astronaut").resize((side, side))
    style = style_path("strokes")
    return median_seconds(
        lambda: run(content, style, "adain", size=side, precision=precision), repeats, warmup=1
    )


def train_steps_per_second(precision: Precision, steps: int) -> float:
    from brushwork.methods.feedforward import Decoder
    from brushwork.training.adain import AdaINLoss, TrainConfig

    encoder = cached_vgg19("relu4_1", "max", "cpu")
    torch.manual_seed(0)
    decoder = Decoder("relu4_1").to(memory_format=torch.channels_last)
    loss = AdaINLoss(decoder, encoder, TrainConfig("", ""))
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(1)

    def batch() -> torch.Tensor:
        return torch.rand(4, 3, 256, 256, generator=generator).contiguous(
            memory_format=torch.channels_last
        )

    def step() -> None:
        content, style = batch(), batch()
        with precision.autocast():
            terms = loss(content, style)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    return 1.0 / median_seconds(step, steps, warmup=2)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--all", action="store_true", help="also measure bfloat16 on a CPU without bfloat16 units"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny counts")
    add_repeats(parser, 5)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    units = cpu_bf16_units()
    names = ["float32"] + (["bfloat16"] if units or args.all else [])
    sides = (64, 96) if args.quick else (256, 512)
    steps = {
        sides[0]: (2, 3) if args.quick else (3, 10),
        sides[1]: (2, 2) if args.quick else (2, 5),
    }
    repeats = 1 if args.quick else args.repeats
    adain_side = 64 if args.quick else 512
    train_steps = 1 if args.quick else 5
    cpu = (
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"bfloat16 units: {', '.join(units) or 'none'} (flags "
        f"{'avx512f ' if 'avx512f' in cpu_flags() else ''}"
        f"{'amx_tile ' if 'amx_tile' in cpu_flags() else ''}…)"
    )
    print(cpu, flush=True)
    channels = load_vgg19("relu5_1").out_channels
    options = GatysOptions()
    floor_flops = adain_flops(adain_side)
    rows, measured = [], {}
    for name in names:
        precision = Precision(name, "cpu", "benchmark")
        before = ceiling(precision.dtype)
        row: dict[str, float] = {}
        for side in sides:
            row[f"gatys{side}"] = gatys_iteration(precision, side, *steps[side])
        row["adain"] = adain_run(name, adain_side, repeats)
        row["train"] = train_steps_per_second(precision, train_steps)
        # the ceiling before and after the timings, the best of both: a shared machine's
        # load can only make it look lower
        top = max(before, ceiling(precision.dtype))
        row["ceiling"] = top
        for side in sides:
            flops = iteration_flops(options, side, side, channels)
            row[f"gatys{side}_fraction"] = flops / row[f"gatys{side}"] / 1e9 / top
        row["adain_floor"] = floor_flops / (top * 1e9)
        measured[name] = row
        print(name, {k: round(v, 4) for k, v in row.items()}, flush=True)
        rows.append(
            [
                name,
                f"{top:.0f}",
                f"{row[f'gatys{sides[0]}']:.3f}",
                f"{100 * row[f'gatys{sides[0]}_fraction']:.0f} %",
                f"{row[f'gatys{sides[1]}']:.3f}",
                f"{100 * row[f'gatys{sides[1]}_fraction']:.0f} %",
                f"{row['adain']:.3f}",
                f"{row['adain_floor']:.3f}",
                f"{row['adain'] / row['adain_floor']:.1f}×",
                f"{row['train']:.2f}",
            ]
        )
    header = [
        "precision",
        "conv ceiling GFLOP/s",
        f"Gatys {sides[0]}² s/iteration",
        "of ceiling",
        f"Gatys {sides[1]}² s/iteration",
        "of ceiling",
        f"AdaIN {adain_side}² s (run)",
        "FLOP floor s",
        "run / floor",
        "AdaIN training steps/s",
    ]
    table = markdown_table(header, rows)
    if len(measured) == 2:
        f32, b16 = measured["float32"], measured["bfloat16"]
        table += (
            f"\n\nbfloat16 vs float32 in this run: ceiling {b16['ceiling'] / f32['ceiling']:.2f}×, "
            f"Gatys {sides[0]}² {f32[f'gatys{sides[0]}'] / b16[f'gatys{sides[0]}']:.2f}×, "
            f"Gatys {sides[1]}² {f32[f'gatys{sides[1]}'] / b16[f'gatys{sides[1]}']:.2f}×, "
            f"AdaIN {f32['adain'] / b16['adain']:.2f}×, training "
            f"{b16['train'] / f32['train']:.2f}× faster."
        )
    text = (
        f"CPU: {cpu}. `{recorded_command(__file__)}` ({time.strftime('%Y-%m-%d')}). "
        "Each precision's ceiling is measured in the same run, before and after its timings, "
        "the best of both (256→256 3×3 convolution at 128², "
        "channels-last). Gatys: median seconds per L-BFGS iteration after warm-up steps, FLOPs "
        "from the layer shapes (convolutions forward and backward to the input, Gram "
        "matrices); AdaIN: median of in-process `brushwork.run(method='adain')` calls from "
        "PIL images (image conversion, resizing, encoder, decoder), floor = its convolution "
        "FLOPs at the ceiling's rate; training: AdaIN decoder steps (batch 4, 256² crops, "
        "Adam, autocast with float32 master weights).\n\n" + table
    )
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
