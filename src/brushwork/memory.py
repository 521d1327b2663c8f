"""Memory limits, checked before any work: every front end and method plans a run from the
*requested* sizes (image headers, not decoded pixels) and refuses, with its estimate, a run
that cannot fit, before anything large is decoded, resized or allocated."""

from __future__ import annotations

import math
import os
from typing import Any

from brushwork.errors import BrushworkError

GIB = 2**30
MIB = 2**20
MAX_SIDE = 65_536
"""No image side brushwork makes may exceed this (no codec writes larger images, and an
encoder pass at that size needs terabytes)."""


def available_memory(device: Any = None) -> int:
    """Bytes that can be allocated now: free GPU memory, or the system's MemAvailable."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_limit(limit: int | None, device: Any = None) -> tuple[int, str]:
    """(bytes a run may use, how to name that limit in an error): ``limit``, or 80 % of what
    is available."""
    if limit:
        return limit, "the memory limit"
    return int(0.8 * available_memory(device)), "80 % of the available memory"


def check_limit(limit: Any) -> int | None:
    """A ``max_memory`` value, checked: None or a positive number of bytes."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise BrushworkError(f"max memory must be a positive number of bytes, not {limit}")
    return limit


def require(
    need: float,
    what: str,
    limit: int | None = None,
    device: Any = None,
    hint: str = "use a smaller --size, or a machine with more memory",
) -> None:
    """Refuse ``what`` (e.g. "a 4000x3000 gatys run") if it needs more than the limit."""
    allowed, source = memory_limit(limit, device)
    if not math.isfinite(need) or need > allowed:
        amount = "an unbounded amount" if not math.isfinite(need) else f"about {need / GIB:.1f} GiB"
        raise BrushworkError(
            f"{what} needs {amount}, over {source} ({allowed / GIB:.1f} GiB); {hint}"
        )


def check_side(width: int, height: int, what: str, hint: str = "--size") -> None:
    """Refuse an image size no codec or network here can take, before it is made."""
    if min(width, height) < 1:
        raise BrushworkError(f"{what} would be {width}x{height} px; use a larger {hint}")
    if max(width, height) > MAX_SIDE:
        raise BrushworkError(
            f"{what} would be {width}x{height} px, over the {MAX_SIDE} px "
            f"a side brushwork handles; use a smaller {hint}"
        )


TRAINING_FIXED_BYTES = 512 * MIB
"""Interpreter, torch, the encoder and the network with Adam's state: a training run's memory
before its first batch."""


def plan_training(
    batch: int,
    crop: tuple[int, int],
    bytes_per_pixel: float,
    what: str,
    *,
    data_bytes: float = 0,
    limit: int | None = None,
    device: Any = None,
    size_flags: str = "--crop-size",
) -> int:
    """Peak memory of a training run: ``bytes_per_pixel`` (one step's forward and backward
    passes and Adam's update, per pixel of a batch's crops) × ``batch`` × the (H, W)
    ``crop``, plus ``data_bytes`` (batches the loaders queue, images being resized) and
    fixed costs; a run over the limit is refused with the estimate before anything is
    allocated (``size_flags`` names the options that size crops and data)."""
    height, width = crop
    check_side(width, height, f"the {what} crops", size_flags)
    need = TRAINING_FIXED_BYTES + bytes_per_pixel * batch * height * width + data_bytes
    require(
        need,
        f"{what} with batches of {batch} crops of {width}x{height} px",
        limit,
        device,
        f"use a smaller --batch-size, {size_flags}, or a machine with more memory",
    )
    return int(need)


def parse_bytes(text: str) -> int:
    """``8G``, ``512M``, ``1.5GiB`` or a number of bytes → bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise BrushworkError(f"expected a size like 8G or 512M, got {text!r}") from None
    if not (number > 0 and math.isfinite(number)) or number * units[unit] < 1:
        raise BrushworkError(f"memory size must be positive, got {text!r}")
    return int(number * units[unit])
