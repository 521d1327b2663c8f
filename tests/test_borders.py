"""The border margin of one-pass methods (issue 20: no frames along the border): the
mirrored margin (brushwork.ops.reflect_margin), the one-pass crop (padded_pass) and the
padded-vs-plain border measure (brushwork.metrics.border_ratio)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import smooth_image

from brushwork.methods.base import StyleTarget
from brushwork.methods.onepass import padded_pass
from brushwork.metrics import border_ratio
from brushwork.ops import reflect_margin


def test_the_margin_mirrors_every_side() -> None:
    image = smooth_image(20, 30, seed=1)
    framed, offsets = reflect_margin(image, 8)
    assert framed.shape[-2:] == (36, 46) and offsets == (8, 8)
    torch.testing.assert_close(framed[..., 8:28, 8:38], image, rtol=0, atol=0)
    torch.testing.assert_close(framed[..., 8:28, 7], image[..., :, 1], rtol=0, atol=0)
    torch.testing.assert_close(framed[..., 7, 8:38], image[..., 1, :], rtol=0, atol=0)


def test_a_side_shorter_than_the_margin_gets_what_it_can_mirror() -> None:
    image = smooth_image(5, 40, seed=2)
    framed, (top, left) = reflect_margin(image, 32)
    assert (top, left) == (4, 32) and framed.shape[-2:] == (13, 104)
    strip, offsets = reflect_margin(smooth_image(1, 40, seed=3), 32)  # a one-pixel strip
    assert offsets == (0, 32) and strip.shape[-2:] == (1, 104)
    assert reflect_margin(image, 0) == (image, (0, 0))


def _shift(image: torch.Tensor, targets: list[StyleTarget]) -> torch.Tensor:
    """A 'network' that sees only what is left of each pixel: border frames show as a
    difference between a pixel's neighbours inside the picture and beyond it."""
    return F.pad(image, (1, 0, 0, 0), mode="constant", value=0.0)[..., :, :-1] * 0.5 + 0.25


@pytest.mark.parametrize("size", [(1, 9), (3, 3), (19, 23), (40, 41)])
def test_the_pass_is_cropped_back_to_the_picture(size: tuple[int, int]) -> None:
    """Whatever the margin could take, the output is the picture's own pixels: the network's
    input at each picture pixel, with the mirrored column on the left of the first one."""
    image = smooth_image(*size, seed=4)
    output = padded_pass(image, [], 4, 8, _shift, margin=32)
    assert output.shape == image.shape
    left = image[..., :, 1:2] if size[1] > 1 else torch.zeros_like(image[..., :, :1])
    expected = torch.cat([left, image[..., :, :-1]], dim=-1) * 0.5 + 0.25
    torch.testing.assert_close(output, expected)


def test_masks_are_framed_like_the_image() -> None:
    image, mask = smooth_image(19, 23, seed=5), torch.zeros(1, 1, 19, 23)
    mask[..., :10] = 1
    seen: list[torch.Tensor] = []

    def record(padded: torch.Tensor, targets: list[StyleTarget]) -> torch.Tensor:
        assert targets[0].mask is not None
        seen.append(targets[0].mask)
        assert targets[0].mask.shape[-2:] == padded.shape[-2:]
        return padded

    padded_pass(image, [StyleTarget(image, mask=mask)], 8, 8, record, margin=32)
    torch.testing.assert_close(seen[0][..., 18:37, 22:45], mask)


def test_the_border_ratio_sees_a_frame() -> None:
    """A stylization that darkens the outer 4 px of whatever it is given differs at the
    picture's border from the padded picture's crop; one that treats every pixel alike
    (up to a global change) does not."""
    content = smooth_image(48, 48, seed=6)

    def framing(image: torch.Tensor) -> torch.Tensor:
        out = image.clone()
        out[..., :4, :] = out[..., -4:, :] = out[..., :, :4] = out[..., :, -4:] = 0
        return out * (0.9 + 0.1 * image.mean())

    def even(image: torch.Tensor) -> torch.Tensor:
        return image * (0.9 + 0.1 * image.mean())

    assert border_ratio(framing, content, pad=16, edge=8) > 5
    assert border_ratio(even, content, pad=16, edge=8) < 1.5
    with pytest.raises(ValueError, match="no interior"):
        border_ratio(even, smooth_image(16, 40), pad=8, edge=8)
