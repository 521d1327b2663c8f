"""Training images: folders of photos or paintings served as random crops by worker
processes, with images that cannot be decoded skipped and counted, never fatal."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, RandomSampler

from brushwork import events
from brushwork.errors import BrushworkError
from brushwork.memory import check_side

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
PREFETCH = 4
"""Batches each data-loading worker prepares ahead."""
RESIZED_BYTES_PER_PIXEL = 8
"""An image resized to the load size, per pixel of the load size squared: PIL's 4 bytes a
pixel for RGB, images up to 2:1."""


def list_images(folder: str | Path, what: str) -> list[Path]:
    """Image files (by suffix) anywhere under ``folder``, sorted; an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BrushworkError(f"{what} folder {folder} does not exist or is not a folder")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        suffixes = ", ".join(sorted(s[1:] for s in IMAGE_SUFFIXES))
        raise BrushworkError(f"{what} folder {folder} has no images ({suffixes})")
    return files


def load_style(path: str | Path, size: int, layer: str, scale: float = 1.0) -> Tensor:
    """A style image with its longest side at ``size`` px, refused (one line, before any
    network loads) where the losses, seeing it ``scale`` times that size, would get less than
    one feature cell at ``layer``, the deepest they use."""
    from brushwork.encoders.vgg import pools_before
    from brushwork.image import load_image

    image = load_image(path, size=size)
    height, width = image.shape[-2:]
    least = 2 ** pools_before(layer)
    if min(height, width) * scale < least:
        raise BrushworkError(
            f"style {path} is {width}x{height} px at --style-size {size}; its losses reach "
            f"{layer} and need at least {int(np.ceil(least / scale))} px a side there"
        )
    return image


def random_crop(
    image: Image.Image, load_size: int | None, crop_size: int, rng: random.Random
) -> Tensor:
    """Resize so the shorter side is ``load_size`` (None: as is; never below
    ``crop_size``), then take a random ``crop_size`` square → (3, S, S) float in [0, 1]."""
    short = min(image.size)
    target = max(load_size or short, crop_size)
    if short != target:
        ratio = target / short
        size = (
            max(crop_size, round(image.width * ratio)),
            max(crop_size, round(image.height * ratio)),
        )
        image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
    left = rng.randint(0, image.width - crop_size)
    top = rng.randint(0, image.height - crop_size)
    crop = image.crop((left, top, left + crop_size, top + crop_size))
    array = np.asarray(crop, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)


class CropDataset(Dataset):
    """Random crops of the images in ``files``: item ``i`` is a fresh crop of file ``i``,
    or None (with the path) when the file cannot be decoded.

    ``cache`` keeps each worker's decoded, resized images in memory: fast epochs for small
    corpora (each worker holds up to the whole folder).
    """

    def __init__(
        self, files: Sequence[Path], load_size: int | None, crop_size: int, cache: bool = False
    ) -> None:
        self.files = list(files)
        self.load_size = load_size
        self.crop_size = crop_size
        self.cache = cache
        self._decoded: dict[int, Image.Image] = {}
        self._rng = random.Random()

    def __len__(self) -> int:
        return len(self.files)

    def _open(self, index: int) -> Image.Image:
        if index in self._decoded:
            return self._decoded[index]
        with Image.open(self.files[index]) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        if self.cache:
            short = min(image.size)
            target = max(self.load_size or short, self.crop_size)
            if short > target:  # store at the training resolution
                ratio = target / short
                image = image.resize(
                    (round(image.width * ratio), round(image.height * ratio)),
                    Image.Resampling.BICUBIC,
                    reducing_gap=3.0,
                )
            self._decoded[index] = image
        return image

    def __getitem__(self, index: int) -> tuple[Tensor | None, str]:
        try:
            image = self._open(index)
            return random_crop(image, self.load_size, self.crop_size, self._rng), ""
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None, str(self.files[index])


def _worker_seed(worker_id: int) -> None:
    """Seed a worker; and leave Ctrl-C / SIGTERM to the training process, which stops
    between steps with a checkpoint and then shuts its workers down (a worker killed by the
    same signal would make the loader raise before the checkpoint is written)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    info = torch.utils.data.get_worker_info()
    assert info is not None
    info.dataset._rng.seed(info.seed)  # type: ignore[attr-defined]


def _collate(items: list[tuple[Tensor | None, str]]) -> tuple[Tensor | None, list[str]]:
    good = [crop for crop, _ in items if crop is not None]
    bad = [path for crop, path in items if crop is None]
    return (torch.stack(good) if good else None), bad


class Batches:
    """An endless stream of (B, 3, S, S) batches from one folder; unreadable files are
    skipped, warned about once each and counted in :attr:`skipped`."""

    def __init__(
        self,
        files: Sequence[Path],
        *,
        batch_size: int,
        load_size: int | None,
        crop_size: int,
        workers: int,
        seed: int,
        cache: bool = False,
        what: str = "images",
    ) -> None:
        self.what = what
        self.batch_size = batch_size
        self.skipped: set[str] = set()
        self.total_files = len(files)
        generator = torch.Generator().manual_seed(seed)
        dataset = CropDataset(files, load_size, crop_size, cache)
        dataset._rng.seed(seed)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=RandomSampler(
                dataset, replacement=True, num_samples=1 << 62, generator=generator
            ),
            num_workers=workers,
            collate_fn=_collate,
            worker_init_fn=_worker_seed if workers else None,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=PREFETCH if workers else None,
        )
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> Batches:
        return self

    def close(self) -> None:
        """Shut the worker processes down. They ignore SIGTERM (see :func:`_worker_seed`), so
        they must be told: one still running when Python exits (a loader kept alive by a
        caught exception's traceback) would make multiprocessing's exit handler, which
        terminates them with SIGTERM, wait for it forever."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    def __next__(self) -> Tensor:
        if self._iterator is None:
            self._iterator = iter(self.loader)
        parts: list[Tensor] = []
        count = 0
        failures = 0
        while count < self.batch_size:
            batch, bad = next(self._iterator)
            for path in bad:
                if path not in self.skipped:
                    self.skipped.add(path)
                    events.warn(f"skipping unreadable {self.what} image {path}")
            if len(self.skipped) == self.total_files:
                raise BrushworkError(
                    f"none of the {self.total_files} {self.what} images could be read"
                )
            if batch is None:
                failures += 1
                if failures > 1000:
                    raise BrushworkError(f"almost no {self.what} images can be read")
                continue
            parts.append(batch)
            count += len(batch)
        return torch.cat(parts)[: self.batch_size]


def loader_bytes(batch_size: int, crop_size: int, load_size: int | None, workers: int) -> int:
    """Memory one :class:`Batches` may hold: :data:`PREFETCH` batches per worker queued, one
    being assembled and one served (float32 crops), and in each worker an image resized to
    ``load_size``; a load size no image can have is refused."""
    if load_size is not None:
        check_side(load_size, load_size, "the resized training images", "--load-size")
    queued = (PREFETCH * workers + 2) * batch_size * 3 * 4 * crop_size**2
    return queued + max(workers, 1) * RESIZED_BYTES_PER_PIXEL * (load_size or 0) ** 2


def to_device(batch: Tensor, device: torch.device) -> Tensor:
    """A batch on the training device, channels-last (the layout the convolutions run
    fastest in, on CPUs with oneDNN and on GPUs)."""
    batch = batch.to(device, non_blocking=True)
    return batch.contiguous(memory_format=torch.channels_last)


def list_folders(folders: Sequence[str | Path], what: str) -> list[Path]:
    """The images of several folders (see :func:`list_images`), in order."""
    files: list[Path] = []
    for folder in folders:
        files += list_images(folder, what)
    return files
