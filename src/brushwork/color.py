"""Colour preservation for style transfer (Gatys, Ecker, Bethge, Hertzmann & Shechtman, CVPR 2017,
"Controlling Perceptual Factors in Neural Style Transfer", §5 "Colour control"; the linear colour
map is detailed in their 2016 note "Preserving Color in Neural Artistic Style Transfer",
arXiv:1606.05897).

Both controls work outside the stylization method itself, so they apply to every method:

Luminance-only transfer (§5.1)
    The method sees only luminance: content and styles become gray images, each style's
    luminance first matched to the content's mean and standard deviation
    (:func:`match_luminance`). The stylized luminance is then combined with the content's chroma
    (:func:`combine_luminance`). The paper uses YIQ; we use YUV (via kornia): both have the same
    Y, and YIQ's I, Q plane is YUV's U, V plane rotated by 33° (and reflected), so taking Y from
    one image and the chroma plane from another gives identical results.

Colour histogram matching (§5.2)
    Each style image is recoloured to the content image's colours before transfer, either by a
    linear mean/covariance map (:func:`match_color_linear`) or by full per-channel histogram
    matching (:func:`match_color_histogram`).

All functions take float ``(B, 3, H, W)`` RGB tensors in ``[0, 1]``; the pipeline uses ``B = 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_yuv, yuv_to_rgb
from skimage.exposure import match_histograms
from torch import Tensor

from brushwork.errors import BrushworkError

PRESERVE_COLOR_MODES = ("none", "luminance", "linear", "histogram")

# Smallest standard deviation / covariance eigenvalue we divide by. 1e-5 (a standard deviation
# of about 0.003, below one 8-bit level) keeps flat or gray images finite without biasing any
# image that has real variation.
_EPS = 1e-5


def luminance(image: Tensor) -> Tensor:
    """The luminance Y (BT.470 weights 0.299, 0.587, 0.114) of ``image``, shape ``(B, 1, H, W)``."""
    return rgb_to_yuv(image)[:, :1]


def match_luminance(style_y: Tensor, content_y: Tensor) -> Tensor:
    """Match the style luminance to the content's mean and standard deviation (§5.1):
    ``L_s' = σ_c / σ_s (L_s − μ_s) + μ_c``, per image, computed in float64. Not clamped, so the
    statistics are exact; ``σ_s`` is floored at 1e-5, so a flat style maps to ``μ_c``.
    """
    dims = (1, 2, 3)
    style, content = style_y.double(), content_y.double()
    mu_s, mu_c = style.mean(dims, keepdim=True), content.mean(dims, keepdim=True)
    sigma_s = style.std(dims, keepdim=True, correction=0).clamp_min(_EPS)
    sigma_c = content.std(dims, keepdim=True, correction=0)
    return (sigma_c / sigma_s * (style - mu_s) + mu_c).to(style_y.dtype)


def to_gray_rgb(y: Tensor) -> Tensor:
    """Replicate a ``(B, 1, H, W)`` luminance into three equal RGB channels."""
    return y.expand(-1, 3, -1, -1).contiguous()


def combine_luminance(stylized: Tensor, content: Tensor) -> Tensor:
    """Y of ``stylized`` with U, V of ``content`` (§5.1), back in RGB and clamped to ``[0, 1]``.

    ``content`` is resized (bilinear, antialiased) to the size of ``stylized`` if they differ.
    """
    chroma = rgb_to_yuv(content)[:, 1:]
    if chroma.shape[-2:] != stylized.shape[-2:]:
        chroma = F.interpolate(
            chroma, size=stylized.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
    chroma = chroma.expand(stylized.shape[0], -1, -1, -1)
    yuv = torch.cat([luminance(stylized), chroma.to(stylized.dtype)], dim=1)
    return yuv_to_rgb(yuv).clamp(0, 1)


def _sqrtm(cov: Tensor, power: float, floor: float) -> Tensor:
    """``cov ** power`` of symmetric positive semi-definite matrices by eigen-decomposition."""
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(floor) ** power
    return vectors @ torch.diag_embed(values) @ vectors.mT


def match_color_linear(source: Tensor, reference: Tensor) -> Tensor:
    """Recolour ``source`` so that its RGB mean and covariance equal ``reference``'s (§5.2;
    arXiv:1606.05897): ``x' = A (x − μ_s) + μ_r`` with the symmetric square-root solution
    ``A = Σ_r^{1/2} Σ_s^{-1/2}``. Statistics are computed in float64; eigenvalues of ``Σ_s`` are
    floored at 1e-5 so a flat or gray source stays finite (a constant source maps to ``μ_r``).
    The result is clamped to ``[0, 1]``.
    """
    b, c, h, w = source.shape
    x = source.reshape(b, c, -1).double()
    r = reference.reshape(reference.shape[0], c, -1).double()
    mu_s, mu_r = x.mean(-1, keepdim=True), r.mean(-1, keepdim=True)
    xc, rc = x - mu_s, r - mu_r
    cov_s = xc @ xc.mT / xc.shape[-1]
    cov_r = rc @ rc.mT / rc.shape[-1]
    a = _sqrtm(cov_r, 0.5, 0.0) @ _sqrtm(cov_s, -0.5, _EPS)
    out = a @ xc + mu_r
    return out.reshape(b, c, h, w).to(source.dtype).clamp(0, 1)


def match_color_histogram(source: Tensor, reference: Tensor) -> Tensor:
    """Match each RGB channel's histogram of ``source`` to ``reference``'s (§5.2, full
    histogram matching) with :func:`skimage.exposure.match_histograms`. A ``reference`` with batch
    size 1 serves every source image. Runs on the CPU in numpy (no gradient); the result keeps the
    source's dtype and device.
    """
    refs = reference.detach().permute(0, 2, 3, 1).cpu().double().numpy()
    images = source.detach().permute(0, 2, 3, 1).cpu().double().numpy()
    matched = [
        torch.from_numpy(match_histograms(image, refs[i % len(refs)], channel_axis=-1))
        for i, image in enumerate(images)
    ]
    out = torch.stack(matched).permute(0, 3, 1, 2).clamp(0, 1)
    return out.to(device=source.device, dtype=source.dtype).contiguous()


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`PRESERVE_COLOR_MODES`, else raise BrushworkError."""
    if mode not in PRESERVE_COLOR_MODES:
        raise BrushworkError(
            f"preserve-color must be one of {', '.join(PRESERVE_COLOR_MODES)}, got {mode!r}"
        )
    return mode


def prepare_styles(styles: list[Tensor], content: Tensor, mode: str) -> list[Tensor]:
    """The style images as the method sees them for colour preservation ``mode``:
    ``"linear"`` / ``"histogram"`` recolour each to ``content``'s colours; ``"luminance"``
    makes each a gray RGB image of its luminance matched to the content's (clamped to
    ``[0, 1]``); ``"none"`` leaves them. Done once per run (a video matches them to its
    first frame)."""
    mode = check_mode(mode)
    if mode == "linear":
        return [match_color_linear(style, content) for style in styles]
    if mode == "histogram":
        return [match_color_histogram(style, content) for style in styles]
    if mode == "luminance":
        content_y = luminance(content)
        return [
            to_gray_rgb(match_luminance(luminance(style), content_y).clamp(0, 1))
            for style in styles
        ]
    return list(styles)


def prepare_content(content: Tensor, mode: str) -> Tensor:
    """The content as the method sees it: gray luminance in ``"luminance"`` mode, else as
    it is."""
    if check_mode(mode) == "luminance":
        return to_gray_rgb(luminance(content))
    return content


def before_transfer(
    content: Tensor, styles: list[Tensor], mode: str
) -> tuple[Tensor, list[Tensor]]:
    """Both sides of colour preservation ``mode``: (:func:`prepare_content`,
    :func:`prepare_styles`)."""
    return prepare_content(content, mode), prepare_styles(styles, content, mode)


def after_transfer(output: Tensor, content: Tensor, mode: str) -> Tensor:
    """Finish colour preservation: in ``"luminance"`` mode, put the original ``content``'s chroma
    back under the output's luminance (:func:`combine_luminance`; sizes may differ). Other modes
    return ``output`` unchanged.
    """
    if check_mode(mode) == "luminance":
        return combine_luminance(output, content)
    return output
