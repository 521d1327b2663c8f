"""Training an AdaIN decoder (Huang & Belongie 2017, §6) and its variants.

Each step takes a batch of content crops c and style crops s, computes the AdaIN target
t = AdaIN(f(c), f(s)) at relu4_1, decodes it, g(t), and re-encodes the result::

    content = ‖f(g(t)) − t‖² / mean(t²)                                      (eq. 12)
    style   = Σ_{l in relu1_1..relu4_1} (‖μ(φ_l(g(t))) − μ(φ_l(s))‖² + ‖σ(…) − σ(…)‖²)
                                         / mean(μ(φ_l(s))² + σ(φ_l(s))²)    (eq. 13)
    total   = content_weight·content + style_weight·style
              + lap_weight·‖Λ(P(g(t))) − Λ(P(c))‖² / mean(Λ(P(c))²)      (Li et al. 2017)
              + depth_weight·SSI(D(g(t)), D(c))                          (depth variant)

Each term is a relative error (divided by its target's mean square, computed on the batch):
the paper used Gatys's VGG rescaled to unit mean activation per filter, brushwork the raw
Caffe VGG, whose relu4_1 activations are ~100× larger; relative errors make the paper's
weights (content 1, style 10) mean about the same here. Λ is the Laplacian of the image
average-pooled by ``lap_pool`` (P), D a monocular depth estimator
(:mod:`brushwork.depth`) and SSI its scale-and-shift-invariant loss. The encoder is
frozen; only the decoder learns (Adam, learning rate lr / (1 + lr_decay·step)).

A run lives in one folder: ``checkpoint.safetensors`` (decoder, optimizer state and the
configuration; written atomically every ``save_every`` steps and when the run stops or is
interrupted), ``losses.csv``, ``losses.png`` and, at the end, ``model.safetensors`` (the
decoder alone in float16, for ``--model``). ``resume=True`` continues from the checkpoint;
the log is cut back to it, so a killed run loses only the steps after its last checkpoint.

Several processes train together through :class:`torch.nn.parallel.DistributedDataParallel`
when launched by ``torchrun`` (gloo on CPUs, NCCL on GPUs); each reads its own random crops.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from brushwork.checkpoints import (
    Checkpoint,
    load_checkpoint,
    optimizer_state,
    restore_optimizer,
    save_checkpoint,
)
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods.adain import LAYER, STYLE_LAYERS, Decoder, encoder_id
from brushwork.ops import adain, mean_std, pooled_laplacian
from brushwork.training.data import Batches, list_images
from brushwork.training.runs import (
    CHECKPOINT,
    CURVE,
    LOG,
    MODEL,
    Step,
    StopRequest,
    check_resumed_config,
    move_optimizer_state,
    plot_log,
    prepare_run_folder,
    read_log,
    write_log,
)

LOSS_NAMES = ("content", "style", "laplacian", "depth", "total")


@dataclass
class TrainConfig:
    """Everything that defines an AdaIN training run; stored in every checkpoint."""

    content_dir: str
    style_dir: str
    iterations: int = 160_000
    batch_size: int = 8
    learning_rate: float = 1e-4
    lr_decay: float = 5e-5
    content_weight: float = 1.0
    style_weight: float = 10.0
    lap_weight: float = 0.0
    lap_pool: int = 4
    depth_weight: float = 0.0
    depth_model: str | None = None
    depth_size: int | None = 256  # the estimator's input side (None: the crop's own size)
    depth_normalize: str = "imagenet"  # its input normalization: brushwork.depth.NORMALIZATIONS
    load_size: int | None = 512
    crop_size: int = 256
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`BrushworkError` for a value no run could use."""
        for name in ("iterations", "batch_size", "crop_size", "lap_pool"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BrushworkError(f"{name.replace('_', '-')} must be an integer >= 1, "
                                     f"not {value}")
        if self.load_size is not None and (not isinstance(self.load_size, int)
                                           or self.load_size < self.crop_size):
            raise BrushworkError(f"load-size must be an integer >= crop-size "
                                 f"({self.crop_size}), not {self.load_size}")
        if self.crop_size < 16:
            raise BrushworkError(f"crop-size must be at least 16, not {self.crop_size}")
        for name in ("learning_rate", "lr_decay", "content_weight", "style_weight",
                     "lap_weight", "depth_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise BrushworkError(f"{name.replace('_', '-')} must be a finite number "
                                     f">= 0, not {value}")
        if self.learning_rate == 0:
            raise BrushworkError("learning-rate must be > 0")
        from brushwork.depth import NORMALIZATIONS

        if self.depth_size is not None and (not isinstance(self.depth_size, int)
                                            or isinstance(self.depth_size, bool)
                                            or self.depth_size < 1):
            raise BrushworkError(f"depth-size must be an integer >= 1, not {self.depth_size}")
        if self.depth_normalize not in NORMALIZATIONS:
            raise BrushworkError(f"depth-normalize must be one of {', '.join(NORMALIZATIONS)}, "
                                 f"not {self.depth_normalize!r}")


@dataclass
class RunOptions:
    """How a run executes; not part of what it learns."""

    out_dir: str = "runs/adain"
    resume: bool = False
    workers: int = 4
    save_every: int = 1000
    log_every: int = 50
    device: str = "auto"
    max_minutes: float | None = None
    cache_images: bool = False
    progress: bool = True


@dataclass
class TrainResult:
    """Where a run is and whether it reached its last iteration."""

    out_dir: Path
    step: int
    finished: bool
    interrupted: bool
    skipped: list[str]


def style_statistics(features: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
    return [mean_std(features[layer]) for layer in STYLE_LAYERS]


class AdaINLoss(nn.Module):
    """The training objective around a decoder (the module DDP wraps): batch of content and
    style crops → named loss terms, ``"total"`` included."""

    def __init__(self, decoder: Decoder, encoder: VGG19, config: TrainConfig,
                 depth: nn.Module | None = None) -> None:
        super().__init__()
        self.decoder = decoder
        self.encoder = encoder
        self.depth = depth
        self.config = config

    def forward(self, content: Tensor, style: Tensor) -> dict[str, Tensor]:
        config = self.config
        layers = list(STYLE_LAYERS)
        with torch.no_grad():
            content_f = self.encoder(content, [LAYER])[LAYER]
            style_stats = style_statistics(self.encoder(style, layers))
            target = adain(content_f, *style_stats[-1])
        output = self.decoder(target)
        output_f = self.encoder(output, layers)
        target = target.float()
        losses = {"content": F.mse_loss(output_f[LAYER].float(), target)
                  / target.pow(2).mean().clamp_min(1e-12)}
        style_loss = output.new_zeros((), dtype=torch.float32)
        for (mean, std), (target_mean, target_std) in zip(
            style_statistics(output_f), style_stats, strict=True
        ):
            scale = (target_mean.pow(2) + target_std.pow(2)).mean().clamp_min(1e-12)
            style_loss = style_loss + (F.mse_loss(mean, target_mean)
                                       + F.mse_loss(std, target_std)) / scale
        losses["style"] = style_loss
        total = config.content_weight * losses["content"] + config.style_weight * style_loss
        if config.lap_weight > 0:
            with torch.no_grad():
                lap_target = pooled_laplacian(content.float(), config.lap_pool)
            lap = F.mse_loss(pooled_laplacian(output.float(), config.lap_pool), lap_target)
            losses["laplacian"] = lap / lap_target.pow(2).mean().clamp_min(1e-12)
            total = total + config.lap_weight * losses["laplacian"]
        if config.depth_weight > 0:
            assert self.depth is not None
            from brushwork.losses import scale_shift_invariant_loss

            with torch.no_grad():
                depth_target = self.depth(content.float())
            losses["depth"] = scale_shift_invariant_loss(self.depth(output.float()),
                                                         depth_target)
            total = total + config.depth_weight * losses["depth"]
        losses["total"] = total
        return losses


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
    from brushwork.api import resolve_device

    device = resolve_device(requested)
    if device.type == "cuda" and dist.is_initialized():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return device


def _parameter_names(decoder: nn.Module) -> dict[int, str]:
    return {i: name for i, (name, _) in enumerate(decoder.named_parameters())}


def train(config: TrainConfig, run: RunOptions | None = None, *,
          encoder: VGG19 | None = None, depth: nn.Module | None = None,
          callbacks: list[Callable[[Step], None]] | None = None) -> TrainResult:
    """Train (or resume) an AdaIN decoder; returns where the run stands. ``encoder`` defaults to
    the pretrained VGG-19; ``depth`` to the model named by ``config.depth_model``."""
    run = run or RunOptions()
    config.validate()
    for name in ("save_every", "log_every", "workers"):
        value = getattr(run, name)
        if not isinstance(value, int) or value < (0 if name == "workers" else 1):
            raise BrushworkError(f"{name.replace('_', '-')} must be an integer >= "
                                 f"{0 if name == 'workers' else 1}, not {value}")
    content_files = list_images(config.content_dir, "content")
    style_files = list_images(config.style_dir, "style")
    out = Path(run.out_dir)
    checkpoint_path = out / CHECKPOINT
    prepare_run_folder(out, checkpoint_path, run.resume)

    rank, world = _distributed()
    device = _device(run.device, rank)
    if depth is None and config.depth_weight > 0:  # first: a bad file fails before VGG loads
        from brushwork.depth import NORMALIZATIONS, load_depth_model

        mean, std = NORMALIZATIONS[config.depth_normalize]
        depth = load_depth_model(config.depth_model, input_size=config.depth_size,
                                 mean=mean, std=std)
    if encoder is None:
        from brushwork.api import cached_vgg19

        encoder = cached_vgg19(LAYER, "max", "cpu")
        if device.type != "cpu":  # leave the shared CPU copy as it is
            encoder = copy.deepcopy(encoder)
    encoder = encoder.to(device).requires_grad_(False).eval()
    if depth is not None:
        depth = depth.to(device).requires_grad_(False).eval()

    torch.manual_seed(config.seed)
    decoder = Decoder(width=encoder.out_channels[LAYER] / 512)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=config.learning_rate)
    names = _parameter_names(decoder)
    start_step = 0
    if run.resume:
        saved = load_checkpoint(checkpoint_path, method="adain", encoder=encoder_id(encoder))
        free = {"iterations", "content_dir", "style_dir", "depth_model"}
        check_resumed_config(config, saved.config, free, checkpoint_path)
        decoder.load_state_dict(saved.tensors)
        restore_optimizer(optimizer, saved.optimizer, names)
        start_step = saved.step
    decoder.to(device)
    move_optimizer_state(optimizer, device)
    if device.type == "cuda":
        encoder.to(memory_format=torch.channels_last)
        decoder.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    model: nn.Module = AdaINLoss(decoder, encoder, config, depth)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    log_path = out / LOG
    history = [s for s in read_log(log_path) if s.step <= start_step] if rank == 0 else []

    def save(step: int) -> None:
        if rank != 0:
            return
        # The log first: a run killed between the two writes then has a log ahead of its
        # checkpoint, which --resume cuts back, rather than one with a gap.
        write_log(log_path, history, LOSS_NAMES)
        save_checkpoint(checkpoint_path, Checkpoint(
            "adain", encoder_id(encoder), decoder.state_dict(), dataclasses.asdict(config),
            step, optimizer_state(optimizer, names)))
        plot_log(out / CURVE, history, LOSS_NAMES, f"AdaIN training: {out.name}")

    seed = config.seed + 1000 * rank + start_step
    loader_args = {"batch_size": config.batch_size, "load_size": config.load_size,
                   "crop_size": config.crop_size, "workers": run.workers,
                   "cache": run.cache_images}
    contents = Batches(content_files, seed=seed, what="content", **loader_args)
    styles = Batches(style_files, seed=seed + 1, what="style", **loader_args)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    started = time.perf_counter()
    elapsed_before = history[-1].seconds if history else 0.0
    step = start_step
    bar = tqdm(total=config.iterations, initial=step, desc="train adain", unit="step",
               disable=True if (not run.progress or rank != 0) else None, dynamic_ncols=True)
    running: dict[str, list[float]] = {}
    try:
        with StopRequest() as stop:
            while step < config.iterations:
                if _should_stop(stop.requested or (
                        run.max_minutes is not None
                        and time.perf_counter() - started > 60 * run.max_minutes), world):
                    break
                lr = config.learning_rate / (1 + config.lr_decay * step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                content = _to(next(contents), device)
                style = _to(next(styles), device)
                with autocast:
                    losses = model(content, style)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                optimizer.step()
                step += 1
                bar.update(1)
                for name, value in losses.items():
                    running.setdefault(name, []).append(value.detach().float())
                if step % run.log_every == 0 or step == config.iterations:
                    means = {k: torch.stack(v).mean() for k, v in running.items()}
                    if world > 1:  # log the mean over all processes
                        names_order = sorted(means)
                        stacked = torch.stack([means[k] for k in names_order])
                        dist.all_reduce(stacked)
                        means = dict(zip(names_order, stacked / world, strict=True))
                    record = Step(step, lr, {k: float(v) for k, v in means.items()},
                                  elapsed_before + time.perf_counter() - started)
                    running.clear()
                    if not math.isfinite(record.losses["total"]):
                        raise BrushworkError(f"training diverged at step {step} (loss "
                                             f"{record.losses['total']}); lower the "
                                             "learning rate")
                    history.append(record)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in record.losses.items()},
                                    refresh=False)
                    for callback in callbacks or []:
                        callback(record)
                if step % run.save_every == 0:
                    save(step)
            if step != start_step and step % run.save_every != 0:
                save(step)
    finally:
        bar.close()
    skipped = sorted(contents.skipped | styles.skipped)
    if rank == 0 and step >= config.iterations:
        save_checkpoint(out / MODEL, Checkpoint("adain", encoder_id(encoder),
                                                decoder.state_dict(),
                                                dataclasses.asdict(config), step),
                        dtype=torch.float16)
    if world > 1:
        dist.barrier()
    return TrainResult(out, step, step >= config.iterations, stop.requested, skipped)


def _should_stop(local: bool, world: int) -> bool:
    """Whether to stop now; with several processes, all stop when any wants to."""
    if world == 1:
        return local
    flag = torch.tensor([1.0 if local else 0.0])
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


def _to(batch: Tensor, device: torch.device) -> Tensor:
    batch = batch.to(device, non_blocking=True)
    if device.type == "cuda":
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def export_model(checkpoint: str | Path, output: str | Path) -> Path:
    """A training checkpoint → a float16 inference model (decoder only)."""
    saved = load_checkpoint(checkpoint, method="adain")
    return save_checkpoint(output, Checkpoint("adain", saved.encoder, saved.tensors,
                                              saved.config, saved.step),
                           dtype=torch.float16)

