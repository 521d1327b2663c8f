"""LapStyle's networks (Lin, Wang, Zhou, Li, Yang, Ding & Deng 2021, "Drafting and Revision:
Laplacian Pyramid Networks for Fast High-Quality Artistic Style Transfer", CVPR).

The content c is split into a Laplacian pyramid (:func:`laplacian_pyramid`, §3.1): bands
b₀ (full size), b₁ (½) and the low-pass image c₂ (¼). The **drafting network** paints c₂'s
global style: VGG-19 features of c₂ get the style's channel statistics by AdaIN at relu4_1,
relu3_1 and relu2_1 and are decoded (§3.2, Fig. 3). Each **revision network** adds the
detail of one level: it sees the band and the upsampled image below it and returns a
residual band (§3.3)::

    x₂ = draft(φ(c₂); s)
    x₁ = up(x₂) + revision₁([b₁, up(x₂)])
    x₀ = up(x₁) + revision₂([b₀, up(x₁)])                        (eq. 1-2, folded)

Choices of brushwork's own, for training on a CPU budget:

* the draft's decoder is brushwork's relu4_1 AdaIN decoder
  (:class:`~brushwork.methods.feedforward.Decoder`, a VGG-19 mirror) and starts from its
  trained weights; the paper's AdaIN skips at relu3_1 and relu2_1 enter it through 1×1
  convolutions that start at zero, so an untrained draft paints as AdaIN does;
* the draft holds the channel statistics of its one style (a per-style network), so the
  painting need not ship with it;
* each revision's last convolution starts at zero: an untrained revision adds no detail.

Every size works (no squaring): the method pads the content to a multiple of
:data:`STRIDE` (two halvings, then relu4_1's eight).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.methods.feedforward import Decoder
from brushwork.ops import adain, mean_std, pad_to_multiple, reflect_margin

PARTS = ("draft", "revision1", "revision2")
"""The networks of a LapStyle model, as its file names them (:mod:`brushwork.models.parts`)."""
LEVELS = 2
"""Revision levels: the draft works at a quarter of the output's size."""
STRIDE = 2**LEVELS * 8
"""The multiple the content's sides are padded to: two halvings, then relu4_1's eight."""
DRAFT_LAYERS = ("relu2_1", "relu3_1", "relu4_1")
"""The encoder layers whose features the draft restyles by AdaIN."""
_CHANNELS = {"relu2_1": 128, "relu3_1": 256, "relu4_1": 512}
REVISION_CHANNELS = 64
DRAFT_MARGIN = 24
"""Pixels mirrored onto each side of the quarter-size image the draft paints (and cropped
after): with a one-pass method's 32 px margin at full size (8 at a quarter) VGG-19's zero
padding then lies 32 px outside the picture at the draft's scale, as at every other
method's encoder, for a sixteenth of what a 128 px margin at full size would cost."""


def pyramid_down(image: Tensor) -> Tensor:
    """Half the size by 2×2 averages (bilinear halving, as PaddleGAN's pyramid)."""
    return F.avg_pool2d(image, 2)


def pyramid_up(image: Tensor, like: Tensor) -> Tensor:
    """``image`` bilinearly resized to ``like``'s height and width."""
    return F.interpolate(image, size=like.shape[-2:], mode="bilinear", align_corners=False)


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Burt & Adelson's Laplacian pyramid (1983): ``levels`` bands, finest first, then the
    low-pass image; sides must halve evenly ``levels`` times. :func:`fold_pyramid` inverts
    it exactly."""
    bands = []
    current = image
    for _ in range(levels):
        lower = pyramid_down(current)
        bands.append(current - pyramid_up(lower, current))
        current = lower
    return [*bands, current]


def fold_pyramid(pyramid: list[Tensor]) -> Tensor:
    """The image a Laplacian pyramid (bands finest first, then the low-pass image) holds."""
    current = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        current = band + pyramid_up(current, band)
    return current


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class DraftNet(nn.Module):
    """The drafting network: VGG-19 features of the low-pass content at relu2_1, relu3_1 and
    relu4_1 → the draft image, restyled by AdaIN at each of those layers with the style's
    statistics (held as buffers ``mean_LAYER``, ``std_LAYER``). ``width`` scales the channels
    as :class:`~brushwork.encoders.VGG19`'s (tiny networks for tests)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.decoder = Decoder("relu4_1", width)
        self.skip3 = nn.Conv2d(scaled(256, width), scaled(256, width), 1)
        self.skip2 = nn.Conv2d(scaled(128, width), scaled(128, width), 1)
        for skip in (self.skip3, self.skip2):
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)  # type: ignore[arg-type]
        for layer, channels in _CHANNELS.items():
            size = (1, scaled(channels, width), 1, 1)
            self.register_buffer(f"mean_{layer}", torch.zeros(size))
            self.register_buffer(f"std_{layer}", torch.ones(size))

    def style(self) -> dict[str, tuple[Tensor, Tensor]]:
        """The style's (mean, deviation) at each of :data:`DRAFT_LAYERS`."""
        return {
            layer: (getattr(self, f"mean_{layer}"), getattr(self, f"std_{layer}"))
            for layer in DRAFT_LAYERS
        }

    @torch.no_grad()
    def set_style(self, features: dict[str, Tensor]) -> None:
        """Keep the statistics of a style image's features (one image) as the style."""
        for layer in DRAFT_LAYERS:
            mean, std = mean_std(features[layer])
            getattr(self, f"mean_{layer}").copy_(mean)
            getattr(self, f"std_{layer}").copy_(std)

    def forward(
        self,
        features: dict[str, Tensor],
        alpha: float | Tensor = 1.0,
        style: dict[str, tuple[Tensor, Tensor]] | None = None,
    ) -> Tensor:
        """The draft; ``alpha`` trades the content's features off against the restyled ones
        (Huang & Belongie 2017, eq. 14) at every layer; ``style`` replaces the held
        statistics (training's identity loss gives the content's own)."""
        statistics = self.style() if style is None else style

        def restyled(layer: str) -> Tensor:
            content = features[layer]
            mean, std = statistics[layer]
            return alpha * adain(content, mean, std) + (1 - alpha) * content

        x = restyled("relu4_1")
        for name, module in self.decoder.named_children():
            x = module(x)
            if name == "conv4_1_up":
                x = x + self.skip3(restyled("relu3_1"))
            elif name == "conv3_1_up":
                x = x + self.skip2(restyled("relu2_1"))
        return x


def _conv(inputs: int, outputs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, stride, padding=1, padding_mode="reflect")


class RevisionNet(nn.Module):
    """A revision network (§3.3): a band of the content and the upsampled image below it
    (6 channels) → a residual band. One stride-2 convolution, a residual block at half
    size, nearest-neighbour upsampling and two convolutions (PaddleGAN's layout)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        channels = scaled(REVISION_CHANNELS, width)
        self.down = nn.Sequential(
            _conv(6, channels), nn.ReLU(), _conv(channels, channels, 2), nn.ReLU()
        )
        self.residual = nn.Sequential(
            _conv(channels, channels), nn.ReLU(), _conv(channels, channels)
        )
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, 3),
        )
        last = self.up[-1]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]

    def forward(self, band: Tensor, coarse: Tensor) -> Tensor:
        x = self.down(torch.cat([band, coarse], 1))
        return self.up(x + self.residual(x))


def revise(network: RevisionNet, band: Tensor, below: Tensor) -> Tensor:
    """One level up the pyramid: the image below, upsampled to the band, plus the residual
    band the revision network paints (§3.3, eq. 2)."""
    coarse = pyramid_up(below, band)
    return coarse + network(band, coarse)


class LapStyleNet(nn.Module):
    """The draft and the two revision networks of one style (:data:`PARTS`)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.draft = DraftNet(width)
        self.revision1 = RevisionNet()
        self.revision2 = RevisionNet()

    def revisions(self) -> list[RevisionNet]:
        return [self.revision1, self.revision2]

    def levels(
        self, image: Tensor, encoder: nn.Module, alpha: float | Tensor = 1.0, top: int = LEVELS
    ) -> Iterator[Tensor]:
        """The draft (of the low-pass image with a :data:`DRAFT_MARGIN`), then each revised
        image up to level ``top`` (2: the output, the image's size; sides a multiple of
        ``2**top · 8``)."""
        pyramid = laplacian_pyramid(image, top)
        low = pyramid[-1]
        framed, (above, left) = reflect_margin(low, DRAFT_MARGIN)
        framed = pad_to_multiple(framed, 8)[0]  # relu4_1's cells
        painted = self.draft(encoder(framed, DRAFT_LAYERS), alpha)
        painted = painted[..., above : above + low.shape[-2], left : left + low.shape[-1]]
        yield painted
        for network, band in zip(self.revisions(), reversed(pyramid[:-1]), strict=False):
            painted = revise(network, band, painted)
            yield painted

    def forward(self, image: Tensor, encoder: nn.Module, alpha: float | Tensor = 1.0) -> Tensor:
        """The output: the last of :meth:`levels`."""
        *_, painted = self.levels(image, encoder, alpha)
        return painted


def infer_width(tensors: dict[str, Tensor]) -> float:
    """The width multiplier of a draft network from its tensors."""
    return tensors["decoder.conv4_1.weight"].shape[1] / _CHANNELS["relu4_1"]


class PatchDiscriminator(nn.Module):
    """The adversarial revision's judge of local texture (§3.4): SinGAN's patch
    discriminator (Shaham, Dekel & Michaeli 2019) — five 3×3 convolutions, batch norm and
    leaky ReLUs, one logit per 11×11 patch."""

    def __init__(self, channels: int = 32, layers: int = 5) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        inputs = 3
        for _ in range(layers - 1):
            blocks += [
                nn.Conv2d(inputs, channels, 3, padding=1),
                nn.BatchNorm2d(channels),
                nn.LeakyReLU(0.2),
            ]
            inputs = channels
        blocks.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.layers = nn.Sequential(*blocks)

    def forward(self, image: Tensor) -> Tensor:
        return self.layers(image)
