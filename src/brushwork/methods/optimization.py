"""What every optimization-based method shares: the pixels of the output are optimized to
minimize a loss built from encoder features (Gatys et al. 2016 and its descendants).

A subclass says which encoder layers it needs (:meth:`OptimizationMethod.encoder_layers`)
and builds its loss (:meth:`OptimizationMethod.build_loss`); the start image, optimizer,
memory plan, progress callbacks and result are handled here once.

Memory (float32, CPU, measured with ``benchmarks/bench_highres.py``): one forward and
backward pass keeps about 1.9 × 4 bytes per encoder activation (:func:`feature_elements`),
about 1.35 × with activation checkpointing; L-BFGS keeps 2 image-sized vectors per history
step. :meth:`OptimizationMethod.memory_plan` picks checkpointing and the L-BFGS history to fit
a memory limit, and refuses, with its estimate, a request that cannot fit.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from brushwork.encoders import VGG19, deepest, feature_elements
from brushwork.encoders.vgg import pools_before
from brushwork.errors import BrushworkError
from brushwork.methods.base import (
    GIB,
    Method,
    Options,
    StyleTarget,
    StylizeResult,
    check_weight,
    memory_limit,
    option,
    style_targets,
)
from brushwork.optim import Iterate, LossFunction, optimize_image


@dataclass
class OptimizationOptions(Options):
    tv_weight: float = option(1.0, "weight of the total-variation (smoothness) loss")
    pooling: str = option("max", "pooling in the encoder", choices=("max", "avg"))
    optimizer: str = option("lbfgs", "optimizer", choices=("lbfgs", "adam"))
    iterations: int = option(300, "optimization steps")
    learning_rate: float | None = option(None, "step size (default: 1 for L-BFGS, 0.02 Adam)")
    init: str = option("content", "start image: 'content', 'noise' or an image file")
    seed: int = option(0, "random seed (noise init) for reproducible runs")

    def validate(self) -> None:
        check_weight("tv-weight", self.tv_weight)
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


ACTIVATION_BYTES = {False: 1.9 * 4, True: 1.35 * 4}
"""Peak bytes per encoder activation in a forward + backward pass, without and with
checkpointing (measured at 512-2048 px, with margin)."""
FIXED_BYTES = 512 * 2**20
"""Interpreter, torch and the encoder's weights."""
LBFGS_HISTORY_BUDGET = GIB
"""Memory L-BFGS may use for its history before it is shortened (at least 10 steps)."""


@dataclass
class MemoryPlan:
    """How a run fits in memory: estimated peak bytes, checkpointing, L-BFGS history."""

    estimate: int
    checkpointing: bool
    history_size: int


class OptimizationMethod(Method):
    """Base of the methods that optimize the output's pixels."""

    options_class = OptimizationOptions
    accepts_init = True
    memory_limit: int | None = None
    """Bytes a run may use; None: 80 % of what is available when it starts."""

    def __init__(self, options: Options | None = None, *, encoder: VGG19 | None = None,
                 **changes: Any) -> None:
        super().__init__(options, **changes)
        self.encoder = encoder

    @abstractmethod
    def encoder_layers(self) -> list[str]:
        """Every encoder layer the loss reads."""

    @abstractmethod
    def build_loss(
        self, encoder: VGG19, content: Tensor, styles: list[StyleTarget]
    ) -> LossFunction:
        """The objective: image → named loss terms including ``"total"``; its targets are
        computed here, once. A ``details`` dict attribute on it is added to the result's."""

    def encoder_request(self) -> tuple[str, str]:
        options: OptimizationOptions = self.options  # type: ignore[assignment]
        return deepest(self.encoder_layers()), options.pooling

    def min_style_side(self) -> int:
        """The shortest style image side the deepest layer can use (one feature pixel)."""
        return 2 ** pools_before(deepest(self.encoder_layers()))

    def extra_bytes(self, height: int, width: int) -> int:
        """Memory the method's loss needs beyond the encoder's pass (override if large)."""
        return 0

    def memory_plan(self, height: int, width: int, device: torch.device | None = None
                    ) -> MemoryPlan:
        """Fit an H×W run into :attr:`memory_limit`: plain if it fits, else with activation
        checkpointing, then a shorter L-BFGS history; raise with the estimate if nothing
        fits."""
        options: OptimizationOptions = self.options  # type: ignore[assignment]
        device = device or torch.device("cpu")
        limit, source = memory_limit(self.memory_limit, device)
        elements = feature_elements(height, width, deepest(self.encoder_layers()))
        vector = 3 * height * width * 4
        lbfgs = options.optimizer == "lbfgs"
        preferred = min(100, max(10, LBFGS_HISTORY_BUDGET // (2 * vector))) if lbfgs else 0

        def estimate(checkpointing: bool, history: int) -> int:
            return int(FIXED_BYTES + ACTIVATION_BYTES[checkpointing] * elements
                       + self.extra_bytes(height, width) + (2 * history + 6) * vector)

        for checkpointing, history in ((False, preferred), (True, preferred),
                                       (True, min(preferred, 5))):
            if estimate(checkpointing, history) <= limit:
                return MemoryPlan(estimate(checkpointing, history), checkpointing, history)
        smallest = estimate(True, min(preferred, 5))
        raise BrushworkError(
            f"a {width}x{height} {self.name} run needs about {smallest / GIB:.1f} GiB even with "
            f"activation checkpointing, over {source} ({limit / GIB:.1f} GiB); use a smaller "
            "--size, or a machine with more memory"
        )

    def check_memory(self, height: int, width: int, device: torch.device,
                     limit: int | None = None) -> None:
        self.memory_limit = limit
        self.memory_plan(height, width, device)

    def build_encoder(self) -> VGG19:
        from brushwork.encoders import load_vgg19

        last_layer, pooling = self.encoder_request()
        return load_vgg19(last_layer, pooling=pooling)

    def stylize(
        self,
        content: Tensor,
        style: Tensor | StyleTarget | Sequence[StyleTarget],
        *,
        init: Tensor | None = None,
        callbacks: list[Callable[[Iterate], None]] | None = None,
    ) -> StylizeResult:
        options: OptimizationOptions = self.options  # type: ignore[assignment]
        start = time.perf_counter()
        styles = [
            StyleTarget(t.image.to(content.device), t.weight, t.layers,
                        None if t.mask is None else t.mask.to(content.device))
            for t in style_targets(style, content)
        ]
        plan = self.memory_plan(*content.shape[-2:], content.device)
        encoder = (self.encoder or self.build_encoder()).to(content.device)
        encoder.use_checkpointing(plan.checkpointing)
        loss = self.build_loss(encoder, content, styles)
        if init is None:
            init = initial_image(content, options.init, options.seed)
        elif init.shape != content.shape:
            raise BrushworkError(
                f"start image has shape {tuple(init.shape)}, the content {tuple(content.shape)}"
            )
        result = optimize_image(
            init.to(content), loss, iterations=options.iterations,
            optimizer=options.optimizer, learning_rate=options.learning_rate,
            history_size=max(plan.history_size, 1), callbacks=callbacks,
        )
        return StylizeResult(
            result.image.clamp(0, 1),
            result.losses,
            time.perf_counter() - start,
            {"steps": result.steps, "evaluations": result.evaluations,
             "history": result.history, "memory_estimate": plan.estimate,
             "checkpointing": plan.checkpointing, "lbfgs_history": plan.history_size,
             **getattr(loss, "details", {})},
        )
