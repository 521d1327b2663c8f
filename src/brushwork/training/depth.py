"""Training brushwork's monocular depth estimator (:mod:`brushwork.depth.estimator`).

Data: a folder of RGB + depth pairs, ``rgb/<stem>.jpg|png`` and ``depth/<stem>.png``
(single-channel, 8 or 16 bit, 0 = no measurement), with an optional ``pairs.csv`` (stem,
batch, scene, kind, to_metres, ...) as in ../shared/depth: ``kind`` says whether the codes
are depth or disparity, ``to_metres`` their unit. Targets are inverse depth; pixels with no
measurement or farther than :data:`MAX_METRES` are masked. NYU frames lose their white
registration border (:data:`NYU_BORDER`).

The split is by scene and fixed (:func:`split_pairs`, written to ``split.csv`` in the run
folder): outdoor pairs are never trained on; indoor batches are cut into blocks of
:data:`BLOCK` consecutive frames (NYU's labeled frames are stored scene by scene), every
fifth block (the third, eighth, ...) is held out for validation and :data:`GUARD` frames on
each side of it are dropped, so that no scene straddles train and validation.

Each step: random crops, horizontal flips and colour jitter, then MiDaS's loss (Ranftl et al.
2020): the scale-and-shift-invariant squared error plus ``grad_weight`` times the multi-scale
gradient-matching term (eq. 11). The encoder is frozen until ``finetune_from`` (None: always),
then learns at ``encoder_lr``. Validation AbsRel and δ<1.25 are logged every ``val_every``
steps. Unreadable pairs, pairs whose sizes differ and all-invalid depth maps are skipped,
warned about and counted, never fatal unless none is left.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from tqdm import tqdm

from brushwork.checkpoints import (
    Checkpoint,
    load_checkpoint,
    optimizer_state,
    restore_optimizer,
    save_checkpoint,
)
from brushwork.depth.estimator import METHOD, DepthNet, encoder_id, to_checkpoint
from brushwork.depth.metrics import depth_errors
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.losses import gradient_matching_loss, scale_shift_invariant_loss
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

SPLIT = "split.csv"
LOSS_NAMES = ("ssi", "gradient", "total", "val_ssi", "val_absrel", "val_delta1")
MAX_METRES = 70.0  # Make3D saturates at 80 m; its benchmark ignores depths beyond 70 m
NYU_BORDER = 8 / 320  # NYU's white registration border, as a fraction of the width
BLOCK = 60  # consecutive frames per split block
GUARD = 6  # frames dropped on each side of a validation block
MIN_BATCH_FOR_SPLIT = 2 * BLOCK  # smaller indoor batches are held out whole
DISPARITY_KINDS = ("disparity",)


@dataclass(frozen=True)
class DepthPair:
    """One RGB + depth pair and what its codes mean."""

    stem: str
    rgb: Path
    depth: Path
    batch: str = "default"
    scene: str = "indoor"
    kind: str = "depth"
    to_metres: float | None = None


def read_pairs(folder: str | Path) -> list[DepthPair]:
    """The pairs of a data folder, from its ``pairs.csv`` or, without one, by stem."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise BrushworkError(f"depth data folder {root} does not exist")
    rgb_dir, depth_dir = root / "rgb", root / "depth"
    if not rgb_dir.is_dir() or not depth_dir.is_dir():
        raise BrushworkError(f"depth data folder {root} needs rgb/ and depth/ subfolders")
    images = {p.stem: p for p in sorted(rgb_dir.iterdir())
              if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    table = root / "pairs.csv"
    pairs = []
    if table.is_file():
        with open(table, newline="") as f:
            for row in csv.DictReader(f):
                stem = (row.get("stem") or "").strip()
                if not stem:
                    continue
                unit = (row.get("to_metres") or "").strip()
                try:
                    to_metres = float(unit) if unit else None
                except ValueError:
                    to_metres = None
                pairs.append(DepthPair(
                    stem, images.get(stem, rgb_dir / f"{stem}.jpg"), depth_dir / f"{stem}.png",
                    row.get("batch") or "default", row.get("scene") or "indoor",
                    row.get("kind") or "depth", to_metres))
    else:
        pairs = [DepthPair(stem, path, depth_dir / f"{stem}.png") for stem, path in
                 images.items() if (depth_dir / f"{stem}.png").is_file()]
    if not pairs:
        raise BrushworkError(f"depth data folder {root} has no RGB + depth pairs")
    return pairs


def load_pair(pair: DepthPair) -> tuple[Tensor, Tensor]:
    """(RGB uint8 (3, H, W), inverse depth float32 (1, H, W), 0 where unknown).

    Raises :class:`BrushworkError` with the reason for a pair that cannot be used."""
    try:
        with Image.open(pair.rgb) as im:
            rgb = np.asarray(im.convert("RGB"))
        with Image.open(pair.depth) as im:
            if im.mode not in ("L", "I", "I;16", "I;16B", "I;16L"):
                raise BrushworkError(f"{pair.depth.name} is not a single-channel depth map "
                                     f"(mode {im.mode})")
            codes = np.asarray(im).astype(np.float32)
    except FileNotFoundError as error:
        raise BrushworkError(f"{Path(error.filename or pair.rgb).name} is missing") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise BrushworkError(f"unreadable ({type(error).__name__}: {error})") from None
    if rgb.shape[:2] != codes.shape:
        raise BrushworkError(f"RGB {rgb.shape[1]}×{rgb.shape[0]} and depth "
                             f"{codes.shape[1]}×{codes.shape[0]} differ in size")
    if pair.batch.startswith("nyu"):
        border = round(NYU_BORDER * rgb.shape[1])
        rgb, codes = (rgb[border:-border, border:-border],
                      codes[border:-border, border:-border])
    if pair.kind.startswith(DISPARITY_KINDS):
        inverse = codes  # disparity is inverse depth up to a scale
    else:
        metres = codes * (pair.to_metres or 1.0)
        far = MAX_METRES if pair.to_metres else math.inf
        inverse = np.where((codes > 0) & (metres <= far), 1.0 / np.maximum(metres, 1e-6), 0.0)
    inverse = np.where(np.isfinite(inverse) & (inverse > 0), inverse, 0.0)
    if not (inverse > 0).any():
        raise BrushworkError("the depth map has no valid pixel")
    return (torch.from_numpy(np.array(rgb)).permute(2, 0, 1),
            torch.from_numpy(inverse.astype(np.float32))[None])


def split_pairs(pairs: list[DepthPair]) -> dict[str, str]:
    """Each pair's part, by stem: ``train``, ``val``, ``guard`` (dropped), ``heldout`` or
    ``outdoor`` (never trained on, evaluated on its own).

    Indoor batches of at least :data:`MIN_BATCH_FOR_SPLIT` pairs are split into blocks (see
    the module docstring). Smaller batches are held out whole when a larger batch provides
    the validation set, and trained on whole when none does (a small folder of your own)."""
    parts: dict[str, str] = {}
    batches: dict[str, list[DepthPair]] = {}
    for pair in pairs:
        if pair.scene == "outdoor":
            parts[pair.stem] = "outdoor"
        else:
            batches.setdefault(pair.batch, []).append(pair)
    any_split = any(len(members) >= MIN_BATCH_FOR_SPLIT for members in batches.values())
    for members in batches.values():
        members = sorted(members, key=lambda p: p.stem)
        if len(members) < MIN_BATCH_FOR_SPLIT:
            parts.update((p.stem, "heldout" if any_split else "train") for p in members)
            continue
        for index, pair in enumerate(members):
            block, offset = divmod(index, BLOCK)
            if block % 5 == 2:
                parts[pair.stem] = "val"
            elif ((block % 5 == 1 and offset >= BLOCK - GUARD)
                  or (block % 5 == 3 and offset < GUARD)):
                parts[pair.stem] = "guard"
            else:
                parts[pair.stem] = "train"
    return parts


def load_pairs(pairs: list[DepthPair], warn: bool = True
               ) -> tuple[list[tuple[DepthPair, Tensor, Tensor]], list[str]]:
    """Read every pair; the unusable ones are warned about and returned as 'stem: reason'."""
    loaded, skipped = [], []
    for pair in pairs:
        try:
            loaded.append((pair, *load_pair(pair)))
        except BrushworkError as error:
            skipped.append(f"{pair.stem}: {error}")
            if warn:
                warnings.warn(f"skipping depth pair {pair.stem}: {error}", BrushworkWarning,
                              stacklevel=2)
    return loaded, skipped


@dataclass
class DepthTrainConfig:
    """What a depth-estimator run learns from, and how; stored in its checkpoints."""

    data_dir: str = ""
    iterations: int = 6000
    batch_size: int = 16
    learning_rate: float = 3e-4
    encoder_lr: float = 3e-5
    finetune_from: int | None = None  # step at which the encoder starts learning; None: never
    grad_weight: float = 0.5  # MiDaS's α
    grad_scales: int = 4
    side: int = 224  # every image is resized so that its shorter side is this long
    crop_height: int = 224
    crop_width: int = 288
    jitter: float = 0.2  # brightness, contrast and saturation jitter (hue: a tenth of it)
    seed: int = 0

    def validate(self) -> None:
        for name in ("iterations", "batch_size", "grad_scales", "side", "crop_height",
                     "crop_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BrushworkError(f"{name.replace('_', '-')} must be an integer >= 1, "
                                     f"not {value}")
        if min(self.crop_height, self.crop_width) > self.side:
            raise BrushworkError(f"the crop ({self.crop_height}×{self.crop_width}) must fit "
                                 f"in images whose shorter side is {self.side}")
        for name in ("learning_rate", "encoder_lr", "grad_weight", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise BrushworkError(f"{name.replace('_', '-')} must be a finite number "
                                     f">= 0, not {value}")
        if self.learning_rate == 0:
            raise BrushworkError("learning-rate must be > 0")
        if self.finetune_from is not None and (not isinstance(self.finetune_from, int)
                                               or self.finetune_from < 0):
            raise BrushworkError(f"finetune-from must be a step >= 0, not {self.finetune_from}")


@dataclass
class DepthRunOptions:
    """How a run executes; not part of what it learns."""

    out_dir: str = "runs/depth"
    resume: bool = False
    save_every: int = 1000
    log_every: int = 50
    val_every: int = 500
    device: str = "auto"
    max_minutes: float | None = None
    progress: bool = True


@dataclass
class DepthTrainResult:
    out_dir: Path
    step: int
    finished: bool
    interrupted: bool
    skipped: list[str]
    parts: dict[str, int]


def _resized(rgb: Tensor, inverse: Tensor, side: int) -> tuple[Tensor, Tensor]:
    """Shorter side → ``side``: RGB bilinear (antialiased), depth nearest (no mixing of
    valid and invalid pixels)."""
    height, width = rgb.shape[-2:]
    if min(height, width) == side:
        return rgb, inverse
    factor = side / min(height, width)
    size = (round(height * factor), round(width * factor))
    rgb = F.interpolate(rgb[None].float(), size=size, mode="bilinear", antialias=True,
                        align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
    return rgb, F.interpolate(inverse[None], size=size, mode="nearest")[0]


class _Augment:
    """Random crop, horizontal flip and colour jitter of a batch, on the training device."""

    def __init__(self, config: DepthTrainConfig, generator: torch.Generator) -> None:
        import kornia.augmentation as K

        self.config = config
        self.generator = generator
        j = config.jitter
        self.jitter = K.ColorJitter(j, j, j, j / 10, p=0.8) if j > 0 else None

    def __call__(self, images: list[Tensor], targets: list[Tensor],
                 device: torch.device) -> tuple[Tensor, Tensor]:
        ch, cw = self.config.crop_height, self.config.crop_width
        picks = torch.randint(len(images), (self.config.batch_size,), generator=self.generator)
        rgbs, invs = [], []
        for i in picks.tolist():
            rgb, inv = images[i], targets[i]
            top = int(torch.randint(rgb.shape[1] - ch + 1, (1,), generator=self.generator))
            left = int(torch.randint(rgb.shape[2] - cw + 1, (1,), generator=self.generator))
            rgb, inv = rgb[:, top:top + ch, left:left + cw], inv[:, top:top + ch, left:left + cw]
            if torch.rand((), generator=self.generator) < 0.5:
                rgb, inv = rgb.flip(-1), inv.flip(-1)
            rgbs.append(rgb)
            invs.append(inv)
        rgb = torch.stack(rgbs).to(device, non_blocking=True).float() / 255
        if self.jitter is not None:
            rgb = self.jitter(rgb).clamp(0, 1)
        return rgb, torch.stack(invs).to(device, non_blocking=True).float()


def depth_loss(prediction: Tensor, target: Tensor, grad_weight: float,
               grad_scales: int) -> dict[str, Tensor]:
    """MiDaS's training loss on inverse depth, pixels with target 0 masked."""
    mask = target > 0
    ssi = scale_shift_invariant_loss(prediction, target, mask)
    gradient = gradient_matching_loss(prediction, target, mask, grad_scales)
    return {"ssi": ssi, "gradient": gradient, "total": ssi + grad_weight * gradient}


@torch.no_grad()
def evaluate(net: DepthNet, pairs: list[tuple[DepthPair, Tensor, Tensor]], side: int,
             device: torch.device) -> dict[str, float]:
    """Mean SSI loss, AbsRel and δ<1.25 (see :func:`brushwork.depth.metrics.depth_errors`)
    of ``net`` over loaded pairs, each at its shorter side ``side``."""
    from brushwork.depth.estimator import predict_depth

    was_training = net.training
    net.eval()
    totals = {"ssi": 0.0, "absrel": 0.0, "delta1": 0.0}
    for _, rgb, inverse in pairs:
        image = rgb[None].to(device).float() / 255
        target = inverse[None].to(device)
        prediction = predict_depth(net, image, side).float()
        totals["ssi"] += float(scale_shift_invariant_loss(prediction, target, target > 0))
        errors = depth_errors(prediction, target)
        totals["absrel"] += errors["absrel"]
        totals["delta1"] += errors["delta1"]
    net.train(was_training)
    return {k: v / max(1, len(pairs)) for k, v in totals.items()}


def _write_split(path: Path, parts: dict[str, str]) -> None:
    from brushwork.image import write_atomically

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["stem", "part"])
            writer.writerows(sorted(parts.items()))

    write_atomically(path, write)


def train_depth(config: DepthTrainConfig, run: DepthRunOptions | None = None, *,
                encoder: VGG19 | None = None,
                callbacks: list[Callable[[Step], None]] | None = None) -> DepthTrainResult:
    """Train (or resume) a depth estimator; returns where the run stands. ``encoder`` (a
    VGG-19 built to relu4_1) defaults to the pretrained one; it is copied, not changed."""
    run = run or DepthRunOptions()
    config.validate()
    for name in ("save_every", "log_every", "val_every"):
        value = getattr(run, name)
        if not isinstance(value, int) or value < 1:
            raise BrushworkError(f"{name.replace('_', '-')} must be an integer >= 1, "
                                 f"not {value}")
    pairs = read_pairs(config.data_dir)
    out = Path(run.out_dir)
    checkpoint_path = out / CHECKPOINT
    prepare_run_folder(out, checkpoint_path, run.resume)
    parts = split_pairs(pairs)
    wanted = [p for p in pairs if parts[p.stem] in ("train", "val")]
    loaded, skipped = load_pairs(wanted)
    train_set = [_resized(rgb, inv, config.side) for p, rgb, inv in loaded
                 if parts[p.stem] == "train"]
    small = [i for i, (rgb, _) in enumerate(train_set)
             if rgb.shape[1] < config.crop_height or rgb.shape[2] < config.crop_width]
    if small:
        skipped += [f"{len(small)} training pairs smaller than the crop"]
        train_set = [t for i, t in enumerate(train_set) if i not in set(small)]
    if not train_set:
        raise BrushworkError(f"no usable training pairs in {config.data_dir} ({len(skipped)} "
                             "skipped)")
    val_set = [t for t in loaded if parts[t[0].stem] == "val"]

    from brushwork.api import resolve_device

    device = resolve_device(run.device)
    if encoder is None:
        from brushwork.api import cached_vgg19

        encoder = cached_vgg19("relu4_1", "max", "cpu")
    encoder = copy.deepcopy(encoder).use_channels_last(False).requires_grad_(False)
    torch.manual_seed(config.seed)
    net = DepthNet(encoder)
    decoder_params = net.decoder_parameters()
    encoder_params = list(net.encoder.parameters())
    optimizer = torch.optim.Adam([{"params": decoder_params, "lr": config.learning_rate},
                                  {"params": encoder_params, "lr": config.encoder_lr}])
    by_id = {id(p): name for name, p in net.named_parameters()}
    names = {i: by_id[id(p)] for i, p in enumerate(decoder_params + encoder_params)}
    start_step = 0
    if run.resume:
        saved = load_checkpoint(checkpoint_path, method=METHOD, encoder=encoder_id(net))
        check_resumed_config(config, saved.config, {"iterations", "data_dir"},
                             checkpoint_path)
        net.load_state_dict(saved.tensors)
        restore_optimizer(optimizer, saved.optimizer, names)
        start_step = saved.step
    net.to(device).train()
    move_optimizer_state(optimizer, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    _write_split(out / SPLIT, parts)

    log_path = out / LOG
    history = [s for s in read_log(log_path) if s.step <= start_step]

    def save(step: int) -> None:
        write_log(log_path, history, LOSS_NAMES)
        ckpt = to_checkpoint(net, dataclasses.asdict(config), step)
        ckpt.optimizer = optimizer_state(optimizer, names)
        save_checkpoint(checkpoint_path, ckpt)
        plot_log(out / CURVE, history, LOSS_NAMES, f"depth training: {out.name}")

    generator = torch.Generator().manual_seed(config.seed + start_step)
    augment = _Augment(config, generator)
    images = [t[0] for t in train_set]
    targets = [t[1] for t in train_set]
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    started = time.perf_counter()
    elapsed_before = history[-1].seconds if history else 0.0
    step = start_step
    bar = tqdm(total=config.iterations, initial=step, desc="train depth", unit="step",
               disable=True if not run.progress else None, dynamic_ncols=True)
    running: dict[str, list[Tensor]] = {}
    try:
        with StopRequest() as stop:
            while step < config.iterations:
                if stop.requested or (run.max_minutes is not None
                                      and time.perf_counter() - started > 60 * run.max_minutes):
                    break
                finetuning = config.finetune_from is not None and step >= config.finetune_from
                net.encoder.requires_grad_(finetuning)
                rgb, target = augment(images, targets, device)
                with autocast:
                    prediction = net(rgb)
                losses = depth_loss(prediction.float(), target, config.grad_weight,
                                    config.grad_scales)
                optimizer.zero_grad(set_to_none=True)
                losses["total"].backward()
                optimizer.step()
                step += 1
                bar.update(1)
                for name, value in losses.items():
                    running.setdefault(name, []).append(value.detach().float())
                logged = step % run.log_every == 0 or step == config.iterations
                validated = val_set and (step % run.val_every == 0 or step == config.iterations)
                if logged or validated:
                    means = {k: float(torch.stack(v).mean()) for k, v in running.items()}
                    running.clear()
                    if not math.isfinite(means.get("total", 0.0)):
                        raise BrushworkError(f"training diverged at step {step}; lower the "
                                             "learning rate")
                    if validated:
                        scores = evaluate(net, val_set, config.side, device)
                        means.update({f"val_{k}": v for k, v in scores.items()})
                    record = Step(step, config.learning_rate, means,
                                  elapsed_before + time.perf_counter() - started)
                    history.append(record)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()}, refresh=False)
                    for callback in callbacks or []:
                        callback(record)
                if step % run.save_every == 0:
                    save(step)
            if step != start_step and step % run.save_every != 0:
                save(step)
    finally:
        bar.close()
    if step >= config.iterations:
        save_checkpoint(out / MODEL, to_checkpoint(net, dataclasses.asdict(config), step),
                        dtype=torch.float16)
    counts: dict[str, int] = {}
    for part in parts.values():
        counts[part] = counts.get(part, 0) + 1
    return DepthTrainResult(out, step, step >= config.iterations, stop.requested, skipped,
                            counts)


def export_depth_model(checkpoint: str | Path, output: str | Path) -> Path:
    """A training checkpoint → a float16 model file (no optimizer state)."""
    saved = load_checkpoint(checkpoint, method=METHOD)
    return save_checkpoint(output, Checkpoint(METHOD, saved.encoder, saved.tensors,
                                              saved.config, saved.step), dtype=torch.float16)
