"""Image optimization: minimize a loss over the pixels of an image, one step at a time.

:func:`optimize_image` drives L-BFGS (default; best quality per iteration) or Adam (less
memory, steadier on large images) and reports every step to a callback as an
:class:`Iterate`, which the progress bar, periodic saves and other front ends consume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from brushwork.errors import BrushworkError

LossFunction = Callable[[Tensor], dict[str, Tensor]]
"""Maps the image being optimized to named loss terms; the term ``"total"`` is minimized."""


@dataclass
class Iterate:
    """One optimization step: its number (1-based), loss terms before the step, the image
    after it (detached; do not modify), and seconds since the start."""

    step: int
    losses: dict[str, float]
    image: Tensor
    seconds: float


@dataclass
class OptimizationResult:
    image: Tensor
    losses: dict[str, float]
    steps: int
    evaluations: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def optimize_image(
    image: Tensor,
    loss_fn: LossFunction,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    learning_rate: float | None = None,
    history_size: int = 100,
    callbacks: list[Callable[[Iterate], None]] | None = None,
) -> OptimizationResult:
    """Minimize ``loss_fn(x)["total"]`` over the pixels x, starting from ``image``.

    L-BFGS runs one iteration per step (one loss evaluation, no line search, by default a
    history of 100 steps: 2·100 image-sized vectors), like Johnson's neural-style; its
    default learning rate is 1. Adam's default is 0.02
    (in units of the [0, 1] image). Raises :class:`BrushworkError` if the loss turns NaN.
    """
    if iterations < 1:
        raise BrushworkError(f"iterations must be at least 1, not {iterations}")
    x = image.detach().clone().contiguous().requires_grad_(True)
    # torch's L-BFGS flattens gradients with .view(-1); conv backward may return them in
    # another memory layout.
    x.register_hook(lambda grad: grad.contiguous())
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=learning_rate or 1.0, max_iter=1, history_size=history_size,
            tolerance_grad=0.0, tolerance_change=0.0,
        )
    elif optimizer == "adam":
        opt = torch.optim.Adam([x], lr=learning_rate or 0.02)
    else:
        raise BrushworkError(f"optimizer must be 'lbfgs' or 'adam', not {optimizer!r}")

    evaluations = 0
    terms: dict[str, Tensor] = {}

    def closure() -> Tensor:
        nonlocal evaluations, terms
        evaluations += 1
        opt.zero_grad(set_to_none=True)
        terms = loss_fn(x)
        terms["total"].backward()
        return terms["total"]

    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(1, iterations + 1):
        opt.step(closure)
        losses = {name: float(value.detach()) for name, value in terms.items()}
        if not math.isfinite(losses["total"]):
            raise BrushworkError(
                f"optimization diverged at step {step} (loss is {losses['total']}); "
                "lower the learning rate or the loss weights"
            )
        history.append(losses)
        record = Iterate(step, losses, x.detach(), time.perf_counter() - start)
        for callback in callbacks or ():
            callback(record)
    with torch.no_grad():
        final = {name: float(value) for name, value in loss_fn(x.detach()).items()}
    return OptimizationResult(
        x.detach(), final, iterations, evaluations, time.perf_counter() - start, history
    )
