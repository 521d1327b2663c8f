"""brushwork's own monocular depth estimator: VGG-19 features and a light U-Net decoder.

The encoder is brushwork's VGG-19 up to relu4_1 (the AdaIN encoder), pretrained, frozen at
first and optionally fine-tuned. Two stride-2 convolutions widen its view to 1/32 of the
image (relu4_1 alone sees ~90 px, too little to tell a floor from a wall), and the decoder
climbs back up with skip connections from relu4_1, relu3_1, relu2_1 and relu1_1, as in
U-Net (Ronneberger et al. 2015) and the MiDaS decoders (Ranftl et al. 2020). Each decoder
stage is conv 3×3 → GroupNorm → ReLU; GroupNorm also tames the raw Caffe activations.

The output is *relative inverse depth* (larger = nearer), known up to a scale and shift per
image, the convention of MiDaS and of :mod:`brushwork.depth`; it is trained with
:func:`brushwork.losses.scale_shift_invariant_loss` and
:func:`brushwork.losses.gradient_matching_loss` (see :mod:`brushwork.training.depth`).

A checkpoint holds the whole network, encoder included, so a model file needs no VGG-19
weights beside it. The model shipped with brushwork (``depth``) was trained on NYU Depth v2,
indoor scenes only: see docs/models/depth.md for what it gets wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.checkpoints import Checkpoint, load_checkpoint
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.ops import pad_to_multiple

METHOD = "depth"
SKIP_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: The side the shipped model was trained at (NYU frames are 320 × 240, cropped to 304 × 224):
#: :func:`predict_depth` resizes images so that their shorter side is this long.
TRAINING_SIDE = 224
MULTIPLE = 32  # the input is padded to a multiple of the deepest stride


def _stage(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    groups = math.gcd(8, channels_out)
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(groups, channels_out),
        nn.ReLU(inplace=True),
    )


class DepthNet(nn.Module):
    """RGB in [0, 1], (B, 3, H, W), any size → relative inverse depth (B, 1, H, W).

    ``encoder`` is a VGG-19 built at least to relu4_1 (the tiny random ones of the tests
    work too); the decoder's widths follow its width.
    """

    def __init__(self, encoder: VGG19) -> None:
        super().__init__()
        channels = encoder.out_channels
        if "relu4_1" not in channels:
            raise BrushworkError("the depth estimator needs a VGG-19 built to relu4_1")
        self.encoder = encoder
        c1, c2, c3, c4 = (channels[name] for name in SKIP_LAYERS)
        width = c4 / 512

        def w(n: int) -> int:
            return max(8, round(n * width))

        self.down16 = _stage(c4, w(192), stride=2)
        self.down32 = _stage(w(192), w(192), stride=2)
        self.up16 = _stage(w(192) + w(192), w(192))
        self.up8 = _stage(w(192) + c4, w(128))
        self.up4 = _stage(w(128) + c3, w(96))
        self.up2 = _stage(w(96) + c2, w(64))
        self.up1 = _stage(w(64) + c1, w(32))
        self.head = nn.Conv2d(w(32), 1, 3, padding=1)

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Everything but the encoder: what trains while the encoder is frozen."""
        return [p for name, p in self.named_parameters() if not name.startswith("encoder.")]

    def forward(self, image: Tensor) -> Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected RGB images (B, 3, H, W), got {tuple(image.shape)}")
        x, (height, width) = pad_to_multiple(image, MULTIPLE, mode="replicate")
        skips = self.encoder(x, SKIP_LAYERS)
        f16 = self.down16(skips["relu4_1"])
        y = self.down32(f16)
        for stage, skip in (
            (self.up16, f16),
            (self.up8, skips["relu4_1"]),
            (self.up4, skips["relu3_1"]),
            (self.up2, skips["relu2_1"]),
            (self.up1, skips["relu1_1"]),
        ):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = stage(torch.cat([y, skip.to(y.dtype)], 1))
        return self.head(y)[..., :height, :width]


def encoder_id(net: DepthNet) -> str:
    """How a checkpoint names the encoder an estimator is built on."""
    return f"vgg19:relu4_1:{net.encoder.out_channels['relu4_1']}"


def resolve_estimator(model: str | Path | None) -> Path:
    """A bundled estimator's name (default ``"depth"``) or a checkpoint path → its path."""
    from brushwork import models

    return models.resolve(model or "depth", method=METHOD, what="depth model")


def load_estimator(model: str | Path | None = None) -> DepthNet:
    """A trained :class:`DepthNet` from a brushwork checkpoint (``train depth``'s
    ``model.safetensors`` or ``checkpoint.safetensors``) or a bundled name, in float32 and
    eval mode. A missing, corrupt or foreign file raises :class:`BrushworkError`."""
    path = resolve_estimator(model)
    saved = load_checkpoint(path, method=METHOD, what="depth model")
    channels = saved.tensors.get("encoder.convs.conv4_1.weight")
    if channels is None:
        raise BrushworkError(f"depth model {path} holds no encoder weights")
    width = channels.shape[0] / 512
    net = DepthNet(VGG19(last_layer="relu4_1", width=width))
    expected = net.state_dict()
    if set(saved.tensors) != set(expected) or any(
        saved.tensors[k].shape != v.shape for k, v in expected.items()
    ):
        raise BrushworkError(f"depth model {path} does not hold a brushwork depth estimator")
    net.load_state_dict({k: v.float() for k, v in saved.tensors.items()})
    return net.eval()


def to_checkpoint(net: DepthNet, config: dict[str, object], step: int) -> Checkpoint:
    return Checkpoint(METHOD, encoder_id(net), net.state_dict(), config, step)


@torch.no_grad()
def predict_depth(net: nn.Module, image: Tensor, side: int | None = TRAINING_SIDE) -> Tensor:
    """Relative inverse depth of RGB images (B, 3, H, W) in [0, 1], at their own size.

    The images are resized so that their shorter side is ``side`` (the scale the estimator
    was trained at; None: as they are), and the prediction resized back (bilinear)."""
    height, width = image.shape[-2:]
    x = image
    if side is not None and min(height, width) != side:
        factor = side / min(height, width)
        size = (max(1, round(height * factor)), max(1, round(width * factor)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    out = net(x)
    if out.shape[-2:] != (height, width):
        out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)
    return out
