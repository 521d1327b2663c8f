"""WCT: Li, Fang, Yang, Wang, Lu & Yang 2017, "Universal Style Transfer via Feature
Transforms" (NeurIPS).

No network is trained for any style: five decoders are trained only to invert VGG-19 from
relu5_1, relu4_1, relu3_1, relu2_1 and relu1_1 (image reconstruction, §3.1; trained by
``brushwork train wct``), and the style enters through the whitening and coloring transform
of the features (§3.2, :func:`~brushwork.ops.whiten_color`): the content's features are
whitened (covariance → identity) and colored with the style's covariance and mean. Run
coarse to fine (§3.3, Fig. 3): relu5_1 first, its decoded image is encoded again at relu4_1,
transformed, decoded, and so on down to relu1_1; at each level the result is blended with
the content features by ``alpha`` (eq. 5)::

    f̂ = α·WCT(f_c, f_s) + (1 − α)·f_c

Several styles blend their transformed features by weight; with masks each region is
transformed with its own content statistics (§4, spatial control); color preservation and
style scale apply as for every method. The eigendecompositions run in float64, regularized
and with small eigenvalues cut, so flat or tiny styles give a finite result (a flat style
paints its colour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from brushwork.encoders.vgg import LAYER_INDEX
from brushwork.errors import BrushworkError
from brushwork.methods.feedforward import DECODER_LAYERS, FeedForwardMethod
from brushwork.ops import coloring_statistics, whiten_color
from brushwork.options import Options, option


@dataclass
class WCTOptions(Options):
    alpha: float = option(
        0.6, "content–style trade-off at every level: 0 keeps the content, 1 full style "
        "(the paper shows 0.6)", minimum=0.0, maximum=1.0,
    )
    levels: tuple[str, ...] = option(
        ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1"),
        "levels to transform, coarse to fine (fewer levels: faster, less style)",
        choices=DECODER_LAYERS, min_items=1,
    )
    models: str = option(
        "wct", "decoders: 'wct' (the bundled wct-relu5_1 ... wct-relu1_1) or a folder with "
        "relu5_1.safetensors ... relu1_1.safetensors", metavar="NAME|DIR",
    )

    def check(self) -> None:
        if len(set(self.levels)) != len(self.levels):
            raise BrushworkError("each WCT level may be given once")


class WCT(FeedForwardMethod):
    """Universal style transfer by whitening and coloring (Li et al. 2017)."""

    name = "wct"
    options_class = WCTOptions
    decoder_method = "wct"
    bytes_per_pixel = 1100

    def levels(self) -> tuple[str, ...]:
        levels = self.options.levels  # type: ignore[attr-defined]
        # coarse to fine, whatever order they were given in
        return tuple(sorted(levels, key=LAYER_INDEX.__getitem__, reverse=True))

    def decoder_model(self, layer: str) -> str:
        models: str = self.options.models  # type: ignore[attr-defined]
        if models == "wct":
            return f"wct-{layer}"
        return f"{models.rstrip('/')}/{layer}.safetensors"

    def style_statistics(self, features: Tensor, layer: str) -> tuple[Tensor, Tensor]:
        return coloring_statistics(features)

    def transform(self, content: Tensor, statistics: Any, mask: Tensor | None,
                  layer: str) -> Tensor:
        mean, coloring = statistics
        return whiten_color(content, mean, coloring, mask)
