"""Per-style networks in one pass, no VGG at inference: Johnson, Alahi & Fei-Fei 2016's
transform network with instance normalization (Ulyanov et al. 2017), and several styles in
one network by conditional instance normalization (Dumoulin, Shlens & Kudlur 2017), blended
by mixing their normalization parameters (§4.2)::

    T(c; w) = f(c; γ = Σ_i w_i γ_i, β = Σ_i w_i β_i)

The network (:class:`~brushwork.methods.johnson_net.TransformNet`) paints the styles it was
trained for (``brushwork train johnson``, :mod:`brushwork.training.johnson`): this method takes
no style image (:attr:`~brushwork.methods.base.Method.style_images` is False); ``--styles``
chooses among the model's styles by name, with weights; ``--regions`` paints each region of
a label image in one of them, in one pass (the mix of (γ, β) per pixel); ``--strength``
mixes the painting with the photo in pixel space. Padding (a reflected margin, the
stride), memory plan, progress and result are
:class:`~brushwork.methods.onepass.OnePassMethod`'s.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from brushwork import models
from brushwork.errors import BrushworkError
from brushwork.image import open_image
from brushwork.masks import label_masks
from brushwork.methods.base import PreparedStyle, StyleTarget
from brushwork.methods.johnson_net import RECEPTIVE_FIELD, STRIDE, TransformNet, infer_shape
from brushwork.methods.onepass import OnePassMethod, frame, padded_pass
from brushwork.ops import pad_to_multiple, reflect_margin
from brushwork.options import Options, option

if TYPE_CHECKING:
    from brushwork.export import ExportOptions

DEFAULT_MODEL = "johnson-8styles"
LEAST_SIDE = 16
"""The least padded side: 4×4 at the residual blocks."""


def parse_style_choice(text: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:W`` → (name, weight)."""
    name, colon, weight = text.rpartition(":")
    if not colon:
        return text, 1.0
    try:
        value = float(weight)
    except ValueError:
        raise BrushworkError(f"--styles {text!r}: expected NAME or NAME:WEIGHT") from None
    if not (value >= 0 and value != float("inf")):
        raise BrushworkError(f"--styles {text!r}: a weight is a finite number >= 0")
    return name, value


@dataclass
class JohnsonOptions(Options):
    model: str = option(
        DEFAULT_MODEL,
        "the transform network: a bundled name (see `brushwork models`) or a checkpoint of "
        "`brushwork train johnson`",
        metavar="NAME|PATH",
        main=True,
    )
    styles: tuple[str, ...] = option(
        (),
        "which of the network's styles to paint, by name, with blend weights "
        "(comma-separated NAME[:W]; default: its first style)",
        metavar="NAME[:W],...",
        main=True,
        never_path=True,
    )
    strength: float = option(
        1.0,
        "how much of the painting: the output mixed with the photo in pixel space (the "
        "network has no feature-space knob: 1 all painting, 0 the photo)",
        minimum=0.0,
        maximum=1.0,
        main=True,
    )
    regions: str | None = option(
        None,
        "a label image, one flat colour per region: each region is painted in one of "
        "--styles, in order of brightness (darkest: the first), in one pass",
        metavar="LABELS",
    )

    def check(self) -> None:
        choices = [parse_style_choice(s) for s in self.styles]
        if choices and sum(w for _, w in choices) <= 0:
            raise BrushworkError("--styles: at least one weight must be above 0")
        if self.regions is not None and len(choices) < 2:
            raise BrushworkError(
                "--regions paints each region in one of --styles: name two or more"
            )


def style_names(path: Path) -> list[str]:
    """The names of the styles a johnson model file paints, in its network's order."""
    metadata = models.file_metadata(path)
    single = models.style_of(metadata)
    if single is not None:
        return [single.name]
    return [s.name for s in models.styles_of(metadata)]


def style_weights(names: Sequence[str], choices: Sequence[str], model: str) -> list[float]:
    """The (normalized) weight of each of the network's styles ``names`` from ``--styles``
    choices (none: the first style); an unknown name is refused, listing the known ones."""
    if not choices:
        return [1.0] + [0.0] * (len(names) - 1)
    weights = [0.0] * len(names)
    for choice in choices:
        name, weight = parse_style_choice(choice)
        if name not in names:
            known = ", ".join(names) or "none recorded"
            raise BrushworkError(f"model {model} has no style {name!r}; its styles: {known}")
        weights[names.index(name)] += weight
    total = sum(weights)
    return [w / total for w in weights]


@functools.lru_cache(maxsize=8)
def _load(path: str, stamp: tuple[int, int], dtype: torch.dtype) -> TransformNet:
    from brushwork.checkpoints import load_checkpoint

    tensors = load_checkpoint(path, method="johnson", what="model").tensors
    if "down.0.norm.gamma" not in tensors:
        raise BrushworkError(f"model {path} is not a johnson transform network")
    network = TransformNet(*infer_shape(tensors))
    try:
        network.load_state_dict({k: v.float() for k, v in tensors.items()})
    except RuntimeError:
        raise BrushworkError(f"model {path} does not hold a whole transform network") from None
    return network.to(dtype).eval().requires_grad_(False)


def load_network(model: str, dtype: torch.dtype = torch.float32) -> TransformNet:
    """The transform network of ``model`` (a bundled name or a file), loaded once per
    process, file version and ``dtype``: a reduced precision's copy holds its weights in
    that type, so autocast does not convert every weight at every pass (width 1 at 576²,
    autocast bfloat16, medians of 5 alternating passes on 2 EPYC cores: 0.67 s with float32
    weights, 0.62 s with bfloat16 ones)."""
    path = models.resolve(model, method="johnson")
    stat = os.stat(path)
    return _load(str(path), (stat.st_mtime_ns, stat.st_size), dtype)


class Johnson(OnePassMethod[JohnsonOptions]):
    """A per-style transform network (one style, or several by conditional instance
    normalization), one pass, no encoder."""

    name = "johnson"
    options_class = JohnsonOptions
    style_images = False
    style_masks = False
    # measured with `brushwork stylize -m johnson --precision float32` on a CPU: peak RSS
    # 1.08 GB at 1024x682, 3.23 GB at 2048x1363, 999 bytes per padded pixel between them
    # (margin included) and 0.29 GB fixed
    bytes_per_pixel = 1000
    fixed_bytes = 300 * 1024 * 1024

    def stride(self) -> int:
        return STRIDE

    def receptive_field(self) -> int:
        return RECEPTIVE_FIELD

    def check_tiling(self) -> None:
        if self.options.regions is not None:
            raise BrushworkError(
                "johnson paints --regions on a whole picture only, and this one needs tiles; "
                "use a smaller --size (or a larger --max-memory)"
            )

    def check_files(self) -> None:
        """The model, and the styles ``--styles`` names among those it records (a file that
        records none, a bare checkpoint, numbers them: checked when it loads)."""
        path = models.resolve(self.options.model, method=self.name)
        names = style_names(path)
        if names:
            for choice in self.region_choices():
                style_weights(names, choice, self.options.model)
        if self.options.regions is not None:
            labels = open_image(self.options.regions)
            label_masks(labels, labels.size, len(self.options.styles))

    def region_choices(self) -> list[tuple[str, ...]]:
        """The ``--styles`` choices painted together: all of them blended, or with
        ``--regions`` one per region."""
        if self.options.regions is None:
            return [self.options.styles]
        return [(choice,) for choice in self.options.styles]

    def style_bytes(self, height: int, width: int) -> int:
        return 0

    def networks(self) -> TransformNet:
        return load_network(self.options.model, self.precision.dtype)

    def encode_styles(self, targets: list[StyleTarget]) -> Tensor:
        """The blend weights of the network's styles, (1, N), from ``--styles``; with
        ``--regions``, one row per region, (R, N)."""
        path = models.resolve(self.options.model, method=self.name)
        names = style_names(path)
        network = self.networks()
        if len(names) != network.styles:  # a file without names: its styles by number
            names = [str(i) for i in range(1, network.styles + 1)]
        return torch.tensor(
            [style_weights(names, choice, self.options.model) for choice in self.region_choices()]
        )

    def weight_map(self, weights: Tensor, content: Tensor) -> Tensor:
        """Each pixel's style weights, (1, N, H, W), from the regions' rows ``weights`` and
        the label image at the content's size (Dumoulin et al. 2017's convex combination,
        per pixel)."""
        assert self.options.regions is not None
        height, width = content.shape[-2:]
        masks = label_masks(open_image(self.options.regions), (width, height), len(weights))
        stacked = torch.cat([m for m in masks if m is not None], dim=1)  # (1, R, H, W)
        return torch.einsum("brhw,rn->bnhw", stacked, weights.float()).to(content.device)

    def passes(
        self,
        content: Tensor,
        prepared: PreparedStyle,
        networks: TransformNet,
        details: dict[str, Any],
    ) -> Iterator[Tensor]:
        """One pass of the network on the content with its reflected margin."""
        weights: Tensor = prepared.data
        network = networks.to(content.device)
        if self.options.regions is not None:
            weights = frame(self.weight_map(weights, content), STRIDE, LEAST_SIDE, self.margin)[0]

        def paint(padded: Tensor, targets: list[StyleTarget]) -> Tensor:
            return network(padded, weights.to(padded.device))

        details["model"] = str(self.options.model)
        details["styles"] = json.dumps(prepared.data.tolist())
        painted = padded_pass(content, [], STRIDE, LEAST_SIDE, paint, self.margin)
        strength = self.options.strength
        yield painted if strength == 1 else torch.lerp(content.float(), painted, strength)


# ----------------------------------------------------------------------------- ONNX export

INPUT_NAMES = ("content", "style_weights")
OUTPUT_NAMES = ("image",)


class JohnsonGraph(nn.Module):
    """The method as one module for export: (content (1, 3, H, W) in [0, 1], style weights
    (1, N)) → image of the content's size, with the method's reflected margin and padding."""

    def __init__(self, network: TransformNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, content: Tensor, weights: Tensor) -> Tensor:
        height, width = content.shape[-2:]
        framed, (top, left) = reflect_margin(content, Johnson.margin)
        padded, _ = pad_to_multiple(framed, STRIDE, LEAST_SIDE)
        image = self.network(padded, weights)
        return image[..., top : top + height, left : left + width].clamp(0, 1)


def export_onnx(options: ExportOptions, method: JohnsonOptions | None = None, **_: Any) -> Path:
    """Write the network ``method.model`` with its padding as one ONNX graph to
    ``options.output``, atomically (refused without ``options.force`` where a file is).
    The graph's metadata names its styles in the order of the ``style_weights`` input."""
    from brushwork.export import IMAGE_AXES, model_name, require_onnx, write_graph
    from brushwork.outputs import OutputPlan, inputs_of

    options.validate()
    method = method or JohnsonOptions()
    if method.regions is not None or method.strength != 1:
        raise BrushworkError(
            "the johnson ONNX graph blends styles by its style_weights input; it takes no "
            "--regions or --strength (composite or mix the outputs with the photo)"
        )
    require_onnx()
    source = models.resolve(method.model, method="johnson")
    plan = OutputPlan(options.force, inputs=inputs_of(source))
    output = plan.add(options.output, extensions=(".onnx",), what="model", flag="-o")
    network = copy.deepcopy(load_network(method.model))
    names = style_names(source) or [str(i) for i in range(1, network.styles + 1)]
    generator = torch.Generator().manual_seed(0)  # sizes off the stride: padding traced
    example = (torch.rand(1, 3, 37, 45, generator=generator), torch.ones(1, network.styles))
    return write_graph(
        output,
        JohnsonGraph(network).eval(),
        example,
        (list(INPUT_NAMES), list(OUTPUT_NAMES)),
        IMAGE_AXES,
        options,
        {
            "brushwork_method": "johnson",
            "brushwork_model": model_name(method.model, source),
            "brushwork_styles": json.dumps(names),
        },
    )


__all__ = [
    "Johnson",
    "JohnsonOptions",
    "export_onnx",
    "load_network",
    "style_names",
    "style_weights",
]
