"""One process of a distributed AdaIN training run, for tests/test_train_adain.py.

Launched by ``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_train.py CONTENT
STYLE RUN RANKS ITERATIONS``: every process builds the same tiny random encoder (no weights
needed) and trains :class:`brushwork.training.adain.AdaINObjective` through
:func:`brushwork.training.trainer.train`; afterwards each writes its own decoder weights to
``RANKS/rank<R>.safetensors`` and, to ``RANKS/rank<R>.json``, the total losses it logged (the
means over the ranks, as the loop computed them), the losses of the Progress events its sink
received (only rank 0 reports) and a checksum of each content batch it read, so the test can
check that the ranks, fed different crops, still ended with the same decoder (their gradients
were all-reduced).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

import brushwork.training.adain as adain
from brushwork import events
from brushwork.encoders import VGG19
from brushwork.training import trainer


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

    # every rank's logged means (the loop's _mean_over_ranks), whether or not it reports
    totals: list[float] = []
    mean_over_ranks = trainer._mean_over_ranks

    def recording(means, world):  # type: ignore[no-untyped-def]
        result = mean_over_ranks(means, world)
        totals.append(float(result["total"]))
        return result

    trainer._mean_over_ranks = recording  # type: ignore[assignment]

    progress: list[float] = []

    def sink(event: events.Event) -> None:
        if isinstance(event, events.Progress) and event.losses:
            progress.append(event.losses["total"])

    config = adain.TrainConfig(
        content,
        style,
        iterations=int(iterations),
        batch_size=2,
        learning_rate=3e-3,
        load_size=32,
        crop_size=16,
    )
    run = trainer.RunOptions(out_dir=out, workers=0, save_every=2, log_every=1, progress=False)
    result = trainer.train(adain.AdaINObjective(config, encoder=encoder), run, events=sink)
    rank = dist.get_rank()
    folder = Path(ranks)
    save_file(
        {k: v.detach().contiguous() for k, v in decoders[0].state_dict().items()},
        folder / f"rank{rank}.safetensors",
    )
    (folder / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "world": dist.get_world_size(),
                "step": result.step,
                "finished": result.finished,
                "totals": totals,
                "progress": progress,
                "batches": batches,
            }
        )
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
