"""Per-style networks against AdaIN on their own styles: issue 21's quality check.

For each style of a johnson model (default: the bundled ``johnson-8styles``) whose training
image is on this machine (the model's configuration names it; ../shared/train), on every
photo of ../shared/data/content at ``--size`` px (float32): the johnson network painting
that style, and AdaIN (bundled decoder) given the same painting as its style image at the
size johnson learned it. Measured (:func:`brushwork.metrics.distances`): content distance
(relu4_1), style distance (channel statistics relu1_1..relu4_1) and sliced Wasserstein
distance to the painting; seconds per image (medians). Writes the ``johnson-quality``
section of BENCHMARKS.md and a contact sheet, docs/johnson.jpg (every style on two photos).

    python -m benchmarks.eval_johnson [--model NAME|PATH] [--size 512] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from benchmarks.harness import ROOT, machine, markdown_table, publish, recorded_command
from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.encoders import cached_vgg19
from brushwork.image import load_image, to_pil
from brushwork.methods.base import StyleTarget
from brushwork.methods.johnson import style_names
from brushwork.metrics import Reference, distances
from brushwork.stylizer import Controls, Stylizer

SECTION = "johnson-quality"
CONTENTS = ROOT.parent / "shared" / "data" / "content"
SHEET = ROOT / "docs" / "johnson.jpg"


def paintings(model: str) -> list[tuple[str, Path, int]]:
    """(name, training image, style size) of each style whose image is here."""
    path = models.resolve(model, method="johnson")
    config = load_checkpoint(path, method="johnson").config
    names = style_names(path)
    side = int(config["style_size"])
    found = [(n, Path(p), side) for n, p in zip(names, config["style"], strict=True)]
    return [f for f in found if f[1].is_file()]


def timed(stylizer: Stylizer, content: torch.Tensor, styles: list[StyleTarget]) -> Any:
    """The output and the seconds of one stylization, styles prepared beforehand."""
    method = stylizer.method
    prepared = method.prepare(styles)
    start = time.perf_counter()
    output = method.stylize(content, prepared).image
    return output, time.perf_counter() - start


def evaluate(model: str, size: int) -> dict[str, Any]:
    """Every style × content for both methods."""
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    contents = {p.stem: load_image(p, size=size) for p in sorted(CONTENTS.glob("*.jpg"))}
    adain = Stylizer("adain", Controls(size=None, precision="float32"))
    adain.load_encoder()
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    sheet = [[to_pil(c) for c in list(contents.values())[:2]]]
    for name, image, style_size in paintings(model):
        painting = load_image(image, size=style_size)
        own = Stylizer(
            "johnson", Controls(size=None, precision="float32"), model=model, styles=(name,)
        )
        style = Reference.of(painting, encoder)
        rows[name] = {"johnson": [], "adain": []}
        shown: list[Image.Image] = []
        for number, (title, content) in enumerate(contents.items()):
            reference = Reference.of(content, encoder)
            for method, stylizer, styles in (
                ("johnson", own, []),
                ("adain", adain, [StyleTarget(painting)]),
            ):
                output, seconds = timed(stylizer, content, styles)
                found = distances(output, reference, style, encoder, ssim=False)
                rows[name][method].append({**found, "seconds": seconds})
                if method == "johnson" and number < 2:
                    shown.append(to_pil(output))
            print(name, title, {m: round(r[-1]["style"], 3) for m, r in rows[name].items()})
        sheet.append(shown)
    return {"rows": rows, "sheet": sheet, "size": size, "machine": machine(), "model": model}


def markdown(result: dict[str, Any], command: str) -> str:
    """The section: per style, both methods' mean distances and median seconds."""
    table = []
    for name, methods in result["rows"].items():
        for method, found in methods.items():
            table.append(
                [
                    name,
                    method,
                    *(
                        f"{statistics.mean(r[k] for r in found):.3f}"
                        for k in ("content", "style", "sliced_wasserstein")
                    ),
                    f"{statistics.median(r['seconds'] for r in found):.2f}",
                ]
            )
    header = ["style", "method", "content", "style dist.", "sliced W.", "s / image"]
    return (
        "## Per-style networks against AdaIN on their own styles (issue 21)\n\n"
        f"`{command}` on {result['machine']}: model `{result['model']}`, the photos of "
        f"../shared/data/content at {result['size']} px, float32. For each style the johnson "
        "network paints it from no style image; AdaIN gets the same painting (at the size "
        "johnson learned it) as its style image. Distances as in the quality report "
        "(means over the photos); seconds: medians, styles prepared.\n\n"
        + markdown_table(header, table)
        + "\n"
    )


def save_sheet(rows: list[list[Image.Image]], path: Path) -> None:
    """The two photos, then a row per style: the style on each (half size)."""
    if not rows:
        return
    width = max(sum(i.width // 2 for i in row) for row in rows)
    height = max(i.height // 2 for row in rows for i in row)
    sheet = Image.new("RGB", (width, height * len(rows)), "white")
    for y, row in enumerate(rows):
        x = 0
        for image in row:
            sheet.paste(image.resize((image.width // 2, image.height // 2)), (x, y * height))
            x += image.width // 2
    sheet.save(path, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="johnson-8styles")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = evaluate(args.model, args.size)
    text = markdown(result, recorded_command(__file__))
    print(text)
    if not args.no_write:
        save_sheet(result["sheet"], SHEET)
    publish({SECTION: text}, args.no_write)


if __name__ == "__main__":
    main()
