"""Per-style networks against Gatys, AdaIN and WCT on their own paintings: issue 21's
comparison.

Every model given (default: every bundled model of a method that takes no style image, from
the registry: nothing here names one) paints the styles it was trained for; each style whose
training painting is on this machine (the model's configuration names it; ../shared/train)
is measured on every photo of ../shared/data/content at ``--size`` px: each model painting
it, and each peer (``--peers``, methods that take a style image) given that painting at the
largest ``style_size`` its models learned it at (where the style distances are measured).
The networks run in float32; Gatys (300 L-BFGS steps from the content, its defaults) at the
CPU's best precision (bfloat16 where it has the units), on the first ``--gatys-photos``
photos of the styles in ``--gatys-styles`` only: a run takes minutes.

Measured (:mod:`brushwork.metrics`): content distance (relu4_1), style distance (channel
statistics relu1_1..relu4_1) and sliced Wasserstein distance to the painting, sharpness (the
Laplacian energy relative to the photo's), the border ratio of issue 20 (64 px reflected
padding, 16 px edge; not for Gatys: two more optimizations per photo) and seconds per image
(styles prepared). Writes a BENCHMARKS.md section (means over the photos, median seconds)
and a contact sheet of the bundled photos only (``--sheet``, at ``--sheet-size`` px): a row
per style and photo, a column per model and peer, the painting's thumbnail first.

    python -m benchmarks.eval_per_style [--models NAME|PATH ...] [--peers gatys adain wct]
        [--size 512] [--gatys-styles NAME ...] [--gatys-photos 1] [--section per-style]
        [--title TEXT] [--sheet docs/per_style.jpg] [--no-write]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from benchmarks.harness import ROOT, machine, markdown_table, publish, recorded_command
from benchmarks.quality import EDGE, PAD, reusing
from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.encoders import cached_vgg19
from brushwork.examples import content_image
from brushwork.image import load_image, to_pil, to_tensor
from brushwork.methods import REGISTRY, get_method
from brushwork.methods.base import StyleTarget
from brushwork.metrics import Reference, border_ratio, distances
from brushwork.options import fields_of
from brushwork.stylizer import make_stylizer
from scripts.contact_sheet import label, tile

PHOTOS = ROOT.parent / "shared" / "data" / "content"
SHEET_PHOTOS = ("astronaut", "chelsea")
SHEET = ROOT / "docs" / "per_style.jpg"
SECTION = "per-style"
TITLE = "Per-style networks against Gatys, AdaIN and WCT on their own paintings (issue 21)"
MEASURES = ("content", "style", "sliced_wasserstein", "sharpness", "border", "seconds")


@dataclass(frozen=True)
class Painting:
    name: str
    image: Path
    size: int
    """The longest side the model learned the painting's statistics at."""


@dataclass(frozen=True)
class Model:
    """A per-style model: a bundled name or a file, and the paintings it paints."""

    label: str
    model: str
    method: str
    paintings: tuple[Painting, ...]

    def options(self, painting: str) -> dict[str, Any]:
        """The method options that paint ``painting`` (a multi-style model: by name)."""
        fields = {f.name for f in fields_of(get_method(self.method).options_class)}
        chosen = {"styles": (painting,)} if "styles" in fields else {}
        return {"model": self.model, **chosen}


def own_style_methods() -> list[str]:
    """The registry's methods that paint their networks' own styles (no style image)."""
    return [name for name in REGISTRY if not get_method(name).style_images]


def optimizes(method: str) -> bool:
    return REGISTRY[method].kind == "optimization"


def describe(model: str) -> Model:
    """A bundled name or a model file → its method and paintings (from its metadata and the
    configuration its training recorded)."""
    info = models.MODELS.get(model)
    path = info.path if info else Path(model)
    metadata = models.file_metadata(path)
    method = info.method if info else metadata["method"]
    config = load_checkpoint(path, method=models.checkpoint_method(method)).config
    files = config["style"] if isinstance(config["style"], list) else [config["style"]]
    single = models.style_of(metadata)
    names = [single.name] if single else [s.name for s in models.styles_of(metadata)]
    names = names or [Path(f).stem for f in files]
    side = int(config["style_size"])
    paintings = tuple(
        Painting(n, Path(f).resolve(), side) for n, f in zip(names, files, strict=True)
    )
    return Model(model if info else path.parent.name, model, method, paintings)


def thumbnail(model: Model, painting: str) -> Image.Image | None:
    """The painting's thumbnail the model file carries (None where it has none)."""
    path = models.MODELS[model.model].path if model.model in models.MODELS else Path(model.model)
    pngs = [models.read_thumbnail(path), *models.read_thumbnails(path)]
    names = [p.name for p in model.paintings]
    found = pngs[1 + names.index(painting)] if len(names) > 1 else pngs[0]
    return Image.open(io.BytesIO(found)).convert("RGB") if found else None


def painter(who: str, options: dict[str, Any]) -> Any:
    """A method instance with its encoder loaded; Gatys at ``auto`` precision, the networks
    in float32."""
    precision = "auto" if optimizes(who) else "float32"
    stylizer = make_stylizer(who, device="cpu", precision=precision, size=None, **options)
    stylizer.load_encoder()
    return stylizer.method


def paint(method: Any, content: Tensor, styles: list[StyleTarget], border: bool) -> Any:
    """(output, seconds, border ratio) of one photo, the styles prepared beforehand."""
    prepared = method.prepare(styles)

    def stylize(image: Tensor) -> Tensor:
        return method.stylize(image, prepared).image.float()

    start = time.perf_counter()
    output = stylize(content)
    seconds = time.perf_counter() - start
    ratio = (
        border_ratio(reusing(output, content, stylize), content, PAD, EDGE) if border else math.nan
    )
    return output, seconds, ratio


@dataclass
class Painter:
    """One column of the comparison: a model painting a style, or a peer given it."""

    who: str
    method: Any
    styles: list[StyleTarget]
    optimizes: bool


def painters(painting: Painting, owners: list[Model], peers: list[str]) -> list[Painter]:
    found = [
        Painter(m.label, painter(m.method, m.options(painting.name)), [], False) for m in owners
    ]
    style = [StyleTarget(load_image(painting.image, size=painting.size))]
    for peer in peers:
        method = painter(peer, {})
        found.append(Painter(peer, method, style, optimizes(peer)))
    return found


def evaluate_style(
    painting: Painting, columns: list[Painter], photos: dict[str, Tensor], gatys_photos: int
) -> dict[str, list[dict[str, float]]]:
    """Every column × photo's measures."""
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    style = Reference.of(load_image(painting.image, size=painting.size), encoder)
    rows: dict[str, list[dict[str, float]]] = {}
    for column in columns:
        found = rows.setdefault(column.who, [])
        for number, (title, photo) in enumerate(photos.items()):
            if column.optimizes and number >= gatys_photos:
                break
            output, seconds, ratio = paint(
                column.method, photo, column.styles, not column.optimizes
            )
            measured = distances(output, Reference.of(photo, encoder), style, encoder, ssim=False)
            found.append({**measured, "border": ratio, "seconds": seconds})
            print(
                f"{painting.name} {column.who} {title}: "
                + ", ".join(f"{k} {found[-1][k]:.3f}" for k in MEASURES),
                flush=True,
            )
    return rows


def sheet_tiles(
    columns: list[Painter], side: int, cell: int
) -> list[tuple[str, list[Image.Image]]]:
    """A row per bundled photo: each column's painting of it at ``side`` px."""
    found = []
    for name in SHEET_PHOTOS:
        photo = to_tensor(content_image(name).convert("RGB"))
        photo = torch.nn.functional.interpolate(
            photo, scale_factor=side / max(photo.shape[-2:]), mode="area"
        )
        row = [tile(to_pil(paint(c.method, photo, c.styles, False)[0]), cell) for c in columns]
        found.append((name, row))
    return found


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Every style of the models (grouped: each style's models, then the peers)."""
    described = [describe(m) for m in args.models]
    photos = {p.stem: load_image(p, size=args.size) for p in sorted(PHOTOS.glob("*.jpg"))}
    styles: dict[Painting, list[Model]] = {}
    for model in described:  # one group per painting, at the largest size a model learned
        for own in model.paintings:
            same = next((p for p in styles if (p.name, p.image) == (own.name, own.image)), own)
            owners = styles.pop(same, [])
            styles[dataclasses.replace(own, size=max(own.size, same.size))] = [*owners, model]
    result: dict[str, Any] = {"rows": {}, "sheet": [], "columns": []}
    for painting, owners in styles.items():
        if not painting.image.is_file():
            print(f"skipped {painting.name}: its painting {painting.image} is not here")
            continue
        peers = [p for p in args.peers if not optimizes(p)]
        if painting.name in args.gatys_styles or not args.gatys_styles:
            peers = list(args.peers)
        columns = painters(painting, owners, peers)
        result["rows"][painting.name] = evaluate_style(painting, columns, photos, args.gatys_photos)
        if args.sheet:
            shown = thumbnail(owners[0], painting.name)
            for name, row in sheet_tiles(columns, args.sheet_size, args.cell):
                cells = [tile(shown, args.cell) if shown else Image.new("RGB", (args.cell,) * 2)]
                result["sheet"].append(
                    (f"{painting.name} on {name}", [c.who for c in columns], cells + row)
                )
    return result | {"size": args.size, "machine": machine(), "photos": len(photos)}


def save_sheet(rows: list[tuple[str, list[str], list[Image.Image]]], cell: int, path: Path) -> None:
    """Rows of labelled cells: the painting, then each column's output."""
    width = max(len(cells) for _, _, cells in rows) * cell
    band = 16
    sheet = Image.new("RGB", (width, len(rows) * (cell + band)), "white")
    draw = ImageDraw.Draw(sheet)
    for y, (title, whos, cells) in enumerate(rows):
        top = y * (cell + band)
        draw.text((4, top + 2), title, fill="black")
        for x, (who, image) in enumerate(zip(["painting", *whos], cells, strict=True)):
            sheet.paste(image, (x * cell, top + band))
            label(draw, (x * cell, top + band), who)
    sheet.save(path, quality=88)


def cell_text(found: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in found if not math.isnan(r[key])]
    if not values:
        return "-"
    if key == "seconds":
        return f"{statistics.median(values):.2f}"
    return f"{statistics.mean(values):.{2 if key in ('sharpness', 'border') else 3}f}"


def markdown(result: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    """The section: per style and column, mean measures and median seconds."""
    table = [
        [name, who, len(found), *(cell_text(found, k) for k in MEASURES)]
        for name, columns in result["rows"].items()
        for who, found in columns.items()
    ]
    header = [
        "style",
        "painted by",
        "photos",
        "content",
        "style dist.",
        "sliced W.",
        "sharpness",
        "border ratio",
        "s / image",
    ]
    return (
        f"## {args.title}\n\n"
        f"`{command}` on {result['machine']}: the {result['photos']} photos of "
        f"../shared/data/content at {result['size']} px. Each model paints its own style "
        "from no style image; the peers get the models' training painting (at the largest "
        "size a model learned it at, where the style distances are measured too) as their "
        "style image. Networks in float32; Gatys (300 L-BFGS "
        "steps from the photo) at the CPU's best precision on the first photos only, no "
        "border ratio. Distances as in the quality report; sharpness: the output's "
        "Laplacian energy over the photo's; border ratio: issue 20's (≤ 1.5 is the goal); "
        "means over the photos, seconds: medians, styles prepared.\n\n"
        + markdown_table(header, table)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bundled = [m.name for method in own_style_methods() for m in models.for_method(method)]
    parser.add_argument("--models", nargs="+", default=bundled)
    parser.add_argument("--peers", nargs="*", default=["gatys", "adain", "wct"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--gatys-styles",
        nargs="*",
        default=["klimt-beeches", "boccioni-city"],
        help="the styles optimization peers run on (none given: every style)",
    )
    parser.add_argument("--gatys-photos", type=int, default=1)
    parser.add_argument("--section", default=SECTION)
    parser.add_argument("--title", default=TITLE)
    parser.add_argument("--sheet", type=Path, default=SHEET)
    parser.add_argument("--sheet-size", type=int, default=384)
    parser.add_argument("--cell", type=int, default=256)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.no_write:
        args.sheet = None
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = evaluate(args)
    text = markdown(result, args, recorded_command(__file__))
    print(text)
    if args.sheet:
        save_sheet(result["sheet"], args.cell, args.sheet)
    publish({args.section: text}, args.no_write)


if __name__ == "__main__":
    main()
