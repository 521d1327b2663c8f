"""Training an AdaIN decoder (Huang & Belongie 2017, §6) and its variants: the objective
``brushwork train adain`` runs through :func:`brushwork.training.trainer.train`.

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
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods.adain import LAYER, STYLE_LAYERS
from brushwork.methods.feedforward import Decoder
from brushwork.ops import adain, mean_std, pooled_laplacian, reflect_margin
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.data import Batches, list_images
from brushwork.training.objective import DecoderObjective
from brushwork.training.trainer import CropTrainingConfig, RunOptions, TrainingConfig

LOSS_NAMES = ("content", "style", "laplacian", "depth", "total")
DEPTH_BYTES_PER_PIXEL = 2900
"""What the depth variant adds per crop pixel: the estimator on each output, backward
included (measured with the bundled estimator's network)."""


@dataclass
class TrainConfig(CropTrainingConfig):
    """Everything that defines an AdaIN training run; stored in every checkpoint."""

    content_dir: str = option(REQUIRED, "folder of content photos", metavar="DIR")
    style_dir: str = option(REQUIRED, "folder of style images", metavar="DIR")
    iterations: int = redefault(CropTrainingConfig, "iterations", 160_000)
    content_weight: float = option(1.0, "weight of the relu4_1 content loss", minimum=0.0)
    style_weight: float = option(10.0, "weight of the mean/std style loss", minimum=0.0)
    margin: int = option(
        32,
        "pixels mirrored onto each side of a content crop before encoding; the style loss "
        "sees the output without them, as inference crops them (0 = off)",
        minimum=0,
        metavar="PX",
    )
    init_from: str | None = option(
        None,
        "start from this decoder (a bundled name such as adain, or a checkpoint)",
        metavar="NAME|PATH",
    )
    trained_before: ClassVar[dict[str, Any]] = {"margin": 0}
    """What a checkpoint written before a field existed was trained with."""

    def check(self) -> None:
        super().check()
        if self.margin % 8:
            raise BrushworkError(
                f"--margin must be a multiple of 8 (relu4_1's cell), not {self.margin}"
            )

    lap_weight: float = option(
        0.0, "weight of the Laplacian loss to the content (Laplacian variant; 0 = off)", minimum=0.0
    )
    lap_pool: int = option(4, "average-pool size before the Laplacian", minimum=1)
    depth_weight: float = option(
        0.0, "weight of the depth loss to the content (depth variant; 0 = off)", minimum=0.0
    )
    depth_model: str | None = option(
        None,
        "depth estimator: a brushwork model (.safetensors), .onnx or TorchScript "
        "(default: BRUSHWORK_DEPTH_MODEL, else the bundled 'depth', trained on indoor "
        "scenes)",
        metavar="NAME|PATH",
    )
    depth_size: int = option(
        256,
        "an ONNX/TorchScript depth model's input side: crops are resized to PX × PX, "
        "0 keeps their size (MiDaS small 256, DPT 384, Depth Anything 518)",
        minimum=0,
        metavar="PX",
    )
    depth_normalize: str = option(
        "imagenet",
        "an ONNX/TorchScript depth model's input normalization: imagenet "
        "mean/std (MiDaS) or half (mean 0.5, std 0.5; some DPT and Depth Anything exports)",
        choices=("imagenet", "half"),
    )


def style_statistics(features: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
    return [mean_std(features[layer]) for layer in STYLE_LAYERS]


def style_distance(
    statistics: list[tuple[Tensor, Tensor]], targets: list[tuple[Tensor, Tensor]]
) -> Tensor:
    """Huang & Belongie 2017, eq. 13, each layer's term relative to its target's scale."""
    total = targets[0][0].new_zeros((), dtype=torch.float32)
    for (mean, std), (target_mean, target_std) in zip(statistics, targets, strict=True):
        scale = (target_mean.pow(2) + target_std.pow(2)).mean().clamp_min(1e-12)
        total = total + (F.mse_loss(mean, target_mean) + F.mse_loss(std, target_std)) / scale
    return total


class AdaINLoss(nn.Module):
    """The training objective around a decoder (the module DDP wraps): batch of content and
    style crops → named loss terms, ``"total"`` included."""

    def __init__(
        self, decoder: Decoder, encoder: VGG19, config: TrainConfig, depth: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.encoder = encoder
        self.depth = depth
        self.config = config

    def forward(self, content: Tensor, style: Tensor) -> dict[str, Tensor]:
        config = self.config
        layers = list(STYLE_LAYERS)
        # relu4_1's cells must stay aligned: a crop too small for the margin gets less
        margin = min(config.margin, (min(content.shape[-2:]) - 1) // 8 * 8)
        with torch.no_grad():
            framed_content, (top, left) = reflect_margin(content, margin)
            content_f = self.encoder(framed_content, [LAYER])[LAYER]
            style_stats = style_statistics(self.encoder(style, layers))
            target = adain(content_f, *style_stats[-1])
        framed = self.decoder(target)  # the content crop with its mirrored margin
        output = framed[..., top : top + content.shape[-2], left : left + content.shape[-1]]
        output_f = self.encoder(output, layers)
        rows, cols = output_f[LAYER].shape[-2:]  # the AdaIN target inside the margin
        target = target[..., top // 8 : top // 8 + rows, left // 8 : left // 8 + cols].float()
        losses = {
            "content": F.mse_loss(output_f[LAYER].float(), target)
            / target.pow(2).mean().clamp_min(1e-12),
            "style": style_distance(style_statistics(output_f), style_stats),
        }
        total = config.content_weight * losses["content"] + config.style_weight * losses["style"]
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
            losses["depth"] = scale_shift_invariant_loss(self.depth(output.float()), depth_target)
            total = total + config.depth_weight * losses["depth"]
        losses["total"] = total
        return losses


def training_encoder(
    encoder: VGG19 | None, layer: str, device: torch.device, weights: str | None
) -> VGG19:
    """The frozen encoder of a decoder's training: the one given, else the shared
    pretrained VGG-19 (copied when it must move, so the shared one is never changed)."""
    if encoder is None:
        from brushwork.encoders import cached_vgg19

        encoder = cached_vgg19(layer, "max", "cpu", weights)
    if next(encoder.parameters()).device != device or not encoder.channels_last:
        encoder = copy.deepcopy(encoder).to(device).use_channels_last(True)
    return encoder.requires_grad_(False).eval()


AdaINConfigT = TypeVar("AdaINConfigT", bound=CropTrainingConfig, covariant=True)
"""An AdaIN objective's configuration: :class:`TrainConfig`, or a variant's own (whose
objective overrides what reads :class:`TrainConfig`'s fields)."""


class AdaINObjective(DecoderObjective[AdaINConfigT]):
    """``brushwork train adain``: an AdaIN decoder (and its Laplacian and depth variants).
    ``AdaINObjective(config)`` is an ``AdaINObjective[TrainConfig]``; a variant with a
    configuration of its own (:class:`~brushwork.training.temporal.TemporalAdaINObjective`)
    subclasses ``AdaINObjective[ItsConfig]`` and overrides the methods that take a
    ``TrainConfig`` (their ``self`` says so)."""

    name = "adain"
    description = "train an AdaIN decoder on folders of photos and paintings"
    config_class: ClassVar[type[TrainingConfig]] = TrainConfig
    method = "adain"
    log_names: ClassVar[tuple[str, ...]] = LOSS_NAMES
    free = frozenset({"iterations", "content_dir", "style_dir", "depth_model", "init_from"})
    layer = LAYER
    bytes_per_pixel = 5200
    input_fields: ClassVar[tuple[str, ...]] = (
        "content_dir",
        "style_dir",
        "depth_model",
        "init_from",
    )

    def __init__(
        self,
        config: AdaINConfigT,
        *,
        encoder: VGG19 | None = None,
        depth: nn.Module | None = None,
    ) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.depth = depth
        self.decoder: Decoder | None = None
        self.contents: Batches | None = None
        self.styles: Batches | None = None

    def pixel_bytes(self: AdaINObjective[TrainConfig]) -> float:
        depth = DEPTH_BYTES_PER_PIXEL if self.config.depth_weight > 0 else 0
        crop = self.config.crop_size
        framed = ((crop + 2 * self.config.margin) / crop) ** 2  # the margin's pixels too
        return self.bytes_per_pixel * framed + depth

    def check_inputs(self: AdaINObjective[TrainConfig], run: RunOptions) -> None:
        config = self.config
        self.content_files = list_images(config.content_dir, "content")
        self.style_files = list_images(config.style_dir, "style")
        if config.init_from is not None:  # a missing or foreign file fails before VGG
            from brushwork import models
            from brushwork.checkpoints import load_checkpoint

            path = models.resolve(config.init_from, method="adain")
            load_checkpoint(path, method="adain", what="model")
        if config.depth_weight > 0 and config.depth_model is None:
            config.depth_model = os.environ.get("BRUSHWORK_DEPTH_MODEL") or "depth"
        if self.depth is None and config.depth_weight > 0:  # a bad file fails before VGG
            from brushwork.depth import NORMALIZATIONS, load_depth_model

            mean, std = NORMALIZATIONS[config.depth_normalize]
            self.depth = load_depth_model(
                config.depth_model, input_size=config.depth_size or None, mean=mean, std=std
            )

    def start_decoder(self: AdaINObjective[TrainConfig], channels: int) -> Decoder:
        """A new decoder, or the one ``init_from`` names (an AdaIN model)."""
        if self.config.init_from is None:
            return Decoder(LAYER, width=channels / 512)
        from brushwork.training.decoders import read_start

        return read_start(self.config.init_from, method="adain", layer=LAYER, channels=channels)[0]

    def build(
        self: AdaINObjective[TrainConfig],
        device: torch.device,
        precision: Precision,
        run: RunOptions,
    ) -> nn.Module:
        encoder = training_encoder(self.encoder, LAYER, device, run.weights)
        self.encoder = encoder
        torch.manual_seed(self.config.seed)
        self.decoder = self.start_decoder(encoder.out_channels[LAYER])
        self.decoder.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        depth = None
        if self.depth is not None:
            depth = self.depth.to(device).requires_grad_(False).eval()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        return AdaINLoss(self.decoder, encoder, self.config, depth)
