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

import copy
import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor, nn

from brushwork import events
from brushwork.depth.estimator import METHOD, DepthNet, encoder_id
from brushwork.depth.metrics import depth_errors
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import gradient_matching_loss, scale_shift_invariant_loss
from brushwork.memory import check_side
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.objective import Objective
from brushwork.training.trainer import RunOptions, TrainingConfig

SPLIT = "split.csv"
LOSS_NAMES = ("ssi", "gradient", "total", "val_ssi", "val_absrel", "val_delta1")
MAX_METRES = 70.0  # Make3D saturates at 80 m; its benchmark ignores depths beyond 70 m
NYU_BORDER = 8 / 320  # NYU's white registration border, as a fraction of the width
BLOCK = 60  # consecutive frames per split block
GUARD = 6  # frames dropped on each side of a validation block
MIN_BATCH_FOR_SPLIT = 2 * BLOCK  # smaller indoor batches are held out whole
DISPARITY_KINDS = ("disparity",)
FINETUNE_BYTES_PER_PIXEL = 4700
"""One step's memory per crop pixel while the encoder learns too (frozen: the objective's
:attr:`~DepthObjective.bytes_per_pixel`)."""
RESIZE_BYTES_PER_PIXEL = 32
"""Resizing one image to the training side, per pixel of the side squared: float32 RGB
before and after, images up to 4:3."""


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
    images = {
        p.stem: p
        for p in sorted(rgb_dir.iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    }
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
                pairs.append(
                    DepthPair(
                        stem,
                        images.get(stem, rgb_dir / f"{stem}.jpg"),
                        depth_dir / f"{stem}.png",
                        row.get("batch") or "default",
                        row.get("scene") or "indoor",
                        row.get("kind") or "depth",
                        to_metres,
                    )
                )
    else:
        pairs = [
            DepthPair(stem, path, depth_dir / f"{stem}.png")
            for stem, path in images.items()
            if (depth_dir / f"{stem}.png").is_file()
        ]
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
                raise BrushworkError(
                    f"{pair.depth.name} is not a single-channel depth map (mode {im.mode})"
                )
            codes = np.asarray(im).astype(np.float32)
    except FileNotFoundError as error:
        raise BrushworkError(f"{Path(error.filename or pair.rgb).name} is missing") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise BrushworkError(f"unreadable ({type(error).__name__}: {error})") from None
    if rgb.shape[:2] != codes.shape:
        raise BrushworkError(
            f"RGB {rgb.shape[1]}×{rgb.shape[0]} and depth "
            f"{codes.shape[1]}×{codes.shape[0]} differ in size"
        )
    if pair.batch.startswith("nyu"):
        border = round(NYU_BORDER * rgb.shape[1])
        rgb, codes = (rgb[border:-border, border:-border], codes[border:-border, border:-border])
    if pair.kind.startswith(DISPARITY_KINDS):
        inverse = codes  # disparity is inverse depth up to a scale
    else:
        metres = codes * (pair.to_metres or 1.0)
        far = MAX_METRES if pair.to_metres else math.inf
        inverse = np.where((codes > 0) & (metres <= far), 1.0 / np.maximum(metres, 1e-6), 0.0)
    inverse = np.where(np.isfinite(inverse) & (inverse > 0), inverse, 0.0)
    if not (inverse > 0).any():
        raise BrushworkError("the depth map has no valid pixel")
    return (
        torch.from_numpy(np.array(rgb)).permute(2, 0, 1),
        torch.from_numpy(inverse.astype(np.float32))[None],
    )


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
            elif (block % 5 == 1 and offset >= BLOCK - GUARD) or (
                block % 5 == 3 and offset < GUARD
            ):
                parts[pair.stem] = "guard"
            else:
                parts[pair.stem] = "train"
    return parts


def load_pairs(
    pairs: list[DepthPair], warn: bool = True
) -> tuple[list[tuple[DepthPair, Tensor, Tensor]], list[str]]:
    """Read every pair; the unusable ones are warned about and returned as 'stem: reason'."""
    loaded, skipped = [], []
    for pair in pairs:
        try:
            loaded.append((pair, *load_pair(pair)))
        except BrushworkError as error:
            skipped.append(f"{pair.stem}: {error}")
            if warn:
                events.warn(f"skipping depth pair {pair.stem}: {error}")
    return loaded, skipped


@dataclass
class DepthTrainConfig(TrainingConfig):
    """What a depth-estimator run learns from, and how; stored in its checkpoints."""

    data_dir: str = option(
        REQUIRED,
        "folder with rgb/ and depth/ (and optionally pairs.csv)",
        flag="--data",
        metavar="DIR",
    )
    iterations: int = redefault(TrainingConfig, "iterations", 6000)
    batch_size: int = redefault(TrainingConfig, "batch_size", 16, "crops per batch")
    learning_rate: float = redefault(
        TrainingConfig, "learning_rate", 3e-4, "decoder learning rate, Adam"
    )
    encoder_lr: float = option(3e-5, "encoder learning rate once fine-tuning", minimum=0.0)
    finetune_from: int | None = option(
        None,
        "fine-tune the VGG encoder from this step on (default: frozen)",
        minimum=0,
        metavar="STEP",
    )
    grad_weight: float = option(
        0.5, "weight of the gradient-matching term (MiDaS's α)", minimum=0.0
    )
    grad_scales: int = option(4, "scales of the gradient-matching term", minimum=1)
    side: int = option(224, "shorter image side to train at", minimum=1)
    crop_height: int = option(224, "crop height", minimum=1)
    crop_width: int = option(288, "crop width", minimum=1)
    jitter: float = option(
        0.2,
        "colour jitter strength (brightness, contrast, saturation; hue a tenth of it), 0 = off",
        minimum=0.0,
    )

    def check(self) -> None:
        if min(self.crop_height, self.crop_width) > self.side:
            raise BrushworkError(
                f"the crop ({self.crop_height}×{self.crop_width}) must fit "
                f"in images whose shorter side is {self.side}"
            )


def _resized(rgb: Tensor, inverse: Tensor, side: int) -> tuple[Tensor, Tensor]:
    """Shorter side → ``side``: RGB bilinear (antialiased), depth nearest (no mixing of
    valid and invalid pixels)."""
    height, width = rgb.shape[-2:]
    if min(height, width) == side:
        return rgb, inverse
    factor = side / min(height, width)
    size = (round(height * factor), round(width * factor))
    rgb = (
        F.interpolate(
            rgb[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False
        )[0]
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )
    return rgb, F.interpolate(inverse[None], size=size, mode="nearest")[0]


class _Augment:
    """Random crop, horizontal flip and colour jitter of a batch, on the training device."""

    def __init__(self, config: DepthTrainConfig, generator: torch.Generator) -> None:
        import kornia.augmentation as K

        self.config = config
        self.generator = generator
        j = config.jitter
        self.jitter = K.ColorJitter(j, j, j, j / 10, p=0.8) if j > 0 else None

    def __call__(
        self, images: list[Tensor], targets: list[Tensor], device: torch.device
    ) -> tuple[Tensor, Tensor]:
        ch, cw = self.config.crop_height, self.config.crop_width
        picks = torch.randint(len(images), (self.config.batch_size,), generator=self.generator)
        rgbs, invs = [], []
        for i in picks.tolist():
            rgb, inv = images[i], targets[i]
            top = int(torch.randint(rgb.shape[1] - ch + 1, (1,), generator=self.generator))
            left = int(torch.randint(rgb.shape[2] - cw + 1, (1,), generator=self.generator))
            rgb, inv = (
                rgb[:, top : top + ch, left : left + cw],
                inv[:, top : top + ch, left : left + cw],
            )
            if torch.rand((), generator=self.generator) < 0.5:
                rgb, inv = rgb.flip(-1), inv.flip(-1)
            rgbs.append(rgb)
            invs.append(inv)
        rgb = torch.stack(rgbs).to(device, non_blocking=True).float() / 255
        if self.jitter is not None:
            rgb = self.jitter(rgb).clamp(0, 1)
        return rgb, torch.stack(invs).to(device, non_blocking=True).float()


def depth_loss(
    prediction: Tensor, target: Tensor, grad_weight: float, grad_scales: int
) -> dict[str, Tensor]:
    """MiDaS's training loss on inverse depth, pixels with target 0 masked."""
    mask = target > 0
    ssi = scale_shift_invariant_loss(prediction, target, mask)
    gradient = gradient_matching_loss(prediction, target, mask, grad_scales)
    return {"ssi": ssi, "gradient": gradient, "total": ssi + grad_weight * gradient}


@torch.no_grad()
def evaluate(
    net: DepthNet, pairs: list[tuple[DepthPair, Tensor, Tensor]], side: int, device: torch.device
) -> dict[str, float]:
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
    from brushwork.outputs import write_atomically

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["stem", "part"])
            writer.writerows(sorted(parts.items()))

    write_atomically(path, write)


class DepthLoss(nn.Module):
    """The estimator and MiDaS's loss: a batch of RGB crops and inverse-depth targets → loss
    terms."""

    def __init__(self, net: DepthNet, config: DepthTrainConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config

    def forward(self, rgb: Tensor, target: Tensor) -> dict[str, Tensor]:
        prediction = self.net(rgb)
        return depth_loss(
            prediction.float(), target, self.config.grad_weight, self.config.grad_scales
        )


class DepthObjective(Objective[DepthTrainConfig]):
    """``brushwork train depth``: brushwork's monocular depth estimator."""

    name = "depth"
    description = "train the monocular depth estimator on RGB + depth pairs"
    config_class = DepthTrainConfig
    method = METHOD
    log_names = LOSS_NAMES
    free = frozenset({"iterations", "data_dir"})
    distributed = False
    bytes_per_pixel = 3500
    size_flags = "--crop-height, --crop-width or --side"
    input_fields = ("data_dir",)

    def __init__(self, config: DepthTrainConfig, *, encoder: VGG19 | None = None) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.net: DepthNet | None = None

    def crop(self) -> tuple[int, int]:
        return self.config.crop_height, self.config.crop_width

    def pixel_bytes(self) -> float:
        frozen = self.config.finetune_from is None
        return self.bytes_per_pixel if frozen else FINETUNE_BYTES_PER_PIXEL

    def data_bytes(self, run: RunOptions) -> float:
        side = self.config.side
        check_side(side, side, "the resized training images", "--side")
        return RESIZE_BYTES_PER_PIXEL * side**2

    def check_inputs(self, run: RunOptions) -> None:
        config = self.config
        pairs = read_pairs(config.data_dir)
        self.parts = split_pairs(pairs)
        wanted = [p for p in pairs if self.parts[p.stem] in ("train", "val")]
        loaded, self.skipped = load_pairs(wanted)
        train_set = [
            _resized(rgb, inv, config.side)
            for p, rgb, inv in loaded
            if self.parts[p.stem] == "train"
        ]
        small = {
            i
            for i, (rgb, _) in enumerate(train_set)
            if rgb.shape[1] < config.crop_height or rgb.shape[2] < config.crop_width
        }
        if small:
            self.skipped += [f"{len(small)} training pairs smaller than the crop"]
            train_set = [t for i, t in enumerate(train_set) if i not in small]
        if not train_set:
            raise BrushworkError(
                f"no usable training pairs in {config.data_dir} ({len(self.skipped)} skipped)"
            )
        self.images = [t[0] for t in train_set]
        self.targets = [t[1] for t in train_set]
        self.val_set = [t for t in loaded if self.parts[t[0].stem] == "val"]

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        encoder = self.encoder
        if encoder is None:
            from brushwork.encoders import cached_vgg19

            encoder = cached_vgg19("relu4_1", "max", "cpu", run.weights)
        # a copy: the estimator fine-tunes its encoder, the shared one stays as it is
        encoder = copy.deepcopy(encoder).use_channels_last(False).requires_grad_(False)
        torch.manual_seed(self.config.seed)
        self.net = DepthNet(encoder).to(device).train()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return DepthLoss(self.net, self.config)

    def network(self) -> nn.Module:
        assert self.net is not None
        return self.net

    def encoder_id(self) -> str:
        assert self.net is not None
        return encoder_id(self.net)

    def parameter_groups(self) -> list[dict[str, Any]]:
        assert self.net is not None
        return [
            {"params": self.net.decoder_parameters(), "lr": self.config.learning_rate},
            {"params": list(self.net.encoder.parameters()), "lr": self.config.encoder_lr},
        ]

    def start_data(self, run: RunOptions, seed: int) -> None:
        self.augment = _Augment(self.config, torch.Generator().manual_seed(seed))

    def before_step(self, step: int) -> None:
        assert self.net is not None
        start = self.config.finetune_from
        self.net.encoder.requires_grad_(start is not None and step >= start)

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        return self.augment(self.images, self.targets, device)

    def validate(self, device: torch.device) -> dict[str, float]:
        assert self.net is not None
        if not self.val_set:
            return {}
        return evaluate(self.net, self.val_set, self.config.side, device)

    def write_files(self, out: Path) -> None:
        _write_split(out / SPLIT, self.parts)

    def details(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for part in self.parts.values():
            counts[part] = counts.get(part, 0) + 1
        return {"parts": counts}
