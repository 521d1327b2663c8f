"""Style Swap's inverse network: Chen & Schmidt 2016, "Fast Patch-based Style Transfer of
Arbitrary Style", §4, the optimization of :mod:`brushwork.methods.styleswap` replaced by one
pass of a trained network.

At relu3_1 every 3×3 patch of the content's features is replaced by the style patch it
correlates with best, overlapping patches averaged (SS(Φ(c), Φ(s)),
:func:`~brushwork.methods.styleswap.swap_target`; several styles blend by weight or split
the image by masks, as for ``styleswap``), and a decoder g trained to invert VGG-19 features,
swapped ones included, turns them into the image::

    T(c, s) = g(SS(Φ(c), Φ(s)))

g mirrors VGG-19 from relu3_1 (:class:`~brushwork.methods.feedforward.Decoder`) and is
trained by ``brushwork train styleswap-inverse`` (:mod:`brushwork.training.styleswap`); its
checkpoints carry the method name ``styleswap`` (:func:`brushwork.models.checkpoint_method`).
Padding, checks, memory plan, progress and result are
:class:`~brushwork.methods.onepass.OnePassMethod`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from brushwork import models
from brushwork.encoders import inference_peak_elements, pools_before
from brushwork.methods.base import PreparedStyle, StyleTarget, blend_weights
from brushwork.methods.feedforward import Decoder, load_decoder, min_side
from brushwork.methods.onepass import OnePassMethod, padded_pass
from brushwork.methods.styleswap import (
    StyleSwapOptions,
    check_swap_layer,
    min_swap_side,
    swap_target,
)
from brushwork.options import Options, option, redefault

INVERSE_LAYER = "relu3_1"
"""The layer whose features are swapped and decoded."""


@dataclass
class StyleSwapInverseOptions(Options):
    patch_size: int = redefault(StyleSwapOptions, "patch_size", 3)
    stride: int = redefault(StyleSwapOptions, "stride", 1)
    model: str = option(
        "styleswap-inverse",
        "the inverse network: a bundled name (see `brushwork models`) or a checkpoint of "
        "`brushwork train styleswap-inverse`",
        metavar="NAME|PATH",
        main=True,
    )

    @property
    def layer(self) -> str:
        """The swap's layer (:data:`INVERSE_LAYER`: the one the network decodes)."""
        return INVERSE_LAYER


class StyleSwapInverse(OnePassMethod[StyleSwapInverseOptions]):
    """Style Swap in one pass: swapped relu3_1 features decoded by the trained inverse
    network (Chen & Schmidt 2016 §4)."""

    name = "styleswap-inverse"
    options_class = StyleSwapInverseOptions
    # measured with `brushwork stylize -m styleswap-inverse --precision float32 --style-size
    # 128` on a CPU: peak RSS 0.95 GB at 1024x682, 2.76 GB at 2048x1363, 867 bytes per
    # padded pixel between them (and 0.34 GB fixed, under fixed_bytes); AdaIN measured alike
    # gives 822
    bytes_per_pixel = 900

    def encoder_request(self) -> tuple[str, str]:
        return INVERSE_LAYER, "max"

    def stride(self) -> int:
        return 2 ** pools_before(INVERSE_LAYER)

    def min_style_side(self) -> int:
        return min_swap_side(self.options)

    def min_content_side(self) -> int:
        return min_swap_side(self.options)

    def check_style_layers(self, assignments: Sequence[tuple[str, ...] | None]) -> None:
        check_swap_layer(list(assignments), INVERSE_LAYER)

    def check_files(self) -> None:
        models.resolve(self.options.model, method=self.name)

    def style_bytes(self, height: int, width: int) -> int:
        """The style's encoder pass to relu3_1, float32 (the swap's score blocks are
        bounded, :func:`~brushwork.ops.style_swap`)."""
        return inference_peak_elements(height, width, INVERSE_LAYER, [INVERSE_LAYER]) * 4

    def networks(self) -> Decoder:
        return load_decoder(
            self.options.model, method=self.name, layer=INVERSE_LAYER, encoder=self.get_encoder()
        )

    def encode_styles(self, targets: list[StyleTarget]) -> list[Tensor | None]:
        """Each style's relu3_1 features, float32 (None for a style of weight 0)."""
        encoder = self.get_encoder()
        weights = blend_weights(targets)
        return [
            encoder(t.image, [INVERSE_LAYER])[INVERSE_LAYER].float() if weights[i] > 0 else None
            for i, t in enumerate(targets)
        ]

    def passes(
        self, content: Tensor, prepared: PreparedStyle, networks: Decoder, details: dict[str, Any]
    ) -> Iterator[Tensor]:
        """One pass: swap at relu3_1 on the padded content, decode."""

        def paint(padded: Tensor, targets: list[StyleTarget]) -> Tensor:
            target, _, swap = swap_target(
                self.get_encoder(), padded, targets, prepared.data, self.options
            )
            details.update(swap)
            return networks(target)

        details["model"] = str(self.options.model)
        yield padded_pass(
            content, prepared.targets, self.stride(), min_side(INVERSE_LAYER), paint, self.margin
        )
