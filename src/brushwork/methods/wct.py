"""WCT: Li, Fang, Yang, Wang, Lu & Yang 2017, "Universal Style Transfer via Feature
Transforms" (NeurIPS).

No network is trained for any style: five decoders are trained only to invert VGG-19 from
relu5_1, relu4_1, relu3_1, relu2_1 and relu1_1 (image reconstruction, §3.1; trained by
``brushwork train wct``), and the style enters through the whitening and coloring transform
of the features (§3.2, :func:`~brushwork.ops.whiten_color`): the content's features are
whitened (covariance → identity) and colored with the style's covariance and mean. Run
coarse to fine (§3.3, Fig. 3): the coarsest level first, its decoded image is encoded again
at the next, transformed, decoded, and so on down to relu1_1. The paper starts at relu5_1;
the default here starts at relu4_1, because brushwork's relu5_1 decoder (600 CPU training
steps) reconstructs at 13.6 dB and its level washes the content out (``levels`` brings it
back; docs/models/wct.md). At each level the result is blended with
the content features by ``alpha`` (eq. 5)::

    f̂ = α·WCT(f_c, f_s) + (1 − α)·f_c

Several styles blend their transformed features by weight; with masks each region is
transformed with its own content statistics (§4, spatial control); color preservation and
style scale apply as for every method. The eigendecompositions run in float64, regularized
and with small eigenvalues cut, so flat or tiny styles give a finite result (a flat style
paints its colour).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from brushwork import __version__, models
from brushwork.encoders import VGG19, pools_before
from brushwork.encoders.vgg import LAYER_INDEX
from brushwork.errors import BrushworkError
from brushwork.methods.feedforward import (
    DECODER_LAYERS,
    FeedForwardMethod,
    decoder_id,
    load_decoder,
    min_side,
)
from brushwork.ops import Moments, coloring_statistics, whiten_color
from brushwork.options import Options, option

if TYPE_CHECKING:
    from brushwork.export import ExportOptions


@dataclass
class WCTOptions(Options):
    alpha: float = option(
        0.6,
        "content–style trade-off at every level: 0 keeps the content, 1 full style "
        "(at 1, four levels of full style keep only the content's outlines)",
        minimum=0.0,
        maximum=1.0,
        main=True,
    )
    levels: tuple[str, ...] = option(
        ("relu4_1", "relu3_1", "relu2_1", "relu1_1"),
        "levels to transform, coarse to fine (fewer levels: faster, less style); relu5_1 "
        "is left out by default: its bundled decoder reconstructs poorly and blurs the "
        "content (docs/models/wct.md)",
        choices=DECODER_LAYERS,
        min_items=1,
        main=True,
    )
    models: str = option(
        "wct",
        "decoders: 'wct' (the bundled wct-relu5_1 ... wct-relu1_1) or a folder with "
        "relu5_1.safetensors ... relu1_1.safetensors",
        metavar="NAME|DIR",
        names=("wct",),
    )

    def check(self) -> None:
        if len(set(self.levels)) != len(self.levels):
            raise BrushworkError("each WCT level may be given once")


class WCT(FeedForwardMethod[WCTOptions]):
    """Universal style transfer by whitening and coloring (Li et al. 2017)."""

    name = "wct"
    options_class = WCTOptions
    decoder_method = "wct"
    bytes_per_pixel = 1100

    def levels(self) -> tuple[str, ...]:
        levels = self.options.levels
        # coarse to fine, whatever order they were given in
        return tuple(sorted(levels, key=LAYER_INDEX.__getitem__, reverse=True))

    def decoder_model(self, layer: str) -> str:
        models = self.options.models
        if models == "wct":
            return f"wct-{layer}"
        return f"{models.rstrip('/')}/{layer}.safetensors"

    def style_statistics(self, features: Tensor, layer: str) -> tuple[Tensor, Tensor]:
        return coloring_statistics(features)

    def moments_statistics(self, moments: Moments, layer: str) -> tuple[Tensor, Tensor]:
        return moments.coloring()

    def transform(
        self, content: Tensor, statistics: Any, mask: Tensor | None, layer: str
    ) -> Tensor:
        mean, coloring = statistics
        return whiten_color(content, mean, coloring, mask)


# ----------------------------------------------------------------------------- ONNX export


RUN = (
    "for each level in order: mirror up to 'margin' pixels onto each side of the image "
    "(reflection; a side of n pixels takes min(margin, n − 1)); pad the bottom and right to a "
    "multiple of 'multiple' and at least 'min_side' a side (reflection; replication where the "
    "image is too small to reflect); encoder → f; f' = alpha·WCT(f, style) + (1 − alpha)·f; "
    "decoder(f') cropped back to the image (from the mirrored top and left) and clamped to "
    "[0, 1] is the next level's input"
)
TRANSFORM = (
    "WCT(f, s): m_c, C_c = mean and covariance (divided by n − 1) of f's channels; "
    "C + 1e-5·mean(diag C)·I; eigh in float64; eigenvalues below 1e-5 × the largest dropped; "
    "whiten W = E D^-1/2 Eᵀ; the style's coloring K = E_s D_s^1/2 E_sᵀ from its features at "
    "the same level (the style image through the same encoder graph, not padded); result "
    "K W (f − m_c) + m_s (brushwork.ops.whiten_color)"
)


def export_onnx(
    options: ExportOptions, method: WCTOptions | None = None, *, encoder: VGG19 | None = None
) -> Path:
    """Write WCT's levels (``method.levels``, decoders ``method.models``) as encoder and
    decoder graphs in the new folder ``options.output``, with ``wct.json`` describing the
    pipeline (see the module docstring). The folder appears whole or not at all."""
    from brushwork.export import encoder_copy, require_onnx
    from brushwork.outputs import OutputPlan, inputs_of, write_folder

    options.validate()
    method = method or WCTOptions()
    output = Path(options.output)
    if output.suffix:
        raise BrushworkError(
            f"{output}: WCT exports to a folder (several graphs); give a path without an extension"
        )
    require_onnx()
    wct = WCT(method)
    sources = {
        layer: models.resolve(wct.decoder_model(layer), method="wct") for layer in wct.levels()
    }
    plan = OutputPlan(options.force, inputs=inputs_of(options.weights, *sources.values()))
    plan.add_folder(output, flag="-o")
    encoder = encoder_copy(encoder, wct.levels()[0], options.weights)

    def fill(work: Path) -> None:
        levels = [
            _export_level(work, wct, layer, encoder, sources[layer], options)
            for layer in wct.levels()
        ]
        description = {
            "method": "wct",
            "brushwork_version": __version__,
            "alpha": method.alpha,
            "levels": levels,
            "run": RUN,
            "transform": TRANSFORM,
        }
        (work / "wct.json").write_text(json.dumps(description, indent=2) + "\n")

    return write_folder(output, fill, replace=options.force, label="-o")


def _export_level(
    work: Path, wct: WCT, layer: str, encoder: VGG19, source: Path, options: ExportOptions
) -> dict[str, Any]:
    """One level's encoder and decoder graphs in ``work``; its entry in wct.json."""
    from brushwork.export import EncoderGraph, export_graph, model_name

    decoder = copy.deepcopy(
        load_decoder(
            wct.decoder_model(layer), method="wct", layer=layer, encoder=encoder, device="cpu"
        )
    )
    # (nn.Module.to takes memory_format, which torch's type stubs leave out)
    decoder = decoder.to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    channels = encoder.out_channels[layer]
    common = {
        "brushwork_method": "wct",
        "brushwork_level": layer,
        "brushwork_encoder": decoder_id(layer, channels),
    }
    image = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = EncoderGraph(encoder, layer)(image)
    export_graph(
        EncoderGraph(encoder, layer),
        (image,),
        str(work / f"encoder-{layer}.onnx"),
        (["image"], ["features"]),
        {"image": {2: "height", 3: "width"}, "features": {2: "fh", 3: "fw"}},
        options.opset,
        common,
    )
    export_graph(
        decoder,
        (features,),
        str(work / f"decoder-{layer}.onnx"),
        (["features"], ["image"]),
        {"features": {2: "fh", 3: "fw"}, "image": {2: "height", 3: "width"}},
        options.opset,
        {**common, "brushwork_model": model_name(wct.decoder_model(layer), source)},
    )
    return {
        "level": layer,
        "encoder": f"encoder-{layer}.onnx",
        "decoder": f"decoder-{layer}.onnx",
        "channels": channels,
        "margin": wct.margin,
        "multiple": 2 ** pools_before(layer),
        "min_side": min_side(layer),
    }
