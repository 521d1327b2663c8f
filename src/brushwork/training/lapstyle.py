"""Training LapStyle (``brushwork train lapstyle``): Lin et al. 2021's drafting and revision
networks for one style, one stage at a time (§3.5, PaddleGAN's recipe).

``--stage draft`` trains the drafting network on content crops (its output at the crop's
size); ``--stage revision1`` and ``revision2`` train one revision network each, its output
at the crop's size and the frozen draft at a half or a quarter of it, starting from the model
of the stage before (``--init-from``). Every stage's ``model.safetensors`` is a whole
LapStyle model (untrained revisions add nothing), so ``-m lapstyle --model`` paints with it.
The loss on the stage's output y, content c and style s, through the frozen VGG-19 φ::

    content   = Σ_{relu1_1..relu5_1} ‖norm(φ(y)) − norm(φ(c))‖²        (norm: per channel)
    style     = Σ_{relu1_1..relu5_1} relative ‖μ, σ of φ(y) − μ, σ of φ(s)‖²
    emd       = relaxed EMD between φ(y) and φ(s) (STROTSS eq. 4-5)     (relu3_1, relu4_1)
    self-sim  = self-similarity of φ(y) against φ(c) (STROTSS eq. 7)    (relu3_1, relu4_1)
    identity  = ‖draft(φ(c); c's own statistics) − c‖² and its features  (draft stage)
    adversarial = −log D(y), D a patch discriminator against style crops (revision stages)

with PaddleGAN's weights (1, 3, 10, 16, 50 + 1, 1). The discriminator has its own Adam and
steps after the networks' (:meth:`LapStyleObjective.train_step`); ``--adversarial-weight 0``
trains a revision without it. The style is seen at ``--style-size`` (its longest side at the
output's scale): at a quarter of it by the draft, whose statistics it keeps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork import models
from brushwork.checkpoints import Checkpoint
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import normalized_content_loss, relaxed_emd_loss, self_similarity_loss
from brushwork.methods.feedforward import decoder_id, decoder_width
from brushwork.methods.lapstyle_net import (
    DRAFT_LAYERS,
    PARTS,
    LapStyleNet,
    PatchDiscriminator,
)
from brushwork.ops import mean_std
from brushwork.options import REQUIRED, option, redefault
from brushwork.precision import Precision
from brushwork.training.adain import style_distance
from brushwork.training.data import Batches, list_images, load_style, to_device
from brushwork.training.objective import CropObjective, StepContext
from brushwork.training.runs import DEFAULT_OPTIMIZER
from brushwork.training.trainer import CropTrainingConfig, RunOptions

LOSS_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
RELATION_LAYERS = ("relu3_1", "relu4_1")
"""The layers of the EMD and self-similarity terms (PaddleGAN: relu4_1 alone at the last
revision, where relu3_1's positions are many)."""
LOSS_NAMES = (
    "content",
    "style",
    "emd",
    "self_similarity",
    "identity",
    "adversarial",
    "total",
    "discriminator",
)
DISCRIMINATOR = "discriminator"
"""The name of the discriminator's optimizer (and of its network in checkpoints)."""


@dataclass
class LapStyleConfig(CropTrainingConfig):
    """What one stage of a LapStyle model learns from; stored in its checkpoints."""

    content_dir: str = option(REQUIRED, "folder of content photos", metavar="DIR")
    style: str = option(REQUIRED, "the style image (a LapStyle model paints one)", metavar="IMAGE")
    style_name: str | None = option(None, "the style's name (default: the file's stem)")
    stage: str = option(
        "draft",
        "the network that trains: the draft, or a revision (the networks below it stay as "
        "--init-from has them)",
        choices=PARTS,
    )
    style_size: int = option(
        512,
        "the style image's longest side at the output's scale (the draft's: a quarter)",
        minimum=64,
    )
    content_weight: float = option(1.0, "weight of the normalized content loss", minimum=0.0)
    style_weight: float = option(3.0, "weight of the mean/std style loss", minimum=0.0)
    emd_weight: float = option(10.0, "weight of the relaxed EMD style loss", minimum=0.0)
    self_similarity_weight: float = option(
        16.0, "weight of the self-similarity content loss", minimum=0.0
    )
    identity_weight: float = option(
        50.0,
        "weight of the draft's identity loss on pixels (its features: 1/50 of it)",
        minimum=0.0,
    )
    adversarial_weight: float = option(
        1.0, "weight of the revision's adversarial loss (0: no discriminator)", minimum=0.0
    )
    samples: int = option(
        1024,
        "feature positions the EMD and self-similarity losses compare (drawn each step)",
        minimum=16,
    )
    init_from: str | None = option(
        None,
        "a LapStyle model to start from (a revision stage needs the draft it revises)",
        metavar="NAME|PATH",
    )
    draft_from: str = option(
        "adain",
        "the AdaIN decoder the draft's decoder starts from (a bundled name or a file; 'none': "
        "random)",
        metavar="NAME|PATH",
    )
    iterations: int = redefault(CropTrainingConfig, "iterations", 30_000)
    batch_size: int = redefault(CropTrainingConfig, "batch_size", 5)
    learning_rate: float = redefault(CropTrainingConfig, "learning_rate", 1e-4)
    crop_size: int = redefault(CropTrainingConfig, "crop_size", 128)
    load_size: int | None = redefault(CropTrainingConfig, "load_size", 136)

    def check(self) -> None:
        super().check()
        multiple = 2 ** PARTS.index(self.stage) * 8
        if self.crop_size % multiple or self.crop_size < 2 * multiple:
            raise BrushworkError(
                f"--crop-size {self.crop_size}: the {self.stage} stage takes a multiple of "
                f"{multiple}, at least {2 * multiple} (its draft halves it "
                f"{PARTS.index(self.stage)} times, then relu4_1 eight)"
            )
        if self.stage != "draft" and self.init_from is None:
            raise BrushworkError(
                f"the {self.stage} stage revises a trained draft: give --init-from, the "
                "model of the stage before"
            )

    @property
    def level(self) -> int:
        """How many revisions the stage's output has (0: the draft)."""
        return PARTS.index(self.stage)

    def name(self) -> str:
        return self.style_name or Path(self.style).stem


def sample_columns(features: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """(B, C, H, W) → (B, C, N): at most ``count`` positions drawn without replacement."""
    flat = features.flatten(2)
    if flat.shape[-1] <= count:
        return flat
    index = torch.randperm(flat.shape[-1], generator=generator)[:count]
    return flat[..., index.to(flat.device)]


class LapStyleLoss(nn.Module):
    """The stage's networks and the frozen encoder: content crops → the generator's loss
    terms (and its output, under ``"output"``); with ``fake`` given, style crops and the
    generated images → the discriminator's loss."""

    def __init__(
        self,
        nets: nn.ModuleDict,
        encoder: VGG19,
        style: dict[str, Tensor],
        config: LapStyleConfig,
    ) -> None:
        super().__init__()
        self.nets = nets
        self.encoder = encoder
        self.config = config
        self.style = style
        """The style's features at the stage's scale, by layer."""
        self.moments = [mean_std(style[layer]) for layer in LOSS_LAYERS]
        self.sampler = torch.Generator()

    def forward(
        self, content: Tensor, real: Tensor, fake: Tensor | None = None
    ) -> dict[str, Tensor]:
        if fake is not None:
            return self.judge(real, fake)
        config = self.config
        network: LapStyleNet = self.nets["lapstyle"]  # type: ignore[assignment]
        *_, output = network.levels(content, self.encoder, top=config.level)
        with torch.no_grad():
            content_f = self.encoder(content, LOSS_LAYERS)
        output_f = self.encoder(output, LOSS_LAYERS)
        moments = [mean_std(output_f[k]) for k in LOSS_LAYERS]
        wanted = [
            (m.expand_as(f), s.expand_as(f))
            for (m, s), (f, _) in zip(self.moments, moments, strict=True)
        ]
        terms = {
            "content": sum_of(
                normalized_content_loss(output_f[k], content_f[k]) for k in LOSS_LAYERS
            ),
            "style": style_distance(moments, wanted),
            **self.relations(output_f, content_f),
        }
        weights = {
            "content": config.content_weight,
            "style": config.style_weight,
            "emd": config.emd_weight,
            "self_similarity": config.self_similarity_weight,
        }
        if config.level == 0:
            terms["identity"] = self.identity(network, content, content_f)
            weights["identity"] = 1.0
        if DISCRIMINATOR in self.nets:
            logits = self.nets[DISCRIMINATOR](output).float()
            terms["adversarial"] = F.binary_cross_entropy_with_logits(
                logits, torch.ones_like(logits)
            )
            weights["adversarial"] = config.adversarial_weight
        total = sum_of(weights[k] * terms[k] for k in weights)
        return {**terms, "total": total, "output": output}

    def relations(
        self, output_f: dict[str, Tensor], content_f: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The relaxed EMD to the style and the self-similarity against the content, on
        sampled positions (the same ones in output and content)."""
        layers = RELATION_LAYERS if self.config.level < 2 else RELATION_LAYERS[-1:]
        samples = self.config.samples
        emd, similarity = [], []
        for layer in layers:
            found = output_f[layer].float()
            paired = sample_columns(
                torch.cat([found, content_f[layer].float()], 1), samples, self.sampler
            )
            output, content = paired.split(found.shape[1], 1)
            style = sample_columns(self.style[layer].float(), samples, self.sampler)
            emd.append(relaxed_emd_loss(output, style.expand(len(output), -1, -1)))
            similarity.append(self_similarity_loss(output, content))
        return {"emd": sum_of(emd), "self_similarity": sum_of(similarity)}

    def identity(
        self, network: LapStyleNet, content: Tensor, content_f: dict[str, Tensor]
    ) -> Tensor:
        """The draft given the content's own statistics must give the content back (pixels
        weighed by ``identity_weight``, features by a fiftieth of it)."""
        features = {k: content_f[k] for k in DRAFT_LAYERS}
        own = {k: mean_std(v) for k, v in features.items()}
        image = network.draft(features, style=own)
        image_f = self.encoder(image, LOSS_LAYERS)
        pixels = F.mse_loss(image.float(), content.float())
        feature_term = sum_of(
            normalized_content_loss(image_f[k], content_f[k]) for k in LOSS_LAYERS
        )
        return self.config.identity_weight * (pixels + feature_term / 50)

    def judge(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The discriminator's loss: style crops real, generated images fake."""
        judge = self.nets[DISCRIMINATOR]
        real_logits, fake_logits = judge(real).float(), judge(fake).float()
        loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return {DISCRIMINATOR: loss / 2}


def sum_of(terms: Iterable[Tensor]) -> Tensor:
    """The sum of 0-d loss tensors."""
    return torch.stack(list(terms)).sum()


class LapStyleObjective(CropObjective[LapStyleConfig]):
    """``brushwork train lapstyle``: one stage of a LapStyle model."""

    name = "lapstyle"
    description = "train LapStyle's draft or a revision network for one style (Lin et al. 2021)"
    config_class = LapStyleConfig
    method = "lapstyle"
    log_names = LOSS_NAMES
    free = frozenset({"iterations", "content_dir", "style", "init_from", "draft_from"})
    # measured (float32, 256 px crops, peak RSS at batch 1 and 2): the draft stage 1.53 and
    # 2.43 GB, 13,985 bytes per crop pixel (the output and the identity image both pass
    # through VGG-19 to relu5_1); a revision stage 8,000
    bytes_per_pixel = 14_000
    input_fields: ClassVar[tuple[str, ...]] = ("content_dir", "style", "init_from")

    def __init__(self, config: LapStyleConfig, *, encoder: VGG19 | None = None) -> None:
        super().__init__(config)
        self.encoder = encoder
        self.nets = nn.ModuleDict()
        self.contents: Batches | None = None
        self.style_image: Tensor | None = None
        self.start: dict[str, dict[str, Tensor]] | None = None
        self.loss: LapStyleLoss | None = None
        self.style_at_scale = torch.empty(0)
        """The style image at the stage's scale (set by :meth:`build`)."""
        self.generator = torch.Generator().manual_seed(config.seed)

    def check_inputs(self, run: RunOptions) -> None:
        config = self.config
        self.content_files = list_images(config.content_dir, "content")
        scale = 2.0 ** (config.level - 2)  # the stage's share of the full size
        self.style_image = load_style(config.style, config.style_size, LOSS_LAYERS[-1], scale)
        if config.init_from is not None:
            self.start = read_model(config.init_from)
        elif config.draft_from != "none":
            models.resolve(config.draft_from, method="adain")

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        from brushwork.training.adain import training_encoder

        config = self.config
        encoder = training_encoder(self.encoder, "relu5_1", device, run.weights)
        self.encoder = encoder
        torch.manual_seed(config.seed)
        network = self._start_network(decoder_width("relu4_1", encoder.out_channels["relu4_1"]))
        self.nets["lapstyle"] = network
        if config.level > 0 and config.adversarial_weight > 0:
            self.nets[DISCRIMINATOR] = PatchDiscriminator()
        self.nets.to(device)
        assert self.style_image is not None
        with torch.no_grad(), precision.autocast():
            if self.start is None:
                quarter = _resized(self.style_image, 1 / 4)
                network.draft.set_style(encoder(quarter.to(device), DRAFT_LAYERS))
            at_scale = _resized(self.style_image, 2.0 ** (config.level - 2)).to(device)
            style = {k: v.float() for k, v in encoder(at_scale, LOSS_LAYERS).items()}
        self.style_at_scale = at_scale
        self.loss = LapStyleLoss(self.nets, encoder, style, config)
        return self.loss

    def _start_network(self, width: float) -> LapStyleNet:
        """The stage's networks: those ``init_from`` names, or a new draft started from
        the AdaIN decoder ``draft_from``; only the stage's own network trains."""
        config = self.config
        network = LapStyleNet(width)
        if self.start is not None:
            for part in PARTS:
                getattr(network, part).load_state_dict(self.start[part])
        elif config.draft_from != "none":
            from brushwork.methods.feedforward import read_decoder

            decoder, _ = read_decoder(
                config.draft_from, method="adain", layer="relu4_1", width=width
            )
            network.draft.decoder.load_state_dict(decoder.state_dict())
        network.requires_grad_(False)
        getattr(network, config.stage).requires_grad_(True)
        return network

    def network(self) -> nn.Module:
        return self.nets

    def encoder_id(self) -> str:
        assert self.encoder is not None
        return decoder_id("relu4_1", self.encoder.out_channels["relu4_1"])

    def parameter_groups(self) -> list[dict[str, Any]]:
        stage = getattr(self.nets["lapstyle"], self.config.stage)
        return [{"params": list(stage.parameters()), "lr": self.config.learning_rate}]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        found: dict[str, torch.optim.Optimizer] = {
            DEFAULT_OPTIMIZER: torch.optim.Adam(self.parameter_groups())
        }
        if DISCRIMINATOR in self.nets:
            found[DISCRIMINATOR] = torch.optim.Adam(
                self.nets[DISCRIMINATOR].parameters(),
                lr=self.config.learning_rate,
                betas=(0.5, 0.999),
            )
        return found

    def learning_rates(self, step: int) -> dict[str, list[float]]:
        """The decayed rate (:class:`CropObjective`'s) for the networks and the
        discriminator alike."""
        rates = super().learning_rates(step)
        if DISCRIMINATOR in self.nets:
            rates[DISCRIMINATOR] = rates[DEFAULT_OPTIMIZER]
        return rates

    def train_step(
        self,
        batch: tuple[Tensor, ...],
        optimizers: dict[str, torch.optim.Optimizer],
        context: StepContext,
    ) -> dict[str, Tensor]:
        """The networks' step, then the discriminator's on the images they painted (with
        a discriminator), as CycleGAN's alternation (Zhu et al. 2017)."""
        content, real = batch
        losses: dict[str, Tensor] = context.forward(content, real)
        output = losses.pop("output")
        context.backward(losses["total"], optimizers[DEFAULT_OPTIMIZER])
        if DISCRIMINATOR in optimizers:
            judged = context.forward(content, real, output.detach())
            context.backward(judged[DISCRIMINATOR], optimizers[DISCRIMINATOR])
            losses |= judged
        return losses

    def before_step(self, step: int) -> None:
        """Positions sampled by the relation losses depend on the seed and step alone."""
        assert self.loss is not None
        self.loss.sampler.manual_seed(self.config.seed * 1_000_003 + step)

    def start_data(self, run: RunOptions, seed: int) -> None:
        self.contents = self.crops(self.content_files, run, seed, "content")
        self.generator.manual_seed(seed)

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        """Content crops and as many random crops of the style at the stage's scale (the
        discriminator's real samples; no larger than the style)."""
        assert self.contents is not None
        content = to_device(next(self.contents), device)
        self.skipped = sorted(self.contents.skipped)
        style = self.style_at_scale
        side = min(self.config.crop_size, *style.shape[-2:])
        crops = []
        for _ in range(len(content)):
            top = int(torch.randint(style.shape[-2] - side + 1, (1,), generator=self.generator))
            left = int(torch.randint(style.shape[-1] - side + 1, (1,), generator=self.generator))
            crops.append(style[..., top : top + side, left : left + side])
        return content, torch.cat(crops).to(device)

    def model_checkpoint(self, step: int) -> Checkpoint:
        """The style's networks under ``part.NAME.`` (:mod:`brushwork.models.parts`),
        without the discriminator."""
        tensors = self.nets["lapstyle"].state_dict()
        return dataclasses.replace(
            self.checkpoint(step),
            tensors={f"{models.PART_PREFIX}{k}": v for k, v in tensors.items()},
        )

    def model_metadata(self) -> dict[str, str]:
        from brushwork.models.parts import style_metadata

        style = models.Style(
            self.config.name(), Path(self.config.style).name, "as given to the trainer"
        )
        return {
            models.PARTS_KEY: json.dumps(list(PARTS)),
            **style_metadata([(style, self.config.style)]),
        }


def _resized(image: Tensor, factor: float) -> Tensor:
    """``image`` scaled by ``factor`` (antialiased bilinear), at least 16 px a side."""
    height, width = image.shape[-2:]
    size = (max(16, round(height * factor)), max(16, round(width * factor)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def read_model(model: str) -> dict[str, dict[str, Tensor]]:
    """The float32 tensors of each network of a LapStyle model (a bundled name or a file),
    copied from the one :func:`~brushwork.methods.lapstyle.load_network` loads (and
    checks)."""
    from brushwork.methods.lapstyle import load_network

    network = load_network(model)
    return {
        part: {k: v.clone() for k, v in getattr(network, part).state_dict().items()}
        for part in PARTS
    }
