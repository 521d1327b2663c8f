"""``brushwork demo``: every registered method on the bundled photos and styles."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brushwork.cli.common import _Parser

SHOWCASE: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "gatys": ("astronaut", "strokes", {}),
    "gatys-laplacian": ("chelsea", "strokes", {"style_weight": 10.0}),
    "styleswap": ("coffee", "mosaic", {}),
    "adain": ("chelsea", "mosaic", {}),
    "wct": ("coffee", "strokes", {}),
    "styleswap-inverse": ("astronaut", "mosaic", {}),
    "johnson": ("coffee", None, {"styles": ("boccioni-city",)}),
    "lapstyle": ("astronaut", None, {"model": "lapstyle-klimt-beeches"}),
}
"""Per method, the bundled photo, style and options that show what it does, chosen by
looking at the outputs at 256 px and 100 iterations: the Laplacian term needs a stronger
style weight to paint more than a tint while it keeps the cat's whiskers, and the patch-based
methods show their cells on the mosaic. A method not listed takes the photos and styles in
turn with its defaults; a method that paints its network's own styles (style None) takes
no style image."""


def demo_parser() -> _Parser:
    """The parser of ``brushwork demo``."""
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
    return parser


def demo_jobs(iterations: int) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(method, content, style, options) per registered method, each method's options
    checked: its :data:`SHOWCASE` entry, else the photos and styles in turn."""
    from brushwork.examples import CONTENTS, STYLES
    from brushwork.methods import REGISTRY

    jobs = []
    for index, (name, entry) in enumerate(REGISTRY.items()):
        cls = entry.load()
        turn: tuple[str, str | None, dict[str, Any]] = (
            CONTENTS[index % len(CONTENTS)],
            STYLES[index % len(STYLES)] if cls.style_images else None,
            {},
        )
        content, style, shown = SHOWCASE.get(name, turn)
        options: dict[str, Any] = dict(shown)
        if entry.kind == "optimization":
            options["iterations"] = iterations
        cls.default_options().replace(**options)
        jobs.append((name, content, style, options))
    return jobs


def demo_paths(
    args: argparse.Namespace, jobs: Sequence[tuple[str, str, str | None, Any]]
) -> list[Path]:
    """Each job's output, checked (:class:`~brushwork.outputs.OutputPlan`) before any work."""
    from brushwork.examples import STYLES, style_path
    from brushwork.outputs import OutputPlan

    out = Path(args.out)
    plan = OutputPlan(force=args.force, inputs=[style_path(style) for style in STYLES])
    plan.add_folder(out, flag="--out", replaced=False)
    paths = [
        out / ("-".join(p for p in (content, style, name) if p) + ".png")
        for name, content, style, _ in jobs
    ]
    if out.is_dir():
        for path in paths:
            plan.add(path, flag="--out")
    return paths


def cmd_demo(argv: Sequence[str]) -> int:
    """``brushwork demo``: a bundled photo stylized with every method."""
    from brushwork import events
    from brushwork.api import run
    from brushwork.examples import content_image, style_path
    from brushwork.image import save_image
    from brushwork.outputs import made_folder
    from brushwork.stylizer import Controls

    args = demo_parser().parse_args(list(argv))
    # every option and output checked before any work; the folder is made with the first
    # image, so a refused or failed first method leaves nothing behind
    Controls(size=args.size).validate()
    jobs = demo_jobs(args.iterations)
    paths = demo_paths(args, jobs)
    with events.bound(events.ProgressBar(disable=True)), made_folder(Path(args.out)):
        for (name, content, style, options), path in zip(jobs, paths, strict=True):
            start = time.perf_counter()
            styles = style_path(style) if style else None
            done = run(content_image(content), styles, name, size=args.size, **options)
            save_image(done.image, path, force=args.force)
            print(f"{path}  ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0
