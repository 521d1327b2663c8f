"""Encoders: networks that turn images into feature maps, and their weights."""

from __future__ import annotations

from brushwork.encoders.vgg import (
    CONV_LAYERS,
    LAYERS,
    VGG19,
    check_layers,
    deepest,
    downsample_mask,
    feature_elements,
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


__all__ = [
    "CONV_LAYERS",
    "LAYERS",
    "VGG19",
    "check_layers",
    "deepest",
    "downsample_mask",
    "feature_elements",
    "load_vgg19",
]
