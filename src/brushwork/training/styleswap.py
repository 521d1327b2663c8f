"""Training Style Swap's inverse network (Chen & Schmidt 2016, §4): a decoder from relu3_1
that turns swapped features into an image in one pass, replacing the optimization of
:mod:`brushwork.methods.styleswap` (``brushwork stylize -m styleswap-inverse``).

As in the paper (and its reference code, ``train-vgg-decoder.lua``), the decoder learns to
invert features it will meet: each step encodes a batch of content crops c and style crops
s, swaps every content–style pair (:func:`brushwork.ops.style_swap`, 3×3 patches), and trains
on all three kinds of latent z ∈ {Φ(c), Φ(s), SS(Φ(c), Φ(s))}::

    total = ‖Φ(g(z)) − z‖² / mean(z²) + tv_weight · TV(g(z))

(the paper's feature loss as a relative error, and its total-variation term). The decoder
has the WCT relu3_1 decoder's shape, and may start from it (``init_from``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import total_variation_loss
from brushwork.methods.feedforward import Decoder, decoder_width
from brushwork.ops import style_swap
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.adain import training_encoder
from brushwork.training.data import list_images
from brushwork.training.decoders import load_val_images, read_start, score_reconstruction
from brushwork.training.objective import DecoderObjective
from brushwork.training.trainer import CropTrainingConfig, RunOptions

LAYER = "relu3_1"
LOSS_NAMES = ("feature", "tv", "total", "val_psnr", "val_feature")


@dataclass
class InverseConfig(CropTrainingConfig):
    """What the inverse network learns from; stored in its checkpoints."""

    content_dir: str = option(REQUIRED, "folder of content photos", metavar="DIR")
    style_dir: str = option(REQUIRED, "folder of style images", metavar="DIR")
    init_from: str | None = option(
        "wct-relu3_1",
        "start from this relu3_1 decoder (a bundled name or a checkpoint; none: random)",
        metavar="NAME|PATH",
    )
    init_method: str = option(
        "wct", "the method of --init-from's checkpoint", choices=("wct", "styleswap")
    )
    val_dir: str | None = option(
        None,
        "folder of held-out images whose reconstruction is scored every --val-every steps",
        metavar="DIR",
    )
    patch_size: int = option(3, "side of the swapped patches, in feature pixels", minimum=1)
    batch_size: int = redefault(
        CropTrainingConfig,
        "batch_size",
        4,
        "content and style crops per batch (3× as many latents)",
    )
    tv_weight: float = option(1.0, "weight of the total-variation loss", minimum=0.0)
    load_size: int | None = redefault(CropTrainingConfig, "load_size", 288)


def check_start(model: str, method: str) -> None:
    """Refuse, before any weights load, a start that is missing, unreadable, of another
    method or a decoder from another layer than relu3_1 (whose shared lower layers
    :func:`~brushwork.methods.feedforward.read_decoder` alone would take)."""
    from brushwork import models
    from brushwork.checkpoints import load_checkpoint

    path = models.resolve(model, method=method)
    found = load_checkpoint(path, method=method, what="model").encoder.split(":")
    if len(found) == 3 and found[1] != LAYER:
        raise BrushworkError(
            f"model {path} is a decoder from {found[1]}, not from {LAYER}; "
            f"the inverse network starts from a {LAYER} decoder"
        )


class InverseLoss(nn.Module):
    """Decoder + frozen encoder: content and style crops → the inverse network's losses."""

    def __init__(self, decoder: Decoder, encoder: VGG19, config: InverseConfig) -> None:
        super().__init__()
        self.decoder = decoder
        self.encoder = encoder
        self.config = config

    def forward(self, content: Tensor, style: Tensor) -> dict[str, Tensor]:
        with torch.no_grad():
            content_f = self.encoder(content, [LAYER])[LAYER]
            style_f = self.encoder(style, [LAYER])[LAYER]
            swapped = torch.cat(
                [
                    style_swap(
                        content_f[i : i + 1].float(),
                        style_f[i : i + 1].float(),
                        self.config.patch_size,
                    ).to(content_f.dtype)
                    for i in range(len(content_f))
                ]
            )
            latents = torch.cat([content_f, style_f, swapped]).contiguous(
                memory_format=torch.channels_last
            )
        output = self.decoder(latents)
        features = self.encoder(output, [LAYER])[LAYER].float()
        target = latents.float()
        feature = F.mse_loss(features, target) / target.pow(2).mean().clamp_min(1e-12)
        tv = total_variation_loss(output.float())
        return {"feature": feature, "tv": tv, "total": feature + self.config.tv_weight * tv}


class InverseObjective(DecoderObjective[InverseConfig]):
    """``brushwork train styleswap-inverse``: Style Swap's inverse network."""

    name = "styleswap-inverse"
    description = "train Style Swap's inverse network (relu3_1 decoder of swapped features)"
    config_class = InverseConfig
    method = "styleswap"
    layer = LAYER
    log_names = LOSS_NAMES
    free = frozenset({"iterations", "content_dir", "style_dir", "val_dir", "init_from"})
    bytes_per_pixel = 11_000  # three latents (content, style, swapped) per content crop
    input_fields = ("content_dir", "style_dir", "val_dir", "init_from")

    def __init__(self, config: InverseConfig, *, encoder: VGG19 | None = None) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.decoder: Decoder | None = None
        self.val_images: list[Tensor] = []

    def check_inputs(self, run: RunOptions) -> None:
        self.content_files = list_images(self.config.content_dir, "content")
        self.style_files = list_images(self.config.style_dir, "style")
        if self.config.val_dir is not None:
            self.val_images = load_val_images(self.config.val_dir)
        if self.config.init_from is not None:
            check_start(self.config.init_from, self.config.init_method)

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        encoder = training_encoder(self.encoder, LAYER, device, run.weights)
        self.encoder = encoder
        self.precision = precision
        torch.manual_seed(self.config.seed)
        width = decoder_width(LAYER, encoder.out_channels[LAYER])
        if self.config.init_from is not None:
            self.decoder, _ = read_start(
                self.config.init_from,
                method=self.config.init_method,
                layer=LAYER,
                channels=encoder.out_channels[LAYER],
            )
        else:
            self.decoder = Decoder(LAYER, width)
        if self.decoder.in_channels != encoder.out_channels[LAYER]:
            raise BrushworkError(
                f"the decoder takes {self.decoder.in_channels} channels, the "
                f"encoder gives {encoder.out_channels[LAYER]} at {LAYER}"
            )
        self.decoder.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.initialize = self.config.init_from is None and not run.resume
        return InverseLoss(self.decoder, encoder, self.config)

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        batch = super().batch(device)
        if self.initialize:  # a new decoder: scaled to the features of the first batch
            assert self.encoder is not None and self.decoder is not None
            with torch.no_grad():
                self.decoder.initialize(self.encoder(batch[0], [LAYER])[LAYER])
            self.initialize = False
        return batch

    def validate(self, device: torch.device) -> dict[str, float]:
        if not self.val_images:
            return {}
        assert self.decoder is not None and self.encoder is not None
        return score_reconstruction(
            self.decoder,
            self.encoder,
            LAYER,
            [image.to(device) for image in self.val_images],
            self.precision,
        )
