"""Training a decoder to invert VGG-19 from one layer: the objective of ``brushwork train
wct`` (Li et al. 2017, "Universal Style Transfer via Feature Transforms", §3.1).

Each step encodes a batch of crops x to the decoder's layer, decodes, and re-encodes::

    total = pixel_weight   · ‖g(f(x)) − x‖² / mean(x²)
          + feature_weight · ‖f(g(f(x))) − f(x)‖² / mean(f(x)²)

(the paper's pixel reconstruction and feature losses, λ = 1; both as relative errors, like
every loss of brushwork). The encoder is frozen. A decoder may start from another
(``init_from``: e.g. the AdaIN decoder, which has the relu4_1 decoder's shape). Every
``val_every`` steps the PSNR and relative feature error of whole held-out images (``val_dir``)
are logged: what the model card reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.encoders import VGG19, pools_before
from brushwork.errors import BrushworkError
from brushwork.methods.feedforward import (
    DECODER_LAYERS,
    Decoder,
    decoder_id,
    decoder_width,
    min_side,
    read_decoder,
)
from brushwork.ops import pad_to_multiple
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.adain import training_encoder
from brushwork.training.data import Batches, list_folders, to_device
from brushwork.training.objective import DecoderObjective
from brushwork.training.trainer import CropTrainingConfig, RunOptions

LOSS_NAMES = ("pixel", "feature", "total", "val_psnr", "val_feature")
VAL_SIDE = 256
"""Held-out images are scored with their longer side at this size."""
BYTES_PER_PIXEL = {
    "relu1_1": 1300,
    "relu2_1": 2900,
    "relu3_1": 3900,
    "relu4_1": 4500,
    "relu5_1": 4900,
}
"""One step's memory per crop pixel by the decoder's layer (see
:attr:`~brushwork.training.objective.Objective.bytes_per_pixel`)."""


@dataclass
class DecoderConfig(CropTrainingConfig):
    """What a reconstruction decoder learns from; stored in its checkpoints."""

    image_dirs: tuple[str, ...] = option(
        REQUIRED,
        "folders of training images (photos and paintings), comma-separated",
        min_items=1,
        flag="--images",
        metavar="DIR,...",
    )
    layer: str = option("relu4_1", "the layer the decoder starts from", choices=DECODER_LAYERS)
    init_from: str | None = option(
        None,
        "start from this decoder (a bundled name such as adain, or a checkpoint of the same layer)",
        metavar="NAME|PATH",
    )
    init_method: str = option(
        "adain", "the method of --init-from's checkpoint", choices=("adain", "wct", "styleswap")
    )
    val_dir: str | None = option(
        None,
        "folder of held-out images scored every --val-every steps (PSNR, feature error)",
        metavar="DIR",
    )
    pixel_weight: float = option(1.0, "weight of the pixel reconstruction loss", minimum=0.0)
    feature_weight: float = option(1.0, "weight of the feature reconstruction loss", minimum=0.0)
    load_size: int | None = redefault(CropTrainingConfig, "load_size", 288)

    def check(self) -> None:
        super().check()
        if self.crop_size < min_side(self.layer):  # features of 2×2 at least
            raise BrushworkError(
                f"crop-size must be >= {min_side(self.layer)} for a decoder "
                f"from {self.layer}, not {self.crop_size}"
            )
        if self.pixel_weight == 0 and self.feature_weight == 0:
            raise BrushworkError("pixel-weight and feature-weight must not both be 0")


def psnr(output: Tensor, target: Tensor) -> float:
    """Peak signal-to-noise ratio of [0, 1] images, in dB."""
    mse = float(F.mse_loss(output.float().clamp(0, 1), target.float()))
    return 10 * math.log10(1 / max(mse, 1e-12))


class ReconstructionLoss(nn.Module):
    """Decoder + frozen encoder: a batch of images → pixel and feature reconstruction
    losses."""

    def __init__(self, decoder: Decoder, encoder: VGG19, config: DecoderConfig) -> None:
        super().__init__()
        self.decoder = decoder
        self.encoder = encoder
        self.config = config

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        layer = self.config.layer
        with torch.no_grad():
            target = self.encoder(images, [layer])[layer]
        output = self.decoder(target)
        features = self.encoder(output, [layer])[layer].float()
        target = target.float()
        pixel = F.mse_loss(output.float(), images.float()) / images.float().pow(2).mean()
        feature = F.mse_loss(features, target) / target.pow(2).mean().clamp_min(1e-12)
        total = self.config.pixel_weight * pixel + self.config.feature_weight * feature
        return {"pixel": pixel, "feature": feature, "total": total}


@torch.no_grad()
def score_reconstruction(
    decoder: Decoder,
    encoder: VGG19,
    layer: str,
    images: list[Tensor],
    precision: Precision | None = None,
) -> dict[str, float]:
    """Mean PSNR (dB) and relative feature error of whole images decoded from ``layer``."""
    psnrs, errors = [], []
    was_training = decoder.training
    decoder.eval()
    for image in images:
        multiple = 2 ** pools_before(layer)
        padded, (height, width) = pad_to_multiple(image, multiple, min_side(layer))
        context = (
            precision.autocast()
            if precision is not None
            else torch.autocast(image.device.type, enabled=False)
        )
        with context:
            target = encoder(padded, [layer])[layer]
            output = decoder(target)[..., :height, :width].float().clamp(0, 1)
            again = encoder(pad_to_multiple(output, multiple, min_side(layer))[0], [layer])[layer]
        psnrs.append(psnr(output, image))
        target = target.float()
        errors.append(
            float(F.mse_loss(again.float(), target) / target.pow(2).mean().clamp_min(1e-12))
        )
    decoder.train(was_training)
    return {"psnr": sum(psnrs) / len(psnrs), "feature": sum(errors) / len(errors)}


def load_val_images(folder: str, side: int = VAL_SIDE) -> list[Tensor]:
    from brushwork.image import load_image
    from brushwork.training.data import list_images

    return [load_image(path, size=side) for path in list_images(folder, "validation")]


def read_start(model: str, *, method: str, layer: str, channels: int) -> tuple[Decoder, set[str]]:
    """The decoder from ``layer`` a run starts from (:func:`read_decoder`) for an encoder
    with ``channels`` there, and the names of the tensors it took. A checkpoint trained on
    an encoder of another width is refused: none of its convolutions fit (at most a bias
    of the last one would, which is no start)."""
    from brushwork import models
    from brushwork.checkpoints import load_checkpoint

    path = models.resolve(model, method=method)
    saved = load_checkpoint(path, method=method, what="model")
    width = decoder_width(layer, channels)
    found = saved.encoder.split(":")
    try:
        theirs: float | None = decoder_width(found[1], int(found[2]))
    except (IndexError, KeyError, ValueError):
        theirs = None  # no encoder id to compare: the tensors' shapes decide
    if theirs is not None and not math.isclose(theirs, width):
        raise BrushworkError(
            f"model {path} was trained on encoder {saved.encoder!r}, of "
            f"another width than this run's {decoder_id(layer, channels)!r}"
        )
    decoder, _ = read_decoder(path, method=method, layer=layer, width=width)
    state = decoder.state_dict()
    taken = {k for k, v in saved.tensors.items() if k in state and state[k].shape == v.shape}
    return decoder, taken


class ReconstructionObjective(DecoderObjective[DecoderConfig]):
    """``brushwork train wct --layer L``: a decoder that inverts VGG-19 from L."""

    name = "wct"
    description = "train a WCT decoder to reconstruct images from one VGG-19 layer"
    config_class = DecoderConfig
    method = "wct"
    log_names = LOSS_NAMES
    free = frozenset({"iterations", "image_dirs", "val_dir", "init_from"})
    bytes_per_pixel = BYTES_PER_PIXEL["relu5_1"]
    streams = 1
    input_fields = ("image_dirs", "val_dir", "init_from")

    def __init__(self, config: DecoderConfig, *, encoder: VGG19 | None = None) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.decoder: Decoder | None = None
        self.images: Batches | None = None
        self.val_images: list[Tensor] = []

    def pixel_bytes(self) -> float:
        return BYTES_PER_PIXEL[self.config.layer]

    def check_inputs(self, run: RunOptions) -> None:
        self.files = list_folders(self.config.image_dirs, "training")
        if self.config.val_dir is not None:
            self.val_images = load_val_images(self.config.val_dir)
        if self.config.init_from is not None:  # a missing or foreign file fails before VGG
            from brushwork import models
            from brushwork.checkpoints import load_checkpoint

            load_checkpoint(
                models.resolve(self.config.init_from, method=self.config.init_method),
                method=self.config.init_method,
                what="model",
            )

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        layer = self.config.layer
        encoder = training_encoder(self.encoder, layer, device, run.weights)
        self.encoder = encoder
        self.precision = precision
        torch.manual_seed(self.config.seed)
        width = decoder_width(layer, encoder.out_channels[layer])
        self.new_layers: list[str] = []
        if self.config.init_from is not None:
            self.decoder, taken = read_start(
                self.config.init_from,
                method=self.config.init_method,
                layer=layer,
                channels=encoder.out_channels[layer],
            )
            # started from a shallower decoder: the convolutions it did not have are new
            self.new_layers = [
                name
                for name, module in self.decoder.named_children()
                if isinstance(module, nn.Conv2d) and f"{name}.weight" not in taken
            ]
        else:
            self.decoder = Decoder(layer, width=width)
        if self.decoder.in_channels != encoder.out_channels[layer]:
            raise BrushworkError(
                f"the decoder takes {self.decoder.in_channels} channels, the "
                f"encoder gives {encoder.out_channels[layer]} at {layer}"
            )
        self.decoder.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.initialize = (
            self.config.init_from is None or bool(self.new_layers)
        ) and not run.resume
        return ReconstructionLoss(self.decoder, encoder, self.config)

    def start_data(self, run: RunOptions, seed: int) -> None:
        self.images = Batches(
            self.files,
            seed=seed,
            what="training",
            batch_size=self.config.batch_size,
            load_size=self.config.load_size,
            crop_size=self.config.crop_size,
            workers=run.workers,
            cache=run.cache_images,
        )

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        assert self.images is not None and self.decoder is not None
        batch = (to_device(next(self.images), device),)
        self.skipped = sorted(self.images.skipped)
        if self.initialize:  # new layers: scaled to the features of the first batch
            self._initialize(batch[0])
            self.initialize = False
        return batch

    @torch.no_grad()
    def _initialize(self, images: Tensor) -> None:
        assert self.encoder is not None and self.decoder is not None
        layer = self.config.layer
        if not self.new_layers:
            self.decoder.initialize(self.encoder(images, [layer])[layer])
            return
        # new layers in front of loaded ones: each new conv mirrors an encoder conv, so its
        # output should look like that conv's input, the features one layer shallower
        only = {}
        for name in self.new_layers:
            block, index = name[4:].split("_")
            below = f"relu{int(block) - 1}_1" if index == "1" else f"relu{block}_1"
            features = self.encoder(images, [below])[below]
            only[name] = float(features.float().std())
        self.decoder.initialize(self.encoder(images, [layer])[layer], only=only)

    def validate(self, device: torch.device) -> dict[str, float]:
        if not self.val_images:
            return {}
        assert self.decoder is not None and self.encoder is not None
        return score_reconstruction(
            self.decoder,
            self.encoder,
            self.config.layer,
            [image.to(device) for image in self.val_images],
            self.precision,
        )

    def details(self) -> dict[str, Any]:
        return {"layer": self.config.layer}
