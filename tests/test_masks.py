"""Tests for spatial control masks (brushwork.masks): label images with one flat color per
region, and grayscale masks per style. Everything here is numpy/PIL on images of a few
dozen pixels; no encoder runs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.masks import (
    MAX_REGIONS,
    fit_to_content,
    grayscale_mask,
    label_masks,
    parse_color,
)

BLACK, GRAY, WHITE = (0, 0, 0), (128, 128, 128), (255, 255, 255)
RED, BLUE = (255, 0, 0), (0, 0, 255)


def stripes(*colors: tuple[int, int, int], width: int = 30, height: int = 20) -> Image.Image:
    """Vertical bands of equal width (10 px each by default), left to right."""
    band = width // len(colors)
    array = np.zeros((height, width, 3), dtype=np.uint8)
    for i, color in enumerate(colors):
        array[:, i * band : (i + 1) * band] = color
    return Image.fromarray(array)


def as_array(mask: torch.Tensor | None) -> np.ndarray:
    assert mask is not None
    assert mask.shape[:2] == (1, 1)
    return mask[0, 0].numpy()


# ----------------------------------------------------------------------------- parse_color


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#ff8000", (255, 128, 0)),
        ("FF8000", (255, 128, 0)),
        ("#F80", (255, 136, 0)),
        ("abc", (170, 187, 204)),
        ("255,128,0", (255, 128, 0)),
        (" 0, 0 ,255 ", (0, 0, 255)),
        ("  #000000  ", (0, 0, 0)),
    ],
)
def test_parse_color_forms(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_color(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "#",
        "red",
        "#ff80",
        "#ff80000",
        "#gg0000",
        "256,0,0",
        "-1,0,0",
        "1,2",
        "1,2,3,4",
        "a,b,c",
        "1.5,2,3",
    ],
)
def test_parse_color_rejects(text: str) -> None:
    with pytest.raises(BrushworkError, match="not a color"):
        parse_color(text)


# ----------------------------------------------------------------------------- label masks


def test_default_order_is_by_brightness_darkest_first() -> None:
    # Bands left to right: white, black, gray; style 1 must get the black band.
    labels = stripes(WHITE, BLACK, GRAY)
    masks = [as_array(m) for m in label_masks(labels, labels.size, 3)]
    assert len(masks) == 3
    columns = [m.mean(axis=0) for m in masks]
    np.testing.assert_array_equal(columns[0], [0] * 10 + [1] * 10 + [0] * 10)  # black
    np.testing.assert_array_equal(columns[1], [0] * 20 + [1] * 10)  # gray
    np.testing.assert_array_equal(columns[2], [1] * 10 + [0] * 20)  # white


def test_brightness_order_weighs_green_above_red_above_blue() -> None:
    # Luma: blue (29) < red (76) < green (150), whatever the band order.
    labels = stripes((0, 255, 0), RED, BLUE)
    masks = [as_array(m) for m in label_masks(labels, labels.size, 3)]
    assert masks[0][0, 25] == 1  # blue, the darkest
    assert masks[1][0, 15] == 1  # red
    assert masks[2][0, 5] == 1  # green, the brightest


def test_masks_partition_the_image() -> None:
    labels = stripes(RED, BLUE, WHITE)
    masks = label_masks(labels, labels.size, 3)
    total = sum(as_array(m) for m in masks)
    np.testing.assert_array_equal(total, np.ones((20, 30)))


def test_explicit_regions_with_an_unstyled_one() -> None:
    labels = stripes(RED, BLUE, WHITE)
    regions = {"#ff0000": 2, "0,0,255": 1, "#fff": None}
    first, second = (as_array(m) for m in label_masks(labels, labels.size, 2, regions))
    assert first[:, 10:20].min() == 1 and first[:, :10].max() == 0 and first[:, 20:].max() == 0
    assert second[:, :10].min() == 1 and second[:, 10:].max() == 0
    # The white band is covered by no style: it keeps the content.
    assert (first + second)[:, 20:].max() == 0


def test_regions_may_give_one_style_several_colors() -> None:
    labels = stripes(RED, BLUE, WHITE)
    masks = label_masks(labels, labels.size, 2, {"#ff0000": 1, "#0000ff": 1, "#ffffff": 2})
    first = as_array(masks[0])
    assert first[:, :20].min() == 1 and first[:, 20:].max() == 0


def test_regions_accept_rgb_tuples_as_keys() -> None:
    labels = stripes(RED, BLUE)
    masks = label_masks(labels, labels.size, 2, {RED: 2, BLUE: 1})
    assert as_array(masks[1])[0, 0] == 1


def test_more_colors_than_styles_asks_for_region() -> None:
    labels = stripes(RED, BLUE, WHITE)
    with pytest.raises(BrushworkError, match="--region") as info:
        label_masks(labels, labels.size, 2)
    assert "3 regions" in str(info.value)


def test_fewer_regions_than_styles_is_an_error() -> None:
    labels = stripes(RED, BLUE)
    with pytest.raises(BrushworkError, match="every style needs a region"):
        label_masks(labels, labels.size, 3)


def test_unmapped_color_is_an_error() -> None:
    labels = stripes(RED, BLUE, WHITE)
    with pytest.raises(BrushworkError, match=r"#ffffff.*not mapped"):
        label_masks(labels, labels.size, 2, {"#ff0000": 1, "#0000ff": 2})


def test_color_not_in_the_image_is_an_error() -> None:
    labels = stripes(RED, BLUE)
    with pytest.raises(BrushworkError, match="#00ff00 does not occur"):
        label_masks(labels, labels.size, 2, {"#ff0000": 1, "#0000ff": 2, "#00ff00": 1})


@pytest.mark.parametrize("number", [0, 3, -1])
def test_style_number_out_of_range(number: int) -> None:
    labels = stripes(RED, BLUE)
    with pytest.raises(BrushworkError, match="numbered 1 to 2"):
        label_masks(labels, labels.size, 2, {"#ff0000": number, "#0000ff": 1})


def test_a_style_left_without_region_is_an_error() -> None:
    labels = stripes(RED, BLUE)
    with pytest.raises(BrushworkError, match="style 2 has no region"):
        label_masks(labels, labels.size, 2, {"#ff0000": 1, "#0000ff": None})


def test_a_bad_color_in_regions_is_an_error() -> None:
    labels = stripes(RED, BLUE)
    with pytest.raises(BrushworkError, match="not a color"):
        label_masks(labels, labels.size, 2, {"crimson": 1, "#0000ff": 2})


def test_a_noisy_label_image_is_refused_mentioning_png() -> None:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    with pytest.raises(BrushworkError, match="PNG"):
        label_masks(noisy, noisy.size, 2)
    with pytest.raises(BrushworkError, match="PNG"):
        label_masks(noisy, noisy.size, 2, {"#000000": 1})


def test_max_regions_colors_are_still_accepted_with_regions() -> None:
    # Exactly MAX_REGIONS colors, one pixel column each: allowed, not noise.
    array = np.zeros((4, MAX_REGIONS, 3), dtype=np.uint8)
    array[:, :, 0] = np.arange(MAX_REGIONS)
    labels = Image.fromarray(array)
    regions = {f"{v},0,0": 1 if v == 0 else None for v in range(MAX_REGIONS)}
    (mask,) = label_masks(labels, labels.size, 1, regions)
    assert as_array(mask)[:, 0].min() == 1 and as_array(mask)[:, 1:].max() == 0


def test_label_masks_are_resized_to_the_content() -> None:
    labels = stripes(BLACK, WHITE, width=30, height=20)  # 3:2
    masks = label_masks(labels, (45, 30), 2)  # same aspect, larger
    for mask in masks:
        assert mask is not None
        assert mask.shape == (1, 1, 30, 45)
        assert mask.dtype == torch.float32
        assert float(mask.min()) >= 0 and float(mask.max()) <= 1
    left, right = (as_array(m) for m in masks)
    assert left[:, :20].min() == 1 and left[:, 26:].max() == 0
    np.testing.assert_allclose(left + right, 1, atol=1.5 / 255)  # 8-bit resampling


def test_label_image_with_alpha_uses_its_colors() -> None:
    labels = stripes(BLACK, WHITE).convert("RGBA")
    masks = label_masks(labels, labels.size, 2)
    assert as_array(masks[0])[:, :15].min() == 1


# ----------------------------------------------------------------------------- resizing


def test_aspect_mismatch_warns() -> None:
    mask = Image.new("L", (20, 20), 255)
    with pytest.warns(BrushworkWarning, match="stretched"):
        out = fit_to_content(mask, (40, 20), "the mask")
    assert out.size == (40, 20)


def test_same_aspect_other_size_does_not_warn() -> None:
    mask = Image.new("L", (20, 10), 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_to_content(mask, (64, 32), "the mask").size == (64, 32)
        assert fit_to_content(mask, (20, 10), "the mask").size == (20, 10)
        # Off by rounding (< 1 %) is still the same aspect.
        assert grayscale_mask(Image.new("L", (201, 100)), (64, 32)).shape == (1, 1, 32, 64)


def test_label_masks_warn_on_aspect_mismatch() -> None:
    labels = stripes(BLACK, WHITE, width=20, height=20)
    with pytest.warns(BrushworkWarning, match="the label image"):
        masks = label_masks(labels, (40, 20), 2)
    assert all(m is not None and m.shape == (1, 1, 20, 40) for m in masks)


def test_label_masks_warn_once_through_the_event_stream() -> None:
    """With a sink bound (the CLI), the stretched label image is one warning event, not one
    per style, and nothing goes to Python's warnings."""
    from brushwork import events

    labels = stripes(BLACK, GRAY, WHITE, width=30, height=30)
    sink = events.Collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with events.bound(sink):
            masks = label_masks(labels, (40, 20), 3)
    assert len(masks) == 3
    assert [w.message for w in sink.of(events.Warned)] == [
        "the label image is 30x30 but the content is 40x20: stretched to fit"
    ]


def test_grayscale_mask_warns_with_its_name() -> None:
    with pytest.warns(BrushworkWarning, match="the mask of style 2 is 10x30"):
        grayscale_mask(Image.new("L", (10, 30)), (30, 30), "the mask of style 2")


# ----------------------------------------------------------------------------- grayscale masks


def test_grayscale_mask_white_is_one_black_is_zero() -> None:
    array = np.zeros((8, 12), dtype=np.uint8)
    array[:, 4:8] = 128
    array[:, 8:] = 255
    mask = grayscale_mask(Image.fromarray(array), (12, 8))
    assert mask.shape == (1, 1, 8, 12) and mask.dtype == torch.float32
    values = as_array(mask)
    assert values[:, :4].max() == 0
    np.testing.assert_allclose(values[:, 4:8], 128 / 255)
    assert values[:, 8:].min() == 1


def test_grayscale_mask_from_a_color_image_uses_its_luminance() -> None:
    mask = as_array(grayscale_mask(stripes(BLACK, WHITE, RED), (30, 20)))
    assert mask[:, :10].max() == 0 and mask[:, 10:20].min() == 1
    assert 0.2 < mask[0, 25] < 0.4  # red's luma, 76/255


def test_grayscale_mask_resized_stays_in_unit_range() -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (10, 15), dtype=np.uint8))
    mask = grayscale_mask(image, (33, 22))
    assert mask.shape == (1, 1, 22, 33)
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_grayscale_mask_with_alpha(mode: str) -> None:
    # White strokes on a transparent background: the strokes are the region.
    array = np.zeros((8, 8, 4), dtype=np.uint8)
    array[:, :4] = (255, 255, 255, 255)
    image = Image.fromarray(array, "RGBA").convert(mode)
    mask = as_array(grayscale_mask(image, (8, 8)))
    assert mask[:, :4].min() == 1 and mask[:, 4:].max() == 0


def test_grayscale_mask_from_a_palette_image() -> None:
    image = stripes(BLACK, WHITE).convert("P")
    mask = as_array(grayscale_mask(image, image.size))
    assert mask[:, :15].max() == 0 and mask[:, 15:].min() == 1
