"""Colour preservation (brushwork.color): luminance-only transfer and colour matching."""

from __future__ import annotations

import pytest
import torch
from conftest import smooth_image
from kornia.color import rgb_to_yuv, yuv_to_rgb

from brushwork import color
from brushwork.errors import BrushworkError


def mid_range(seed: int, height: int = 32, width: int = 48, scale: float = 0.4) -> torch.Tensor:
    """A smooth image squeezed around 0.5, so recolouring it does not hit the clamp."""
    return 0.5 + scale * (smooth_image(height, width, seed) - 0.5)


def stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and 3x3 covariance of a (1, 3, H, W) image, in float64."""
    x = image.reshape(3, -1).double()
    centered = x - x.mean(1, keepdim=True)
    return x.mean(1), centered @ centered.T / x.shape[1]


def test_luminance_of_gray_is_its_value_and_uses_bt470_weights() -> None:
    gray = torch.tensor([0.0, 0.25, 0.5, 1.0]).reshape(1, 1, 2, 2).expand(2, 3, 2, 2)
    y = color.luminance(gray)
    assert y.shape == (2, 1, 2, 2)
    torch.testing.assert_close(y, gray[:, :1], atol=1e-6, rtol=0)
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1
    assert color.luminance(red).item() == pytest.approx(0.299, abs=1e-6)


def test_match_luminance_gives_content_mean_and_std() -> None:
    style_y = color.luminance(smooth_image(seed=1))
    content_y = 0.3 + 0.2 * color.luminance(smooth_image(40, 40, seed=2))
    matched = color.match_luminance(style_y, content_y)
    assert matched.shape == style_y.shape
    assert matched.mean().item() == pytest.approx(content_y.mean().item(), abs=1e-5)
    assert matched.std(correction=0).item() == pytest.approx(
        content_y.std(correction=0).item(), abs=1e-5
    )
    # An affine map of the style: the structure (correlation with the input) is untouched.
    corr = torch.corrcoef(torch.stack([matched.flatten(), style_y.flatten()]))[0, 1]
    assert corr.item() == pytest.approx(1.0, abs=1e-5)


def test_match_luminance_of_flat_style_is_the_content_mean() -> None:
    content_y = color.luminance(smooth_image(seed=3))
    matched = color.match_luminance(torch.full((1, 1, 8, 8), 0.7), content_y)
    assert torch.isfinite(matched).all()
    torch.testing.assert_close(matched, torch.full_like(matched, content_y.mean().item()))


def test_to_gray_rgb_replicates_channels() -> None:
    y = color.luminance(smooth_image())
    gray = color.to_gray_rgb(y)
    assert gray.shape == (1, 3, 32, 48)
    for channel in range(3):
        assert torch.equal(gray[:, channel : channel + 1], y)


def test_combine_luminance_keeps_stylized_y_and_content_chroma() -> None:
    stylized, content = mid_range(1, scale=0.3), mid_range(2, scale=0.3)
    unclamped = yuv_to_rgb(
        torch.cat([rgb_to_yuv(stylized)[:, :1], rgb_to_yuv(content)[:, 1:]], dim=1)
    )
    assert unclamped.min() >= 0 and unclamped.max() <= 1  # the clamp plays no part here
    out = color.combine_luminance(stylized, content)
    assert out.shape == stylized.shape
    yuv = rgb_to_yuv(out)
    torch.testing.assert_close(yuv[:, :1], rgb_to_yuv(stylized)[:, :1], atol=1e-5, rtol=0)
    torch.testing.assert_close(yuv[:, 1:], rgb_to_yuv(content)[:, 1:], atol=1e-5, rtol=0)


def test_combine_luminance_resizes_content_and_clamps() -> None:
    stylized = smooth_image(64, 96, seed=4)
    content = torch.tensor([0.6, 0.45, 0.4]).reshape(1, 3, 1, 1).expand(1, 3, 20, 30)
    out = color.combine_luminance(stylized, content)
    assert out.shape == (1, 3, 64, 96)
    assert out.min() >= 0 and out.max() <= 1
    # Where nothing was clamped, the chroma is the (constant) content chroma.
    yuv = rgb_to_yuv(out)
    inside = ((out > 0) & (out < 1)).all(dim=1)
    assert inside.float().mean() > 0.5
    expected = rgb_to_yuv(content[:, :, :1, :1])[:, 1:, 0, 0]
    torch.testing.assert_close(
        yuv[:, 1:].permute(0, 2, 3, 1)[inside],
        expected.expand(int(inside.sum()), 2),
        atol=1e-5,
        rtol=0,
    )


def test_match_color_linear_matches_mean_and_covariance() -> None:
    source, reference = smooth_image(seed=5), mid_range(6, 40, 40, scale=0.5)
    out = color.match_color_linear(source, reference)
    assert out.shape == source.shape and out.dtype == torch.float32
    assert out.min() > 0 and out.max() < 1  # not clamped, so the statistics are exact
    mean, cov = stats(out)
    ref_mean, ref_cov = stats(reference)
    torch.testing.assert_close(mean, ref_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(cov, ref_cov, atol=1e-5, rtol=1e-3)
    # The source had different statistics, so this really did something.
    assert (stats(source)[1] - ref_cov).abs().max() > 1e-3


def test_match_color_linear_is_identity_on_itself() -> None:
    image = smooth_image(seed=7)
    torch.testing.assert_close(color.match_color_linear(image, image), image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["constant", "gray"])
def test_match_color_linear_survives_degenerate_sources(kind: str) -> None:
    reference = smooth_image(seed=8)
    if kind == "constant":
        source = torch.full((1, 3, 16, 16), 0.3)
    else:
        source = color.to_gray_rgb(color.luminance(smooth_image(16, 16, seed=9)))
    out = color.match_color_linear(source, reference)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    ref_mean = stats(reference)[0].float()
    if kind == "constant":
        torch.testing.assert_close(
            out, ref_mean.reshape(1, 3, 1, 1).expand_as(out), atol=1e-5, rtol=0
        )
    else:
        torch.testing.assert_close(stats(out)[0].float(), ref_mean, atol=0.02, rtol=0)


def test_match_color_histogram_matches_per_channel_values() -> None:
    # Random values are all distinct: no ties, so the matching is an exact rank-for-rank map.
    generator = torch.Generator().manual_seed(10)
    source = torch.rand(1, 3, 32, 48, generator=generator)
    reference = 0.2 + 0.5 * torch.rand(1, 3, 32, 48, generator=generator) ** 2
    out = color.match_color_histogram(source, reference)
    assert out.shape == source.shape and out.dtype == torch.float32
    assert out.device == source.device
    # Same pixel count: the output channels are permutations of the reference channels.
    torch.testing.assert_close(
        out.flatten(2).sort(-1).values, reference.flatten(2).sort(-1).values, atol=1e-5, rtol=0
    )
    # And the ranks of the source are kept (a monotone map per channel).
    assert torch.equal(out.flatten(2).argsort(-1), source.flatten(2).argsort(-1))


def test_match_color_histogram_quantiles_with_other_size() -> None:
    source, reference = smooth_image(30, 30, seed=12), 0.1 + 0.6 * smooth_image(50, 40, seed=13)
    out = color.match_color_histogram(source, reference)
    assert out.shape == (1, 3, 30, 30)
    q = torch.linspace(0.05, 0.95, 7)
    got = torch.quantile(out.flatten(2)[0], q, dim=-1)
    want = torch.quantile(reference.flatten(2)[0], q, dim=-1)
    torch.testing.assert_close(got, want, atol=0.02, rtol=0)


def test_check_mode_rejects_unknown_modes() -> None:
    for mode in color.PRESERVE_COLOR_MODES:
        assert color.check_mode(mode) == mode
    with pytest.raises(BrushworkError, match="preserve-color must be one of") as info:
        color.check_mode("sepia")
    assert "\n" not in str(info.value) and "'sepia'" in str(info.value)
    image = smooth_image()
    with pytest.raises(BrushworkError):
        color.before_transfer(image, [image], "Luminance")
    with pytest.raises(BrushworkError):
        color.after_transfer(image, image, "yiq")


def test_none_mode_is_identity() -> None:
    content, style = smooth_image(seed=14), smooth_image(40, 40, seed=15)
    new_content, new_styles = color.before_transfer(content, [style], "none")
    assert new_content is content and len(new_styles) == 1 and new_styles[0] is style
    assert color.after_transfer(style, content, "none") is style


@pytest.mark.parametrize("mode", ["linear", "histogram"])
def test_colour_matching_modes_change_only_the_styles(mode: str) -> None:
    content = mid_range(16)
    styles = [smooth_image(40, 40, seed=17), smooth_image(24, 36, seed=18)]
    new_content, new_styles = color.before_transfer(content, styles, mode)
    assert torch.equal(new_content, content)
    assert [s.shape for s in new_styles] == [s.shape for s in styles]
    content_mean = stats(content)[0]
    for before, after in zip(styles, new_styles, strict=True):
        assert not torch.allclose(before, after)
        torch.testing.assert_close(stats(after)[0], content_mean, atol=0.01, rtol=0)
    output = smooth_image(seed=19)
    assert color.after_transfer(output, content, mode) is output


def test_luminance_mode_round_trip() -> None:
    content = mid_range(20, scale=0.6)
    styles = [smooth_image(40, 40, seed=21), smooth_image(24, 36, seed=22)]
    gray_content, gray_styles = color.before_transfer(content, styles, "luminance")
    content_y = color.luminance(content)
    assert gray_content.shape == content.shape
    torch.testing.assert_close(gray_content[:, :1], content_y)
    for image, original in zip([gray_content, *gray_styles], [content, *styles], strict=True):
        assert image.shape == original.shape
        assert torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2])
        assert image.min() >= 0 and image.max() <= 1
    for gray in gray_styles:
        assert gray.mean().item() == pytest.approx(content_y.mean().item(), abs=0.01)
        assert gray[:, :1].std().item() == pytest.approx(content_y.std().item(), rel=0.05)
    # The method would return a gray image at another size; the content's colour comes back.
    output = color.to_gray_rgb(color.luminance(smooth_image(64, 96, seed=23)))
    final = color.after_transfer(output, content, "luminance")
    assert final.shape == (1, 3, 64, 96)
    assert not torch.equal(final[:, 0], final[:, 1])  # colour again
    resized = torch.nn.functional.interpolate(
        content, size=(64, 96), mode="bilinear", align_corners=False, antialias=True
    )
    inside = ((final > 0) & (final < 1)).all(dim=1)
    chroma, want = rgb_to_yuv(final)[:, 1:], rgb_to_yuv(resized)[:, 1:]
    torch.testing.assert_close(
        chroma.permute(0, 2, 3, 1)[inside], want.permute(0, 2, 3, 1)[inside], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        color.luminance(final)[:, 0][inside],
        color.luminance(output)[:, 0][inside],
        atol=1e-5,
        rtol=0,
    )
