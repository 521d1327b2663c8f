"""AdaIN: Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive
Instance Normalization" (ICCV).

One forward pass for any style image: encode content and style with VGG-19 up to relu4_1,
give the content features the style's channel means and deviations (AdaIN, eq. 8), and
decode the result with a network trained for it (:class:`Decoder`, trained by
:mod:`brushwork.training.adain`)::

    t = AdaIN(f(c), f(s))                      (eq. 8)
    T(c, s, α) = g((1 − α)·f(c) + α·t)         (eq. 14: content–style trade-off)

Several styles are interpolated in feature space, t = Σᵢ wᵢ·AdaIN(f(c), f(sᵢ)) (§7.2); with
masks each style paints its own region, AdaIN using that region's content statistics, and
pixels no mask covers keep the content features (§7.3).

The output has the input's size: the content is reflection-padded to a multiple of 8 (the
encoder pools three times), and to at least 16 px a side (the decoder's reflection padding
needs relu4_1 features of at least 2×2; tiny images are replicate-padded), and the decoded
image cropped back.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.checkpoints import Checkpoint, load_checkpoint
from brushwork.encoders import VGG19, downsample_mask
from brushwork.errors import BrushworkError
from brushwork.methods.base import (
    GIB,
    Method,
    Options,
    StyleTarget,
    StylizeResult,
    blend_weights,
    memory_limit,
    option,
    style_targets,
)
from brushwork.ops import adain, mean_std

LAYER = "relu4_1"
"""The encoder layer AdaIN works at."""
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""Layers whose statistics the training's style loss matches (paper, §6.2)."""
BUNDLED = {
    "adain": "adain.safetensors",
    "adain-laplacian": "adain-laplacian.safetensors",
    "adain-depth": "adain-depth.safetensors",
}
"""Decoders shipped with brushwork (see docs/models/), by name."""

# The decoder mirrors VGG-19 from relu4_1 back to the image: (name, in, out, upsample after).
_DECODER_LAYERS = (
    ("conv4_1", 512, 256, True),
    ("conv3_4", 256, 256, False),
    ("conv3_3", 256, 256, False),
    ("conv3_2", 256, 256, False),
    ("conv3_1", 256, 128, True),
    ("conv2_2", 128, 128, False),
    ("conv2_1", 128, 64, True),
    ("conv1_2", 64, 64, False),
    ("conv1_1", 64, 3, False),
)


class Decoder(nn.Sequential):
    """Feature maps at relu4_1 → RGB image (roughly [0, 1]; the method clamps).

    The encoder mirrored (paper §6.1): pooling replaced by nearest-neighbour upsampling,
    reflection padding against border artifacts, no normalization layers. ``width`` scales
    the channels like :class:`~brushwork.encoders.VGG19`'s (tiny decoders for tests).
    """

    def __init__(self, width: float = 1.0) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for name, inputs, outputs, upsample in _DECODER_LAYERS:
            inputs = max(1, round(inputs * width))
            outputs = 3 if name == "conv1_1" else max(1, round(outputs * width))
            # reflection padding inside the conv: the same output as a ReflectionPad2d module
            # before it, 1-8 % faster on CPUs in benchmarks/bench_adain.py
            layers[name] = nn.Conv2d(inputs, outputs, 3, padding=1, padding_mode="reflect")
            if name != "conv1_1":
                layers[f"{name}_relu"] = nn.ReLU(inplace=True)
            if upsample:
                layers[f"{name}_up"] = nn.Upsample(scale_factor=2, mode="nearest")
        super().__init__(layers)

    @property
    def in_channels(self) -> int:
        return self.conv4_1.in_channels  # type: ignore[union-attr,return-value]


def encoder_id(encoder: VGG19) -> str:
    """How a checkpoint names the encoder it was trained against."""
    return f"vgg19:{LAYER}:{encoder.out_channels[LAYER]}"


def bundled_model(name: str) -> Path:
    """Path of a decoder shipped with brushwork."""
    return Path(str(resources.files("brushwork") / "models" / BUNDLED[name]))


def resolve_model(model: str | Path | None) -> Path:
    """A bundled model's name (default ``"adain"``) or a checkpoint path → its path."""
    if model is None:
        model = "adain"
    if str(model) in BUNDLED:
        path = bundled_model(str(model))
        if not path.is_file():
            raise BrushworkError(
                f"the bundled model {model!r} is missing from this installation ({path}); "
                "reinstall brushwork or pass --model PATH"
            )
        return path
    return Path(model).expanduser()


def load_decoder(model: str | Path | None, encoder: VGG19) -> tuple[Decoder, Checkpoint]:
    """The trained decoder of a checkpoint, checked against ``encoder``."""
    path = resolve_model(model)
    checkpoint = load_checkpoint(path, method="adain", encoder=encoder_id(encoder),
                                 what="model")
    channels = encoder.out_channels[LAYER]
    decoder = Decoder(width=channels / 512)
    expected = decoder.state_dict()
    if set(checkpoint.tensors) != set(expected) or any(
        checkpoint.tensors[k].shape != v.shape for k, v in expected.items()
    ):
        raise BrushworkError(f"model {path} does not hold an AdaIN decoder for {channels} "
                             "encoder channels")
    decoder.load_state_dict({k: v.float() for k, v in checkpoint.tensors.items()})
    return decoder.requires_grad_(False).eval(), checkpoint


def check_alpha(alpha: Any) -> None:
    if (not isinstance(alpha, (int, float)) or isinstance(alpha, bool)
            or not 0.0 <= alpha <= 1.0):
        raise BrushworkError(f"alpha must be a number in [0, 1], not {alpha}")


@dataclass
class AdaINOptions(Options):
    alpha: float = option(
        1.0, "content–style trade-off in feature space: 0 keeps the content, 1 full style"
    )
    model: str | None = option(
        None, "decoder: a bundled name (adain, adain-laplacian, adain-depth) or a checkpoint "
        "file; "
        "default adain"
    )

    def validate(self) -> None:
        check_alpha(self.alpha)


def stylized_features(content: Tensor, styles: Sequence[tuple[Tensor, Tensor]],
                      weights: Sequence[float], masks: Sequence[Tensor | None],
                      alpha: float) -> Tensor:
    """The decoder's input: AdaIN targets of each style (statistics ``(mean, std)``),
    interpolated by ``weights`` or placed by ``masks`` (at the features' resolution), then
    mixed with the content features by ``alpha`` (eq. 14). With masks a style's weight is
    its strength in its region (capped at 1; 0 leaves the region unstyled)."""
    if any(m is not None for m in masks):
        target = torch.zeros_like(content)
        covered = torch.zeros_like(content[:, :1])
        for (mean, std), weight, mask in zip(styles, weights, masks, strict=True):
            if weight == 0:
                continue
            region = torch.ones_like(covered) if mask is None else mask
            if float(region.sum()) == 0:
                continue
            strength = min(weight, 1.0)
            styled = adain(content, mean, std, region)
            target = target + region * (strength * styled + (1 - strength) * content)
            covered = covered + region
        # overlapping masks are averaged; uncovered pixels keep the content
        target = torch.where(covered > 1, target / covered.clamp_min(1), target)
        target = target + (1 - covered.clamp(max=1)) * content
    else:
        target = sum(w * adain(content, mean, std)
                     for (mean, std), w in zip(styles, weights, strict=True))
    return alpha * target + (1 - alpha) * content


MIN_SIDE = 16
"""Content sides are padded to at least this: relu4_1 features of 2×2, the least the
decoder's 3×3 reflection padding takes."""


def pad_to_multiple(image: Tensor, multiple: int = 8,
                    minimum: int = 0) -> tuple[Tensor, tuple[int, int]]:
    """Reflection-pad the bottom and right of (B, C, H, W) to multiples of ``multiple`` and
    at least ``minimum`` (replicate padding where the image is too small to reflect);
    returns the padded tensor and the original (H, W)."""
    height, width = image.shape[-2:]
    bottom = max(-height % multiple, minimum - height)
    right = max(-width % multiple, minimum - width)
    if bottom or right:
        mode = "reflect" if min(height, width) > max(bottom, right) else "replicate"
        image = F.pad(image, (0, right, 0, bottom), mode=mode)
    return image, (height, width)


BYTES_PER_PIXEL = 850
"""Peak memory per content pixel of one stylization, measured with ``brushwork stylize -m
adain`` on a CPU: peak RSS 1.21 GB at 1024², 3.80 GB at 2048² (the largest activations, 64
float32 channels at full resolution, are 256 bytes per pixel and live a few at a time)."""
FIXED_BYTES = 400 * 2**20
"""Interpreter, torch, encoder and decoder weights."""


class AdaIN(Method):
    """Feed-forward arbitrary style transfer with a trained decoder (Huang & Belongie 2017)."""

    name = "adain"
    description = ("AdaIN (Huang & Belongie 2017): one forward pass for any style, "
                   "trained decoder")
    options_class = AdaINOptions

    def __init__(self, options: Options | None = None, *, encoder: VGG19 | None = None,
                 **changes: Any) -> None:
        super().__init__(options, **changes)
        self.encoder = encoder
        self._decoder: tuple[Any, Decoder] | None = None

    def encoder_request(self) -> tuple[str, str]:
        return LAYER, "max"

    def min_style_side(self) -> int:
        return 8

    def check_memory(self, height: int, width: int, device: torch.device,
                     limit: int | None = None) -> None:
        limit, source = memory_limit(limit, device)
        padded = (height + -height % 8) * (width + -width % 8)
        need = FIXED_BYTES + BYTES_PER_PIXEL * padded
        if need > limit:
            raise BrushworkError(
                f"a {width}x{height} adain run needs about {need / GIB:.1f} GiB, over {source} "
                f"({limit / GIB:.1f} GiB); use a smaller --size, or a machine with more memory"
            )

    def decoder(self) -> Decoder:
        """The decoder of :attr:`options.model`, loaded once per model and encoder."""
        if self.encoder is None:
            raise BrushworkError("adain needs an encoder (set .encoder or use brushwork.run)")
        key = (self.options.model, id(self.encoder))  # type: ignore[attr-defined]
        if self._decoder is None or self._decoder[0] != key:
            decoder, _ = load_decoder(self.options.model, self.encoder)  # type: ignore[attr-defined]
            parameter = next(self.encoder.parameters())
            decoder = decoder.to(parameter.device)
            if self.encoder.channels_last:
                decoder = decoder.to(memory_format=torch.channels_last)
            self._decoder = (key, decoder)
        return self._decoder[1]

    def stylize(
        self,
        content: Tensor,
        style: Tensor | StyleTarget | Sequence[StyleTarget],
        *,
        init: Tensor | None = None,
        callbacks: list[Callable[[Any], None]] | None = None,
    ) -> StylizeResult:
        if init is not None:
            raise BrushworkError("adain cannot start from a given image")
        start = time.perf_counter()
        targets = style_targets(style, content)
        for number, target in enumerate(targets, 1):
            style_height, style_width = target.image.shape[-2:]
            if min(style_height, style_width) < self.min_style_side():
                raise BrushworkError(
                    f"style {number} is {style_width}×{style_height} px; adain needs at least "
                    f"{self.min_style_side()}×{self.min_style_side()} px"
                )
        options: AdaINOptions = self.options  # type: ignore[assignment]
        decoder = self.decoder()
        encoder = self.encoder
        assert encoder is not None
        padded, (height, width) = pad_to_multiple(content, minimum=MIN_SIDE)
        with torch.inference_mode():
            features = encoder(padded, [LAYER])[LAYER]
            statistics = [mean_std(encoder(t.image, [LAYER])[LAYER]) for t in targets]
            masks = [
                None if t.mask is None
                else downsample_mask(pad_to_multiple(t.mask, minimum=MIN_SIDE)[0], LAYER)
                for t in targets
            ]
            weights = blend_weights(targets)
            mixed = stylized_features(features, statistics, weights, masks, options.alpha)
            image = decoder(mixed)[..., :height, :width].clamp(0, 1)
        return StylizeResult(image.contiguous().clone(), {}, time.perf_counter() - start,
                             {"model": str(resolve_model(options.model))})
