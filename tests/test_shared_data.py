"""Checks on the evaluation images in ../shared/data (skipped, with the reason, where that
folder is absent, e.g. in a user's clone)."""

from __future__ import annotations

import pytest
from conftest import SHARED, requires_shared, requires_weights

import brushwork
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
    history: list[dict[str, float]] = []
    done = brushwork.run(content, style, "gatys", size=64, iterations=20,
                         callbacks=[lambda record: history.append(record.losses)])
    assert max(done.image.size) == 64
    # the style term falls to well under half of where it starts (the content image)
    assert done.result.losses["style"] < 0.5 * history[0]["style"]
