"""LapStyle models against AdaIN and the conditional johnson network on their own styles:
issue 21's LapStyle check (and, with ``--section lapstyle-adversarial``, the revision stage
with and without its adversarial term).

For each LapStyle model given (default: the bundled ones) whose training painting is on this
machine (the model's configuration names it; ../shared/train), on every photo of
../shared/data/content at ``--size`` px (float32): the model, AdaIN (bundled decoder) given
the same painting as its style image at the model's ``style_size``, and ``johnson-8styles``
where it has a style of that name. Measured (:func:`brushwork.metrics.distances`): content
distance (relu4_1), style distance (channel statistics relu1_1..relu4_1) and sliced
Wasserstein distance to the painting; seconds per image (medians). Writes a BENCHMARKS.md
section and a sheet (two photos, then a row per model and peer).

    python -m benchmarks.eval_lapstyle [--models NAME|PATH ...] [--size 512]
        [--section lapstyle-quality] [--sheet docs/lapstyle.jpg] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import torch

from benchmarks.eval_johnson import CONTENTS, save_sheet, timed
from benchmarks.harness import ROOT, machine, markdown_table, publish, recorded_command
from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.encoders import cached_vgg19
from brushwork.image import load_image, to_pil
from brushwork.methods.base import StyleTarget
from brushwork.methods.johnson import style_names
from brushwork.methods.lapstyle_net import PARTS
from brushwork.metrics import Reference, distances
from brushwork.stylizer import Controls, Stylizer

JOHNSON = "johnson-8styles"


def painting(model: str) -> tuple[str, Path, int]:
    """(style name, training image, style size) of a LapStyle model."""
    path = models.resolve(model, method="lapstyle", parts=PARTS)
    config = load_checkpoint(path, method="lapstyle").config
    style = models.style_of(models.file_metadata(path))
    name = style.name if style else Path(config["style"]).stem
    return name, Path(config["style"]), int(config["style_size"])


def label(model: str) -> str:
    return model if model in models.MODELS else Path(model).parent.name or Path(model).stem


def peers(model: str, image: Path, style_size: int) -> list[tuple[str, Stylizer, list[Any]]]:
    """The model, then AdaIN on the same painting, then johnson's network for that style
    (if it has one)."""
    name = painting(model)[0]
    controls = Controls(size=None, precision="float32")
    found = [(label(model), Stylizer("lapstyle", controls, model=model), [])]
    found.append(
        ("adain", Stylizer("adain", controls), [StyleTarget(load_image(image, size=style_size))])
    )
    johnson = models.MODELS[JOHNSON].path
    if name in style_names(johnson):
        found.append((JOHNSON, Stylizer("johnson", controls, model=JOHNSON, styles=(name,)), []))
    return found


def evaluate(chosen: list[str], size: int) -> dict[str, Any]:
    """Every model × photo, with its peers."""
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    contents = {p.stem: load_image(p, size=size) for p in sorted(CONTENTS.glob("*.jpg"))}
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    sheet = [[to_pil(c) for c in list(contents.values())[:2]]]
    for model in chosen:
        name, image, style_size = painting(model)
        if not image.is_file():
            print(f"skipped {model}: its painting {image} is not here")
            continue
        style = Reference.of(load_image(image, size=style_size), encoder)
        table = rows.setdefault(name, {})
        for who, stylizer, styles in peers(model, image, style_size):
            if who in table:  # a peer already measured on this style
                continue
            stylizer.load_encoder()
            found, shown = [], []
            for number, content in enumerate(contents.values()):
                output, seconds = timed(stylizer, content, styles)
                reference = Reference.of(content, encoder)
                found.append(
                    {**distances(output, reference, style, encoder, ssim=False), "seconds": seconds}
                )
                if number < 2:
                    shown.append(to_pil(output))
            table[who] = found
            sheet.append(shown)
            print(name, who, round(statistics.mean(r["style"] for r in found), 3))
    return {"rows": rows, "sheet": sheet, "size": size, "machine": machine()}


def markdown(result: dict[str, Any], command: str, title: str) -> str:
    """The section: per style and method, mean distances and median seconds."""
    table = [
        [
            name,
            who,
            *(
                f"{statistics.mean(r[k] for r in found):.3f}"
                for k in ("content", "style", "sliced_wasserstein")
            ),
            f"{statistics.median(r['seconds'] for r in found):.2f}",
        ]
        for name, methods in result["rows"].items()
        for who, found in methods.items()
    ]
    header = ["style", "model", "content", "style dist.", "sliced W.", "s / image"]
    return (
        f"## {title}\n\n"
        f"`{command}` on {result['machine']}: the photos of ../shared/data/content at "
        f"{result['size']} px, float32. LapStyle paints from no style image; AdaIN gets the "
        "painting (at the LapStyle model's style size) as its style image; johnson-8styles "
        "paints the style of that name. Distances as in the quality report (means over the "
        "photos); seconds: medians, styles prepared.\n\n" + markdown_table(header, table) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=[m.name for m in models.for_method("lapstyle")]
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--section", default="lapstyle-quality")
    parser.add_argument(
        "--title", default="LapStyle against AdaIN and johnson on their own styles (issue 21)"
    )
    parser.add_argument("--sheet", type=Path, default=ROOT / "docs" / "lapstyle.jpg")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = evaluate(args.models, args.size)
    text = markdown(result, recorded_command(__file__), args.title)
    print(text)
    if not args.no_write:
        save_sheet(result["sheet"], args.sheet)
    publish({args.section: text}, args.no_write)


if __name__ == "__main__":
    main()
