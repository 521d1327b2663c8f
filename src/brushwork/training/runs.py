"""What every training run shares: its folder, its loss log and curve, and stopping cleanly.

A run lives in one folder: ``checkpoint.safetensors`` (written atomically every few steps
and when the run stops or is interrupted), ``losses.csv`` (one row per logged step: step,
learning rate, the named losses, seconds since the run began) and ``losses.png``.

A checkpoint holds the state of each of the run's optimizers under its name:
``NAME/PARAMETER.KEY`` (Adam's moments and step count per parameter) and ``NAME/lr`` (the
learning rate of each parameter group, written even before the optimizer's first step, so
that a checkpoint always says which optimizers it has). A checkpoint from before named
optimizers holds one optimizer's state without a name; it resumes under
:data:`DEFAULT_OPTIMIZER`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import os
import signal
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from brushwork.checkpoints import optimizer_state, restore_optimizer
from brushwork.errors import BrushworkError

CHECKPOINT = "checkpoint.safetensors"  # weights, optimizer state, configuration, step
MODEL = "model.safetensors"  # the finished network alone, float16
LOG = "losses.csv"
CURVE = "losses.png"
_FIXED_COLUMNS = ("step", "lr", "seconds")
DEFAULT_OPTIMIZER = "network"
"""The name of the one Adam an objective has unless it names its own optimizers."""
RUN_FILES = (CHECKPOINT, MODEL, LOG, CURVE, "split.csv")
"""Every file a run writes in its folder (``split.csv``: the depth trainer's split); a new
run refuses a folder holding any of them."""


@dataclass
class Step:
    """One logged training step."""

    step: int
    learning_rate: float
    losses: dict[str, float]
    seconds: float


def check_run_folder(out: Path, inputs: Iterable[Path], resume: bool) -> None:
    """Check, before any data or weights load and without creating anything, that ``out``
    can hold this run: it is not, does not contain and does not lie inside anything the run
    reads (``inputs``: a data folder is read recursively, so a run inside it would feed its
    own files to the next run), no earlier run is overwritten without ``resume``, there is
    a checkpoint to resume, and an existing folder can be written."""
    from brushwork.outputs import OutputPlan, is_within

    inputs = list(inputs)
    OutputPlan(inputs=inputs).add_folder(out, flag="--out", replaced=False)
    for source in inputs:
        if source.is_dir() and is_within(out, source):
            raise BrushworkError(
                f"--out {out} lies inside the data folder {source}, whose images the run "
                "reads (its files would become training data); choose a folder outside it"
            )
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not resume:
        raise BrushworkError(
            f"{out} already holds a training run; use --resume to continue "
            "it or choose another --out"
        )
    if resume and not checkpoint.exists():
        raise BrushworkError(f"nothing to resume: {checkpoint} does not exist")
    clashes = [name for name in RUN_FILES if not resume and (out / name).exists()]
    if clashes:
        raise BrushworkError(
            f"--out {out} holds a {clashes[0]} that a run would replace; choose a new or "
            "empty folder"
        )
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise BrushworkError(f"cannot write the run folder {out}: permission denied")


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the run folder for one run while it trains: an exclusive lock on the folder itself
    (``flock``, released when the process ends however it ends; nothing is written), so that
    a second ``--resume`` of the same folder is refused instead of interleaving its
    checkpoints and log with the first's."""
    descriptor = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BrushworkError(
                f"{out} is in use by another training run; wait for it to stop (Ctrl-C saves "
                "a checkpoint) or choose another --out"
            ) from None
        yield
    finally:
        os.close(descriptor)


def make_run_folder(out: Path) -> list[Path]:
    """Create the run folder (and its missing parents) and check that it can be written;
    the folders made, outermost first (for :func:`remove_empty`)."""
    absolute = out.absolute()
    made = [p for p in reversed((absolute, *absolute.parents)) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        remove_empty(made)
        raise BrushworkError(
            f"cannot create the run folder {out}: {error.strerror or error}"
        ) from None
    return made


def remove_empty(folders: Sequence[Path]) -> None:
    """Remove the folders a run made (outermost first), innermost first, while they are
    empty: a run that saved nothing leaves nothing behind."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def read_log(path: Path) -> list[Step]:
    """The steps of a ``losses.csv`` (empty when there is none); unreadable rows are left
    out, and so are empty cells (a loss a step did not compute)."""
    if not path.is_file():
        return []
    steps = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                steps.append(
                    Step(
                        int(row["step"]),
                        float(row["lr"]),
                        {
                            k: float(v)
                            for k, v in row.items()
                            if k not in _FIXED_COLUMNS and k and v
                        },
                        float(row["seconds"]),
                    )
                )
            except (KeyError, ValueError, TypeError):
                continue
    return steps


def write_log(path: Path, steps: list[Step], names: Sequence[str]) -> None:
    """Write ``steps`` atomically, with a column for each of ``names``."""
    from brushwork.outputs import write_atomically

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "lr", *names, "seconds"])
            for s in steps:
                writer.writerow(
                    [
                        s.step,
                        f"{s.learning_rate:.6g}",
                        *(f"{s.losses[k]:.6g}" if k in s.losses else "" for k in names),
                        f"{s.seconds:.1f}",
                    ]
                )

    write_atomically(path, write)


def plot_log(path: Path, steps: list[Step], names: Sequence[str], title: str) -> None:
    """The curves of ``names`` as a PNG, log scale (needs matplotlib; skipped without it)."""
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brushwork.outputs import write_atomically

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name in names:
        points = [(s.step, s.losses[name]) for s in steps if name in s.losses]
        if points:
            ax.plot(
                *zip(*points, strict=True),
                label=name,
                linewidth=1,
                marker="o" if len(points) < 30 else None,
                markersize=3,
            )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted terms are unweighted here)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag the loop checks between steps, so an interrupted
    run saves a checkpoint of a whole step; a second signal stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def check_resumed_config(config: Any, stored: dict[str, Any], free: set[str], path: Path) -> None:
    """Refuse to resume a run whose configuration (a dataclass) differs from the one stored
    in its checkpoint, except in the ``free`` fields (the data may move between sessions;
    what is learned from it may not change). A field the checkpoint lacks was added later:
    its run had the value the configuration's ``trained_before`` gives, else the default."""
    kind = type(config)
    known = {f.name for f in dataclasses.fields(kind)}
    if unknown := sorted(set(stored) - known):
        raise BrushworkError(
            f"{path} has a configuration this brushwork does not know "
            f"({', '.join(unknown)}); it was written by another version"
        )
    before = kind(**{**getattr(kind, "trained_before", {}), **stored})

    def plain(value: Any) -> Any:  # JSON stores a tuple as a list
        return list(value) if isinstance(value, tuple) else value

    changed = [
        f.name
        for f in dataclasses.fields(kind)
        if f.name not in free and plain(getattr(before, f.name)) != plain(getattr(config, f.name))
    ]
    if changed:
        raise BrushworkError(
            "--resume with a different configuration: "
            + ", ".join(
                f"--{name.replace('_', '-')} {getattr(config, name)} (checkpoint: "
                f"{getattr(before, name)})"
                for name in changed
            )
        )


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Put a restored optimizer's state tensors (not its step counts) on ``device``."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def optimizer_states(
    optimizers: Mapping[str, torch.optim.Optimizer], names: Mapping[str, Mapping[int, str]]
) -> dict[str, Tensor]:
    """Every optimizer's state as flat tensors for a checkpoint, under its name (see the
    module's docstring); ``names[optimizer][index]`` names its parameters."""
    flat: dict[str, Tensor] = {}
    for name, optimizer in optimizers.items():
        for key, tensor in optimizer_state(optimizer, names[name]).items():
            flat[f"{name}/{key}"] = tensor
        rates = [group["lr"] for group in optimizer.param_groups]
        flat[f"{name}/lr"] = torch.tensor(rates, dtype=torch.float64)
    return flat


def restore_optimizers(
    optimizers: Mapping[str, torch.optim.Optimizer],
    names: Mapping[str, Mapping[int, str]],
    flat: Mapping[str, Tensor],
    path: Path,
) -> None:
    """Inverse of :func:`optimizer_states` (state without a name, from before named
    optimizers, belongs to :data:`DEFAULT_OPTIMIZER`); refuses in one line a checkpoint
    that lacks the state of one of ``optimizers`` or holds one they do not have."""
    states: dict[str, dict[str, Tensor]] = {}
    for key, tensor in flat.items():
        name, _, rest = key.rpartition("/")
        states.setdefault(name or DEFAULT_OPTIMIZER, {})[rest] = tensor
    held = ", ".join(sorted(states)) or "none"
    for name, optimizer in optimizers.items():
        state = states.pop(name, None)
        if not state:
            raise BrushworkError(
                f"cannot resume: {path} holds no state for the optimizer {name!r} (it holds: "
                f"{held}); it was written by another trainer or edited"
            )
        restore_optimizer(optimizer, state, names[name])
        if "lr" in state:
            for group, lr in zip(optimizer.param_groups, state["lr"].tolist(), strict=True):
                group["lr"] = lr
    if states:
        raise BrushworkError(
            f"cannot resume: {path} holds the state of optimizers this run does not have "
            f"({', '.join(sorted(states))}); it was written by another trainer"
        )
