"""Image optimization: minimize a loss over the pixels of an image, one step at a time.

:func:`optimize_image` drives L-BFGS (default; best quality per iteration) or Adam (less
memory, steadier on large images) and reports every step to the event stream
(:class:`brushwork.events.Progress`, with the image as its preview), which progress bars,
periodic saves, animations and the web page consume.

Divergence is caught for both optimizers: a loss or an image that is no longer finite stops
the run with one clear error, never a saturated image written as a result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from brushwork import events as ev
from brushwork.errors import BrushworkError

PIXEL_BOUND = 100.0
"""Pixels of the [0, 1] image that leave [-PIXEL_BOUND, 1 + PIXEL_BOUND] mean the run
diverged: no loss of an image is minimized that far out."""

LossFunction = Callable[[Tensor], dict[str, Tensor]]
"""Maps the image being optimized to named loss terms; the term ``"total"`` is minimized."""


@dataclass
class OptimizationResult:
    image: Tensor
    losses: dict[str, float]
    steps: int
    evaluations: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def _diverged(step: int, what: str) -> BrushworkError:
    return BrushworkError(
        f"optimization diverged at step {step} ({what}); lower the loss "
        "weights or the learning rate"
    )


def optimize_image(
    image: Tensor,
    loss_fn: LossFunction,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    learning_rate: float | None = None,
    history_size: int = 100,
    stage: str = "optimize",
    step_offset: int = 0,
    total: int | None = None,
    scale: int | None = None,
) -> OptimizationResult:
    """Minimize ``loss_fn(x)["total"]`` over the pixels x, starting from ``image``.

    L-BFGS runs one iteration per step (one loss evaluation, no line search, by default a
    history of 100 steps: 2·100 image-sized vectors), like Johnson's neural-style; its
    default learning rate is 1. Adam's default is 0.02 (in units of the [0, 1] image). Each
    step is emitted as a :class:`~brushwork.events.Progress` of ``stage`` numbered from
    ``step_offset`` + 1. Raises :class:`BrushworkError` if the loss or the image stops
    being finite.
    """
    if iterations < 1:
        raise BrushworkError(f"iterations must be at least 1, not {iterations}")
    x = image.detach().float().clone().contiguous().requires_grad_(True)
    # torch's L-BFGS flattens gradients with .view(-1); conv backward may return them in
    # another memory layout.
    x.register_hook(lambda grad: grad.contiguous())
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [x],
            lr=learning_rate or 1.0,
            max_iter=1,
            history_size=history_size,
            tolerance_grad=0.0,
            tolerance_change=0.0,
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
    total = total or step_offset + iterations
    for step in range(1, iterations + 1):
        opt.step(closure)
        losses = {name: float(value.detach()) for name, value in terms.items()}
        if not math.isfinite(losses["total"]):
            raise _diverged(step, f"the loss is {losses['total']}")
        if not bool(torch.isfinite(x).all()):
            raise _diverged(step, "the image is no longer finite")
        if float(x.detach().max()) > 1 + PIXEL_BOUND or float(x.detach().min()) < -PIXEL_BOUND:
            raise _diverged(step, f"pixel values left the image's range by over {PIXEL_BOUND:g}")
        history.append(losses)
        ev.emit(
            ev.Progress(
                stage,
                step_offset + step,
                total,
                losses,
                time.perf_counter() - start,
                scale,
                x.detach(),
            )
        )
    with torch.no_grad():
        final = {name: float(value) for name, value in loss_fn(x.detach()).items()}
    if not math.isfinite(final["total"]):
        raise _diverged(iterations, f"the final loss is {final['total']}")
    return OptimizationResult(
        x.detach(), final, iterations, evaluations, time.perf_counter() - start, history
    )
