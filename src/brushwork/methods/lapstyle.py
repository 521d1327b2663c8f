"""LapStyle: Lin et al. 2021, "Drafting and Revision: Laplacian Pyramid Networks for Fast
High-Quality Artistic Style Transfer" (CVPR).

A per-style network in three passes: the drafting network paints the style's global
pattern at a quarter of the size, two revision networks add the content's detail at half
and full size (:mod:`brushwork.methods.lapstyle_net`). The model holds its style's
statistics, so this method takes no style image (:attr:`~brushwork.methods.base.Method.
style_images` is False); ``--alpha`` trades content against style at every AdaIN of the
draft. Any size and aspect ratio: the content gets a reflected margin (64 px, and 24 more
at the draft's quarter size) and is padded to a multiple of 32
(:class:`~brushwork.methods.onepass.OnePassMethod`).
Models come from ``brushwork train lapstyle`` (:mod:`brushwork.training.lapstyle`), one
stage at a time: the draft, then each revision.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from brushwork import models
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods.base import PreparedStyle, StyleTarget
from brushwork.methods.feedforward import decoder_id
from brushwork.methods.lapstyle_net import (
    DRAFT_LAYERS,
    DRAFT_MARGIN,
    LEVELS,
    PARTS,
    STRIDE,
    LapStyleNet,
    infer_width,
    pyramid_up,
)
from brushwork.methods.onepass import OnePassMethod, frame
from brushwork.options import Options, option

if TYPE_CHECKING:
    from brushwork.export import ExportOptions

DEFAULT_MODEL = "lapstyle-klimt-beeches"
LAYER = "relu4_1"
"""The deepest encoder layer the draft reads."""
LEAST_SIDE = 2 * STRIDE
"""The least padded side: 2×2 features at relu4_1 of the quarter-size draft."""


@dataclass
class LapStyleOptions(Options):
    alpha: float = option(
        1.0,
        "content–style trade-off in the draft's features: 0 keeps the content, 1 full style",
        minimum=0.0,
        maximum=1.0,
        main=True,
    )
    model: str = option(
        DEFAULT_MODEL,
        "the style's networks: a bundled name (see `brushwork models`) or a model file of "
        "`brushwork train lapstyle`",
        metavar="NAME|PATH",
        main=True,
    )


@functools.lru_cache(maxsize=8)
def _load(path: str, stamp: tuple[int, int]) -> tuple[LapStyleNet, str]:
    from brushwork.models.parts import load_parts

    parts = load_parts(path, method="lapstyle")
    encoder = models.file_metadata(Path(path)).get("encoder", "")
    try:
        network = LapStyleNet(infer_width(parts["draft"]))
        for name in PARTS:
            getattr(network, name).load_state_dict({k: v.float() for k, v in parts[name].items()})
    except (KeyError, RuntimeError):
        raise BrushworkError(f"model {path} does not hold LapStyle's networks") from None
    return network.eval().requires_grad_(False), encoder


def load_network(model: str, encoder: VGG19 | None = None) -> LapStyleNet:
    """The networks of ``model`` (a bundled name or a file), loaded once per process and
    file version; with ``encoder``, refused unless trained on an encoder like it."""
    path = models.resolve(model, method="lapstyle", parts=PARTS)
    stat = os.stat(path)
    network, trained_on = _load(str(path), (stat.st_mtime_ns, stat.st_size))
    if encoder is not None:
        wanted = decoder_id(LAYER, encoder.out_channels[LAYER])
        if trained_on and trained_on != wanted:
            raise BrushworkError(
                f"model {model} was trained on encoder {trained_on!r}; this run uses {wanted!r}"
            )
    return network


class LapStyle(OnePassMethod[LapStyleOptions]):
    """Drafting and revision networks of one style (Lin et al. 2021)."""

    name = "lapstyle"
    options_class = LapStyleOptions
    style_images = False
    style_masks = False
    style_blends = False
    encoder_scale = 2**LEVELS
    encoder_margin = DRAFT_MARGIN
    margin = 64
    """Twice the other methods': with 32 px (8 at the draft's quarter size, 24 more
    mirrored there) the padded-vs-plain comparison of issue 20
    (:func:`brushwork.metrics.border_ratio`, the astronaut at 256 px, as the contract test)
    still found a frame on an untrained model (the AdaIN draft, revisions adding nothing):
    edge / interior 1.98; with 64, 1.02. The shipped models: 0.80 and 1.12."""
    # measured with `brushwork stylize -m lapstyle --model lapstyle-boccioni-city
    # --precision float32` on a CPU: peak RSS 1.53 GB at 1024x682 and 4.43 GB at 2048x1363
    # (padded with the margin: 1152x832 and 2176x1504), 1,257 bytes per padded pixel
    # between them and 0.32 GB fixed; the full-size revision's 64-channel activations are
    # most of it
    bytes_per_pixel = 1260
    fixed_bytes = 350 * 1024 * 1024

    def encoder_request(self) -> tuple[str, str]:
        return LAYER, "max"

    def stride(self) -> int:
        return STRIDE

    def steps(self) -> int:
        return len(PARTS)

    def check_files(self) -> None:
        models.resolve(self.options.model, method=self.name, parts=PARTS)

    def style_bytes(self, height: int, width: int) -> int:
        return 0

    def networks(self) -> LapStyleNet:
        return load_network(self.options.model, self.get_encoder())

    def encode_styles(self, targets: list[StyleTarget]) -> None:
        """Nothing: the draft holds its style's statistics."""
        return None

    def passes(
        self,
        content: Tensor,
        prepared: PreparedStyle,
        networks: LapStyleNet,
        details: dict[str, Any],
    ) -> Iterator[Tensor]:
        """The draft, then each revision, each shown at the content's size."""
        network = networks.to(content.device)
        padded, crop = frame(content, STRIDE, LEAST_SIDE, self.margin)
        details["model"] = str(self.options.model)
        for painted in network.levels(padded, self.get_encoder(), self.options.alpha):
            yield crop(pyramid_up(painted.float(), padded))


# ----------------------------------------------------------------------------- ONNX export

INPUT_NAMES = ("content", "alpha")
OUTPUT_NAMES = ("image",)


class LapStyleGraph(nn.Module):
    """The method as one module for export: (content (1, 3, H, W) in [0, 1], alpha) →
    image of the content's size, with the method's reflected margin and padding."""

    def __init__(self, encoder: VGG19, network: LapStyleNet) -> None:
        super().__init__()
        self.encoder = encoder
        self.network = network

    def forward(self, content: Tensor, alpha: Tensor) -> Tensor:
        padded, crop = frame(content, STRIDE, 0, LapStyle.margin)
        return crop(self.network(padded, self.encoder, alpha.reshape(-1, 1, 1, 1)))


def export_onnx(
    options: ExportOptions, method: LapStyleOptions | None = None, *, encoder: VGG19 | None = None
) -> Path:
    """Write the encoder and the networks of ``method.model`` with the padding as one ONNX
    graph to ``options.output``, atomically (refused without ``options.force`` where a
    file is)."""
    from brushwork.export import IMAGE_AXES, encoder_copy, model_name, require_onnx, write_graph
    from brushwork.outputs import OutputPlan, inputs_of

    options.validate()
    method = method or LapStyleOptions()
    require_onnx()
    source = models.resolve(method.model, method="lapstyle", parts=PARTS)
    plan = OutputPlan(options.force, inputs=inputs_of(options.weights, source))
    output = plan.add(options.output, extensions=(".onnx",), what="model", flag="-o")
    encoder = encoder_copy(encoder, LAYER, options.weights)
    network = copy.deepcopy(load_network(method.model, encoder))
    generator = torch.Generator().manual_seed(0)  # sizes off the stride: padding traced
    example = (torch.rand(1, 3, 70, 90, generator=generator), torch.tensor([1.0]))
    return write_graph(
        output,
        LapStyleGraph(encoder, network).eval(),
        example,
        (list(INPUT_NAMES), list(OUTPUT_NAMES)),
        IMAGE_AXES,
        options,
        {
            "brushwork_method": "lapstyle",
            "brushwork_model": model_name(method.model, source),
            "brushwork_encoder": decoder_id(LAYER, encoder.out_channels[LAYER]),
        },
    )


__all__ = ["DRAFT_LAYERS", "LapStyle", "LapStyleOptions", "export_onnx", "load_network"]
