"""One process of a distributed AdaIN training run, for tests/test_train_adain.py.

Launched by ``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_train.py CONTENT
STYLE RUN RANKS ITERATIONS``: every process builds the same tiny random encoder (no weights
needed) and calls :func:`brushwork.training.adain.train`; afterwards each writes its own
decoder weights to ``RANKS/rank<R>.safetensors`` and, to ``RANKS/rank<R>.json``, the logged
total losses (means over the ranks) and a checksum of each content batch it read, so the test
can check that the ranks, fed different crops, still ended with the same decoder (their
gradients were all-reduced).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

import brushwork.training.adain as adain
from brushwork.encoders import VGG19


def main(content: str, style: str, out: str, ranks: str, iterations: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    encoder = VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()
    decoders = []
    batches: list[float] = []

    class Capture(adain.AdaINLoss):
        def __init__(self, decoder, *args, **kwargs) -> None:
            super().__init__(decoder, *args, **kwargs)
            decoders.append(decoder)

        def forward(self, content, style):  # type: ignore[no-untyped-def]
            batches.append(float(content.sum()))
            return super().forward(content, style)

    adain.AdaINLoss = Capture  # type: ignore[misc]
    totals: list[float] = []
    config = adain.TrainConfig(content, style, iterations=int(iterations), batch_size=2,
                               learning_rate=3e-3, load_size=32, crop_size=16)
    run = adain.RunOptions(out_dir=out, workers=0, save_every=2, log_every=1, progress=False)
    result = adain.train(config, run, encoder=encoder,
                         callbacks=[lambda step: totals.append(step.losses["total"])])
    rank = dist.get_rank()
    folder = Path(ranks)
    save_file({k: v.detach().contiguous() for k, v in decoders[0].state_dict().items()},
              folder / f"rank{rank}.safetensors")
    (folder / f"rank{rank}.json").write_text(json.dumps({
        "world": dist.get_world_size(), "step": result.step, "finished": result.finished,
        "totals": totals, "batches": batches,
    }))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
