"""Training per-style transform networks (``brushwork train johnson``): Johnson, Alahi &
Fei-Fei 2016's perceptual losses on brushwork's VGG-19, one network for one style or, with
conditional instance normalization, for N styles at once (Dumoulin, Shlens & Kudlur 2017).

Each step takes a batch of content crops c, draws a style s_i for each crop (uniformly among
the N), paints y = T(c, s_i) (:class:`~brushwork.methods.johnson_net.TransformNet`) and
compares it through the frozen encoder φ::

    content = ‖φ_j(y) − φ_j(c)‖² / mean(φ_j(c)²)                    (Johnson et al. eq. 2)
    style   = Σ_{l in relu1_1..relu4_1} ‖G(φ_l(y)) − G(φ_l(s_i))‖² / mean(G(φ_l(s_i))²)
                                                                     (eq. 3-4, Gram G)
    total   = content_weight·content + style_weight·style + tv_weight·TV(y)

(relative errors, as brushwork's other objectives, so the weights carry over between
layers and image sizes). The style Gram matrices are computed once, from each style image
at ``--style-size``. ``--init-from`` a trained network adds the given styles to it and trains
only their normalization parameters (Dumoulin et al. 2017 §4.3: 3,200 numbers a style).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import total_variation_loss
from brushwork.methods.johnson_net import TransformNet, infer_shape, one_hot
from brushwork.ops import gram_matrix
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.data import Batches, list_images, load_style, to_device
from brushwork.training.objective import CropObjective
from brushwork.training.trainer import CropTrainingConfig, RunOptions

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYERS = ("relu2_2", "relu3_1", "relu4_1")
LOSS_NAMES = ("content", "style", "tv", "total")
ENCODER_ID = "none"
"""What the checkpoints record as the encoder: the network needs none at inference."""


@dataclass
class JohnsonConfig(CropTrainingConfig):
    """What a per-style network learns from; stored in its checkpoints."""

    content_dir: str = option(REQUIRED, "folder of content photos", metavar="DIR")
    style: tuple[str, ...] = option(
        REQUIRED,
        "style image(s), comma-separated; several train one network for all of them "
        "(conditional instance normalization)",
        min_items=1,
        metavar="IMAGE[,IMAGE...]",
    )
    style_names: tuple[str, ...] = option(
        (), "a name per style, comma-separated (default: the file names)", metavar="NAME[,NAME...]"
    )
    style_size: int = option(
        384, "longest side of the style images whose statistics are learned", minimum=16
    )
    content_layer: str = option(
        "relu3_1", "the encoder layer of the content loss", choices=CONTENT_LAYERS
    )
    content_weight: float = option(1.0, "weight of the content loss", minimum=0.0)
    style_weight: float = option(5.0, "weight of the Gram style loss", minimum=0.0)
    tv_weight: float = option(0.0, "weight of the total-variation loss", minimum=0.0)
    width: float = option(
        1.0, "channel multiplier (1: 32-64-128 channels; 0.5 for a faster network)", minimum=0.125
    )
    init_from: str | None = option(
        None,
        "a trained johnson network to add the styles to (only their normalization trains)",
        metavar="NAME|PATH",
    )
    iterations: int = redefault(CropTrainingConfig, "iterations", 40_000)
    batch_size: int = redefault(CropTrainingConfig, "batch_size", 4)
    learning_rate: float = redefault(CropTrainingConfig, "learning_rate", 1e-3)
    lr_decay: float = redefault(CropTrainingConfig, "lr_decay", 0.0)
    load_size: int | None = redefault(CropTrainingConfig, "load_size", 256)

    def check(self) -> None:
        super().check()
        if self.style_names and len(self.style_names) != len(self.style):
            raise BrushworkError(
                f"--style-names gives {len(self.style_names)} names for {len(self.style)} styles"
            )
        names = self.names()
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise BrushworkError(f"two styles are named {doubled[0]!r}; give --style-names")

    def names(self) -> list[str]:
        """Each style's name (given, else its file's stem)."""
        return list(self.style_names) or [Path(p).stem for p in self.style]


class PerceptualLoss(nn.Module):
    """Transform network + frozen encoder: content crops and style indices → loss terms."""

    def __init__(
        self, network: TransformNet, encoder: VGG19, grams: list[Tensor], config: JohnsonConfig
    ) -> None:
        super().__init__()
        self.network = network
        self.encoder = encoder
        self.config = config
        self.first = network.styles - len(grams[0])
        """The network's index of the first style trained (the ones before: extended)."""
        for layer, gram in zip(STYLE_LAYERS, grams, strict=True):
            self.register_buffer(f"gram_{layer}", gram, persistent=False)

    def forward(self, content: Tensor, indices: Tensor) -> dict[str, Tensor]:
        config = self.config
        layer = config.content_layer
        with torch.no_grad():
            target = self.encoder(content, [layer])[layer].float()
        output = self.network(content, one_hot(indices, self.network.styles))
        features = self.encoder(output, list(dict.fromkeys([*STYLE_LAYERS, layer])))
        content_term = F.mse_loss(features[layer].float(), target) / target.pow(2).mean().clamp_min(
            1e-12
        )
        style_term = content_term.new_zeros(())
        for name in STYLE_LAYERS:
            wanted = getattr(self, f"gram_{name}")[indices - self.first]
            found = gram_matrix(features[name].float())
            style_term = style_term + F.mse_loss(found, wanted) / wanted.pow(2).mean().clamp_min(
                1e-12
            )
        tv = total_variation_loss(output.float())
        total = (
            config.content_weight * content_term
            + config.style_weight * style_term
            + config.tv_weight * tv
        )
        return {"content": content_term, "style": style_term, "tv": tv, "total": total}


class JohnsonObjective(CropObjective[JohnsonConfig]):
    """``brushwork train johnson``: a per-style (or conditional multi-style) network."""

    name = "johnson"
    description = "train a per-style transform network (several styles: conditional norm)"
    config_class = JohnsonConfig
    method = "johnson"
    log_names = LOSS_NAMES
    free = frozenset({"iterations", "content_dir", "style", "init_from", "crop_size", "load_size"})
    """Crops may grow on ``--resume`` (a curriculum: the blobs a network paints in flat
    regions larger than its crops go away with larger crops)."""
    bytes_per_pixel = 4200
    input_fields: ClassVar[tuple[str, ...]] = ("content_dir", "style", "init_from")

    def __init__(self, config: JohnsonConfig, *, encoder: VGG19 | None = None) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.transform: TransformNet | None = None
        self.contents: Batches | None = None
        self.style_images: list[Tensor] = []
        self.start: dict[str, Tensor] | None = None
        self.generator = torch.Generator().manual_seed(config.seed)

    def check_inputs(self, run: RunOptions) -> None:
        config = self.config
        self.content_files = list_images(config.content_dir, "content")
        self.style_images = [
            load_style(p, config.style_size, STYLE_LAYERS[-1]) for p in config.style
        ]
        if config.init_from is not None:
            self.start = read_network(config.init_from)

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        from brushwork.training.adain import training_encoder

        config = self.config
        encoder = training_encoder(self.encoder, "relu4_1", device, run.weights)
        self.encoder = encoder
        torch.manual_seed(config.seed)
        self.transform = self._start_network(len(config.style))
        self.transform.to(device)
        with torch.no_grad(), precision.autocast():
            grams = [
                torch.cat(
                    [
                        gram_matrix(encoder(s.to(device), [layer])[layer].float())
                        for s in self.style_images
                    ]
                )
                for layer in STYLE_LAYERS
            ]
        return PerceptualLoss(self.transform, encoder, grams, config)

    def _start_network(self, styles: int) -> TransformNet:
        """A new network for ``styles`` styles, or the trained one ``init_from`` names with
        them added (its convolutions and its own styles frozen)."""
        if self.start is None:
            return TransformNet(styles, self.config.width)
        trained, width = infer_shape(self.start)
        network = TransformNet(trained, width)
        network.load_state_dict(self.start)
        network.add_styles(styles)
        network.requires_grad_(False)
        for norm in network.norms():
            for parameter in (norm.gamma, norm.beta):
                parameter.requires_grad_(True)
                parameter.register_hook(_only_rows_from(trained))
        return network

    def network(self) -> nn.Module:
        assert self.transform is not None
        return self.transform

    def encoder_id(self) -> str:
        return ENCODER_ID

    def parameter_groups(self) -> list[dict[str, Any]]:
        params = [p for p in self.network().parameters() if p.requires_grad]
        return [{"params": params, "lr": self.config.learning_rate}]

    def start_data(self, run: RunOptions, seed: int) -> None:
        self.contents = self.crops(self.content_files, run, seed, "content")
        self.generator.manual_seed(seed)

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        """Content crops and, for each, the index of the style it is painted in (a new
        network: any style; one it extends: the added ones)."""
        assert self.contents is not None and self.transform is not None
        content = to_device(next(self.contents), device)
        self.skipped = sorted(self.contents.skipped)
        added = len(self.config.style)
        first = self.transform.styles - added
        indices = first + torch.randint(added, (len(content),), generator=self.generator)
        return content, indices.to(device)

    def model_metadata(self) -> dict[str, str]:
        """The network's styles (names, files) with their thumbnails
        (:func:`~brushwork.models.parts.style_metadata`); the styles of a network it
        extends come first, as that network lists them."""
        from brushwork import models
        from brushwork.models.parts import style_metadata

        added = style_metadata(
            [
                (models.Style(n, Path(p).name, "as given to the trainer"), p)
                for n, p in zip(self.config.names(), self.config.style, strict=True)
            ]
        )
        start = self.start_metadata()
        if not start:
            return added
        if len(self.config.style) == 1:  # as a list of one
            added = {
                models.STYLES_KEY: json.dumps([json.loads(added[models.STYLE_KEY])]),
                models.THUMBNAILS_KEY: json.dumps([added[models.THUMBNAIL_KEY]]),
            }
        return {
            key: json.dumps(json.loads(start.get(key, "[]")) + json.loads(added[key]))
            for key in (models.STYLES_KEY, models.THUMBNAILS_KEY)
        }

    def start_metadata(self) -> dict[str, str]:
        """The metadata of the network ``init_from`` names (none: empty); its one style, if
        it has one, as a list of one."""
        from brushwork import models

        if self.config.init_from is None:
            return {}
        found = models.file_metadata(models.resolve(self.config.init_from, method="johnson"))
        single = models.style_of(found)
        if single is None:
            return found
        return {
            models.STYLES_KEY: json.dumps([asdict(single)]),
            models.THUMBNAILS_KEY: json.dumps([found.get(models.THUMBNAIL_KEY, "")]),
        }


def _only_rows_from(first: int) -> Any:
    """A gradient hook that zeroes the rows of the styles before ``first`` (trained ones)."""

    def hook(grad: Tensor) -> Tensor:
        grad = grad.clone()
        grad[:first] = 0
        return grad

    return hook


def read_network(model: str) -> dict[str, Tensor]:
    """The float32 tensors of a johnson network (a bundled name or a file), copied from
    the one :func:`~brushwork.methods.johnson.load_network` loads (and checks)."""
    from brushwork.methods.johnson import load_network

    return {k: v.clone() for k, v in load_network(model).state_dict().items()}
