"""Feature and image operations shared by every method: pure functions on (B, C, H, W)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from brushwork import frozen
from brushwork.encoders.vgg import pools_before


class _SelfProduct(torch.autograd.Function):
    """Xᵀ X for X of shape (B, N, C), with the one-matmul backward 2·X·sym(dG).

    Autograd's own backward of ``bmm(Xᵀ, X)`` takes two matmuls and an addition.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.bmm(x.transpose(1, 2), x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return torch.bmm(x, grad + grad.transpose(1, 2))


def gram_matrix(features: Tensor, mask: Tensor | None = None) -> Tensor:
    """Channel correlations G = F Fᵀ / (C·H·W) of (B, C, H, W) features → (B, C, C).

    Gatys et al. 2016, eq. 3; normalized by the number of feature elements as in Johnson's
    neural-style, so style weights do not depend on image size.

    With a (B, 1, H, W) ``mask`` (values in [0, 1], at the features' resolution), the guided
    Gram matrix of Gatys et al. 2017, eq. 7: features are weighted by the mask and the sum is
    normalized by C·Σmask², so a region's Gram is comparable with a whole image's.

    Accumulated in float32 at least (autocast off; float64 features stay float64): bfloat16
    sums of H·W products would lose the small entries.
    """
    b, c, h, w = features.shape
    dtype = torch.promote_types(features.dtype, torch.float32)
    with torch.autocast(features.device.type, enabled=False):
        features = features.to(dtype)
        if features.is_contiguous(memory_format=torch.channels_last):
            samples = features.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view, no copy
        else:
            samples = features.reshape(b, c, h * w).transpose(1, 2)
        if mask is None:
            return _SelfProduct.apply(samples) / (c * h * w)
        weights = mask.to(dtype).reshape(b, h * w, 1)
        area = weights.pow(2).sum(dim=(1, 2)).clamp_min(1e-8).reshape(b, 1, 1)
        return _SelfProduct.apply(samples * weights) / (c * area)


# The 4-neighbour discrete Laplacian used by Li et al. 2017 (Laplacian-steered NST, §3.1).
LAPLACIAN_KERNEL = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def laplacian(image: Tensor) -> Tensor:
    """The 3×3 Laplacian of each channel, with replicated borders (kornia's filter2d), in
    float32 (autocast off: differences of nearby pixels need more than bfloat16's 8 bits)."""
    from kornia.filters import filter2d

    with torch.autocast(image.device.type, enabled=False):
        image = image.to(torch.promote_types(image.dtype, torch.float32))
        kernel = LAPLACIAN_KERNEL.to(image)[None]
        return filter2d(image, kernel, border_type="replicate")


def pooled_laplacian(image: Tensor, pool_size: int) -> Tensor:
    """Laplacian of the image average-pooled by ``pool_size`` (Li et al. 2017, eq. 2):
    pooling first makes the loss follow the image's structure, not its pixel noise."""
    if pool_size > 1:
        image = F.avg_pool2d(image, pool_size, ceil_mode=True)
    return laplacian(image)


def style_swap(
    content_features: Tensor,
    style_features: Tensor,
    patch_size: int = 3,
    stride: int = 1,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """Replace every content patch by its best-matching style patch (Chen & Schmidt 2016,
    "Fast Patch-based Style Transfer of Arbitrary Style", §3.1-3.2, eq. 2-4).

    ``content_features`` (B, C, H, W) and ``style_features`` (1, C, Hs, Ws) come from the same
    encoder layer. The style features are cut into ``patch_size``² patches on a grid of step
    ``stride`` (N = ⌊(Hs−k)/stride+1⌋·⌊(Ws−k)/stride+1⌋ patches); each content patch (at every
    position, step 1) is matched to the style patch of highest normalized cross-correlation
    ⟨φ_c, φ_s⟩ / (‖φ_c‖·‖φ_s‖) (eq. 2; dividing by ‖φ_c‖ does not change the argmax, so
    only the style patches are normalized: a convolution with N filters, eq. 3). The output
    is the average of the chosen, unnormalized style patches over the content patches
    covering each position (eq. 4: a transposed convolution of the one-hot argmax divided
    by the overlap counts), with the content's shape and memory format.

    Cost: about 2·H'·W'·N·C·k² FLOPs for the matching (H'·W' = (H−k+1)·(W−k+1) content
    patches), e.g. ~50 GFLOPs for relu3_1 of a 256 px content and style (3×3, stride 1).
    Memory stays bounded: style patches are matched ``chunk_size`` at a time (default: as
    many as keep the (B, chunk, H', W') score block near 2²⁴ elements) with a running
    max/argmax, and the output is built from the argmax indices by gathering style feature
    values and ``F.fold`` (equal to the one-hot transposed convolution), never materializing
    N×H'×W'. Computes no gradient.
    """
    _check_swap(content_features, style_features, patch_size, stride)
    channels_last = (
        content_features.is_contiguous(memory_format=torch.channels_last)
        and not content_features.is_contiguous()
    )
    with torch.no_grad():
        content = content_features.detach()
        style = style_features.detach().to(content.dtype).contiguous()
        index = _best_patches(content, style, patch_size, stride, chunk_size, channels_last)
        result = _average_patches(index, style, content.shape, patch_size, stride)
    if channels_last:
        result = result.contiguous(memory_format=torch.channels_last)
    return result


def _check_swap(content: Tensor, style: Tensor, patch_size: int, stride: int) -> None:
    """Refuse features :func:`style_swap` cannot match, in one line."""
    from brushwork.errors import BrushworkError

    if content.ndim != 4 or style.ndim != 4 or style.shape[0] != 1:
        raise BrushworkError(
            "style_swap needs (B, C, H, W) content and (1, C, H, W) style features, not "
            f"{tuple(content.shape)} and {tuple(style.shape)}"
        )
    if content.shape[1] != style.shape[1]:
        raise BrushworkError(
            f"content features have {content.shape[1]} channels, style features {style.shape[1]}"
        )
    if patch_size < 1 or stride < 1:
        raise BrushworkError(f"patch size and stride must be >= 1, not {patch_size}, {stride}")
    (h, w), (hs, ws), k = content.shape[-2:], style.shape[-2:], patch_size
    if min(h, w, hs, ws) < k:
        raise BrushworkError(
            f"features of {h}×{w} (content) and {hs}×{ws} (style) are too small for {k}×{k} patches"
        )


def _best_patches(
    content: Tensor,
    style: Tensor,
    k: int,
    stride: int,
    chunk_size: int | None,
    channels_last: bool,
) -> Tensor:
    """(B, H', W'): the index of the style patch of highest normalized cross-correlation
    with each content patch (eq. 2-3), matched ``chunk_size`` style patches at a time."""
    b, c, h, w = content.shape
    hs, ws = style.shape[-2:]
    grid_h, grid_w = (hs - k) // stride + 1, (ws - k) // stride + 1
    n_patches = grid_h * grid_w
    out_h, out_w = h - k + 1, w - k + 1
    if chunk_size is None:
        chunk_size = max(1, 2**24 // (b * out_h * out_w))
    best = torch.full((b, out_h, out_w), -torch.inf, dtype=content.dtype, device=content.device)
    index = torch.zeros((b, out_h, out_w), dtype=torch.long, device=content.device)
    for first in range(0, n_patches, chunk_size):
        last = min(first + chunk_size, n_patches)
        row0, row1 = first // grid_w, (last - 1) // grid_w + 1
        # The patches of grid rows row0..row1-1 (row-major, like F.unfold of the whole).
        rows = style[:, :, row0 * stride : (row1 - 1) * stride + k]
        patches = F.unfold(rows, k, stride=stride)[0].T
        patches = patches[first - row0 * grid_w : last - row0 * grid_w]
        norms = patches.norm(dim=1, keepdim=True).clamp_min(1e-12)
        filters = (patches / norms).reshape(-1, c, k, k)
        if channels_last:
            filters = filters.contiguous(memory_format=torch.channels_last)
        chunk_best, chunk_index = F.conv2d(content, filters).max(dim=1)
        better = chunk_best > best
        best = torch.where(better, chunk_best, best)
        index = torch.where(better, chunk_index + first, index)
    return index


def _average_patches(
    index: Tensor, style: Tensor, shape: torch.Size, k: int, stride: int
) -> Tensor:
    """The chosen unnormalized style patches averaged over the content patches covering
    each position (eq. 4), gathered by index and folded: offset (di, dj) of the patch at
    grid (r, q) is style pixel (r·stride + di, q·stride + dj)."""
    b, c, h, w = shape
    ws = style.shape[-1]
    grid_w = (ws - k) // stride + 1
    row, col = index.reshape(b, 1, -1) // grid_w, index.reshape(b, 1, -1) % grid_w
    offsets = torch.arange(k, device=style.device)
    di = offsets.repeat_interleave(k).view(1, k * k, 1)
    dj = offsets.repeat(k).view(1, k * k, 1)
    flat = (row * stride + di) * ws + (col * stride + dj)  # (B, k², H'·W')
    columns = style.reshape(c, -1)[:, flat.reshape(-1)]
    columns = columns.view(c, b, k * k, -1).transpose(0, 1).reshape(b, c * k * k, -1)
    total = F.fold(columns, (h, w), k)
    ones = torch.ones((1, k * k, index[0].numel()), dtype=style.dtype, device=style.device)
    return total / F.fold(ones, (h, w), k)


def mean_std(
    features: Tensor, mask: Tensor | None = None, eps: float = 1e-5
) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over the spatial positions of (B, C, H, W)
    features → two (B, C, 1, 1) tensors (Huang & Belongie 2017, eq. 5-6).

    With a (B, 1, H, W) ``mask`` (values in [0, 1], at the features' resolution), the
    statistics of the masked region only, each position weighted by its mask value.
    Computed in float32 whatever the features' dtype; ``eps`` keeps the deviation of a flat
    channel, and its gradient, finite.
    """
    x = features.float()
    if mask is None:
        var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    else:
        weight = mask.float()
        total = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
        mean = (x * weight).sum(dim=(2, 3), keepdim=True) / total
        var = ((x - mean).pow(2) * weight).sum(dim=(2, 3), keepdim=True) / total
    return mean, (var + eps).sqrt()


def adain(
    content: Tensor, style_mean: Tensor, style_std: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Adaptive instance normalization (Huang & Belongie 2017, eq. 8): normalize each channel
    of the content features to zero mean and unit deviation, then give it the style's
    (B, C, 1, 1) mean and deviation. With a ``mask``, the content statistics are those of the
    masked region (for styling regions separately, §7.3 of the paper); frozen while
    tiling (:mod:`brushwork.frozen`)."""
    if frozen.active():
        mean, std = frozen.moments(content, mask).mean_std()
    else:
        mean, std = mean_std(content, mask)
    normalized = (content.float() - mean) / std
    return (normalized * style_std + style_mean).to(content.dtype)


@dataclass(frozen=True)
class Moments:
    """The channel statistics of features, in float64, that merge exactly across tiles of
    one image (Chan, Golub & LeVeque 1979, pairwise update): the number of positions, the
    channel means (B, C, 1) and the scatter Σ (x − m)(x − m)ᵀ, (B, C, C), or only its
    diagonal, (B, C, 1), when not ``full``."""

    count: float
    mean: Tensor
    scatter: Tensor

    @classmethod
    def of(cls, features: Tensor, full: bool = True, mask: Tensor | None = None) -> Moments:
        """The moments of (B, C, H, W) ``features`` (centred and multiplied in float32,
        kept in float64); with a (B, 1, H, W) ``mask`` (values in [0, 1]), each position
        weighted by its value (``count``: the sum of the weights)."""
        b, c = features.shape[:2]
        with torch.autocast(features.device.type, enabled=False):
            x = features.float().reshape(b, c, -1)
            weight = None if mask is None else mask.float().reshape(b, 1, -1)
            count = float(x.shape[-1]) if weight is None else float(weight.sum())
            total = (
                x.double().sum(-1, keepdim=True)
                if weight is None
                else (x * weight).double().sum(-1, keepdim=True)
            )
            mean = total / max(count, 1e-8)
            centred = x - mean.float()
            weighted = centred if weight is None else centred * weight
            if full:
                scatter = torch.bmm(weighted, centred.transpose(1, 2))
            else:
                scatter = (weighted * centred).sum(-1, keepdim=True)
        return cls(count, mean, scatter.double())

    def __add__(self, other: Moments) -> Moments:
        count = self.count + other.count
        if count <= 0:
            return self
        delta = other.mean - self.mean
        if self.scatter.shape[-1] == 1:
            spread = delta.pow(2)
        else:
            spread = torch.bmm(delta, delta.transpose(1, 2))
        return Moments(
            count,
            self.mean + delta * (other.count / count),
            self.scatter + other.scatter + spread * (self.count * other.count / count),
        )

    def mean_std(self, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
        """As :func:`mean_std`: (B, C, 1, 1) means and deviations, float32."""
        variance = (
            self.scatter
            if self.scatter.shape[-1] == 1
            else torch.diagonal(self.scatter, dim1=1, dim2=2)[..., None]
        )
        std = (variance / max(self.count, 1e-8) + eps).sqrt()
        return self.mean.float()[..., None], std.float()[..., None]

    def coloring(self) -> tuple[Tensor, Tensor]:
        """As :func:`coloring_statistics`: means (B, C, 1) and E D^1/2 Eᵀ of the
        covariance (divided by n − 1), float32."""
        return self.mean.float(), symmetric_power(self.covariance(), 0.5)

    def covariance(self) -> Tensor:
        """The (B, C, C) covariance, divided by n − 1 (at least 1), float32."""
        return (self.scatter / max(self.count - 1, 1)).float()

    def whitening(self) -> Tensor:
        """E D^-1/2 Eᵀ of the covariance (:func:`whiten_color`), float32."""
        return symmetric_power(self.covariance(), -0.5)


STYLE_TILE = 1024
"""Side of the tiles a style image larger than :data:`STYLE_TILE_LIMIT` is encoded in."""
STYLE_CONTEXT = 64
"""Pixels of the style image around each tile encoded with it and cropped from its features,
so that the encoder's padding shapes none of the features kept."""
STYLE_TILE_LIMIT = 2048 * 2048
"""Style images with more pixels are encoded tile by tile."""


def encoded_moments(
    encoder: Callable[[Tensor, list[str]], dict[str, Tensor]],
    image: Tensor,
    layers: Sequence[str],
    full: bool,
) -> dict[str, Moments]:
    """The :class:`Moments` of ``image``'s features at each of ``layers``:
    of one encoder pass, or, for an image over :data:`STYLE_TILE_LIMIT` pixels, merged
    from tiles of :data:`STYLE_TILE` px encoded with :data:`STYLE_CONTEXT` px of the image
    around them (the features of the context cropped off), so memory stays that of one
    tile at any style size."""
    height, width = image.shape[-2:]
    if height * width <= STYLE_TILE_LIMIT:
        features = encoder(image, list(layers))
        return {layer: Moments.of(features[layer], full) for layer in layers}
    merged: dict[str, Moments] = {}
    for top in range(0, height, STYLE_TILE):
        for left in range(0, width, STYLE_TILE):
            above, before = min(top, STYLE_CONTEXT), min(left, STYLE_CONTEXT)
            bottom, right = min(top + STYLE_TILE, height), min(left + STYLE_TILE, width)
            window = image[
                ...,
                top - above : min(bottom + STYLE_CONTEXT, height),
                left - before : min(right + STYLE_CONTEXT, width),
            ]
            features = encoder(window, list(layers))
            for layer in layers:
                stride = 2 ** pools_before(layer)
                kept = features[layer][
                    ...,
                    above // stride : (above + bottom - top) // stride,
                    before // stride : (before + right - left) // stride,
                ]
                if kept.numel() == 0:
                    continue
                moments = Moments.of(kept, full)
                merged[layer] = merged[layer] + moments if layer in merged else moments
    return merged


def covariance(features: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Channel means (B, C, 1) and covariances (B, C, C) of (B, C, H, W) features, in
    float32 whatever their dtype (autocast off). With a (B, 1, H, W) ``mask`` (values in
    [0, 1], at the features' resolution), of the masked region, each position weighted by
    its mask value (Li et al. 2017, §4, spatial control)."""
    with torch.autocast(features.device.type, enabled=False):
        b, c = features.shape[:2]
        x = features.float().reshape(b, c, -1)
        if mask is None:
            weight = None
            count = x.new_full((b, 1, 1), float(x.shape[-1]))
        else:
            weight = mask.float().reshape(b, 1, -1)
            count = weight.sum(-1, keepdim=True).clamp_min(1e-8)
        mean = (x if weight is None else x * weight).sum(-1, keepdim=True) / count
        centred = x - mean
        weighted = centred if weight is None else centred * weight
        cov = torch.bmm(weighted, centred.transpose(1, 2)) / (count - 1).clamp_min(1.0)
    return mean, cov


def symmetric_power(cov: Tensor, power: float, *, eps: float = 1e-5, cut: float = 1e-5) -> Tensor:
    """``cov ** power`` of symmetric positive semi-definite (B, C, C) matrices, by
    eigendecomposition in float64 (:func:`torch.linalg.eigh`).

    Regularized for the rank-deficient covariances of flat or tiny images: ``eps`` times the
    mean eigenvalue is added to the diagonal, and eigen-directions whose eigenvalue is below
    ``cut`` times the largest are dropped (their component is set to 0, as in the reference
    implementations' cut at 1e-5). Returns float32."""
    with torch.autocast(cov.device.type, enabled=False):
        matrix = cov.double()
        size = matrix.shape[-1]
        scale = matrix.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
        matrix = matrix + (eps * scale)[:, None, None] * torch.eye(
            size, dtype=matrix.dtype, device=matrix.device
        )
        values, vectors = torch.linalg.eigh(matrix)
        keep = values > cut * values[..., -1:].clamp_min(1e-30)
        powered = torch.where(keep, values.clamp_min(1e-30) ** power, torch.zeros_like(values))
        result = (vectors * powered[..., None, :]) @ vectors.mT
    return result.float()


def whiten_color(
    content: Tensor, style_mean: Tensor, coloring: Tensor, mask: Tensor | None = None
) -> Tensor:
    """The whitening and coloring transform (Li, Fang, Yang, Wang, Lu & Yang 2017,
    "Universal Style Transfer via Feature Transforms", §3.2, eq. 3-4): centre the content
    features and whiten them, f̂_c = E_c D_c^{-1/2} E_cᵀ (f_c − m_c), so their covariance is
    the identity, then color them with the style's, f̂_cs = E_s D_s^{1/2} E_sᵀ f̂_c + m_s.

    ``style_mean`` (B, C, 1) and ``coloring`` (E_s D_s^{1/2} E_sᵀ, (B, C, C)) come from
    :func:`coloring_statistics`. With a ``mask``, the content statistics are those of the
    masked region (each region its own transform, §4); frozen while tiling
    (:mod:`brushwork.frozen`). Matrix work in float32 (the
    eigendecomposition in float64); the result has the content's dtype and layout."""
    b, c, h, w = content.shape
    if frozen.active():
        statistics = frozen.moments(content, mask, full=True)
        mean, whitening = statistics.mean.float(), statistics.whitening()
    else:
        mean, cov = covariance(content, mask)
        whitening = symmetric_power(cov, -0.5)
    with torch.autocast(content.device.type, enabled=False):
        x = content.float().reshape(b, c, -1) - mean
        out = torch.bmm(coloring.float(), torch.bmm(whitening, x)) + style_mean.float()
        out = out.reshape(b, c, h, w).to(content.dtype)
    if content.is_contiguous(memory_format=torch.channels_last) and not content.is_contiguous():
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def coloring_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """A style's channel means (B, C, 1) and coloring matrix E_s D_s^{1/2} E_sᵀ (B, C, C)
    for :func:`whiten_color`."""
    mean, cov = covariance(features)
    return mean, symmetric_power(cov, 0.5)


def remove_lattice(image: Tensor, period: int = 8, window: int = 15) -> Tensor:
    """(B, C, H, W), H and W multiples of ``period``, without the pattern that repeats every
    ``period`` pixels: the faint grid a decoder that upsamples from features ``period``
    times coarser paints in flat regions (Odena et al. 2016, "Deconvolution and
    Checkerboard Artifacts"). The image's detail (itself minus its ``period``-wide box
    average, which holds none of the pattern's frequencies) is averaged per phase
    (``y mod period``, ``x mod period``) over ``window`` × ``window`` cells around each cell:
    what the detail keeps there is the local grid, subtracted less its own box average, so
    that no colour shifts. Texture without the grid's phase averages out."""

    def box(x: Tensor, size: int) -> Tensor:
        before, after = size // 2, (size - 1) // 2
        padded = F.pad(x, (before, after, before, after), mode="replicate")
        return F.avg_pool2d(padded, size, stride=1)

    detail = image - box(image, period)
    grid = F.pixel_shuffle(box(F.pixel_unshuffle(detail, period), window), period)
    return image - (grid - box(grid, period))


def reflect_margin(image: Tensor, margin: int) -> tuple[Tensor, tuple[int, int]]:
    """(B, C, H, W) with up to ``margin`` pixels mirrored onto every side, so that a
    network's zero-padded border lands outside the picture; returns the framed image and the
    rows and columns added at the top and left, for cropping the result back
    (``out[..., top:top + H, left:left + W]``). A side shorter than the margin gets what it
    can mirror (``side - 1``; nothing for a 1-pixel side). While being traced for ONNX export
    the amounts are graph operations on the traced shape."""
    if margin <= 0:
        return image, (0, 0)
    height, width = image.shape[-2:]
    if torch.jit.is_tracing():
        rows = torch.clamp(torch.as_tensor(height) - 1, max=margin)
        cols = torch.clamp(torch.as_tensor(width) - 1, max=margin)
    else:
        rows, cols = min(margin, height - 1), min(margin, width - 1)
    padding = (cols, cols, rows, rows)
    return F.pad(image, padding, mode="reflect"), (rows, cols)  # type: ignore[arg-type,return-value]


def pad_to_multiple(
    image: Tensor, multiple: int, minimum: int = 0, mode: str = "reflect"
) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom and right of (B, C, H, W) to multiples of ``multiple`` and at least
    ``minimum`` (``mode``: reflection, falling back to replication where the image is too
    small to reflect); returns the padded tensor and the original (H, W), for cropping the
    result back (``out[..., :H, :W]``).

    While being traced for ONNX export the amounts are computed from the traced shape with
    no Python branch (reflection, no minimum), so the graph pads every input size right."""
    height, width = image.shape[-2:]
    if torch.jit.is_tracing():
        return F.pad(image, (0, (-width) % multiple, 0, (-height) % multiple), mode=mode), (
            height,
            width,
        )
    bottom = max(-height % multiple, minimum - height)
    right = max(-width % multiple, minimum - width)
    if bottom or right:
        if mode == "reflect" and min(height, width) <= max(bottom, right):
            mode = "replicate"
        image = F.pad(image, (0, right, 0, bottom), mode=mode)
    return image, (height, width)
