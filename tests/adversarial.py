"""A toy adversarial objective for tests/test_trainer.py: a tiny generator and discriminator
on 2-D points, with two optimizers alternating as in PaddleGAN's LapStyle revision stage (the
discriminator's step, then the generator's; Goodfellow et al. 2014, Algorithm 1).

Its batches depend on the seed, the process and the step alone, so a run stopped and resumed
reads what an uninterrupted one reads. Launched by ``python -m torch.distributed.run
--nproc_per_node 2 tests/adversarial.py RUN RANKS ITERATIONS``, it is one process of a
distributed run: afterwards each process writes its networks to ``RANKS/rank<R>.safetensors``
and, to ``RANKS/rank<R>.json``, its step and a checksum of each batch it read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from brushwork.precision import Precision
from brushwork.training.objective import Objective, StepContext
from brushwork.training.trainer import RunOptions, TrainingConfig, train

CENTER = (2.0, -1.0)
"""The mean of the real points (deviation 0.5)."""


def _mlp(outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, outputs))


class GANLoss(nn.Module):
    """Real points, noise and which step → that step's loss: the discriminator's (real
    against generated points, the generator left out) or the generator's (non-saturating:
    Goodfellow et al. 2014, §3)."""

    def __init__(self, nets: nn.ModuleDict) -> None:
        super().__init__()
        self.nets = nets

    def forward(self, real: Tensor, noise: Tensor, part: str) -> dict[str, Tensor]:
        fake = self.nets["generator"](noise)
        judge = self.nets["discriminator"]
        if part == "discriminator":
            real_logits, fake_logits = judge(real).float(), judge(fake.detach()).float()
            loss = F.binary_cross_entropy_with_logits(
                real_logits, torch.ones_like(real_logits)
            ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        else:
            logits = judge(fake).float()
            loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        return {part: loss}


class ToyGAN(Objective):
    """A generator of 2-D points against a discriminator, each with its own Adam."""

    name = "toy-gan"
    description = "a toy GAN on 2-D points"
    config_class = TrainingConfig
    method = "toy-gan"
    log_names = ("discriminator", "generator")
    bytes_per_pixel = 1

    def __init__(self, config: TrainingConfig) -> None:
        super().__init__(config)
        self.nets = nn.ModuleDict()
        self.points = torch.Generator()
        self.rank = 0
        self.seen: list[float] = []

    def crop(self) -> tuple[int, int]:
        return 1, 1

    def build(self, device: torch.device, precision: Precision, run: RunOptions) -> nn.Module:
        torch.manual_seed(self.config.seed)
        self.nets = nn.ModuleDict({"generator": _mlp(2), "discriminator": _mlp(1)}).to(device)
        return GANLoss(self.nets)

    def network(self) -> nn.Module:
        return self.nets

    def encoder_id(self) -> str:
        return "none"

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        lr = self.config.learning_rate
        return {
            name: torch.optim.Adam(self.nets[name].parameters(), lr=lr, betas=(0.5, 0.999))
            for name in ("discriminator", "generator")
        }

    def start_data(self, run: RunOptions, seed: int) -> None:
        self.rank = dist.get_rank() if dist.is_initialized() else 0

    def before_step(self, step: int) -> None:
        self.points.manual_seed((self.config.seed * 1009 + step) * 8 + self.rank)

    def batch(self, device: torch.device) -> tuple[Tensor, ...]:
        size = (self.config.batch_size, 2)
        real = torch.randn(size, generator=self.points) * 0.5 + torch.tensor(CENTER)
        noise = torch.randn(size, generator=self.points)
        self.seen.append(float(real.sum()))
        return real.to(device), noise.to(device)

    def train_step(
        self,
        batch: tuple[Tensor, ...],
        optimizers: dict[str, torch.optim.Optimizer],
        context: StepContext,
    ) -> dict[str, Tensor]:
        judged = context.forward(*batch, "discriminator")
        context.backward(judged["discriminator"], optimizers["discriminator"])
        fooled = context.forward(*batch, "generator")
        context.backward(fooled["generator"], optimizers["generator"])
        return judged | fooled


def main(out: str, ranks: str, iterations: str) -> None:
    torch.set_num_threads(1)
    config = TrainingConfig(iterations=int(iterations), batch_size=8, learning_rate=1e-2)
    objective = ToyGAN(config)
    run = RunOptions(out_dir=out, workers=0, save_every=2, log_every=1, progress=False)
    result = train(objective, run)
    rank = dist.get_rank()
    tensors = {k: v.detach().contiguous() for k, v in objective.nets.state_dict().items()}
    save_file(tensors, Path(ranks) / f"rank{rank}.safetensors")
    report = {"world": dist.get_world_size(), "step": result.step, "batches": objective.seen}
    (Path(ranks) / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
