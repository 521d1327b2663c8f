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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from brushwork.encoders import VGG19, check_layers, deepest
from brushwork.errors import BrushworkError
from brushwork.losses import content_loss, gram_loss, laplacian_loss, total_variation_loss
from brushwork.methods.base import Method, Options, StylizeResult, check_weight, option
from brushwork.ops import gram_matrix, pooled_laplacian
from brushwork.optim import Iterate, optimize_image


@dataclass
class GatysOptions(Options):
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
    tv_weight: float = option(1.0, "weight of the total-variation (smoothness) loss")
    lap_weight: float = option(0.0, "weight of the Laplacian loss (Li et al. 2017); 0 = off")
    lap_pool_sizes: tuple[int, ...] = option(
        (4, 16), "average-pooling sizes before the Laplacian, one loss term each"
    )
    pooling: str = option("max", "pooling in the encoder", choices=("max", "avg"))
    optimizer: str = option("lbfgs", "optimizer", choices=("lbfgs", "adam"))
    iterations: int = option(300, "optimization steps")
    learning_rate: float | None = option(None, "step size (default: 1 for L-BFGS, 0.02 Adam)")
    init: str = option("content", "start image: 'content', 'noise' or an image file")
    seed: int = option(0, "random seed (noise init) for reproducible runs")

    def validate(self) -> None:
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
        for name in ("content_weight", "style_weight", "tv_weight", "lap_weight"):
            check_weight(name.replace("_", "-"), getattr(self, name))
        if any(not isinstance(p, int) or p < 1 for p in self.lap_pool_sizes):
            raise BrushworkError(f"lap pool sizes must be integers >= 1: {self.lap_pool_sizes}")
        if self.lap_weight > 0 and not self.lap_pool_sizes:
            raise BrushworkError("lap-weight needs at least one lap pool size")
        if self.pooling not in ("max", "avg"):
            raise BrushworkError(f"pooling must be 'max' or 'avg', not {self.pooling!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise BrushworkError(f"optimizer must be 'lbfgs' or 'adam', not {self.optimizer!r}")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise BrushworkError(f"iterations must be an integer >= 1, not {self.iterations}")
        if self.learning_rate is not None:
            check_weight("learning rate", self.learning_rate)
            if self.learning_rate == 0:
                raise BrushworkError("learning rate must be > 0")
        if self.init not in ("content", "noise") and not Path(self.init).is_file():
            raise BrushworkError(
                f"init must be 'content', 'noise' or an existing image file, not {self.init!r}"
            )

    @property
    def encoder_layers(self) -> list[str]:
        return [*self.content_layers, *self.style_layers]


class GatysLoss(nn.Module):
    """The Gatys (+ Laplacian) objective for one content and one style image; targets are
    computed once at construction."""

    def __init__(self, encoder: VGG19, content: Tensor, style: Tensor, options: GatysOptions):
        super().__init__()
        self.encoder = encoder
        self.options = options
        n = len(options.style_layers)
        weights = options.style_layer_weights or (1.0,) * n
        self.layer_weights = [w / sum(weights) for w in weights]
        with torch.no_grad():
            content_features = encoder(content, options.content_layers)
            style_features = encoder(style, options.style_layers)
            self.content_targets = {k: content_features[k] for k in options.content_layers}
            self.style_targets = {k: gram_matrix(style_features[k]) for k in options.style_layers}
            self.lap_targets = (
                {p: pooled_laplacian(content, p) for p in options.lap_pool_sizes}
                if options.lap_weight > 0
                else {}
            )
            # Each term is divided by its target's mean square (a relative error), so layers
            # of very different magnitude weigh alike and weights carry over between images.
            self.scales = {
                key: 1.0 / float(target.pow(2).mean().clamp_min(1e-12))
                for targets in (self.content_targets, self.style_targets, self.lap_targets)
                for key, target in targets.items()
            }

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
                w * self.scales[k] * gram_loss(features[k], self.style_targets[k])
                for w, k in zip(self.layer_weights, o.style_layers, strict=True)
            )
        if o.tv_weight > 0:
            terms["tv"] = o.tv_weight * total_variation_loss(image)
        if self.lap_targets:
            terms["lap"] = o.lap_weight * sum(
                self.scales[p] * laplacian_loss(image, t, p) for p, t in self.lap_targets.items()
            )
        terms["total"] = sum(terms.values())
        return terms


def initial_image(content: Tensor, init: str, seed: int) -> Tensor:
    """The optimization's start: the content, seeded uniform noise, or an image file."""
    if init == "content":
        return content.clone()
    if init == "noise":
        generator = torch.Generator().manual_seed(seed)
        noise = torch.rand(content.shape, generator=generator)
        return noise.to(content)
    from brushwork.image import load_image

    image = load_image(init)
    return torch.nn.functional.interpolate(
        image, size=content.shape[-2:], mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1).to(content)


class Gatys(Method):
    name = "gatys"
    description = "Gatys et al. 2016: optimize the pixels to match content and Gram statistics"
    options_class = GatysOptions

    def __init__(self, options: Options | None = None, *, encoder: VGG19 | None = None,
                 **changes: Any) -> None:
        super().__init__(options, **changes)
        self.encoder = encoder

    def encoder_request(self) -> tuple[str, str]:
        options: GatysOptions = self.options  # type: ignore[assignment]
        return deepest(options.encoder_layers), options.pooling

    def build_encoder(self) -> VGG19:
        from brushwork.encoders import load_vgg19

        last_layer, pooling = self.encoder_request()
        return load_vgg19(last_layer, pooling=pooling)

    def stylize(
        self,
        content: Tensor,
        style: Tensor,
        *,
        callbacks: list[Callable[[Iterate], None]] | None = None,
    ) -> StylizeResult:
        options: GatysOptions = self.options  # type: ignore[assignment]
        start = time.perf_counter()
        encoder = self.encoder or self.build_encoder()
        encoder = encoder.to(content.device)
        loss = GatysLoss(encoder, content, style.to(content.device), options)
        init = initial_image(content, options.init, options.seed)
        result = optimize_image(
            init, loss, iterations=options.iterations, optimizer=options.optimizer,
            learning_rate=options.learning_rate, callbacks=callbacks,
        )
        return StylizeResult(
            result.image.clamp(0, 1),
            result.losses,
            time.perf_counter() - start,
            {"steps": result.steps, "evaluations": result.evaluations,
             "history": result.history},
        )


class GatysLaplacian(Gatys):
    name = "gatys-laplacian"
    description = "Gatys + the Laplacian loss of Li et al. 2017: keeps fine content structure"
    preset = {"lap_weight": 10.0}  # noqa: RUF012
