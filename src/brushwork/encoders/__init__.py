"""Encoders: networks that turn images into feature maps, and their weights."""

from __future__ import annotations

import functools
import threading

from brushwork.encoders.vgg import (
    CONV_LAYERS,
    LAYERS,
    VGG19,
    check_layers,
    deepest,
    downsample_mask,
    feature_elements,
    inference_peak_elements,
    pools_before,
    receptive_field,
)


def load_vgg19(
    last_layer: str = "relu5_4",
    *,
    pooling: str = "max",
    source: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
):
    """The pretrained VGG-19 up to ``last_layer``, frozen, in eval mode, on the CPU."""
    from brushwork.encoders.weights import load_weights

    encoder = VGG19(last_layer=last_layer, pooling=pooling)
    weights = load_weights(encoder.convs.keys(), source=source, sha256=sha256, progress=progress)
    encoder.load_weights(weights)
    return encoder.requires_grad_(False).eval()


_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _cached(
    last_layer: str, pooling: str, device: str, weights: str | None, weights_sha256: str | None
) -> VGG19:
    encoder = load_vgg19(last_layer, pooling=pooling, source=weights, sha256=weights_sha256)
    return encoder.to(device).use_channels_last(device == "cpu")


def cached_vgg19(
    last_layer: str,
    pooling: str = "max",
    device: str = "cpu",
    weights: str | None = None,
    weights_sha256: str | None = None,
) -> VGG19:
    """A pretrained VGG-19 shared by every run in the process (one per layer, pooling,
    device and weights source); channels-last on CPUs. It is frozen and never changed after
    it is built, so threads may use it at once; do not modify it (copy it to train it)."""
    with _lock:
        return _cached(last_layer, pooling, str(device), weights, weights_sha256)


__all__ = [
    "CONV_LAYERS",
    "LAYERS",
    "VGG19",
    "cached_vgg19",
    "check_layers",
    "deepest",
    "downsample_mask",
    "feature_elements",
    "inference_peak_elements",
    "load_vgg19",
    "pools_before",
    "receptive_field",
]
