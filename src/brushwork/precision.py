"""Where and in what precision the networks run: one policy for stylization, optimization
and training (:func:`resolve_device`, :func:`resolve_precision`).

``auto`` (the default) picks bfloat16 where the hardware has units for it and float32
elsewhere:

* CPU: bfloat16 when ``/proc/cpuinfo`` lists ``amx_bf16`` (Intel AMX) or ``avx512_bf16``
  (Intel Cooper Lake and later, AMD Zen 4 and later). A flag check, no timing run. Measured
  with torch 2.13 on 2 threads (``benchmarks/bench_precision.py``): a 256-channel 3×3
  convolution runs 2.1× faster in bfloat16 on an AMD EPYC with AVX-512 BF16, about 4× on a
  Xeon with AMX; on CPUs with neither (AVX2 only) bfloat16 is emulated and slower than
  float32.
* CUDA: bfloat16 when the GPU supports it (Ampere and later), else float16.

What runs in the low precision: the convolutions of encoders and decoders, forward and
backward, through :func:`torch.autocast` (weights stay float32: the "master" copy training
updates). What stays float32 (the code casts explicitly, autocast or not): the image being
optimized and the optimizer's state, loss reductions, Gram matrices, means, deviations and
covariances (:mod:`brushwork.ops`), WCT's eigendecompositions (float64), colour conversions,
depth alignment.

``auto`` means ``$BRUSHWORK_PRECISION`` when that is set (the test suite sets float32, so
that results do not depend on the machine).

``--precision bfloat16`` on a CPU without bfloat16 units is allowed with a warning (it works,
slowly: useful to check a result before moving to a machine that has them); ``float16`` on a
CPU is refused (PyTorch's CPU kernels for it are incomplete and slow).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
PRECISION_ENV = "BRUSHWORK_PRECISION"
"""Set to a precision to make it what ``auto`` means (e.g. float32 for bit-reproducible
runs across machines; the test suite does)."""
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else the platform's."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_units() -> list[str]:
    """Which bfloat16 units this CPU has (``amx_bf16``, ``avx512_bf16``), if any."""
    flags = cpu_flags()
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


@dataclass(frozen=True)
class Precision:
    """A resolved precision for one device: ``name`` is float32, bfloat16 or float16;
    ``reason`` says why it was chosen (for ``--json`` and the progress line)."""

    name: str
    device_type: str
    reason: str = ""

    @property
    def dtype(self) -> Any:
        import torch

        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            self.name
        ]

    @property
    def reduced(self) -> bool:
        return self.name != "float32"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context the networks run in: autocast to :attr:`dtype`, or nothing."""
        if not self.reduced:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype)

    def describe(self) -> dict[str, str]:
        return {"precision": self.name, "reason": self.reason}

    def __str__(self) -> str:
        return self.name


FLOAT32 = Precision("float32", "cpu", "requested")


def resolve_device(device: Any = "auto") -> Any:
    """``"auto"`` → CUDA when available, else the CPU; anything else is checked."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise BrushworkError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BrushworkError(f"device {device!r} requested but CUDA is not available")
    if resolved.type not in ("cpu", "cuda"):
        raise BrushworkError(f"device {device!r} is not supported; use auto, cpu or cuda")
    return resolved


def check_precision(requested: str) -> str:
    """The name, checked: one of :data:`PRECISIONS`."""
    if requested not in PRECISIONS:
        raise BrushworkError(
            f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}"
        )
    return requested


def resolve_precision(requested: str | Precision, device: Any = "cpu") -> Precision:
    """``requested`` (auto, float32, bfloat16, float16) for ``device`` (a torch.device or
    its name) → :class:`Precision`. Raises :class:`BrushworkError` for an unknown name and
    for float16 on a CPU; warns (through :mod:`brushwork.events`) for bfloat16 on a CPU
    without bfloat16 units."""
    if isinstance(requested, Precision):
        return requested
    check_precision(requested)
    if requested == "auto" and (forced := os.environ.get(PRECISION_ENV, "").strip()):
        if forced not in PRECISIONS:
            raise BrushworkError(
                f"{PRECISION_ENV} is {forced!r}; use one of {', '.join(PRECISIONS)}"
            )
        requested = forced
    device_type = getattr(device, "type", None) or str(device).split(":")[0]
    if device_type == "cuda":
        import torch

        bf16 = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return Precision(
                "bfloat16" if bf16 else "float16",
                "cuda",
                "GPU supports bfloat16" if bf16 else "GPU without bfloat16",
            )
        if requested == "bfloat16" and not bf16:
            raise BrushworkError(
                "this GPU does not support bfloat16; use --precision float16 or float32"
            )
        return Precision(requested, "cuda", "requested")
    if device_type != "cpu":
        if requested in ("auto", "float32"):
            return Precision("float32", device_type, f"{device_type}: float32 only")
        raise BrushworkError(f"precision {requested} is not supported on {device_type}")
    units = cpu_bf16_units()
    if requested == "auto":
        if units:
            return Precision("bfloat16", "cpu", f"CPU has {' and '.join(units)}")
        return Precision("float32", "cpu", "CPU has no bfloat16 units")
    if requested == "float16":
        raise BrushworkError(
            "float16 runs only on CUDA GPUs; on a CPU use --precision bfloat16 or float32"
        )
    if requested == "bfloat16" and not units:
        from brushwork import events

        events.warn(
            "this CPU has no bfloat16 units (no amx_bf16 or avx512_bf16 flag): "
            "bfloat16 is emulated and slower than float32 here"
        )
        return Precision("bfloat16", "cpu", "requested (CPU without bfloat16 units)")
    return Precision(requested, "cpu", "requested")
