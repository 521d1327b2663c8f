"""Checkpoints of trained networks: one safetensors file with the weights and, in its
metadata, what the file is and how it was trained.

Metadata (all strings, as safetensors requires):

* ``format``: ``"brushwork"``, and ``version``;
* ``method``: the method the network belongs to (``"adain"``, ...);
* ``encoder``: the encoder it was trained against, e.g. ``"vgg19:relu4_1:512"`` (network,
  deepest layer, channels there: a decoder only fits the encoder it was trained on);
* ``config``: the training configuration as JSON; ``step``: optimizer steps done.

A training checkpoint also holds the optimizer's state (tensors under ``optimizer/``) so
that ``--resume`` continues exactly; a shipped model holds only the network, in float16.
Files are written atomically: a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from brushwork.errors import BrushworkError
from brushwork.outputs import write_atomically

FORMAT = "brushwork"
VERSION = "1"


@dataclass
class Checkpoint:
    """A network's tensors with what the file says about them."""

    method: str
    encoder: str
    tensors: dict[str, Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    optimizer: dict[str, Tensor] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    checkpoint: Checkpoint,
    *,
    dtype: torch.dtype | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``checkpoint`` to ``path`` atomically; ``dtype`` converts the network's floating
    tensors (e.g. float16 for a shipped model); ``metadata`` adds keys of its own (a model's
    parts and style: :func:`brushwork.models.parts.save_model`), never one of the above."""
    tensors = {}
    for name, tensor in checkpoint.tensors.items():
        tensor = tensor.detach().cpu()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[f"model/{name}"] = tensor.contiguous()
    for name, tensor in checkpoint.optimizer.items():
        tensors[f"optimizer/{name}"] = tensor.detach().cpu().contiguous()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "method": checkpoint.method,
        "encoder": checkpoint.encoder,
        "config": json.dumps(checkpoint.config, sort_keys=True),
        "step": str(checkpoint.step),
    }
    clashes = sorted(set(header) & set(metadata or {}))
    if clashes:
        raise BrushworkError(f"checkpoint metadata may not set {', '.join(clashes)}")
    header.update(metadata or {})
    path = Path(path)
    write_atomically(path, lambda tmp: save_file(tensors, tmp, header))
    return path


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return f.metadata() or {}


def load_checkpoint(
    path: str | Path, *, method: str, encoder: str | None = None, what: str = "checkpoint"
) -> Checkpoint:
    """Read a checkpoint, refusing with one clear line a file that is missing, unreadable
    (truncated, not safetensors), not brushwork's, of another method, or trained against
    another encoder than ``encoder``."""
    path = Path(path)
    if not path.exists():
        raise BrushworkError(f"{what} {path} does not exist")
    if not path.is_file():
        raise BrushworkError(f"{what} {path} is not a file")
    try:
        metadata = _metadata(path)
        stored = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BrushworkError(
            f"{what} {path} is not a readable safetensors file (truncated or corrupt?): {reason}"
        ) from None
    if metadata.get("format") != FORMAT:
        raise BrushworkError(f"{what} {path} is not a brushwork checkpoint (no brushwork metadata)")
    if metadata.get("method") != method:
        raise BrushworkError(
            f"{what} {path} is a {metadata.get('method')!r} checkpoint, not {method!r}"
        )
    if encoder is not None and metadata.get("encoder") != encoder:
        raise BrushworkError(
            f"{what} {path} was trained on encoder {metadata.get('encoder')!r}; "
            f"this run uses {encoder!r}"
        )
    try:
        config = json.loads(metadata.get("config", "{}"))
        step = int(metadata.get("step", "0"))
    except ValueError:
        raise BrushworkError(f"{what} {path} has unreadable metadata") from None
    return Checkpoint(
        method=method,
        encoder=metadata.get("encoder", ""),
        tensors={k[6:]: v for k, v in stored.items() if k.startswith("model/")},
        config=config,
        step=step,
        optimizer={k[10:]: v for k, v in stored.items() if k.startswith("optimizer/")},
    )


def optimizer_state(
    optimizer: torch.optim.Optimizer, names: Mapping[int, str]
) -> dict[str, Tensor]:
    """An optimizer's per-parameter state as flat named tensors (``names`` maps a
    parameter's index in the optimizer to its name); the step count is a tensor too."""
    flat: dict[str, Tensor] = {}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            flat[f"{names[index]}.{key}"] = torch.as_tensor(value).clone()
    return flat


def restore_optimizer(
    optimizer: torch.optim.Optimizer, flat: Mapping[str, Tensor], names: Mapping[int, str]
) -> None:
    """Inverse of :func:`optimizer_state`; hyper-parameters come from ``optimizer``."""
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, Tensor]] = {}
    for index, name in names.items():
        entries = {
            key[len(name) + 1 :]: value
            for key, value in flat.items()
            if key.startswith(name + ".") and "." not in key[len(name) + 1 :]
        }
        if entries:
            state[index] = entries
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)


def export_model(checkpoint: str | Path, output: str | Path, *, force: bool = False) -> Path:
    """A training checkpoint (of any method) → the float16 network alone, as a finished
    run's ``model.safetensors``: for shipping the last checkpoint of a run that stopped at
    its time limit."""
    from brushwork.outputs import OutputPlan

    path = Path(checkpoint)
    if not path.is_file():
        raise BrushworkError(f"checkpoint {path} does not exist")
    try:
        method = _metadata(path).get("method", "")
    except (SafetensorError, OSError, ValueError, RuntimeError):
        method = ""  # load_checkpoint says what is wrong with the file
    saved = load_checkpoint(path, method=method)
    plan = OutputPlan(force, inputs=[path])
    target = plan.add(output, extensions=(".safetensors",), what="model", flag="output")
    return save_checkpoint(
        target,
        Checkpoint(saved.method, saved.encoder, saved.tensors, saved.config, saved.step),
        dtype=torch.float16,
    )
