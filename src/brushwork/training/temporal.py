"""Fine-tuning an AdaIN decoder for video: ``brushwork train adain-temporal``, a temporal
loss on synthetic motion (Wang, Yang, Wang & Zhou 2020, "Consistent Video Style Transfer via
Relaxation and Regularization", IEEE TIP: ReReVST's training needs no video).

Each step takes content crops c and style crops s, makes a second "frame" by moving each
crop along a random smooth flow F (a small global affine motion plus a coarse random field,
upsampled: :func:`random_flow`) and adding a little noise, c' = warp(c, F) + n, stylizes both
with the same style statistics, o = g(AdaIN(f(c), f(s))) and o' = g(AdaIN(f(c'), f(s))),
and asks the second output to be the first one moved along the same flow::

    temporal = Σ M·|o' − warp(o, F)| / (3 Σ M)        (L1; M: where p + F(p) is inside)
    total    = content_weight·content + style_weight·style + temporal_weight·temporal

where content and style are the AdaIN training terms of :mod:`brushwork.training.adain`
(relative errors, eq. 12-13 of Huang & Belongie 2017), averaged over both frames. The
decoder starts from a trained one (``init_from``, by default the bundled ``adain``:
:func:`brushwork.methods.feedforward.read_decoder`) and the checkpoints are AdaIN models:
``brushwork video -m adain --model runs/adain-temporal/model.safetensors``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.encoders import VGG19
from brushwork.methods.adain import LAYER, STYLE_LAYERS
from brushwork.methods.feedforward import Decoder, decoder_width, read_decoder
from brushwork.ops import adain, mean_std
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.adain import AdaINObjective, training_encoder
from brushwork.training.data import list_images
from brushwork.training.trainer import CropTrainingConfig, RunOptions

LOSS_NAMES = ("content", "style", "temporal", "total")


@dataclass
class TemporalConfig(CropTrainingConfig):
    """What a temporal fine-tuning run learns from; stored in every checkpoint."""

    content_dir: str = option(REQUIRED, "folder of content photos", metavar="DIR")
    style_dir: str = option(REQUIRED, "folder of style images", metavar="DIR")
    init_from: str = option(
        "adain",
        "the decoder to fine-tune: a bundled AdaIN model name or a "
        "checkpoint of `brushwork train adain`",
        metavar="NAME|PATH",
    )
    batch_size: int = redefault(
        CropTrainingConfig,
        "batch_size",
        4,
        "content crops per batch and process (each makes two frames)",
    )
    learning_rate: float = redefault(CropTrainingConfig, "learning_rate", 2e-5)
    content_weight: float = option(1.0, "weight of the relu4_1 content loss", minimum=0.0)
    style_weight: float = option(10.0, "weight of the mean/std style loss", minimum=0.0)
    temporal_weight: float = option(
        20.0,
        "weight of the temporal loss between the second "
        "output and the first one moved along the flow",
        minimum=0.0,
    )
    motion: float = option(
        6.0,
        "typical displacement of the synthetic flows, in pixels of the crop",
        minimum=0.0,
        maximum=64.0,
        metavar="PX",
    )
    noise: float = option(
        0.02,
        "deviation of the noise added to the second frame ([0, 1] images)",
        minimum=0.0,
        maximum=0.5,
    )

    def check(self) -> None:
        from brushwork.errors import BrushworkError

        super().check()
        if self.temporal_weight == 0:
            raise BrushworkError(
                "temporal-weight must be > 0: without it this is `brushwork train adain`"
            )


def random_flow(
    batch: int, height: int, width: int, motion: float, generator: torch.Generator | None = None
) -> Tensor:
    """Random smooth flows (B, 2, H, W) in pixels, as ReReVST's synthetic motion: a global
    translation (deviation ``motion``), rotation (±2°) and zoom (±3 %) about the centre,
    plus a local field from a 4×4 grid of displacements (deviation ``motion`` / 2)
    upsampled bicubically."""

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32) - (height - 1) / 2,
        torch.arange(width, dtype=torch.float32) - (width - 1) / 2,
        indexing="ij",
    )
    angle = uniform(batch) * math.radians(2)
    zoom = 1 + uniform(batch) * 0.03
    shift = torch.randn(batch, 2, generator=generator) * motion
    cos, sin = (torch.cos(angle) * zoom)[:, None, None], (torch.sin(angle) * zoom)[:, None, None]
    affine_x = cos * xs - sin * ys - xs + shift[:, 0, None, None]
    affine_y = sin * xs + cos * ys - ys + shift[:, 1, None, None]
    coarse = torch.randn(batch, 2, 4, 4, generator=generator) * (motion / 2)
    local = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return torch.stack([affine_x, affine_y], 1) + local


def inside_mask(flow: Tensor) -> Tensor:
    """(B, 1, H, W): 1 where p + flow(p) lies inside the image."""
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(height, device=flow.device, dtype=flow.dtype),
        torch.arange(width, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).to(flow)[:, None]


def temporal_l1(second: Tensor, first_moved: Tensor, mask: Tensor) -> Tensor:
    """Σ M·|second − first_moved| / (C Σ M): ReReVST's temporal term."""
    difference = (second.float() - first_moved.float()).abs() * mask
    return difference.sum() / (mask.sum() * second.shape[1]).clamp_min(1.0)


class TemporalAdaINLoss(nn.Module):
    """Decoder + frozen encoder: a batch of content and style crops → content, style and
    temporal terms (the module DDP wraps)."""

    def __init__(self, decoder: Decoder, encoder: VGG19, config: TemporalConfig) -> None:
        super().__init__()
        self.decoder = decoder
        self.encoder = encoder
        self.config = config
        self.generator = torch.Generator()

    def forward(self, content: Tensor, style: Tensor) -> dict[str, Tensor]:
        from brushwork.video.flow import warp

        config = self.config
        batch, _, height, width = content.shape
        layers = list(STYLE_LAYERS)
        with torch.no_grad():
            flow = random_flow(batch, height, width, config.motion, self.generator).to(
                content.device
            )
            noise = torch.randn(content.shape, generator=self.generator).to(content)
            second = (warp(content.float(), flow) + config.noise * noise).clamp(0, 1)
            frames = torch.cat([content, second.to(content.dtype)]).contiguous(
                memory_format=torch.channels_last
            )
            features = self.encoder(frames, [LAYER])[LAYER]
            style_stats = [mean_std(f) for f in self.encoder(style, layers).values()]
            style_stats = [(m.repeat(2, 1, 1, 1), s.repeat(2, 1, 1, 1)) for m, s in style_stats]
            target = adain(features, *style_stats[-1])
        output = self.decoder(target)
        output_f = self.encoder(output, layers)
        target = target.float()
        losses = {
            "content": F.mse_loss(output_f[LAYER].float(), target)
            / target.pow(2).mean().clamp_min(1e-12)
        }
        style_loss = output.new_zeros((), dtype=torch.float32)
        for layer, (target_mean, target_std) in zip(layers, style_stats, strict=True):
            mean, std = mean_std(output_f[layer])
            scale = (target_mean.pow(2) + target_std.pow(2)).mean().clamp_min(1e-12)
            style_loss = (
                style_loss + (F.mse_loss(mean, target_mean) + F.mse_loss(std, target_std)) / scale
            )
        losses["style"] = style_loss
        first, later = output[:batch].float(), output[batch:].float()
        moved = warp(first, flow)
        losses["temporal"] = temporal_l1(later, moved, inside_mask(flow))
        losses["total"] = (
            config.content_weight * losses["content"]
            + config.style_weight * style_loss
            + config.temporal_weight * losses["temporal"]
        )
        return losses


class TemporalAdaINObjective(AdaINObjective[TemporalConfig]):
    """``brushwork train adain-temporal``: an AdaIN decoder fine-tuned for steady video."""

    name = "adain-temporal"
    description = (
        "fine-tune an AdaIN decoder with a temporal loss on synthetic motion (no video needed)"
    )
    config_class = TemporalConfig
    method = "adain"
    log_names = LOSS_NAMES
    free = frozenset({"iterations", "content_dir", "style_dir", "init_from"})
    bytes_per_pixel = 11_300  # two frames per content crop
    input_fields = ("content_dir", "style_dir", "init_from")

    def pixel_bytes(self) -> float:
        return self.bytes_per_pixel  # no depth term

    def check_inputs(self, run: RunOptions) -> None:
        from brushwork import models

        config = self.config
        self.content_files = list_images(config.content_dir, "content")
        self.style_files = list_images(config.style_dir, "style")
        models.resolve(config.init_from, method="adain")  # a bad name fails before VGG

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        from brushwork.errors import BrushworkError

        encoder = training_encoder(self.encoder, LAYER, device, run.weights)
        self.encoder = encoder
        torch.manual_seed(self.config.seed)
        channels = encoder.out_channels[LAYER]
        self.decoder, taken = read_decoder(
            self.config.init_from, method="adain", layer=LAYER, width=decoder_width(LAYER, channels)
        )
        if taken != len(self.decoder.state_dict()):
            raise BrushworkError(
                f"{self.config.init_from} is not a whole relu4_1 AdaIN "
                f"decoder for {channels} encoder channels"
            )
        self.decoder.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.loss = TemporalAdaINLoss(self.decoder, encoder, self.config)
        return self.loss

    def before_step(self, step: int) -> None:
        # the synthetic motion of each step depends on the seed and the step alone
        self.loss.generator.manual_seed(self.config.seed * 1_000_003 + step)
