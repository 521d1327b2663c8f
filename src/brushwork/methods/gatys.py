"""Optimization-based style transfer: Gatys, Ecker & Bethge 2016, "Image Style Transfer Using
Convolutional Neural Networks" (CVPR), with the optional Laplacian term of Li, Xu, Nie & Chua
2017, "Laplacian-Steered Neural Style Transfer" (ACM MM), and an optional depth term.

The output image x minimizes

    content_weight · ‖F(x) − F(content)‖²                       (relu4_2; eq. 1)
  + style_weight   · Σ_l w_l ‖G(F_l(x)) − G(F_l(style))‖²        (relu1_1…relu5_1; eq. 3-5)
  + tv_weight      · TV(x)                                       (smoothness)
  + lap_weight     · Σ_p ‖Λ(P_p(x)) − Λ(P_p(content))‖²          (Li et al., eq. 2-3)
  + depth_weight   · SSI(E(R(x)), E(R(content)))                  (depth, see below)

where G is the Gram matrix, Λ the 3×3 Laplacian and P_p average pooling by p. Every
content, style and Laplacian term is divided by its target's mean square (a relative error),
so one layer cannot dominate and the weights carry over between images; see
:mod:`brushwork.losses`.

The depth term keeps the content's depth layout, the idea of Liu, Cheng, Lai & Rosin 2017,
"Depth-aware neural style transfer" (NPAR), who added a depth loss to the training of a
Johnson-style feed-forward network; here it is one more term of Gatys et al.'s objective. E
is a frozen monocular depth estimator (:mod:`brushwork.depth`; ``depth_model``, by default
``$BRUSHWORK_DEPTH_MODEL`` else brushwork's bundled, indoor-trained ``depth``) and SSI
:func:`~brushwork.losses.scale_shift_invariant_loss` (1 − r² after a least-squares scale
and shift, in [0, 1], so it needs no normalization). R resizes an image (bilinear,
antialiased, differentiable) so that its shorter side is
:data:`~brushwork.depth.estimator.TRAINING_SIDE` (224 px) when it is longer
(:func:`depth_input`): the estimator sees the scale it was trained at, and the term costs
about one 224 px pass however large the output. The output goes through the same
antialiased resize as the content, so at x = content the term is exactly 0, and every pixel
gets a gradient (a plain bilinear 4× reduction reads, and so moves, only a quarter of the
pixels). E(R(content)) is computed once per scale, without gradients.

Several styles (:class:`~brushwork.methods.base.StyleTarget`) either blend, each layer's
Gram target being the weighted mean of its styles' Gram matrices, or, with masks, each is
matched in its own region by guided Gram matrices (Gatys et al. 2017, §4).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.depth.estimator import MULTIPLE, TRAINING_SIDE
from brushwork.encoders import LAYERS, VGG19, downsample_mask, feature_elements
from brushwork.errors import BrushworkError
from brushwork.losses import (
    content_loss,
    gram_loss,
    laplacian_loss,
    relative_scale,
    scale_shift_invariant_loss,
    total_variation_loss,
)
from brushwork.methods.base import PreparedStyle, StyleTarget, blend_weights, uses_masks
from brushwork.methods.optimization import OptimizationMethod, OptimizationOptions
from brushwork.ops import gram_matrix, pooled_laplacian
from brushwork.options import option


@dataclass
class GatysOptions(OptimizationOptions):
    content_layers: tuple[str, ...] = option(
        ("relu4_2",), "VGG-19 layers for the content loss", choices=LAYERS, metavar="LAYER,..."
    )
    style_layers: tuple[str, ...] = option(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "VGG-19 layers for the style (Gram) loss",
        choices=LAYERS,
        metavar="LAYER,...",
    )
    style_layer_weights: tuple[float, ...] | None = option(
        None,
        "relative weight of each style layer, normalized to sum 1 (none: equal)",
        minimum=0.0,
    )
    content_weight: float = option(1.0, "weight of the content loss", minimum=0.0, main=True)
    style_weight: float = option(3.0, "weight of the style loss", minimum=0.0, main=True)
    lap_weight: float = option(
        0.0, "weight of the Laplacian loss (Li et al. 2017); 0 = off", minimum=0.0, main=True
    )
    lap_pool_sizes: tuple[int, ...] = option(
        (4, 16),
        "average-pooling sizes before the Laplacian, one loss term each",
        minimum=1,
    )
    depth_weight: float = option(
        0.0,
        "weight of the depth loss: keep the content's depth layout (Liu et al. 2017); 0 = off",
        minimum=0.0,
    )
    depth_model: str | None = option(
        None,
        "depth estimator: bundled name or file; default $BRUSHWORK_DEPTH_MODEL, else "
        "the bundled 'depth' (indoor-trained); needs --depth-weight > 0",
        metavar="NAME|PATH",
        names=(None, "depth"),
    )

    def check(self) -> None:
        super().check()
        if not self.content_layers and not self.style_layers:
            raise BrushworkError("at least one content or style layer is needed")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise BrushworkError(
                    f"{len(self.style_layer_weights)} style layer weights given for "
                    f"{len(self.style_layers)} style layers"
                )
            if sum(self.style_layer_weights) <= 0:
                raise BrushworkError("style layer weights must not all be zero")
        if self.lap_weight > 0 and not self.lap_pool_sizes:
            raise BrushworkError("lap-weight needs at least one lap pool size")
        if self.depth_model is not None and self.depth_weight == 0:
            raise BrushworkError(
                "depth-model is set but depth-weight is 0, so it would not "
                "be used; give a depth-weight > 0"
            )

    @property
    def encoder_layers(self) -> list[str]:
        return [*self.content_layers, *self.style_layers]


DEPTH_ACTIVATION_BYTES = 1.6 * 1.9 * 4
"""Peak bytes of the depth estimator's forward + backward pass per VGG-19 relu4_1
activation (:func:`~brushwork.encoders.feature_elements`) of its input: brushwork's
estimator is VGG-19 to relu4_1 plus a U-Net decoder that adds about 0.6× as many
activations (counted at 224×299), times the encoder's 1.9 peak factor. For a 4:3 output of
any size above 224 px (input 224×299, padded to 224×320) that is about 240 MB, plus 26 MB of
weights for the bundled model; measured, the term added 290 MB to a CPU run's peak RSS at
800×600 and 180 MB to the CUDA peak at 512×384 (the encoder's pass dominates larger runs)."""


def depth_input(image: Tensor, side: int = TRAINING_SIDE) -> Tensor:
    """``image`` resized (bilinear, antialiased, differentiable) so that its shorter side is
    ``side`` when it is longer; a smaller image passes unchanged. What the depth estimator
    sees: the scale it was trained at, at a cost that does not grow with the output."""
    height, width = image.shape[-2:]
    if min(height, width) <= side:
        return image
    factor = side / min(height, width)
    size = (max(side, round(height * factor)), max(side, round(width * factor)))
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def depth_bytes(estimator: nn.Module, height: int, width: int) -> int:
    """Rough peak memory of the depth term for an H×W output: the estimator's weights and
    buffers plus its activations on :func:`depth_input`'s size (padded to the estimator's
    stride; an ONNX/TorchScript model's own square input size when larger)."""
    side = min(height, width)
    factor = min(1.0, TRAINING_SIDE / side)
    h, w = max(1, round(height * factor)), max(1, round(width * factor))
    h, w = h + -h % MULTIPLE, w + -w % MULTIPLE
    input_size = getattr(estimator, "input_size", None)
    if isinstance(input_size, int):
        h, w = max(h, input_size), max(w, input_size)
    stored = sum(
        t.numel() * t.element_size() for t in [*estimator.parameters(), *estimator.buffers()]
    )
    return int(stored + DEPTH_ACTIVATION_BYTES * feature_elements(h, w, "relu4_1"))


def check_layer_assignment(
    assignments: list[tuple[str, ...] | None], layers: tuple[str, ...]
) -> None:
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


def style_grams(
    encoder: VGG19, styles: list[StyleTarget], layers: tuple[str, ...]
) -> list[dict[str, Tensor]]:
    """Each style's Gram matrices at the style layers assigned to it (float32)."""
    check_layer_assignment([s.layers for s in styles], layers)
    return [
        {k: gram_matrix(f) for k, f in encoder(s.image, s.layers or layers).items()} for s in styles
    ]


class GatysLoss(nn.Module):
    """The Gatys (+ Laplacian, + depth) objective for one content image and prepared styles
    (:func:`style_grams`); content targets are computed at construction. ``depth``, the
    frozen estimator of the depth term, is needed when ``options.depth_weight`` > 0."""

    def __init__(
        self,
        encoder: VGG19,
        content: Tensor,
        styles: list[StyleTarget],
        grams: list[dict[str, Tensor]],
        options: GatysOptions,
        depth: nn.Module | None = None,
        checkpointing: bool = False,
    ):
        super().__init__()
        self.encoder = encoder
        self.options = options
        self.checkpointing = checkpointing
        if options.depth_weight > 0 and depth is None:
            raise BrushworkError("depth-weight > 0 needs a depth estimator")
        self.depth = depth if options.depth_weight > 0 else None
        self.details: dict[str, Any] = {}
        n = len(options.style_layers)
        weights = options.style_layer_weights or (1.0,) * n
        self.layer_weights = dict(
            zip(options.style_layers, (w / sum(weights) for w in weights), strict=True)
        )
        with torch.no_grad():
            content_features = (
                encoder(content, options.content_layers) if options.content_layers else {}
            )
            self.content_targets = {k: content_features[k].float() for k in options.content_layers}
            self.style_terms = self._style_terms(styles, grams, options.style_layers)
            self.lap_targets = (
                {p: pooled_laplacian(content, p) for p in options.lap_pool_sizes}
                if options.lap_weight > 0
                else {}
            )
            self.depth_target = (
                None if self.depth is None else self.depth(depth_input(content)).float()
            )
            if self.depth_target is not None:
                self.details["depth_input"] = list(self.depth_target.shape[-2:])
            # Each term is divided by its target's mean square (a relative error), so layers
            # of very different magnitude weigh alike and weights carry over between images.
            self.scales = {
                key: relative_scale(target)
                for targets in (self.content_targets, self.lap_targets)
                for key, target in targets.items()
            }

    @staticmethod
    def _style_terms(
        styles: list[StyleTarget], grams: list[dict[str, Tensor]], layers: tuple[str, ...]
    ) -> dict[str, list[_StyleTerm]]:
        covering = {
            layer: [i for i, s in enumerate(styles) if s.layers is None or layer in s.layers]
            for layer in layers
        }
        weights = blend_weights(styles)
        terms: dict[str, list[_StyleTerm]] = {}
        for layer in layers:
            if not uses_masks(styles):
                total = sum(weights[i] for i in covering[layer])
                if total <= 0:
                    raise BrushworkError(f"the styles of layer {layer} all have weight 0")
                target = cast(
                    Tensor, sum(weights[i] * grams[i][layer] for i in covering[layer]) / total
                )
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
        features = self.encoder(image, o.encoder_layers, checkpointing=self.checkpointing)
        terms: dict[str, Tensor] = {}
        if o.content_layers:
            terms["content"] = cast(
                Tensor,
                o.content_weight
                * sum(
                    self.scales[k] * content_loss(features[k].float(), t)
                    for k, t in self.content_targets.items()
                )
                / len(o.content_layers),
            )
        if o.style_layers:
            terms["style"] = o.style_weight * sum(
                (
                    self.layer_weights[layer]
                    * term.weight
                    * gram_loss(features[layer], term.target, term.mask)
                    for layer, layer_terms in self.style_terms.items()
                    for term in layer_terms
                ),
                image.new_zeros(()),  # a tensor even when every mask is empty
            )
        if o.tv_weight > 0:
            terms["tv"] = o.tv_weight * total_variation_loss(image)
        if self.lap_targets:
            terms["lap"] = cast(
                Tensor,
                o.lap_weight
                * sum(
                    self.scales[p] * laplacian_loss(image, t, p)
                    for p, t in self.lap_targets.items()
                ),
            )
        if self.depth is not None:
            terms["depth"] = o.depth_weight * scale_shift_invariant_loss(
                self.depth(depth_input(image)).float(), cast(Tensor, self.depth_target)
            )
        terms["total"] = cast(Tensor, sum(terms.values()))
        return terms


class Gatys(OptimizationMethod[GatysOptions]):
    name = "gatys"
    options_class = GatysOptions

    def __init__(
        self,
        options: GatysOptions | None = None,
        *,
        encoder: VGG19 | None = None,
        depth: nn.Module | None = None,
        **changes: Any,
    ) -> None:
        """``depth``: the estimator of the depth term (RGB in [0, 1] (B, 3, H, W) →
        (B, 1, H, W) relative inverse depth), replacing ``depth_model``; it is frozen."""
        super().__init__(options, encoder=encoder, **changes)
        self.depth = depth
        self._depth: tuple[tuple[str | None, str | None], nn.Module] | None = None

    def depth_estimator(self) -> nn.Module | None:
        """The depth term's estimator, None when ``depth_weight`` is 0: the one given as
        ``depth``, else ``depth_model`` (or ``$BRUSHWORK_DEPTH_MODEL``, or the bundled
        ``depth``) loaded on the CPU once per instance, which every scale of a
        coarse-to-fine run shares. A missing or unreadable model raises
        :class:`BrushworkError`."""
        options = self.options
        if options.depth_weight <= 0:
            return None
        if self.depth is not None:
            return self.depth
        from brushwork import depth as depth_models

        model = None if options.depth_model is None else str(options.depth_model)
        key = (model, os.environ.get(depth_models.ENV))
        with self._lock:
            if self._depth is None or self._depth[0] != key:
                self._depth = (key, depth_models.load_depth_model(model))
            return self._depth[1]

    def check_files(self) -> None:
        super().check_files()
        self.depth_estimator()  # a bad depth model fails before the VGG-19 loads

    def extra_bytes(self, height: int, width: int) -> int:
        """The depth estimator's weights and activations (:func:`depth_bytes`)."""
        estimator = self.depth_estimator()
        return 0 if estimator is None else depth_bytes(estimator, height, width)

    def encoder_layers(self) -> list[str]:
        return self.options.encoder_layers

    def style_layers(self) -> list[str]:
        return list(self.options.style_layers)

    def check_style_layers(self, assignments: Sequence[tuple[str, ...] | None]) -> None:
        check_layer_assignment(list(assignments), self.options.style_layers)

    def prepare_styles(self, encoder: VGG19, styles: list[StyleTarget]) -> Any:
        return style_grams(encoder, styles, self.options.style_layers)

    def build_loss(
        self, encoder: VGG19, content: Tensor, prepared: PreparedStyle, checkpointing: bool
    ) -> GatysLoss:
        options = self.options
        estimator = self.depth_estimator()
        if estimator is not None:
            estimator = estimator.to(content.device).requires_grad_(False).eval()
        with self.precision.autocast():
            return GatysLoss(
                encoder,
                content,
                prepared.targets,
                prepared.data,
                options,
                depth=estimator,
                checkpointing=checkpointing,
            )


class GatysLaplacian(Gatys):
    name = "gatys-laplacian"
    preset = {"lap_weight": 10.0}  # noqa: RUF012
