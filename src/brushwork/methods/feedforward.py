"""The one-pass methods built on trained decoders that mirror VGG-19, run level by level, with
styles mixed by weight or by region.

Such a method (AdaIN, WCT, ...) is a list of *levels* (encoder layers, applied in order) and
a *transform* of the content's features at a level given a style's statistics there. Per
level: pad the image to the encoder's stride, encode it to the level's layer, transform the
features for each style, mix the results (:func:`mix_styles`: blended by weight, or placed by
masks, then traded off against the content by ``alpha``), decode, crop back (the plan,
checks, progress and result are :class:`~brushwork.methods.onepass.OnePassMethod`'s). AdaIN
is one level (relu4_1) with the mean/std transform; WCT five (relu5_1 → relu1_1) with
whitening and coloring.

The decoders (:class:`Decoder`) mirror VGG-19 from any relu layer relu1_1 … relu5_1: the
encoder's convolutions in reverse with inputs and outputs swapped, nearest-neighbour
upsampling where the encoder pooled, reflection padding, no normalization (Huang & Belongie
2017 §6.1; Li et al. 2017 §3.1). They load from the model registry (:mod:`brushwork.models`)
or a checkpoint file, once per process (:func:`load_decoder`).
"""

from __future__ import annotations

import functools
import os
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from brushwork import frozen, models
from brushwork.checkpoints import load_checkpoint
from brushwork.encoders import VGG19, downsample_mask, inference_peak_elements, pools_before
from brushwork.encoders.vgg import CONV_LAYERS, LAYER_INDEX
from brushwork.errors import BrushworkError
from brushwork.methods.base import OptionsT, PreparedStyle, StyleTarget, blend_weights
from brushwork.methods.onepass import OnePassMethod, padded_pass
from brushwork.ops import STYLE_CONTEXT, STYLE_TILE, STYLE_TILE_LIMIT, Moments, encoded_moments

DECODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""The layers a :class:`Decoder` can start from."""
_CHANNELS = {"1": 64, "2": 128, "3": 256, "4": 512, "5": 512}
LIGHT = {"relu5_1": ("conv4_4", "conv4_3", "conv4_2")}
"""Mirrors left out, so that every shipped decoder stays under 16 MB in float16: the relu5_1
decoder goes from its conv5_1 straight to the relu4_1 decoder's layers (5.9 M parameters
instead of 12.9 M)."""


def _mirrored_convs(layer: str) -> list[tuple[str, int, int, bool]]:
    """(name, in, out, upsample after) of the decoder from ``layer``: VGG-19's convolutions
    up to it, reversed, inputs and outputs swapped."""
    if layer not in DECODER_LAYERS:
        raise BrushworkError(
            f"decoders start from one of {', '.join(DECODER_LAYERS)}, not {layer!r}"
        )
    convs = [
        c
        for c in CONV_LAYERS
        if LAYER_INDEX[c] <= LAYER_INDEX[layer] and c not in LIGHT.get(layer, ())
    ]
    result = []
    for name in reversed(convs):
        block, index = name[4:].split("_")
        out_channels = _CHANNELS[block]
        if index == "1":
            in_channels = 3 if block == "1" else _CHANNELS[str(int(block) - 1)]
        else:
            in_channels = out_channels
        result.append((name, out_channels, in_channels, index == "1" and block != "1"))
    return result


class Decoder(nn.Sequential):
    """Features at ``layer`` → RGB image (roughly [0, 1]; methods clamp).

    The relu5_1 decoder is lighter than a full mirror (see :data:`LIGHT`).

    ``width`` scales the channels like :class:`~brushwork.encoders.VGG19`'s (tiny decoders
    for tests). Module names follow the encoder convolution each one mirrors (``conv4_1``,
    ``conv3_4``, ... ``conv1_1``), so checkpoints name their tensors alike.
    """

    def __init__(self, layer: str = "relu4_1", width: float = 1.0) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for name, inputs, outputs, upsample in _mirrored_convs(layer):
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
        self.layer = layer

    @property
    def in_channels(self) -> int:
        return next(iter(self.children())).in_channels  # type: ignore[return-value]

    @torch.no_grad()
    def initialize(
        self,
        features: Tensor,
        mean: float = 0.45,
        std: float = 0.25,
        only: dict[str, float] | None = None,
    ) -> None:
        """Data-dependent initialization (LSUV, Mishkin & Matas 2016): scale each
        convolution so that, on the batch ``features``, its output has unit deviation (the
        last: the deviation ``std`` and mean ``mean`` of an image). VGG-19's raw Caffe
        features are large (hundreds at relu1_1), so PyTorch's default initialization
        starts a decoder thousands of times too loud and training crawls out of it.

        ``only`` (conv name → output deviation) scales just those convolutions, leaving the
        others as they are (new layers in front of loaded ones: a relu5_1 decoder's conv5_1
        scaled to the deviation of the relu4_1 features its loaded layers expect)."""
        x = features.float()
        convs = [m for m in self if isinstance(m, nn.Conv2d)]
        for name, module in self.named_children():
            if isinstance(module, nn.Conv2d) and (only is None or name in only):
                last = module is convs[-1]
                bias = cast(Tensor, module.bias)  # a decoder's convolutions all have one
                bias.zero_()
                spread = module(x).std().clamp_min(1e-12)
                wanted = only[name] if only is not None else std if last else 1.0
                module.weight.mul_(wanted / spread)
                if last and only is None:
                    bias.fill_(mean)
            x = module(x)


def decoder_width(layer: str, channels: int) -> float:
    """The width multiplier of a decoder from ``layer`` for an encoder with ``channels``
    there (1 for the real VGG-19)."""
    return channels / _CHANNELS[layer[4]]


def decoder_id(layer: str, channels: int) -> str:
    """How a checkpoint names the encoder (network, layer, channels) a decoder decodes."""
    return f"vgg19:{layer}:{channels}"


def min_side(layer: str) -> int:
    """The least padded side for ``layer``: features of 2×2, the least a decoder's 3×3
    reflection padding takes."""
    return 2 ** (pools_before(layer) + 1)


@functools.lru_cache(maxsize=16)
def _load(
    path: str,
    stamp: tuple[int, int],
    method: str,
    layer: str,
    channels: int,
    device: str,
    channels_last: bool,
) -> Decoder:
    checkpoint = load_checkpoint(path, method=models.checkpoint_method(method), what="model")
    wanted = decoder_id(layer, channels)
    if checkpoint.encoder != wanted:
        found = checkpoint.encoder.split(":")
        if len(found) == 3 and found[0] == "vgg19" and found[1] != layer:
            raise BrushworkError(
                f"model {path} is a decoder from {found[1]}, not from "
                f"{layer}; give the {layer} decoder"
            )
        raise BrushworkError(
            f"model {path} was trained on encoder {checkpoint.encoder!r}; this run uses {wanted!r}"
        )
    decoder = Decoder(layer, width=decoder_width(layer, channels))
    expected = decoder.state_dict()
    if set(checkpoint.tensors) != set(expected) or any(
        checkpoint.tensors[k].shape != v.shape for k, v in expected.items()
    ):
        raise BrushworkError(
            f"model {path} does not hold a {layer} decoder for {channels} encoder channels"
        )
    decoder.load_state_dict({k: v.float() for k, v in checkpoint.tensors.items()})
    decoder = decoder.requires_grad_(False).eval().to(device)
    if channels_last:
        # (nn.Module.to takes memory_format, which torch's type stubs leave out)
        decoder = decoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return decoder


def load_decoder(
    model: str | Path,
    *,
    method: str,
    layer: str,
    encoder: VGG19,
    device: str | torch.device | None = None,
) -> Decoder:
    """The trained decoder ``model`` (a bundled name of ``method``, or a checkpoint file
    carrying ``method``'s checkpoint name, :func:`brushwork.models.checkpoint_method`) from
    ``layer``, checked against ``encoder`` and put where it runs; loaded once per process
    and file (frozen: do not modify it)."""
    path = models.resolve(model, method=method)
    stat = os.stat(path)
    if device is None:
        device = next(encoder.parameters()).device
    return _load(
        str(path),
        (stat.st_mtime_ns, stat.st_size),
        method,
        layer,
        encoder.out_channels[layer],
        str(device),
        encoder.channels_last,
    )


def read_decoder(
    model: str | Path, *, method: str, layer: str, width: float = 1.0
) -> tuple[Decoder, int]:
    """A trainable float32 decoder from ``layer`` started from the checkpoint ``model``:
    every tensor whose name and shape match is taken (all of them for a decoder of the same
    layer; the shared lower layers for one of another, e.g. a relu5_1 decoder started from
    a relu4_1 one). Returns the decoder and how many tensors were taken."""
    path = models.resolve(model, method=method)
    checkpoint = load_checkpoint(path, method=models.checkpoint_method(method), what="model")
    decoder = Decoder(layer, width=width)
    state = decoder.state_dict()
    taken = {
        k: v.float()
        for k, v in checkpoint.tensors.items()
        if k in state and state[k].shape == v.shape
    }
    if not any(k.endswith(".weight") for k in taken):
        raise BrushworkError(
            f"model {path} has no layer a {layer} decoder of this width can "
            "start from (another encoder width?)"
        )
    state.update(taken)
    decoder.load_state_dict(state)
    return decoder, len(taken)


Transform = Callable[[Tensor, Any, Tensor | None], Tensor]


def mix_styles(
    content: Tensor,
    statistics: Sequence[Any],
    weights: Sequence[float],
    masks: Sequence[Tensor | None],
    alpha: Any,
    transform: Transform,
) -> Tensor:
    """The decoder's input: ``transform(content, statistics_i, region)`` of each style,
    interpolated by ``weights`` (Huang & Belongie 2017 §7.2) or placed by ``masks`` (at the
    features' resolution, §7.3), then mixed with the content features by ``alpha`` (eq. 14).
    With masks a style's weight is its strength in its region (capped at 1; 0 leaves the
    region unstyled), the transform uses that region's content statistics, overlapping
    masks are averaged, and pixels no mask covers keep the content."""
    if any(m is not None for m in masks):
        target = torch.zeros_like(content)
        covered = torch.zeros_like(content[:, :1])
        for index, (stats, weight, mask) in enumerate(zip(statistics, weights, masks, strict=True)):
            if weight == 0:
                continue
            region = torch.ones_like(covered) if mask is None else mask
            if float(region.sum()) == 0:
                continue
            strength = min(weight, 1.0)
            with frozen.scope(f"style{index}"):
                styled = transform(content, stats, region)
            target = target + region * (strength * styled + (1 - strength) * content)
            covered = covered + region
        target = torch.where(covered > 1, target / covered.clamp_min(1), target)
        target = target + (1 - covered.clamp(max=1)) * content
    else:
        blend: Any = 0
        for index, (stats, weight) in enumerate(zip(statistics, weights, strict=True)):
            with frozen.scope(f"style{index}"):  # (tiles replay each style's statistics)
                blend = blend + weight * transform(content, stats, None)
        target = cast(Tensor, blend)
    return alpha * target + (1 - alpha) * content


class FeedForwardMethod(OnePassMethod[OptionsT]):
    """Base of the one-pass methods whose networks are decoders mirroring VGG-19, one per
    level (see the module docstring)."""

    # -- per method -------------------------------------------------------------------

    @abstractmethod
    def levels(self) -> tuple[str, ...]:
        """The encoder layers stylized, in the order they run."""

    @abstractmethod
    def decoder_model(self, layer: str) -> str:
        """The decoder (bundled name or file) for ``layer``."""

    full_moments: ClassVar[bool] = True
    """Whether :meth:`moments_statistics` needs the features' full covariance (else only
    each channel's variance)."""

    @abstractmethod
    def style_statistics(self, features: Tensor, layer: str) -> Any:
        """What a style contributes at ``layer``, from its features there."""

    @abstractmethod
    def moments_statistics(self, moments: Moments, layer: str) -> Any:
        """The same, from the moments of the features of a style too large for one pass."""

    @abstractmethod
    def transform(
        self, content: Tensor, statistics: Any, mask: Tensor | None, layer: str
    ) -> Tensor:
        """The content's features at ``layer`` given one style's statistics (and, with
        ``mask``, the content statistics of that region only)."""

    def finish(self, image: Tensor, layer: str) -> Tensor:
        """The decoded (padded) image of ``layer``'s level, before it is cropped back: as
        it is, unless a method cleans its decoder's output."""
        return image

    def alpha(self) -> float:
        return float(getattr(self.options, "alpha", 1.0))

    # -- shared -------------------------------------------------------------------------

    def encoder_request(self) -> tuple[str, str]:
        return max(self.levels(), key=LAYER_INDEX.__getitem__), "max"

    def stride(self) -> int:
        return 2 ** pools_before(self.encoder_request()[0])

    def min_style_side(self) -> int:
        return self.stride()

    def steps(self) -> int:
        return len(self.levels())

    def style_bytes(self, height: int, width: int) -> int:
        """The style's encoder pass to the deepest level, float32 (of one tile, for a style
        encoded in tiles: :meth:`encode_styles`)."""
        if height * width > STYLE_TILE_LIMIT:
            height = width = STYLE_TILE + 2 * STYLE_CONTEXT
        return inference_peak_elements(height, width, self.encoder_request()[0], self.levels()) * 4

    def check_files(self) -> None:
        for layer in self.levels():
            models.resolve(self.decoder_model(layer), method=self.name)

    def networks(self) -> dict[str, Decoder]:
        return self.decoders()

    def decoders(self) -> dict[str, Decoder]:
        """The trained decoder of every level (loaded once per process and file)."""
        encoder = self.get_encoder()
        return {
            layer: load_decoder(
                self.decoder_model(layer), method=self.name, layer=layer, encoder=encoder
            )
            for layer in self.levels()
        }

    def encode_styles(self, targets: list[StyleTarget]) -> list[dict[str, Any]]:
        """Each style's :meth:`style_statistics` at every level (of a style over
        :data:`~brushwork.ops.STYLE_TILE_LIMIT` pixels, encoded tile by tile:
        :meth:`moments_statistics`)."""
        encoder = self.get_encoder()
        levels = list(self.levels())
        data = []
        for target in targets:
            if target.image.shape[-2] * target.image.shape[-1] > STYLE_TILE_LIMIT:
                moments = encoded_moments(encoder, target.image, levels, self.full_moments)
                data.append(
                    {layer: self.moments_statistics(moments[layer], layer) for layer in levels}
                )
            else:
                features = encoder(target.image, levels)
                data.append(
                    {layer: self.style_statistics(features[layer], layer) for layer in levels}
                )
        return data

    def passes(
        self,
        content: Tensor,
        prepared: PreparedStyle,
        networks: dict[str, Decoder],
        details: dict[str, Any],
    ) -> Iterator[Tensor]:
        """Level by level: each level's output is the next one's input."""
        details["models"] = {layer: str(self.decoder_model(layer)) for layer in self.levels()}
        weights = blend_weights(prepared.targets)
        image = content
        for layer in self.levels():
            statistics = [d[layer] for d in prepared.data]
            paint = functools.partial(self._level, layer, networks[layer], statistics, weights)
            with frozen.scope(layer):
                image = padded_pass(
                    image,
                    prepared.targets,
                    2 ** pools_before(layer),
                    min_side(layer),
                    paint,
                    self.margin,
                )
            yield image

    def _level(
        self,
        layer: str,
        decoder: Decoder,
        statistics: list[Any],
        weights: list[float],
        padded: Tensor,
        targets: list[StyleTarget],
    ) -> Tensor:
        """One level on a padded image: encode, transform per style, mix, decode."""
        features = self.get_encoder()(padded, [layer])[layer]
        masks = [None if t.mask is None else downsample_mask(t.mask, layer) for t in targets]
        mixed = mix_styles(
            features,
            statistics,
            weights,
            masks,
            self.alpha(),
            lambda c, s, m: self.transform(c, s, m, layer),
        )
        return self.finish(decoder(mixed), layer)
