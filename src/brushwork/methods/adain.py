"""AdaIN: Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive
Instance Normalization" (ICCV).

One forward pass for any style image: encode content and style with VGG-19 up to relu4_1,
give the content features the style's channel means and deviations (AdaIN, eq. 8), and
decode the result with a network trained for it (a relu4_1
:class:`~brushwork.methods.feedforward.Decoder`, trained by :mod:`brushwork.training.adain`)::

    t = AdaIN(f(c), f(s))                      (eq. 8)
    T(c, s, α) = g((1 − α)·f(c) + α·t)         (eq. 14: content–style trade-off)

Several styles are interpolated in feature space, t = Σᵢ wᵢ·AdaIN(f(c), f(sᵢ)) (§7.2); with
masks each style paints its own region, AdaIN using that region's content statistics, and
pixels no mask covers keep the content features (§7.3). Padding, mixing and decoding are
:class:`~brushwork.methods.feedforward.FeedForwardMethod`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from brushwork.methods.feedforward import FeedForwardMethod
from brushwork.ops import adain, mean_std
from brushwork.options import Options, option

LAYER = "relu4_1"
"""The encoder layer AdaIN works at."""
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""Layers whose statistics the training's style loss matches (paper, §6.2)."""


@dataclass
class AdaINOptions(Options):
    alpha: float = option(
        1.0, "content–style trade-off in feature space: 0 keeps the content, 1 full style",
        minimum=0.0, maximum=1.0,
    )
    model: str = option(
        "adain", "decoder: a bundled name (adain, adain-laplacian, adain-depth) or a "
        "checkpoint file of `brushwork train adain`", metavar="NAME|PATH",
    )


class AdaIN(FeedForwardMethod):
    """Feed-forward arbitrary style transfer with a trained decoder (Huang & Belongie 2017)."""

    name = "adain"
    options_class = AdaINOptions
    decoder_method = "adain"
    # measured with `brushwork stylize -m adain` on a CPU: peak RSS 1.21 GB at 1024², 3.80 GB
    # at 2048² (the largest activations, 64 float32 channels at full resolution, are 256 bytes
    # per pixel and live a few at a time)
    bytes_per_pixel = 850

    def levels(self) -> tuple[str, ...]:
        return (LAYER,)

    def decoder_model(self, layer: str) -> str:
        return self.options.model  # type: ignore[attr-defined,no-any-return]

    def style_statistics(self, features: Tensor, layer: str) -> tuple[Tensor, Tensor]:
        return mean_std(features)

    def transform(self, content: Tensor, statistics: Any, mask: Tensor | None,
                  layer: str) -> Tensor:
        mean, std = statistics
        return adain(content, mean, std, mask)
