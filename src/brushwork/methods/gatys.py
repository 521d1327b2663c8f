"""Optimization-based style transfer: Gatys, Ecker & Bethge 2016, "Image Style Transfer Using
Convolutional Neural Networks" (CVPR), with the optional Laplacian term of Li, Xu, Nie & Chua
2017, "Laplacian-Steered Neural Style Transfer" (ACM MM).

The output image x minimizes

    content_weight · ‖F(x) − F(content)‖²                       (relu4_2; eq. 1)
  + style_weight   · Σ_l w_l ‖G(F_l(x)) − G(F_l(style))‖²        (relu1_1…relu5_1; eq. 3-5)
  + tv_weight      · TV(x)                                       (smoothness)
  + lap_weight     · Σ_p ‖D(P_p(x)) − D(P_p(content))‖²          (Li et al., eq. 2-3)

where G is the Gram matrix, D the 3×3 Laplacian and P_p average pooling by p. Every
content, style and Laplacian term is divided by its target's mean square (a relative error),
so one layer cannot dominate and the weights carry over between images; see
:mod:`brushwork.losses`.

Several styles (:class:`~brushwork.methods.base.StyleTarget`) either blend, each layer's
Gram target being the weighted mean of its styles' Gram matrices, or, with masks, each is
matched in its own region by guided Gram matrices (Gatys et al. 2017, §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from brushwork.encoders import VGG19, check_layers, downsample_mask
from brushwork.errors import BrushworkError
from brushwork.losses import (
    content_loss,
    gram_loss,
    laplacian_loss,
    relative_scale,
    total_variation_loss,
)
from brushwork.methods.base import StyleTarget, blend_weights, check_weight, option, uses_masks
from brushwork.methods.optimization import OptimizationMethod, OptimizationOptions
from brushwork.ops import gram_matrix, pooled_laplacian


@dataclass
class GatysOptions(OptimizationOptions):
    content_layers: tuple[str, ...] = option(("relu4_2",), "VGG-19 layers for the content loss")
    style_layers: tuple[str, ...] = option(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "VGG-19 layers for the style (Gram) loss",
    )
    style_layer_weights: tuple[float, ...] | None = option(
        None, "relative weight of each style layer, normalized to sum 1 (none: equal)"
    )
    content_weight: float = option(1.0, "weight of the content loss")
    style_weight: float = option(3.0, "weight of the style loss")
    lap_weight: float = option(0.0, "weight of the Laplacian loss (Li et al. 2017); 0 = off")
    lap_pool_sizes: tuple[int, ...] = option(
        (4, 16), "average-pooling sizes before the Laplacian, one loss term each"
    )

    def validate(self) -> None:
        super().validate()
        check_layers(self.content_layers)
        check_layers(self.style_layers)
        if not self.content_layers and not self.style_layers:
            raise BrushworkError("at least one content or style layer is needed")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise BrushworkError(
                    f"{len(self.style_layer_weights)} style layer weights given for "
                    f"{len(self.style_layers)} style layers"
                )
            for w in self.style_layer_weights:
                check_weight("a style layer weight", w)
            if sum(self.style_layer_weights) <= 0:
                raise BrushworkError("style layer weights must not all be zero")
        for name in ("content_weight", "style_weight", "lap_weight"):
            check_weight(name.replace("_", "-"), getattr(self, name))
        if any(not isinstance(p, int) or p < 1 for p in self.lap_pool_sizes):
            raise BrushworkError(f"lap pool sizes must be integers >= 1: {self.lap_pool_sizes}")
        if self.lap_weight > 0 and not self.lap_pool_sizes:
            raise BrushworkError("lap-weight needs at least one lap pool size")

    @property
    def encoder_layers(self) -> list[str]:
        return [*self.content_layers, *self.style_layers]


def check_layer_assignment(assignments: list[tuple[str, ...] | None],
                           layers: tuple[str, ...]) -> None:
    """Every style's layers must be style layers, and every style layer needs a style."""
    for number, assigned in enumerate(assignments, 1):
        extra = sorted(set(assigned or ()) - set(layers))
        if extra:
            raise BrushworkError(
                f"style {number} is assigned layer {extra[0]}, which is not a style layer "
                f"({', '.join(layers)})"
            )
    for layer in layers:
        if not any(assigned is None or layer in assigned for assigned in assignments):
            raise BrushworkError(
                f"style layer {layer} has no style assigned; assign it to a style or "
                "remove it from the style layers"
            )


@dataclass
class _StyleTerm:
    """One Gram comparison at one layer: target, loss weight and (mask mode) region mask."""

    target: Tensor
    weight: float
    mask: Tensor | None = None


class GatysLoss(nn.Module):
    """The Gatys (+ Laplacian) objective for one content image and one or more styles;
    targets are computed once at construction."""

    def __init__(self, encoder: VGG19, content: Tensor, style: Tensor | list[StyleTarget],
                 options: GatysOptions):
        super().__init__()
        self.encoder = encoder
        self.options = options
        styles = [StyleTarget(style)] if isinstance(style, Tensor) else style
        n = len(options.style_layers)
        weights = options.style_layer_weights or (1.0,) * n
        self.layer_weights = dict(
            zip(options.style_layers, (w / sum(weights) for w in weights), strict=True)
        )
        with torch.no_grad():
            content_features = encoder(content, options.content_layers)
            self.content_targets = {k: content_features[k] for k in options.content_layers}
            self.style_terms = self._style_terms(encoder, styles, options.style_layers)
            self.lap_targets = (
                {p: pooled_laplacian(content, p) for p in options.lap_pool_sizes}
                if options.lap_weight > 0
                else {}
            )
            # Each term is divided by its target's mean square (a relative error), so layers
            # of very different magnitude weigh alike and weights carry over between images.
            self.scales = {
                key: relative_scale(target)
                for targets in (self.content_targets, self.lap_targets)
                for key, target in targets.items()
            }

    @staticmethod
    def _style_terms(encoder: VGG19, styles: list[StyleTarget],
                     layers: tuple[str, ...]) -> dict[str, list[_StyleTerm]]:
        check_layer_assignment([s.layers for s in styles], layers)
        covering = {
            layer: [i for i, s in enumerate(styles) if s.layers is None or layer in s.layers]
            for layer in layers
        }
        grams = [
            {k: gram_matrix(f) for k, f in encoder(s.image, s.layers or layers).items()}
            for s in styles
        ]
        weights = blend_weights(styles)
        terms: dict[str, list[_StyleTerm]] = {}
        for layer in layers:
            if not uses_masks(styles):
                total = sum(weights[i] for i in covering[layer])
                if total <= 0:
                    raise BrushworkError(f"the styles of layer {layer} all have weight 0")
                target = sum(weights[i] * grams[i][layer] for i in covering[layer]) / total
                terms[layer] = [_StyleTerm(target, relative_scale(target))]
                continue
            terms[layer] = []
            for i in covering[layer]:
                mask = styles[i].mask
                if mask is not None:
                    mask = downsample_mask(mask, layer)
                area = 1.0 if mask is None else float(mask.pow(2).mean())
                if weights[i] > 0 and area > 0:
                    target = grams[i][layer]
                    terms[layer].append(
                        _StyleTerm(target, weights[i] * area * relative_scale(target), mask)
                    )
        return terms

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        o = self.options
        features = self.encoder(image, o.encoder_layers)
        terms: dict[str, Tensor] = {}
        if o.content_layers:
            terms["content"] = o.content_weight * sum(
                self.scales[k] * content_loss(features[k], t)
                for k, t in self.content_targets.items()
            ) / len(o.content_layers)
        if o.style_layers:
            terms["style"] = o.style_weight * sum(
                (self.layer_weights[layer] * term.weight
                 * gram_loss(features[layer], term.target, term.mask)
                 for layer, layer_terms in self.style_terms.items()
                 for term in layer_terms),
                image.new_zeros(()),  # a tensor even when every mask is empty
            )
        if o.tv_weight > 0:
            terms["tv"] = o.tv_weight * total_variation_loss(image)
        if self.lap_targets:
            terms["lap"] = o.lap_weight * sum(
                self.scales[p] * laplacian_loss(image, t, p) for p, t in self.lap_targets.items()
            )
        terms["total"] = sum(terms.values())
        return terms


class Gatys(OptimizationMethod):
    name = "gatys"
    description = "Gatys et al. 2016: optimize the pixels to match content and Gram statistics"
    options_class = GatysOptions

    def encoder_layers(self) -> list[str]:
        options: GatysOptions = self.options  # type: ignore[assignment]
        return options.encoder_layers

    def check_style_layers(self, assignments: Sequence[tuple[str, ...] | None]) -> None:
        options: GatysOptions = self.options  # type: ignore[assignment]
        check_layer_assignment(list(assignments), options.style_layers)

    def build_loss(self, encoder: VGG19, content: Tensor, styles: list[StyleTarget]) -> GatysLoss:
        options: GatysOptions = self.options  # type: ignore[assignment]
        return GatysLoss(encoder, content, styles, options)


class GatysLaplacian(Gatys):
    name = "gatys-laplacian"
    description = "Gatys + the Laplacian loss of Li et al. 2017: keeps fine content structure"
    preset = {"lap_weight": 10.0}  # noqa: RUF012
