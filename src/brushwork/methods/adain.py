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

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from brushwork import models
from brushwork.encoders import VGG19, pools_before
from brushwork.methods.feedforward import (
    Decoder,
    FeedForwardMethod,
    decoder_id,
    load_decoder,
    min_side,
    mix_styles,
)
from brushwork.ops import Moments, adain, mean_std, pad_to_multiple, reflect_margin, remove_lattice
from brushwork.options import Options, option

if TYPE_CHECKING:
    from brushwork.export import ExportOptions

LAYER = "relu4_1"
"""The encoder layer AdaIN works at."""
GRID = 2 ** pools_before(LAYER)
"""The period of the grid the decoder paints: it upsamples relu4_1's cells 8 times."""
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""Layers whose statistics the training's style loss matches (paper, §6.2)."""


@dataclass
class AdaINOptions(Options):
    alpha: float = option(
        1.0,
        "content–style trade-off in feature space: 0 keeps the content, 1 full style",
        minimum=0.0,
        maximum=1.0,
        main=True,
    )
    model: str = option(
        "adain",
        "decoder: a bundled name (see `brushwork models`) or a "
        "checkpoint file of `brushwork train adain`",
        metavar="NAME|PATH",
        main=True,
    )
    degrid: bool = option(
        True,
        "remove the faint 8 px grid the decoder paints in flat regions "
        "(brushwork.ops.remove_lattice)",
    )


class AdaIN(FeedForwardMethod[AdaINOptions]):
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
        return self.options.model

    full_moments = False
    streamed_statistics = True

    def style_statistics(self, features: Tensor, layer: str) -> tuple[Tensor, Tensor]:
        return mean_std(features)

    def moments_statistics(self, moments: Moments, layer: str) -> tuple[Tensor, Tensor]:
        return moments.mean_std()

    def transform(
        self, content: Tensor, statistics: Any, mask: Tensor | None, layer: str
    ) -> Tensor:
        mean, std = statistics
        return adain(content, mean, std, mask)

    def finish(self, image: Tensor, layer: str) -> Tensor:
        """Without the decoder's grid (its output is a multiple of 8 px a side)."""
        return remove_lattice(image, GRID) if self.options.degrid else image


# ----------------------------------------------------------------------------- ONNX export

INPUT_NAMES = ("content", "style", "alpha")
OUTPUT_NAMES = ("image",)


class AdaINGraph(nn.Module):
    """AdaIN stylization as one module for export: (content, style, alpha) → image.

    ``content`` (1, 3, H, W) and ``style`` (1, 3, H', W') are RGB in [0, 1]; ``alpha`` is a
    0-d or (1,) tensor. The output has the content's size and is clamped to [0, 1].
    """

    def __init__(self, encoder: VGG19, decoder: Decoder, degrid: bool = True) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.degrid = degrid

    def forward(self, content: Tensor, style: Tensor, alpha: Tensor) -> Tensor:
        height, width = content.shape[-2:]
        framed, (top, left) = reflect_margin(content, AdaIN.margin)
        padded, _ = pad_to_multiple(framed, 8, min_side(LAYER))
        features = self.encoder(padded, [LAYER])[LAYER]
        statistics = mean_std(self.encoder(style, [LAYER])[LAYER])
        mixed = mix_styles(
            features,
            [statistics],
            [1.0],
            [None],
            alpha.reshape(-1, 1, 1, 1),
            lambda c, s, m: adain(c, s[0], s[1], m),
        )
        image = self.decoder(mixed)
        image = remove_lattice(image, GRID) if self.degrid else image
        return image[..., top : top + height, left : left + width].clamp(0, 1)


def export_onnx(
    options: ExportOptions, method: AdaINOptions | None = None, *, encoder: VGG19 | None = None
) -> Path:
    """Write AdaIN with the decoder ``method.model`` as one ONNX graph to
    ``options.output``, atomically; refuses to overwrite without ``options.force``."""
    from brushwork.export import (
        IMAGE_AXES,
        encoder_copy,
        model_name,
        require_onnx,
        write_graph,
    )
    from brushwork.outputs import OutputPlan, inputs_of

    options.validate()
    method = method or AdaINOptions()
    require_onnx()
    source = models.resolve(method.model, method="adain")  # before the encoder loads
    plan = OutputPlan(options.force, inputs=inputs_of(options.weights, source))
    output = plan.add(options.output, extensions=(".onnx",), what="model", flag="-o")
    encoder = encoder_copy(encoder, LAYER, options.weights)
    decoder = copy.deepcopy(
        load_decoder(method.model, method="adain", layer=LAYER, encoder=encoder, device="cpu")
    )
    # (nn.Module.to takes memory_format, which torch's type stubs leave out)
    contiguous = decoder.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    graph = AdaINGraph(encoder, contiguous, method.degrid).eval()
    # example inputs for the trace: sizes off the multiple of 8, so the padding is traced
    # at work; a private generator leaves the caller's random state alone
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 37, 45, generator=generator)
    style = torch.rand(1, 3, 29, 33, generator=generator)
    return write_graph(
        output,
        graph,
        (content, style, torch.tensor([1.0])),
        (list(INPUT_NAMES), list(OUTPUT_NAMES)),
        {**IMAGE_AXES, "style": {2: "style_height", 3: "style_width"}},
        options,
        {
            "brushwork_method": "adain",
            "brushwork_model": model_name(method.model, source),
            "brushwork_encoder": decoder_id(LAYER, encoder.out_channels[LAYER]),
        },
    )
