"""The per-style transform network of Johnson, Alahi & Fei-Fei 2016 ("Perceptual Losses for
Real-Time Style Transfer and Super-Resolution", supplementary Table 1), as the field has
improved it:

* instance normalization instead of batch normalization (Ulyanov, Vedaldi & Lempitsky 2017,
  "Improved Texture Networks", §3);
* nearest-neighbour upsampling + convolution instead of transposed convolutions (Odena,
  Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts"), reflection padding;
* **conditional** instance normalization (Dumoulin, Shlens & Kudlur 2017, "A Learned
  Representation for Artistic Style", eq. 5): one (γ, β) pair per style and normalization,
  so N styles share every convolution and a style costs 2·1,600 numbers; a mix of styles
  is the mix of their (γ, β) (§4.2);
* a sigmoid output in [0, 1] (Dumoulin et al. 2017's network);
* ``width`` scales every channel count (1: 32-64-128 channels, 1.68 M parameters,
  about 40 GMAC at 512²; 0.5 a quarter of the cost).

Layout: 9×9 conv, two stride-2 3×3 convs, five residual blocks, two ×2 upsamplings each
followed by a 3×3 conv, 9×9 conv to RGB; every conv but the last is followed by
(conditional) instance normalization and a ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork import frozen

BASE_CHANNELS = (32, 64, 128)
RESIDUAL_BLOCKS = 5
STRIDE = 4
"""The network halves the size twice: inputs are padded to a multiple of this."""
EPSILON = 1e-5


def channels(width: float) -> tuple[int, int, int]:
    """The three channel counts at ``width``."""
    return tuple(max(4, round(c * width)) for c in BASE_CHANNELS)  # type: ignore[return-value]


class ConditionalInstanceNorm(nn.Module):
    """Instance normalization with one learned scale and shift per style (Dumoulin et al.
    2017, eq. 5): ``γ_s · (x − μ(x)) / σ(x) + β_s``; with style weights w (B, N), γ = w·Γ and
    β = w·B, the convex combination of §4.2; with a weight map w (B, N, H, W), that
    combination at each pixel (regions painted in different styles in one pass).

    μ and σ² are frozen while tiling (:mod:`brushwork.frozen`): every tile is normalized by
    those of a thumbnail of the whole picture, URST's thumbnail instance normalization
    (Chen et al. 2022, §3.2), instead of by its own."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(styles, channels))
        self.beta = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        if not frozen.active():
            normalized = F.instance_norm(x, eps=EPSILON)
        else:
            statistics = frozen.moments(x)
            mean = statistics.mean.float()[..., None]
            variance = (statistics.scatter / statistics.count).float()[..., None]
            normalized = ((x - mean) * torch.rsqrt(variance + EPSILON)).to(x.dtype)
        return normalized * self.mixed(self.gamma, weights, x) + self.mixed(self.beta, weights, x)

    @staticmethod
    def mixed(parameter: Tensor, weights: Tensor, x: Tensor) -> Tensor:
        """The styles' ``parameter`` (N, C) mixed by ``weights``: (B, N) gives one mix per
        image, (B, N, H, W) one per pixel (regions), averaged down to ``x``'s size."""
        if weights.dim() == 2:
            return (weights.to(parameter.dtype) @ parameter).to(x.dtype)[:, :, None, None]
        height, width = x.shape[-2:]
        shrunk = F.adaptive_avg_pool2d(weights.to(parameter.dtype), (height, width))
        return torch.einsum("bnhw,nc->bchw", shrunk, parameter).to(x.dtype)


def _conv(inputs: int, outputs: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, kernel, stride, padding=kernel // 2, padding_mode="reflect")


class ConvNorm(nn.Module):
    """Convolution, conditional instance norm, optionally a ReLU (and a ×2 nearest
    upsampling before the convolution)."""

    def __init__(
        self,
        inputs: int,
        outputs: int,
        kernel: int,
        styles: int,
        *,
        stride: int = 1,
        upsample: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.relu = relu
        self.conv = _conv(inputs, outputs, kernel, stride)
        self.norm = ConditionalInstanceNorm(outputs, styles)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.norm(self.conv(x), weights)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """Two 3×3 conv + norm layers (ReLU between) added to the input (He et al. 2016; Johnson
    et al. 2016 supplementary §2, without the cropping: reflection padding keeps the size)."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.first = ConvNorm(channels, channels, 3, styles)
        self.second = ConvNorm(channels, channels, 3, styles, relu=False)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return x + self.second(self.first(x, weights), weights)


class TransformNet(nn.Module):
    """Image (B, 3, H, W) in [0, 1] and style weights (B, N), or a map of them (B, N, H, W)
    for regions, → stylized image in [0, 1].

    H and W must be multiples of :data:`STRIDE` (the method pads). ``styles`` is N, the
    number of (γ, β) sets; a network for one style has N = 1 and weights ``[[1.0]]``.
    """

    def __init__(self, styles: int = 1, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = channels(width)
        self.styles = styles
        self.width = width
        self.down = nn.ModuleList(
            [
                ConvNorm(3, c1, 9, styles),
                ConvNorm(c1, c2, 3, styles, stride=2),
                ConvNorm(c2, c3, 3, styles, stride=2),
            ]
        )
        self.residuals = nn.ModuleList(ResidualBlock(c3, styles) for _ in range(RESIDUAL_BLOCKS))
        self.up = nn.ModuleList(
            [
                ConvNorm(c3, c2, 3, styles, upsample=True),
                ConvNorm(c2, c1, 3, styles, upsample=True),
            ]
        )
        self.out = _conv(c1, 3, 9)

    def forward(self, image: Tensor, weights: Tensor) -> Tensor:
        x = image * 2 - 1
        for layer in [*self.down, *self.residuals, *self.up]:
            x = layer(x, weights)
        return torch.sigmoid(self.out(x))

    def norms(self) -> list[ConditionalInstanceNorm]:
        """Every conditional normalization (the per-style parameters)."""
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def add_styles(self, count: int) -> None:
        """Append ``count`` new styles, each starting from the mean of the trained ones'
        (γ, β) (Dumoulin et al. 2017 §4.3: a new style fine-tunes only these)."""
        for norm in self.norms():
            for name in ("gamma", "beta"):
                old = getattr(norm, name)
                new = old.detach().mean(0, keepdim=True).expand(count, -1)
                setattr(norm, name, nn.Parameter(torch.cat([old.detach(), new]).contiguous()))
        self.styles += count


RECEPTIVE_FIELD = 9 + 2 * 1 + 2 * 2 + RESIDUAL_BLOCKS * 2 * 2 * 4 + 2 * 2 + 2 * 1 + 8
"""Pixels a side one output pixel depends on (109): the 9×9 convolution, two stride-2 3×3
ones, the residual blocks' 3×3 pairs at a quarter of the size, two 3×3 after each
upsampling, the last 9×9."""


def one_hot(indices: Tensor, styles: int) -> Tensor:
    """Style indices (B,) → weights (B, N)."""
    return F.one_hot(indices.long(), styles).float()


def infer_shape(tensors: dict[str, Tensor]) -> tuple[int, float]:
    """(styles, width) of the network whose state dict ``tensors`` is."""
    gamma = tensors["down.0.norm.gamma"]
    return int(gamma.shape[0]), gamma.shape[1] / BASE_CHANNELS[0]
