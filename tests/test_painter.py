"""``brushwork.painter.Painter``: one stylizer for many images, with a cache of prepared
styles bounded in count and bytes; the alpha channel put back; checks between stages. The
tiny random encoder and a tiny AdaIN decoder stand in."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import png
import pytest
from conftest import save_decoder
from PIL import Image
from servicekit import png_bytes

from brushwork import events
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.inputs import Style
from brushwork.painter import Painter

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def model(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    content.write_bytes(png_bytes(40, 32, seed=1))
    style.write_bytes(png_bytes(32, 32, seed=20))
    return content, style


def test_reused_styles_give_the_same_painting(files, model: Path, tiny_encoder: VGG19) -> None:
    content, style = files
    values = {"model": str(model), "size": 32}
    painter = Painter("adain", values, encoder=tiny_encoder)
    first = painter.paint(content, [Style(style)])
    second = painter.paint(content, [Style(style)])
    fresh = Painter("adain", values, encoder=tiny_encoder).paint(content, [Style(style)])
    assert not first.reused_styles and second.reused_styles and not fresh.reused_styles
    assert np.array_equal(np.asarray(second.image), np.asarray(fresh.image))
    assert first.image.size == (32, 26)


def test_colour_preservation_is_never_cached(files, model: Path, tiny_encoder: VGG19) -> None:
    """The styles are recoloured to each content image, so a cached set would be wrong."""
    content, style = files
    values = {"model": str(model), "size": 32, "preserve_color": "linear"}
    painter = Painter("adain", values, encoder=tiny_encoder)
    painter.paint(content, [Style(style)])
    assert not painter.paint(content, [Style(style)]).reused_styles
    assert painter.cached_bytes == 0


def test_the_content_alpha_is_put_back(tmp_path: Path, model: Path, tiny_encoder: VGG19) -> None:
    rgba = Image.new("RGBA", (40, 32), (200, 120, 40, 255))
    rgba.putalpha(Image.linear_gradient("L").resize((40, 32)))
    painting = Painter("adain", {"model": str(model), "size": 40}, encoder=tiny_encoder).paint(
        rgba, [Style(Image.new("RGB", (32, 32), (10, 90, 200)))]
    )
    assert painting.image.mode == "RGBA" and painting.image.size == (40, 32)
    assert (
        np.abs(
            np.asarray(painting.image.getchannel("A"), dtype=int)
            - np.asarray(rgba.getchannel("A"), dtype=int)
        ).max()
        <= 1
    )


def test_a_check_between_stages_stops_before_the_work(
    files, model: Path, tiny_encoder: VGG19
) -> None:
    content, style = files
    calls: list[int] = []

    def cancel_on_second_call() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise BrushworkError("cancelled")

    seen = events.Collect()
    painter = Painter("adain", {"model": str(model)}, encoder=tiny_encoder)
    with pytest.raises(BrushworkError, match="cancelled"):
        painter.paint(content, [Style(style)], events=seen, check=cancel_on_second_call)
    assert not [e for e in seen.events if isinstance(e, (events.Started, events.Finished))]
    assert painter.cached_bytes == 0


def test_bad_inputs_are_refused_before_decoding(
    tmp_path: Path, model: Path, tiny_encoder: VGG19
) -> None:
    painter = Painter("adain", {"model": str(model)}, encoder=tiny_encoder)
    with pytest.raises(BrushworkError, match="no such file"):
        painter.check(tmp_path / "missing.png", [Style(tmp_path / "missing.png")])


def test_the_style_cache_is_bounded_in_bytes(
    tmp_path: Path, model: Path, tiny_encoder: VGG19
) -> None:
    from brushwork.painter import held_bytes

    content = tmp_path / "c.png"
    content.write_bytes(png_bytes(40, 32, seed=1))
    styles = []
    for number in range(3):
        styles.append(tmp_path / f"s{number}.png")
        styles[-1].write_bytes(png_bytes(32, 32, seed=20 + number))
    values = {"model": str(model), "size": 32}
    roomy = Painter("adain", values, encoder=tiny_encoder)
    roomy.paint(content, [Style(styles[0])])
    one = roomy.cached_bytes
    ((prepared, size),) = roomy._cache.values()
    assert one == size == held_bytes(prepared) > 0
    assert roomy.paint(content, [Style(styles[0])]).reused_styles
    # room for two sets: the third evicts the least recently used
    tight = Painter("adain", values, encoder=tiny_encoder, cache_bytes=2 * one + one // 2)
    for style in (styles[0], styles[1], styles[0], styles[2]):
        tight.paint(content, [Style(style)])
        assert tight.cached_bytes <= tight.cache_bytes
    assert len(tight._cache) == 2
    assert tight.paint(content, [Style(styles[0])]).reused_styles  # used recently: kept
    assert not tight.paint(content, [Style(styles[1])]).reused_styles  # evicted
    # a set larger than the whole budget is not kept
    small = Painter("adain", values, encoder=tiny_encoder, cache_bytes=one - 1)
    small.paint(content, [Style(styles[0])])
    assert small.cached_bytes == 0
    assert not small.paint(content, [Style(styles[0])]).reused_styles


def test_a_picture_too_large_to_paint_whole_is_painted_in_tiles(
    tmp_path: Path, model: Path, tiny_encoder: VGG19
) -> None:
    """Tiles (asked for here; the planner asks when the picture does not fit) are progress
    steps of unit "tile" (streamed statistics: two passes); the result is an array of the
    asked bit depth, written at that depth, with the content's transparency."""
    rgba = Image.open(io.BytesIO(png_bytes(300, 260, seed=3))).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 128))
    content = tmp_path / "c.png"
    rgba.save(content)
    style = tmp_path / "s.png"
    style.write_bytes(png_bytes(64, 64, seed=4))
    collected = events.Collect()
    values = {"model": str(model), "size": None, "tile": 160, "bit_depth": 16}
    painting = Painter("adain", values, encoder=tiny_encoder).paint(
        content, [Style(style)], events=collected
    )
    (started,) = [e for e in collected.events if isinstance(e, events.Started)]
    steps = [e.step for e in collected.events if isinstance(e, events.Progress)]
    assert started.unit == "tile" and started.total == painting.plan.tiles.steps == 12
    assert steps == list(range(1, 13))  # 6 tiles, streamed first
    assert painting.pixels.dtype == np.uint16 and painting.pixels.shape == (260, 300, 3)
    written = painting.save(tmp_path / "out.png")

    width, height, rows, info = png.Reader(filename=str(written)).read()
    assert (width, height, info["bitdepth"], info["alpha"]) == (300, 260, 16, True)
    first = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(260, 300, 4)
    assert np.array_equal(first[..., :3], painting.pixels)
    assert (first[..., 3] == 128 * 257).all()
