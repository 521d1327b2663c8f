"""Benchmark of AdaIN (feed-forward style transfer): CPU seconds against the FLOP floor, GPU fps.

CPU section (``--section cpu``), per content size (default 512²; content astronaut, style
strokes, both resized to S×S):

* FLOPs of one stylization — VGG-19 to relu4_1 on the content and on the style, AdaIN, the
  decoder — counted exactly from the layer shapes with forward hooks on every ``nn.Conv2d``
  (2·Cin·Cout·kh·kw per output pixel; bias, ReLU, padding, pooling, upsampling and AdaIN are
  not counted) and cross-checked against ``torch.utils.flop_counter.FlopCounterMode``;
* the convolution ceiling: the best GFLOP/s of one large 3×3 convolution
  (``harness.conv_ceiling``, both memory layouts, before and after the timings), and the floor
  = FLOPs / ceiling: the time if every convolution ran at that rate and all else were free;
* the median of ``--repeats`` runs (after one warm-up) of: (a) fp32, contiguous,
  ``torch.no_grad``; (b) ``torch.inference_mode``; (c) + channels_last encoder, decoder and
  inputs, all three with the paper's decoder layout (a ReflectionPad2d module before each
  conv); (d) + brushwork's decoder, whose convs pad by themselves
  (``Conv2d(padding_mode="reflect")``, weights shared, output checked against (c)'s);
  (e) ``brushwork.run(..., method="adain")`` end to end from PNG files to a saved PNG (the
  user-visible path); (f, with ``--compile``) (c) under ``torch.compile``, in a child process
  run after everything else (so that its compiler and threads cannot disturb the rest);
* the peer: Gatys on the same pair and size through ``brushwork.run``, timed for
  ``--gatys-iterations`` iterations and extrapolated to its default iteration count.

Every CPU number is float32: (a)–(d) and (f) build no autocast context (``harness.FLOAT32``),
(e) and the Gatys peer pass ``precision="float32"`` (brushwork's ``auto`` would pick bfloat16
on CPUs with bfloat16 units, which the table states with the machine).

GPU section (``--section gpu``, only where CUDA is available): median of ``--gpu-repeats`` runs
timed with CUDA events, as fps, at 256² and 512² batch 1 and 256² batch 8 (each item a full
stylization: its own content and style encoding), fp32 / bf16 / fp16 autocast, channels_last;
and ``brushwork.run`` with ``precision="float32"`` (``auto`` would pick a 16-bit precision).

Writes the ``adain`` (CPU) and ``adain-gpu`` sections of BENCHMARKS.md and merges its numbers
into ``out/adain_bench.json``; a section is only rewritten by a run that measured it, so a CPU
run keeps the GPU rows. ``--write-from FILE`` writes the sections stored in such a JSON file
(e.g. one brought back from a GPU machine) without measuring anything.

    python -m benchmarks.bench_adain                      # CPU 512², and GPU when present
    python -m benchmarks.bench_adain --section gpu --json $OUT/adain_bench.json
    python -m benchmarks.bench_adain --sizes 64 --repeats 1 --gatys-iterations 2 --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.harness import (
    CONTENT,
    FLOAT32,
    ROOT,
    STYLE,
    add_repeats,
    add_sizes,
    arguments,
    conv_ceiling,
    conv_flops,
    cuda_median_seconds,
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
    write_section,
)
from brushwork import events, models
from brushwork.api import run as brushwork_run
from brushwork.encoders import VGG19, load_vgg19
from brushwork.image import to_tensor
from brushwork.methods import get_method
from brushwork.methods.adain import LAYER
from brushwork.methods.feedforward import Decoder, load_decoder, min_side, mix_styles
from brushwork.ops import adain, mean_std, pad_to_multiple

CPU_SECTION, GPU_SECTION = "adain", "adain-gpu"
GPU = "cuda"  # the device of the GPU section


# --- the model and the images ------------------------------------------------------------


def decoder_for(model: str, encoder: VGG19, folder: Path | None = None) -> tuple[Decoder, str, str]:
    """The decoder to time, a description of it, and the ``model`` argument that makes
    ``brushwork.run`` use it. A bundled model missing from this checkout is replaced by a
    random-initialized decoder of the same shape (:func:`~benchmarks.harness.random_decoder`),
    saved as shipped in ``folder`` for ``brushwork.run``; any other failure is an error."""
    info = models.MODELS.get(model)
    if info is not None and info.method == "adain" and not info.path.is_file():
        decoder = random_decoder(LAYER, encoder)
        note = (
            f"random-initialized full-width decoder: the bundled model {model!r} is not in "
            f"this checkout ({info.path}); timing does not depend on the weight values"
        )
        print(f"NOTE: {note}", flush=True)
        folder = folder or temporary_folder("bench_adain_")
        path = save_stand_in(folder / "adain-random.safetensors", "adain", decoder, encoder)
        return decoder, note, str(path)
    # a copy: the loaded decoder is shared (cached per process) and this script changes its
    # memory layout
    decoder = copy.deepcopy(load_decoder(model, method="adain", layer=LAYER, encoder=encoder))
    return decoder, f"decoder {model!r}", model


def stylize(encoder: VGG19, decoder: nn.Module, content: Tensor, style: Tensor) -> Tensor:
    """One stylization, as :class:`brushwork.methods.adain.AdaIN` computes it (one style,
    alpha 1, no masks: :func:`~brushwork.methods.feedforward.mix_styles` with
    :func:`~brushwork.ops.adain`); the caller picks the grad mode, layout and dtype."""
    padded, (height, width) = pad_to_multiple(content, 8, min_side(LAYER))
    features = encoder(padded, [LAYER])[LAYER]
    style_stats = [mean_std(encoder(style, [LAYER])[LAYER])]
    mixed = mix_styles(features, style_stats, [1.0], [None], 1.0, lambda c, s, m: adain(c, *s, m))
    return decoder(mixed)[..., :height, :width].clamp(0, 1)


def separate_pad_decoder(decoder: Decoder) -> nn.Sequential:
    """The decoder as the paper's code builds it: each Conv2d(padding=1,
    padding_mode="reflect") of brushwork's decoder as a ReflectionPad2d(1) module followed by
    a Conv2d(padding=0) holding the same weights."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for name, module in decoder.named_children():
        if isinstance(module, nn.Conv2d):
            if module.padding_mode != "reflect" or tuple(module.padding) != (1, 1):
                raise RuntimeError(f"{name}: expected a reflect-padded conv, not {module}")
            conv = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size)
            conv.load_state_dict(module.state_dict())
            layers[f"{name}_pad"] = nn.ReflectionPad2d(1)
            module = conv
        layers[name] = module
    separate = nn.Sequential(layers).requires_grad_(False).eval()
    return separate.to(next(decoder.parameters()).device)


def set_layout(encoder: VGG19, decoder: nn.Module, channels_last: bool) -> None:
    """Put the encoder's and the decoder's weights in one memory layout."""
    encoder.use_channels_last(channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    decoder.to(memory_format=layout)


def in_layout(tensor: Tensor, channels_last: bool) -> Tensor:
    return tensor.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


def counted_flops(fn: Callable[[], object], modules: list[nn.Module]) -> tuple[int, int]:
    """(conv FLOPs from the shapes, FLOPs by torch.utils.flop_counter) of one ``fn()``."""
    flops = conv_flops(fn, modules)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        fn()
    return flops, counter.get_total_flops()


# --- CPU ---------------------------------------------------------------------------------


def check_fused(decoder: nn.Module, fused: nn.Module, features: Tensor) -> float:
    """Largest difference between the two decoders' outputs, relative to the output's scale;
    raises when above 1e-5."""
    with torch.inference_mode():
        expected, got = decoder(features), fused(features)
    difference = float((expected - got).abs().max()) / max(1.0, float(expected.abs().max()))
    if difference > 1e-5:
        raise RuntimeError(f"reflect-padded conv decoder differs by {difference:.2e}")
    return difference


def gatys_peer(content: Path, style: Path, size: int, iterations: int) -> dict[str, float]:
    """Seconds per iteration of Gatys through ``brushwork.run`` on the same pair, and the
    whole run at its default iteration count, extrapolated from ``iterations`` steps."""
    default = get_method("gatys").default_options().iterations  # type: ignore[attr-defined]

    def run(steps: int, collect: events.Collect | None = None) -> None:
        brushwork_run(
            str(content),
            str(style),
            method="gatys",
            size=size,
            device="cpu",
            precision="float32",
            iterations=steps,
            events=collect,
        )

    run(1)  # warm-up: loads VGG-19 to relu5_1 into brushwork's cache, as a second call would
    collect = events.Collect()
    start = time.perf_counter()
    run(iterations, collect)
    wall = time.perf_counter() - start
    stamps = [event.seconds for event in collect.of(events.Progress)]
    steps = list(itertools.pairwise(stamps[1:])) or list(itertools.pairwise(stamps))
    per_step = statistics.median(b - a for a, b in steps) if steps else wall / iterations
    overhead = max(0.0, wall - iterations * per_step)
    return {
        "iterations_timed": iterations,
        "wall_timed": wall,
        "per_iteration": per_step,
        "overhead": overhead,
        "default_iterations": default,
        "extrapolated": overhead + default * per_step,
    }


def cpu_size(
    size: int,
    encoder: VGG19,
    decoder: Decoder,
    separate: nn.Module,
    folder: Path,
    model_arg: str,
    args: argparse.Namespace,
) -> dict:
    """Counted FLOPs, the timed variants and the Gatys peer at size × size."""
    content_pil, style_pil = square_pair(size)
    content_file, style_file = folder / f"content_{size}.png", folder / f"style_{size}.png"
    output_file = folder / f"output_{size}.png"
    content_pil.save(content_file)
    style_pil.save(style_file)
    content, style = to_tensor(content_pil), to_tensor(style_pil)

    set_layout(encoder, decoder, False)
    flops, flop_counter = counted_flops(
        lambda: stylize(encoder, decoder, content, style), [*encoder.modules(), *decoder.modules()]
    )
    print(f"{size}²: {flops / 1e9:.2f} GFLOP per stylization (convolutions)", flush=True)

    def variant(
        channels_last: bool, mode: Callable[[], contextlib.AbstractContextManager], net: nn.Module
    ) -> Callable[[], Tensor]:
        set_layout(encoder, net, channels_last)
        c, s = in_layout(content, channels_last), in_layout(style, channels_last)

        def fn() -> Tensor:
            with mode(), FLOAT32.autocast():
                return stylize(encoder, net, c, s)

        return fn

    with torch.inference_mode():
        features = encoder(pad_to_multiple(content, 8, min_side(LAYER))[0], [LAYER])[LAYER]
    difference = check_fused(separate, decoder, features)
    print(f"reflect-padded conv decoder matches the original to {difference:.1e}", flush=True)

    def user_path() -> None:
        brushwork_run(
            str(content_file),
            str(style_file),
            method="adain",
            size=size,
            device="cpu",
            precision="float32",
            model=model_arg,
        ).image.save(output_file)

    variants: list[tuple[str, Callable[[], Callable[[], object]]]] = [
        ("(a) fp32 contiguous, no_grad", lambda: variant(False, torch.no_grad, separate)),
        ("(b) + inference_mode", lambda: variant(False, torch.inference_mode, separate)),
        ("(c) + channels_last", lambda: variant(True, torch.inference_mode, separate)),
        (
            "(d) + reflection padding inside the convs (brushwork's decoder)",
            lambda: variant(True, torch.inference_mode, decoder),
        ),
        ("(e) brushwork.run(method='adain'), PNG in and out", lambda: user_path),
    ]
    rows = []
    for label, make in variants:
        seconds = median_seconds(make(), args.repeats)
        rows.append({"variant": label, "seconds": seconds})
        print(f"{size}² {label}: {seconds:.3f} s", flush=True)
    set_layout(encoder, decoder, False)
    gatys = (
        gatys_peer(content_file, style_file, size, args.gatys_iterations)
        if args.gatys_iterations > 0
        else None
    )
    if gatys:
        print(
            f"{size}² gatys: {gatys['per_iteration']:.3f} s / iteration, "
            f"{gatys['extrapolated']:.1f} s extrapolated to "
            f"{gatys['default_iterations']} iterations",
            flush=True,
        )
    return {
        "size": size,
        "gflop": flops / 1e9,
        "flop_counter_gflop": flop_counter / 1e9,
        "variants": rows,
        "gatys": gatys,
        "fused_difference": difference,
    }


def compiled_seconds(size: int, model: str, repeats: int) -> dict[str, float]:
    """Variant (c) under ``torch.compile``, timed in a child process (``--compiled-child``)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_adain",
            "--compiled-child",
            str(size),
            "--model",
            model,
            "--repeats",
            str(repeats),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compiled_child(size: int, model: str, repeats: int) -> None:
    encoder = load_vgg19(LAYER, progress=False)
    decoder, _, _ = decoder_for(model, encoder)
    set_layout(encoder, decoder, True)
    content, style = (in_layout(to_tensor(image), True) for image in square_pair(size))
    compiled = torch.compile(lambda: stylize(encoder, decoder, content, style))

    def fn() -> Tensor:
        with torch.inference_mode(), FLOAT32.autocast():
            return compiled()

    start = time.perf_counter()
    fn()
    first_call = time.perf_counter() - start
    print(json.dumps({"seconds": median_seconds(fn, repeats), "first_call": first_call}))


def cpu_benchmark(args: argparse.Namespace) -> dict:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {machine()}", flush=True)
    encoder = load_vgg19(LAYER, progress=False)
    folder = temporary_folder("bench_adain_")
    decoder, model_note, model_arg = decoder_for(args.model, encoder, folder)
    separate = separate_pad_decoder(decoder)

    ceilings = {"channels_last": [conv_ceiling(True)], "contiguous": [conv_ceiling(False)]}
    print(
        f"conv ceiling before: {ceilings['channels_last'][0]:.1f} GFLOP/s channels_last, "
        f"{ceilings['contiguous'][0]:.1f} contiguous",
        flush=True,
    )

    measured = [
        cpu_size(size, encoder, decoder, separate, folder, model_arg, args) for size in args.sizes
    ]
    ceilings["channels_last"].append(conv_ceiling(True))
    ceilings["contiguous"].append(conv_ceiling(False))
    print(
        f"conv ceiling after: {ceilings['channels_last'][1]:.1f} GFLOP/s channels_last, "
        f"{ceilings['contiguous'][1]:.1f} contiguous",
        flush=True,
    )
    ceiling = max(itertools.chain(*ceilings.values()))
    if args.compile:  # last, in child processes: compiler threads cannot disturb the rest
        for entry in measured:
            child = compiled_seconds(entry["size"], model_arg, args.repeats)
            entry["variants"].append({"variant": "(f) (c) under torch.compile", **child})
            print(
                f"{entry['size']}² (f) torch.compile: {child['seconds']:.3f} s "
                f"(first call {child['first_call']:.1f} s)",
                flush=True,
            )
    for entry in measured:
        entry["floor"] = entry["gflop"] / ceiling
    return {
        "machine": machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": model_note,
        "ceiling": ceiling,
        "ceilings": ceilings,
        "repeats": args.repeats,
        "sizes": measured,
    }


def cpu_markdown(result: dict, command: str) -> str:
    rows, peers = [], []
    for entry in result["sizes"]:
        size, floor = entry["size"], entry["floor"]
        rows.append(
            [
                f"{size}²",
                "floor: conv FLOPs / ceiling",
                f"{floor:.3f}",
                "1.00×",
                f"{entry['gflop']:.1f}",
            ]
        )
        for row in entry["variants"]:
            rows.append(
                [
                    f"{size}²",
                    row["variant"],
                    f"{row['seconds']:.3f}",
                    f"{row['seconds'] / floor:.2f}×",
                    f"{entry['gflop']:.1f}",
                ]
            )
        gatys = entry["gatys"]
        if gatys:
            adain = entry["variants"][4]["seconds"]  # (e): the same user-visible path
            peers.append(
                [
                    f"{size}²",
                    f"{gatys['per_iteration']:.3f}",
                    f"{gatys['iterations_timed']} (wall {gatys['wall_timed']:.1f} s)",
                    f"{gatys['extrapolated']:.1f} s (extrapolated: "
                    f"{gatys['overhead']:.1f} s set-up "
                    f"+ {gatys['default_iterations']} × s / iteration)",
                    f"{adain:.3f} s",
                    f"{gatys['extrapolated'] / adain:.0f}×",
                ]
            )
    cl, cont = result["ceilings"]["channels_last"], result["ceilings"]["contiguous"]
    counter_note = (
        "agrees with `torch.utils.flop_counter`"
        if all(
            abs(e["flop_counter_gflop"] - e["gflop"]) <= 1e-6 * e["gflop"] for e in result["sizes"]
        )
        else "`torch.utils.flop_counter` counts "
        + ", ".join(f"{e['flop_counter_gflop']:.1f}" for e in result["sizes"])
    )
    text = (
        "## AdaIN: one stylization on the CPU, against the FLOP floor\n\n"
        f"`{command}` on {result['machine']}. Content {CONTENT}, style {STYLE}, both "
        f"resized to S×S; {result['model']}. float32 throughout (no autocast; (e) and Gatys "
        'with `precision="float32"`). Median of '
        f"{result['repeats']} runs after one warm-up.\n\n"
        "One stylization = VGG-19 to relu4_1 on the content and on the style, AdaIN, the "
        "decoder. GFLOP counts the convolutions only (2 × multiply-adds, from the layer "
        f"shapes; {counter_note}). The **floor** is GFLOP divided by "
        f"the measured convolution ceiling, {result['ceiling']:.1f} GFLOP/s: the best rate "
        "of one 256→256-channel 3×3 convolution at 128² (`harness.conv_ceiling`; "
        f"channels_last {cl[0]:.1f} / {cl[1]:.1f}, contiguous {cont[0]:.1f} / {cont[1]:.1f} "
        "GFLOP/s before / after the timings). It is the time if every convolution ran at "
        "that rate and padding, ReLU, pooling, upsampling, AdaIN and image I/O were free; "
        "the target is within 1.3× of it. (a)–(c) use the paper's decoder layout, a "
        "ReflectionPad2d module before each convolution; (d) is brushwork's decoder, whose "
        'convolutions pad themselves (`padding_mode="reflect"`; same output, checked). '
        "(e) also reads the decoder checkpoint and both PNGs, and writes the output PNG."
        + (
            " (f) is (c) under `torch.compile` (default mode), timed in a separate process "
            "after everything else; its first call (compilation) is not counted."
            if any(len(entry["variants"]) > 5 for entry in result["sizes"])
            else ""
        )
        + "\n\n"
        + markdown_table(["size", "variant", "median s", "× floor", "GFLOP"], rows)
        + "\n"
    )
    if peers:
        text += (
            "\nThe optimization method on the same pair and size, through the same "
            "`brushwork.run` path (Gatys, L-BFGS, default options): a full run takes minutes, "
            "so a few iterations are timed and the run is **extrapolated** to the default "
            "iteration count.\n\n"
            + markdown_table(
                [
                    "size",
                    "Gatys s / iteration",
                    "iterations timed",
                    "Gatys, default iterations",
                    "AdaIN (e)",
                    "AdaIN speed-up",
                ],
                peers,
            )
            + "\n"
        )
    return text


# --- GPU ---------------------------------------------------------------------------------


PRECISIONS: list[tuple[str, torch.dtype | None, bool]] = [
    ("fp32, contiguous", None, False),
    ("fp32, channels_last", None, True),
    ("bf16 autocast, channels_last", torch.bfloat16, True),
    ("fp16 autocast, channels_last", torch.float16, True),
]


def gpu_shape_rows(
    size: int,
    batch: int,
    encoder: VGG19,
    decoder: nn.Module,
    folder: Path,
    model_arg: str,
    args: argparse.Namespace,
) -> list[dict]:
    """The GPU rows of one size and batch."""
    device = torch.device(GPU)
    rows = []
    content_pil, style_pil = square_pair(size)
    content = to_tensor(content_pil).to(device).expand(batch, -1, -1, -1).contiguous()
    style = to_tensor(style_pil).to(device).expand(batch, -1, -1, -1).contiguous()
    set_layout(encoder, decoder, False)
    flops = conv_flops(
        lambda: stylize(encoder, decoder, content, style), [*encoder.modules(), *decoder.modules()]
    )
    with torch.inference_mode():
        reference = stylize(encoder, decoder, content, style).float()
    for label, dtype, channels_last in PRECISIONS:
        set_layout(encoder, decoder, channels_last)
        c, s = in_layout(content, channels_last), in_layout(style, channels_last)

        def fn(c: Tensor = c, s: Tensor = s, dtype: torch.dtype | None = dtype) -> Tensor:
            with (
                torch.inference_mode(),
                torch.autocast(GPU, dtype=dtype or torch.float32, enabled=dtype is not None),
            ):
                return stylize(encoder, decoder, c, s)

        torch.cuda.reset_peak_memory_stats(device)
        difference = float((fn().float() - reference).abs().max())  # NaN shows as nan
        seconds = cuda_median_seconds(fn, args.gpu_repeats, args.gpu_warmup)
        peak = torch.cuda.max_memory_allocated(device)
        rows.append(
            {
                "size": size,
                "batch": batch,
                "variant": label,
                "seconds": seconds,
                "fps": batch / seconds,
                "tflops": flops / seconds / 1e12,
                "peak_gib": peak / 2**30,
                "difference": difference,
            }
        )
        print(
            f"{size}² ×{batch} {label}: {seconds * 1e3:.2f} ms, {batch / seconds:.1f} "
            f"fps, {flops / seconds / 1e12:.1f} TFLOP/s",
            flush=True,
        )
    if batch == 1:  # the user-visible path: brushwork.run on PNG files, fp32 default
        content_file, style_file = folder / f"content_{size}.png", folder / f"style_{size}.png"
        content_pil.save(content_file)
        style_pil.save(style_file)

        def user_path(
            size: int = size, content_file: Path = content_file, style_file: Path = style_file
        ) -> None:
            brushwork_run(
                str(content_file),
                str(style_file),
                method="adain",
                size=size,
                device=GPU,
                precision="float32",
                model=model_arg,
            ).image.save(folder / "output.png")

        seconds = median_seconds(user_path, min(args.gpu_repeats, 20), warmup=2)
        rows.append(
            {
                "size": size,
                "batch": 1,
                "variant": "brushwork.run (float32), PNG in and out",
                "seconds": seconds,
                "fps": 1 / seconds,
                "tflops": None,
                "peak_gib": None,
                "difference": None,
            }
        )
        print(f"{size}² ×1 brushwork.run: {seconds * 1e3:.1f} ms", flush=True)
    return rows


def gpu_benchmark(args: argparse.Namespace) -> dict:
    device = torch.device(GPU)
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf32 = bool(torch.backends.cudnn.allow_tf32)
    name = torch.cuda.get_device_name(device)
    print(
        f"GPU: {name}, torch {torch.__version__}, cudnn.benchmark "
        f"{torch.backends.cudnn.benchmark}, cuDNN TF32 {tf32}",
        flush=True,
    )
    encoder = load_vgg19(LAYER, progress=False)
    folder = temporary_folder("bench_adain_")
    decoder, model_note, model_arg = decoder_for(args.model, encoder.cpu(), folder)
    encoder, decoder = encoder.to(device), decoder.to(device)
    rows = [
        row
        for size, batch in args.gpu_shapes
        for row in gpu_shape_rows(size, batch, encoder, decoder, folder, model_arg, args)
    ]
    return {
        "device": name,
        "torch": torch.__version__,
        "model": model_note,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32": tf32,
        "repeats": args.gpu_repeats,
        "rows": rows,
    }


def gpu_markdown(result: dict, command: str) -> str:
    rows = [
        [
            f"{r['size']}²",
            r["batch"],
            r["variant"],
            f"{r['seconds'] * 1e3:.2f}",
            f"{r['fps']:.1f}",
            "" if r["tflops"] is None else f"{r['tflops']:.1f}",
            "" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}",
            "" if r["difference"] is None else f"{r['difference']:.1e}",
        ]
        for r in result["rows"]
    ]
    return (
        "## AdaIN on a GPU: frames per second\n\n"
        f"`{command}` on {result['device']}, torch {result['torch']}; {result['model']}. "
        "Each item of a batch is one full stylization (content and style encoded, AdaIN, "
        f"decoded). Median of {result['repeats']} runs timed with CUDA events after warm-up; "
        f"fps = batch / median. cudnn.benchmark {result['cudnn_benchmark']}; fp32 "
        f"convolutions {'use TF32 (PyTorch default)' if result['tf32'] else 'in full fp32'}. "
        "The `brushwork.run` rows are wall time (perf_counter) for the whole call from PNG "
        "files to a saved PNG, median of up to 20. max abs Δ is the largest difference of the "
        "output image (0..1) from the fp32 contiguous one.\n\n"
        + markdown_table(
            [
                "size",
                "batch",
                "variant",
                "median ms",
                "fps",
                "TFLOP/s (convs)",
                "peak GiB",
                "max abs Δ vs fp32",
            ],
            rows,
        )
        + "\n"
    )


# --- main --------------------------------------------------------------------------------


def gpu_shape(text: str) -> tuple[int, int]:
    size, _, batch = text.partition("x")
    return int(size), int(batch or 1)


def options() -> argparse.ArgumentParser:
    """This script's arguments: the harness's (``--no-write``, ``--json``, sizes, repeats)
    and the CPU variants', the GPU shapes', ``--write-from``."""
    parser = arguments(__doc__, json_default=ROOT / "out" / "adain_bench.json")
    parser.add_argument("--section", choices=["cpu", "gpu", "all"], default="all")
    add_sizes(parser, [512], "CPU content sizes")
    add_repeats(parser, 5, "CPU timed runs per variant")
    parser.add_argument(
        "--gatys-iterations",
        type=int,
        default=10,
        help="Gatys iterations to time for the extrapolation (0: skip)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time (c) under torch.compile, in a child process",
    )
    parser.add_argument(
        "--model", default="adain", help="decoder: a bundled name or a checkpoint file"
    )
    parser.add_argument(
        "--gpu-shapes",
        type=gpu_shape,
        nargs="+",
        default=[(256, 1), (512, 1), (256, 8)],
        metavar="SIZExBATCH",
        help="GPU sizes and batches, e.g. 256x1 512x1 256x8",
    )
    parser.add_argument("--gpu-repeats", type=int, default=50)
    parser.add_argument("--gpu-warmup", type=int, default=10)
    parser.add_argument("--no-cudnn-benchmark", action="store_true")
    parser.add_argument(
        "--write-from",
        type=Path,
        metavar="JSON",
        help="write the sections stored in this results file, measure nothing",
    )
    parser.add_argument("--compiled-child", type=int, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = options().parse_args()
    if args.compiled_child:
        compiled_child(args.compiled_child, args.model, args.repeats)
        return
    sections = {"cpu": CPU_SECTION, "gpu": GPU_SECTION}
    if args.write_from:
        stored = json.loads(args.write_from.read_text())
        for key, section in sections.items():
            if key in stored:
                write_section(section, stored[key]["markdown"])
        return

    command = recorded_command(__file__)
    results: dict[str, dict] = {}
    if args.section in ("cpu", "all"):
        result = cpu_benchmark(args)
        result["markdown"] = cpu_markdown(result, command)
        results["cpu"] = result
    if args.section in ("gpu", "all"):
        if torch.cuda.is_available():
            result = gpu_benchmark(args)
            result["markdown"] = gpu_markdown(result, command)
            results["gpu"] = result
        else:
            print("no GPU: GPU section skipped (the GPU rows already in BENCHMARKS.md are kept)")
    if not results:
        return
    for result in results.values():
        result["command"] = command
    merge_json(args.json, results)
    publish({sections[k]: r["markdown"] for k, r in results.items()}, args.no_write)


if __name__ == "__main__":
    main()
