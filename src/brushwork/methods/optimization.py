"""What every optimization-based method shares: the pixels of the output are optimized to
minimize a loss built from encoder features (Gatys et al. 2016 and its descendants).

A subclass says which encoder layers it needs (:meth:`OptimizationMethod.encoder_layers`),
what it keeps of the styles (:meth:`OptimizationMethod.prepare_styles`: Gram targets,
feature maps) and builds its loss for one content image
(:meth:`OptimizationMethod.build_loss`); the start image, optimizer, memory plan, extra loss
terms (a video's temporal term), progress events and result are handled here once.

Memory (float32, CPU, measured with ``benchmarks/bench_highres.py``): one forward and
backward pass keeps about 1.9 × 4 bytes per encoder activation (:func:`feature_elements`),
about 1.35 × with activation checkpointing; L-BFGS keeps 2 image-sized vectors per history
step. :meth:`OptimizationMethod.plan` picks checkpointing and the L-BFGS history to fit a
memory limit, and refuses, with its estimate, a request that cannot fit.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from brushwork.encoders import VGG19, deepest, feature_elements, inference_peak_elements
from brushwork.encoders.vgg import pools_before
from brushwork.errors import BrushworkError
from brushwork.memory import GIB, memory_limit
from brushwork.methods.base import (
    LossTerm,
    MemoryPlan,
    Method,
    PreparedStyle,
    StepCounter,
    StyleTarget,
    StylizeResult,
    check_content,
)
from brushwork.optim import LossFunction, optimize_image
from brushwork.options import SEED_MAX, Options, option


@dataclass
class OptimizationOptions(Options):
    tv_weight: float = option(1.0, "weight of the total-variation (smoothness) loss", minimum=0.0)
    pooling: str = option("max", "pooling in the encoder", choices=("max", "avg"))
    optimizer: str = option("lbfgs", "optimizer", choices=("lbfgs", "adam"), main=True)
    iterations: int = option(300, "optimization steps", minimum=1, maximum=1_000_000, main=True)
    learning_rate: float | None = option(
        None, "step size (default: 1 for L-BFGS, 0.02 Adam)", minimum=0.0, exclusive_minimum=True
    )
    init: str = option(
        "content",
        "start image: 'content', 'noise' or an image file",
        metavar="content|noise|PATH",
        names=("content", "noise"),
    )
    seed: int = option(
        0, "random seed (noise init) for reproducible runs", minimum=0, maximum=SEED_MAX
    )

    def check(self) -> None:
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
    return (
        torch.nn.functional.interpolate(
            image, size=content.shape[-2:], mode="bicubic", align_corners=False, antialias=True
        )
        .clamp(0, 1)
        .to(content)
    )


OptimizationOptionsT = TypeVar("OptimizationOptionsT", bound=OptimizationOptions)
"""The options class of an :class:`OptimizationMethod` (:class:`OptimizationOptions` or a
subclass)."""

ACTIVATION_BYTES = {False: 1.9 * 4, True: 1.35 * 4}
"""Peak bytes per encoder activation in a forward + backward pass, without and with
checkpointing (measured at 512-2048 px, with margin)."""
FIXED_BYTES = 512 * 2**20
"""Interpreter, torch and the encoder's weights."""
LBFGS_HISTORY_BUDGET = GIB
"""Memory L-BFGS may use for its history before it is shortened (at least 10 steps)."""


class WithExtraTerms(nn.Module):
    """A loss with more named terms added to its total (e.g. a video's temporal loss)."""

    def __init__(self, loss: nn.Module, extra: Sequence[tuple[str, LossTerm]]) -> None:
        super().__init__()
        self.loss = loss
        self.extra = list(extra)
        self.details = getattr(loss, "details", {})

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        terms = self.loss(image)
        total = terms.pop("total")
        for name, term in self.extra:
            if name in terms or name == "total":
                raise BrushworkError(f"an extra loss term may not be named {name!r}")
            terms[name] = term(image)
            total = total + terms[name]
        terms["total"] = total
        return terms


class OptimizationMethod(Method[OptimizationOptionsT]):
    """Base of the methods that optimize the output's pixels."""

    kind = "optimization"
    options_class = OptimizationOptions

    @abstractmethod
    def encoder_layers(self) -> list[str]:
        """Every encoder layer the loss reads."""

    @abstractmethod
    def prepare_styles(self, encoder: VGG19, styles: list[StyleTarget]) -> Any:
        """What the loss needs of the styles, computed once (no gradient)."""

    @abstractmethod
    def build_loss(
        self, encoder: VGG19, content: Tensor, prepared: PreparedStyle, checkpointing: bool
    ) -> LossFunction:
        """The objective for one content image: image → named loss terms including
        ``"total"``; its content targets are computed here, once. A ``details`` dict
        attribute on it is added to the result's."""

    def style_layers(self) -> list[str]:
        """The layers the styles are encoded at (default: every layer the loss reads)."""
        return self.encoder_layers()

    def encoder_request(self) -> tuple[str, str]:
        return deepest(self.encoder_layers()), self.options.pooling

    def accepts_init(self) -> bool:
        return True

    def has_losses(self) -> bool:
        return True

    def steps(self) -> int:
        return self.options.iterations

    def min_style_side(self) -> int:
        """The shortest image side the deepest layer can use (one feature pixel)."""
        return 2 ** pools_before(deepest(self.encoder_layers()))

    def min_content_side(self) -> int:
        return self.min_style_side()

    def check_files(self) -> None:
        options = self.options
        if options.init not in ("content", "noise"):
            from brushwork.image import probe_image

            probe_image(options.init, what="the init image")

    def extra_bytes(self, height: int, width: int) -> int:
        """Memory the method's loss needs beyond the encoder's pass (override if large)."""
        return 0

    def plan(
        self,
        height: int,
        width: int,
        style_sizes: Sequence[tuple[int, int]],
        device: torch.device | None = None,
        limit: int | None = None,
    ) -> MemoryPlan:
        """Fit an H×W run into ``limit``: plain if it fits, else with activation
        checkpointing, then a shorter L-BFGS history; raise with the estimate if nothing
        fits. The styles' encoder passes (one at a time, before the optimization) count
        too."""
        options = self.options
        allowed, source = memory_limit(limit, device)
        last = deepest(self.encoder_layers())
        elements = feature_elements(height, width, last)
        vector = 3 * height * width * 4
        lbfgs = options.optimizer == "lbfgs"
        preferred = min(100, max(10, LBFGS_HISTORY_BUDGET // (2 * vector))) if lbfgs else 0
        style_pass = (
            max(
                (inference_peak_elements(h, w, last, self.style_layers()) for h, w in style_sizes),
                default=0,
            )
            * 4
        )
        extra = self.extra_bytes(height, width)

        def estimate(checkpointing: bool, history: int) -> int:
            run = ACTIVATION_BYTES[checkpointing] * elements + extra + (2 * history + 6) * vector
            return int(FIXED_BYTES + max(run, style_pass))

        for checkpointing, history in (
            (False, preferred),
            (True, preferred),
            (True, min(preferred, 5)),
        ):
            if estimate(checkpointing, history) <= allowed:
                return MemoryPlan(estimate(checkpointing, history), checkpointing, history)
        smallest = estimate(True, min(preferred, 5))
        raise BrushworkError(
            f"a {width}x{height} {self.name} run needs about {smallest / GIB:.1f} GiB even with "
            f"activation checkpointing, over {source} ({allowed / GIB:.1f} GiB); use a smaller "
            "--size or --style-scale, or a machine with more memory"
        )

    def encode_prepared(self, targets: list[StyleTarget]) -> Any:
        """:meth:`prepare_styles` on the encoder, without gradients."""
        encoder = self.get_encoder()
        with torch.no_grad(), self.precision.autocast():
            return self.prepare_styles(encoder, targets)

    def stylize(
        self,
        content: Tensor,
        style: PreparedStyle | Tensor | StyleTarget | Sequence[StyleTarget],
        *,
        init: Tensor | None = None,
        plan: MemoryPlan | None = None,
        iterations: int | None = None,
        extra_losses: Sequence[tuple[str, LossTerm]] = (),
        events: Any = None,
        progress: StepCounter | None = None,
    ) -> StylizeResult:
        from brushwork import events as ev

        options = self.options
        start = time.perf_counter()
        check_content(content, self.min_content_side(), self.name)
        prepared = self._prepared(style)
        prepared.check_content(content)
        if plan is None:
            height, width = content.shape[-2:]
            plan = self.plan(height, width, [], content.device)
        if iterations is None:
            iterations = options.iterations
        elif isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise BrushworkError(f"iterations must be an integer >= 1, not {iterations}")
        encoder = self.get_encoder()
        if init is None:
            init = initial_image(content, options.init, options.seed)
        elif init.shape != content.shape:
            raise BrushworkError(
                f"start image has shape {tuple(init.shape)}, the content {tuple(content.shape)}"
            )
        counter = progress or StepCounter(self.name)
        with ev.bound(events):
            loss: Any = self.build_loss(encoder, content, prepared, plan.checkpointing)
            if extra_losses:
                loss = WithExtraTerms(loss, extra_losses)
            precision = self.precision

            def objective(image: Tensor) -> dict[str, Tensor]:
                with precision.autocast():
                    return loss(image)

            result = optimize_image(
                init.to(content),
                objective,
                iterations=iterations,
                optimizer=options.optimizer,
                learning_rate=options.learning_rate,
                history_size=max(plan.history_size, 1),
                stage=counter.stage,
                step_offset=counter.offset,
                total=counter.total,
                scale=counter.scale,
            )
        return StylizeResult(
            result.image.clamp(0, 1),
            result.losses,
            time.perf_counter() - start,
            {
                "steps": result.steps,
                "evaluations": result.evaluations,
                "history": result.history,
                **plan.describe(),
                "precision": precision.name,
                **getattr(loss, "details", {}),
            },
        )
