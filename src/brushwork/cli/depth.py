"""``brushwork depth IMAGE -o DEPTH.png``: :func:`brushwork.api.estimate_depth` as a command."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brushwork.cli.common import _Parser, scalar_type, version_text
from brushwork.errors import BrushworkError

DEPTH_DESCRIPTION = (
    "Estimate the depth of an image and write it as a colour map (red/yellow = near, blue = "
    "far), optionally also as 16-bit grey (--raw). Values are relative inverse depth: only "
    "the order of depths is known, not distances. The bundled model was trained on indoor "
    "scenes (NYU Depth v2) and is unreliable outdoors, e.g. on skies, landscapes and streets."
)


def depth_parser() -> _Parser:
    """The parser of ``brushwork depth``."""
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
    _limit_arguments(parser)
    parser.add_argument("-f", "--force", action="store_true", help="overwrite existing files")
    return parser


def _limit_arguments(parser: _Parser) -> None:
    """The device and the limits on pixels and memory."""
    from brushwork.memory import parse_bytes

    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse inputs with more pixels (default: BRUSHWORK_MAX_PIXELS or 40M)",
    )
    parser.add_argument(
        "--max-memory",
        type=scalar_type("int", False, parse_bytes),
        default=None,
        metavar="SIZE",
        help="memory the estimate may use, e.g. 4G (default: 80%% of available)",
    )


def depth_outputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The colour map's path and the raw depth's (or None), both checked before any work:
    neither may be an input, nor an existing file without --force
    (:class:`~brushwork.outputs.OutputPlan`)."""
    from brushwork.outputs import OutputPlan, inputs_of

    plan = OutputPlan(force=args.force, inputs=inputs_of(args.image, args.model))
    output = plan.add(args.output, flag="-o")
    raw = (
        None
        if args.raw is None
        else plan.add(args.raw, extensions=(".png",), what="raw depth", flag="--raw")
    )
    return output, raw


def depth_model(args: argparse.Namespace) -> str:
    """The depth model to run: --model, else BRUSHWORK_DEPTH_MODEL, else 'depth'; ONNX and
    TorchScript models (those of the depth loss) are refused."""
    import os

    from brushwork.depth import ENV, ONNX_SUFFIXES, TORCHSCRIPT_SUFFIXES

    model: str = args.model or os.environ.get(ENV) or "depth"
    if Path(model).suffix.lower() in ONNX_SUFFIXES | TORCHSCRIPT_SUFFIXES:
        source = "" if args.model else f" (from {ENV})"
        raise BrushworkError(
            f"depth model {model}{source}: `brushwork depth` runs brushwork's "
            "own estimators (a bundled name or a .safetensors checkpoint of "
            "`brushwork train depth`); ONNX and TorchScript models serve "
            "only the depth loss"
        )
    return model


def write_depth(depth: Any, output: Path, raw: Path | None, *, force: bool) -> list[Path]:
    """Write ``depth`` as a colour map to ``output`` and as 16-bit grey to ``raw`` (if
    given), both or neither; the paths written."""
    from PIL import Image, PngImagePlugin

    from brushwork.depth.render import RAW_DESCRIPTION, colorize, to_uint16
    from brushwork.image import SAVE_FORMATS
    from brushwork.outputs import write_atomically_together

    colour = Image.fromarray(colorize(depth))
    fmt = SAVE_FORMATS[output.suffix.lower()]
    options = {} if fmt == "PNG" else {"quality": 95}
    files: list[tuple[Path, Any]] = [(output, lambda tmp: colour.save(tmp, format=fmt, **options))]
    if raw is not None:
        grey = Image.fromarray(to_uint16(depth))
        info = PngImagePlugin.PngInfo()
        info.add_text("Description", RAW_DESCRIPTION)
        info.add_text("Software", version_text())
        files.append((raw, lambda tmp: grey.save(tmp, format="PNG", pnginfo=info)))
    write_atomically_together(files, replace=force)
    return [path for path, _ in files]


def cmd_depth(argv: Sequence[str]) -> int:
    """``brushwork depth IMAGE -o DEPTH.png``: a colour map (and 16-bit grey) of depth."""
    from brushwork import api

    args = depth_parser().parse_args(list(argv))
    output, raw = depth_outputs(args)
    model = depth_model(args)
    depth = api.estimate_depth(
        args.image,
        model,
        side=args.side,
        device=args.device,
        max_pixels=args.max_pixels,
        max_memory=args.max_memory,
    )
    for path in write_depth(depth, output, raw, force=args.force):
        print(path)
    return 0
