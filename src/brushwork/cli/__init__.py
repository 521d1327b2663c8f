"""The ``brushwork`` command line, generated from the registries and options classes: one
module per command, imported only when that command runs (``import torch`` stays out of the
light ones).

    brushwork stylize CONTENT STYLE -o OUT [-m METHOD] [controls] [method options]
    brushwork stylize -m METHOD --help          # that method's own options
    brushwork methods | models | weights [--prepare]
    brushwork train NAME [options]              # one command per registered trainer
    brushwork export NAME -o FILE [options]     # one per registered exporter
    brushwork depth IMAGE -o DEPTH.png
    brushwork demo

``stylize`` (:mod:`.stylize`), ``methods``/``models``/``weights`` (:mod:`.listings`),
``train`` (:mod:`.train`), ``export`` (:mod:`.export`), ``depth`` (:mod:`.depth`), ``demo``
(:mod:`.demo`); ``video``, ``serve`` and ``batch`` live beside what they serve. The building
blocks they share are in :mod:`.common`.

Every flag comes from one options dataclass (:mod:`brushwork.options`): the controls
(:class:`brushwork.stylizer.Controls`), each method's options, each trainer's
configuration and :class:`brushwork.training.trainer.RunOptions`; the CLI and the Python API
share one set of defaults and one validation. Every user error prints one line,
``brushwork: error: ...``, exits with status 2, and leaves no output file. Progress and
warnings reach the terminal through the event stream (:mod:`brushwork.events`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from brushwork.cli.common import _Parser, version_text
from brushwork.errors import BrushworkError


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
    "stylize": Command(
        "paint a content image in the style of another", "brushwork.cli.stylize:cmd_stylize"
    ),
    "methods": Command("list the style-transfer methods", "brushwork.cli.listings:cmd_methods"),
    "models": Command("list the bundled networks", "brushwork.cli.listings:cmd_models"),
    "weights": Command("show or prepare the VGG-19 weights", "brushwork.cli.listings:cmd_weights"),
    "train": Command(
        "train a network (`brushwork train -h` lists them)", "brushwork.cli.train:cmd_train"
    ),
    "export": Command(
        "export a method to ONNX (`brushwork export -h` lists them)",
        "brushwork.cli.export:cmd_export",
    ),
    "depth": Command(
        "estimate a depth map of an image (bundled model: indoor scenes)",
        "brushwork.cli.depth:cmd_depth",
    ),
    "demo": Command("stylize a bundled photo with every method", "brushwork.cli.demo:cmd_demo"),
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
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``brushwork COMMAND ...``: one line ``brushwork: error: ...`` and status 2 for
    every user error, 130 when interrupted."""
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


__all__ = ["COMMANDS", "Command", "build_parser", "main"]
