"""VGG-19 feature encoder (Simonyan & Zisserman 2015) with named layers.

The original Caffe weights expect BGR images in 0..255 with the ImageNet mean pixel
subtracted. :class:`VGG19` hides that: callers pass RGB tensors in [0, 1], shape (B, 3, H, W).

Layers are named as in the style-transfer literature: ``conv1_1``, ``relu1_1``, ``conv1_2``,
``relu1_2``, ``pool1``, ..., ``relu5_4``, ``pool5``. The module is built only up to the last
layer a caller needs (``last_layer``), so unused weights are never loaded or run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from brushwork.errors import BrushworkError

# Output channels of each block's convolutions: (block, number of convs, channels).
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))

CONV_LAYERS: tuple[str, ...] = tuple(f"conv{b}_{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1))
LAYERS: tuple[str, ...] = tuple(
    name
    for b, n, _ in _BLOCKS
    for name in (
        *(x for i in range(1, n + 1) for x in (f"conv{b}_{i}", f"relu{b}_{i}")),
        f"pool{b}",
    )
)
LAYER_INDEX = {name: i for i, name in enumerate(LAYERS)}

# Caffe VGG input convention: BGR order, 0..255, mean pixel subtracted (BGR order).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def check_layers(layers: Iterable[str]) -> list[str]:
    """Return ``layers`` as a list, or raise a one-line error naming the first unknown one."""
    layers = list(layers)
    for name in layers:
        if name not in LAYER_INDEX:
            raise BrushworkError(
                f"unknown VGG-19 layer {name!r}; layers are named conv1_1, relu1_1, ..., "
                "pool1, ..., relu5_4, pool5"
            )
    return layers


def deepest(layers: Iterable[str]) -> str:
    """The layer among ``layers`` that comes last in the network."""
    return max(check_layers(layers), key=LAYER_INDEX.__getitem__)


def pools_before(layer: str) -> int:
    """How many 2×2 poolings an image passes before reaching ``layer``."""
    check_layers([layer])
    return sum(name.startswith("pool") for name in LAYERS[: LAYER_INDEX[layer]])


def receptive_field(layer: str) -> int:
    """Pixels a side of the input that one feature at ``layer`` sees (3×3 convolutions and
    2×2 poolings up to it): 68 at relu4_1, 156 at relu5_1."""
    check_layers([layer])
    size, jump = 1, 1
    for name in LAYERS[: LAYER_INDEX[layer] + 1]:
        if name.startswith("conv"):
            size += 2 * jump
        elif name.startswith("pool"):
            size += jump
            jump *= 2
    return size


def downsample_mask(mask: Tensor, layer: str) -> Tensor:
    """A (B, 1, H, W) image-space mask at ``layer``'s resolution: the same 2×2 poolings the
    features went through, averaged, so each feature pixel gets the share of its input
    footprint the mask covers (the simple variant of Gatys et al. 2017 §4)."""
    for _ in range(pools_before(layer)):
        mask = F.avg_pool2d(mask, 2)
    return mask


def inference_peak_elements(
    height: int, width: int, last_layer: str, kept: Iterable[str] = ()
) -> int:
    """Peak number of live activations in one forward pass without gradients: the largest
    input + output pair of any layer, plus the ``kept`` layers' outputs (returned features)."""
    check_layers(kept)
    peak, kept_total, channels = 0, 0, 3
    live = channels * height * width
    blocks = {f"conv{b}_{i}": c for b, n, c in _BLOCKS for i in range(1, n + 1)}
    for name in LAYERS[: LAYER_INDEX[last_layer] + 1]:
        if name.startswith("conv"):
            channels = blocks[name]
        elif name.startswith("pool"):
            height, width = height // 2, width // 2
        out = channels * height * width
        peak = max(peak, kept_total + live + out)
        live = out
        if name in kept or name.replace("relu", "conv") in kept:
            kept_total += out
    return peak


def feature_elements(height: int, width: int, last_layer: str) -> int:
    """Number of activations one forward pass to ``last_layer`` produces for an H×W image
    (conv and pooling outputs; ReLUs run in place): the basis of memory estimates."""
    total, channels = 0, 3
    blocks = {f"conv{b}_{i}": c for b, n, c in _BLOCKS for i in range(1, n + 1)}
    for name in LAYERS[: LAYER_INDEX[last_layer] + 1]:
        if name.startswith("conv"):
            channels = blocks[name]
            total += channels * height * width
        elif name.startswith("pool"):
            height, width = height // 2, width // 2
            total += channels * height * width
    return total


class VGG19(nn.Module):
    """VGG-19 feature layers up to ``last_layer``.

    Args:
        weights: ``{"conv1_1.weight": ..., "conv1_1.bias": ..., ...}`` in Caffe layout
            (out, in, 3, 3), or None for random weights (tests, training from scratch).
        last_layer: the deepest layer to build.
        pooling: ``"max"`` (the network as trained) or ``"avg"`` (Gatys et al. 2016, §2,
            report slightly smoother results with average pooling).
        width: channel multiplier; below 1 gives a tiny encoder for fast unit tests.
    """

    def __init__(
        self,
        weights: Mapping[str, Tensor] | None = None,
        *,
        last_layer: str = "relu5_4",
        pooling: str = "max",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        check_layers([last_layer])
        if pooling not in ("max", "avg"):
            raise BrushworkError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        if not width > 0:
            raise BrushworkError(f"width must be positive, not {width}")
        self.last_layer = last_layer
        self.pooling = pooling
        self.layer_names = LAYERS[: LAYER_INDEX[last_layer] + 1]
        self.convs = nn.ModuleDict()
        channels = 3
        for b, n, out in _BLOCKS:
            out = max(1, round(out * width))
            for i in range(1, n + 1):
                name = f"conv{b}_{i}"
                if name in self.layer_names:
                    self.convs[name] = nn.Conv2d(channels, out, 3, padding=1)
                channels = out
        if weights is not None:
            self.load_weights(weights)
        self.channels_last = False
        self.register_buffer(
            "mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False
        )

    def use_channels_last(self, enabled: bool = True) -> VGG19:
        """Run convolutions in channels-last memory layout (faster with oneDNN on CPUs).
        Call it when the encoder is built, before it is shared: an encoder is never changed
        while in use."""
        memory_format = torch.channels_last if enabled else torch.contiguous_format
        for conv in self.convs.values():
            conv.weight.data = conv.weight.data.contiguous(memory_format=memory_format)
        self.channels_last = enabled
        return self

    def load_weights(self, weights: Mapping[str, Tensor]) -> None:
        """Copy Caffe-layout conv weights into the layers this module has."""
        with torch.no_grad():
            for name, conv in self.convs.items():
                for part in ("weight", "bias"):
                    key = f"{name}.{part}"
                    if key not in weights:
                        raise BrushworkError(f"VGG-19 weights have no tensor {key!r}")
                    source = weights[key]
                    target = getattr(conv, part)
                    if source.shape != target.shape:
                        raise BrushworkError(
                            f"VGG-19 weight {key!r} has shape {tuple(source.shape)}, "
                            f"expected {tuple(target.shape)}"
                        )
                    target.copy_(source)

    @property
    def out_channels(self) -> dict[str, int]:
        """Channels of every layer's output."""
        channels, result = 3, {}
        for name in self.layer_names:
            if name.startswith("conv"):
                channels = self.convs[name].out_channels
            result[name] = channels
        return result

    def preprocess(self, image: Tensor) -> Tensor:
        """RGB in [0, 1] → the Caffe convention (BGR, 0..255, mean pixel subtracted)."""
        return image.flip(1) * 255.0 - self.mean_bgr

    def forward(
        self, image: Tensor, layers: Iterable[str] | None = None, *, checkpointing: bool = False
    ) -> dict[str, Tensor]:
        """Run up to the deepest of ``layers`` (default: every layer built) and return their
        outputs by name.

        ``checkpointing`` trades compute for memory when gradients flow to the input: only
        each block's output and the requested features are kept, the rest is recomputed in
        the backward pass (:func:`torch.utils.checkpoint.checkpoint`; about one more forward
        pass). It is an argument, not a setting, so one encoder serves runs with and without
        it at the same time."""
        wanted = set(check_layers(layers)) if layers is not None else set(self.layer_names)
        stop = deepest(wanted)
        if LAYER_INDEX[stop] > LAYER_INDEX[self.last_layer]:
            raise BrushworkError(
                f"layer {stop!r} is deeper than this encoder's last layer {self.last_layer!r}"
            )
        x = self.preprocess(image)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features: dict[str, Tensor] = {}
        block: list[str] = []
        for name in self.layer_names[: LAYER_INDEX[stop] + 1]:
            block.append(name)
            if name.startswith("pool") or name == stop:
                names = tuple(n for n in block if n in wanted)
                if checkpointing and torch.is_grad_enabled() and x.requires_grad:
                    outputs = checkpoint(
                        self._run_block, x, tuple(block), names, use_reentrant=False
                    )
                else:
                    outputs = self._run_block(x, tuple(block), names)
                x = outputs[0]
                features.update(zip(names, outputs[1:], strict=True))
                block = []
        return features

    def _run_block(
        self, x: Tensor, block: tuple[str, ...], wanted: tuple[str, ...]
    ) -> tuple[Tensor, ...]:
        """Run consecutive layers; return the last output, then the ``wanted`` ones."""
        features: dict[str, Tensor] = {}
        for name in block:
            if name.startswith("conv"):
                x = self.convs[name](x)
            elif name.startswith("relu"):
                # In place is safe unless the conv output before it was asked for.
                x = F.relu(x, inplace=features.get(name.replace("relu", "conv")) is None)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2)
            else:
                x = F.avg_pool2d(x, 2)
            if name in wanted:
                features[name] = x
        return (x, *(features[name] for name in wanted))
