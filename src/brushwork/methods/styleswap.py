"""Style Swap: Chen & Schmidt 2016, "Fast Patch-based Style Transfer of Arbitrary Style"
(NIPS workshop on Constructive Machine Learning), optimization-based inversion (§3.3).

At one encoder layer (relu3_1 by default) every 3×3 patch of the content features is
replaced by the style patch it correlates with best (normalized cross-correlation) and
overlapping patches are averaged: the target SS(Φ(c), Φ(s)) of :func:`brushwork.ops.style_swap`,
computed once. The output image x minimizes

    swap_weight · ‖Φ(x) − SS(Φ(c), Φ(s))‖² / mean(SS²)      (relative feature error)
  + tv_weight   · TV(x)                                       (smoothness)

starting from the content. The content structure survives through the choice of patches;
colours and textures are the style's.

Its §4 replaces the optimization by one pass of a trained inverse network, far faster: the
method ``styleswap-inverse`` (:mod:`brushwork.methods.styleswap_inverse`), which shares the
swap (:func:`swap_target`) with this one.

Several styles (:class:`~brushwork.methods.base.StyleTarget`) either blend, the target being
Σᵢ wᵢ·SS(Φ(c), Φ(sᵢ)) with weights normalized to sum 1, or, with masks (at the layer's
resolution, :func:`~brushwork.encoders.downsample_mask`), split the image:
target = Σᵢ mᵢ·SSᵢ + (1 − Σᵢ mᵢ)·Φ(c), so pixels no mask covers keep the content features
(where masks overlap and sum above 1 they are divided by their sum; a style without a mask
covers everything). In mask mode a style's weight scales the per-pixel feature loss in its
region (uncovered pixels weigh 1), trading its match against the TV smoothing there; a style
of weight 0 is left out, so its region keeps the content.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import torch
from torch import Tensor, nn

from brushwork.encoders import LAYERS, VGG19, downsample_mask
from brushwork.encoders.vgg import pools_before
from brushwork.errors import BrushworkError
from brushwork.losses import relative_scale, total_variation_loss
from brushwork.methods.base import PreparedStyle, StyleTarget, blend_weights, uses_masks
from brushwork.methods.optimization import OptimizationMethod, OptimizationOptions
from brushwork.ops import style_swap
from brushwork.options import option


@dataclass
class StyleSwapOptions(OptimizationOptions):
    layer: str = option("relu3_1", "VGG-19 layer whose patches are swapped", choices=LAYERS)
    patch_size: int = option(
        3, "side of the square feature patches, in feature pixels", minimum=1, maximum=64
    )
    stride: int = option(
        1,
        "step between the style patches taken (2 takes ~1/4 as many: faster swap)",
        minimum=1,
        maximum=64,
    )
    swap_weight: float = option(1.0, "weight of the loss to the swapped features", minimum=0.0)
    retired: ClassVar[dict[str, str]] = {
        "inverse": "--inverse is now a method of its own: use -m styleswap-inverse "
        "(method='styleswap-inverse'), which takes --model, --patch-size and --stride"
    }


class SwapSettings(Protocol):
    """What the swap reads of a method's options (Style Swap's, its inverse network's)."""

    @property
    def layer(self) -> str: ...

    @property
    def patch_size(self) -> int: ...

    @property
    def stride(self) -> int: ...


def min_swap_side(options: SwapSettings) -> int:
    """Smallest image side with at least one patch at the swap's layer."""
    return options.patch_size * 2 ** pools_before(options.layer)


def _check_size(image: Tensor, what: str, options: SwapSettings) -> None:
    height, width = image.shape[-2:]
    least = min_swap_side(options)
    if min(height, width) < least:
        raise BrushworkError(
            f"{what} is {width}×{height} px, too small for Style Swap at {options.layer} with "
            f"{options.patch_size}×{options.patch_size} patches: it needs at least "
            f"{least}×{least} px"
        )


def check_swap_layer(assignments: list[tuple[str, ...] | None], layer: str) -> None:
    """Styles restricted to layers must include the one layer Style Swap uses."""
    for number, assigned in enumerate(assignments, 1):
        if assigned is not None and layer not in assigned:
            raise BrushworkError(
                f"Style Swap uses one layer, {layer}; style {number} is assigned "
                f"{', '.join(assigned) or 'no layer'}"
            )


def swap_target(
    encoder: VGG19,
    content: Tensor,
    styles: list[StyleTarget],
    features: list[Tensor | None],
    options: SwapSettings,
) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
    """The swapped features SS(Φ(c), Φ(sᵢ)) blended or placed by masks (see the module
    docstring), the per-pixel weight map of mask mode (None otherwise) and details. The
    matching runs in float32 whatever the precision: the choice of patches is the method."""
    layer = options.layer
    weights = blend_weights(styles)
    start = time.perf_counter()
    patches = 0
    with torch.no_grad():
        content_features = encoder(content, [layer])[layer].float()
        swapped: list[tuple[int, Tensor]] = []
        with torch.autocast(content.device.type, enabled=False):
            for i, style_features in enumerate(features):
                if style_features is None:
                    continue
                swapped.append(
                    (
                        i,
                        style_swap(
                            content_features,
                            style_features.float(),
                            options.patch_size,
                            options.stride,
                        ),
                    )
                )
                grid = [
                    (n - options.patch_size) // options.stride + 1
                    for n in style_features.shape[-2:]
                ]
                patches += grid[0] * grid[1]
        weight_map: Tensor | None = None
        if not uses_masks(styles):
            target = cast(Tensor, sum(weights[i] * f for i, f in swapped))
        else:
            shares = [
                (
                    i,
                    f,
                    torch.ones_like(content_features[:, :1])
                    if styles[i].mask is None
                    else downsample_mask(cast(Tensor, styles[i].mask), layer),
                )
                for i, f in swapped
            ]
            coverage = sum((m for _, _, m in shares), torch.zeros_like(content_features[:, :1]))
            scale = coverage.clamp_min(1.0)
            uncovered = 1.0 - coverage / scale
            target = uncovered * content_features
            weight_map = uncovered.clone()
            for i, f, mask in shares:
                target = target + (mask / scale) * f
                weight_map = weight_map + weights[i] * mask / scale
    return (
        target,
        weight_map,
        {"style_patches": patches, "swap_seconds": time.perf_counter() - start},
    )


class StyleSwapLoss(nn.Module):
    """The Style Swap objective for one content image and prepared styles; the swapped
    target is computed once at construction. ``details`` records the number of style patches
    and the seconds the swap took."""

    def __init__(
        self,
        encoder: VGG19,
        content: Tensor,
        styles: list[StyleTarget],
        features: list[Tensor | None],
        options: StyleSwapOptions,
        checkpointing: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.options = options
        self.checkpointing = checkpointing
        _check_size(content, "the content image", options)
        self.target, self.weight_map, self.details = swap_target(
            encoder, content, styles, features, options
        )
        self.scale = relative_scale(self.target)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        o = self.options
        features = self.encoder(image, [o.layer], checkpointing=self.checkpointing)[o.layer]
        error = (features.float() - self.target).pow(2)
        if self.weight_map is not None:
            error = error * self.weight_map
        terms: dict[str, Tensor] = {"swap": o.swap_weight * self.scale * error.mean()}
        if o.tv_weight > 0:
            terms["tv"] = o.tv_weight * total_variation_loss(image)
        terms["total"] = cast(Tensor, sum(terms.values()))
        return terms


class StyleSwap(OptimizationMethod[StyleSwapOptions]):
    name = "styleswap"
    options_class = StyleSwapOptions
    # Measured on chelsea × mosaic at 256 px (L-BFGS): the relative swap loss is within 1 % of
    # its 200-step value after 100 steps (0.175 vs 0.174) and the images look the same; the
    # base tv_weight 1.0 fits (0.1 leaves speckle, 10 blurs the patch edges away).
    preset = {"iterations": 100}  # noqa: RUF012

    def encoder_layers(self) -> list[str]:
        return [self.options.layer]

    def min_style_side(self) -> int:
        return min_swap_side(self.options)

    def check_style_layers(self, assignments: Sequence[tuple[str, ...] | None]) -> None:
        check_swap_layer(list(assignments), self.options.layer)

    def prepare_styles(self, encoder: VGG19, styles: list[StyleTarget]) -> Any:
        options = self.options
        weights = blend_weights(styles)
        for number, s in enumerate(styles, 1):
            _check_size(s.image, f"style {number}", options)
        return [
            encoder(s.image, [options.layer])[options.layer].float() if weights[i] > 0 else None
            for i, s in enumerate(styles)
        ]

    def build_loss(
        self, encoder: VGG19, content: Tensor, prepared: PreparedStyle, checkpointing: bool
    ) -> StyleSwapLoss:
        with self.precision.autocast():
            return StyleSwapLoss(
                encoder, content, prepared.targets, prepared.data, self.options, checkpointing
            )
