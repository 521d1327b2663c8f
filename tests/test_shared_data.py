"""Checks on the evaluation images in ../shared/data (skipped, with the reason, where that
folder is absent, e.g. in a user's clone)."""

from __future__ import annotations

import pytest
from conftest import SHARED, requires_shared, requires_weights

import brushwork
from brushwork.events import Collect, Progress
from brushwork.image import is_image_path, load_image, open_image

pytestmark = [requires_shared, pytest.mark.shared]


def _images(kind: str) -> list:
    folder = SHARED / "data" / kind
    return sorted(p for p in folder.iterdir() if is_image_path(p)) if folder.is_dir() else []


@pytest.mark.parametrize("path", _images("content") + _images("style"), ids=lambda p: p.name)
def test_every_evaluation_image_opens_as_rgb(path) -> None:
    image = open_image(path)
    assert image.mode in ("RGB", "RGBA")
    tensor = load_image(path, size=64)
    assert tensor.shape[1] == 3 and max(tensor.shape[-2:]) == 64
    assert float(tensor.min()) >= 0 and float(tensor.max()) <= 1


@requires_weights
@pytest.mark.integration
def test_gatys_stylizes_an_evaluation_pair() -> None:
    content = SHARED / "data" / "content" / "golden_gate.jpg"
    style = SHARED / "data" / "style" / "starry_night.jpg"
    collect = Collect()
    done = brushwork.run(content, style, "gatys", size=64, iterations=20, events=collect)
    history = [event.losses for event in collect.of(Progress)]
    assert len(history) == 20
    assert max(done.image.size) == 64
    # the style term falls to well under half of where it starts (the content image)
    assert done.result.losses["style"] < 0.5 * history[0]["style"]


@requires_weights
@pytest.mark.integration
def test_shared_mask_styles_only_its_region() -> None:
    """../shared/data/mask/mask.png (a white silhouette on black, 600x800) over a square
    content: stretched with a warning; the white region takes the style, the black one is
    left unstyled, so the image changes much more inside the silhouette than outside."""
    import numpy as np
    from PIL import Image

    from brushwork.errors import BrushworkWarning

    mask_path = SHARED / "data" / "mask" / "mask.png"
    content = SHARED / "data" / "content" / "golden_gate.jpg"
    style = SHARED / "data" / "style" / "starry_night.jpg"
    with pytest.warns(BrushworkWarning, match="stretched"):
        done = brushwork.run(
            content,
            style,
            "gatys",
            size=64,
            iterations=30,
            mask=mask_path,
            regions={"#ffffff": 1, "#000000": None},
            style_weight=10.0,
        )
    region = np.asarray(Image.open(mask_path).convert("L").resize(done.image.size)) > 127
    before = np.asarray(load_image(content, size=64)[0].permute(1, 2, 0)) * 255
    change = np.abs(np.asarray(done.image, dtype=np.float32) - before).mean(axis=2)
    assert change[region].mean() > 2 * change[~region].mean()
