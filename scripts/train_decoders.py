"""Train the shipped WCT decoders and Style Swap's inverse network, in order, on the CPU.

    python scripts/train_decoders.py --data ../shared/train --runs runs/decoders

Each network is one run of the one trainer (the same as ``brushwork train wct --layer L ...``
and ``brushwork train styleswap-inverse ...``), resumed from its checkpoint when the script
is started again. The relu4_1 decoder starts from the AdaIN
decoder, the relu5_1 decoder from the trained relu4_1 one (its lower layers), the inverse
network from the relu3_1 decoder. The budgets are what docs/models/wct.md and
docs/models/styleswap.md report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from brushwork.events import JsonLines
from brushwork.training.decoders import DecoderConfig, ReconstructionObjective
from brushwork.training.runs import CHECKPOINT, MODEL
from brushwork.training.styleswap import InverseConfig, InverseObjective
from brushwork.training.trainer import RunOptions, train

# (layer, start from, learning rate, its decay, steps, crop): sized to what two sessions of
# 2 shared CPU cores in bfloat16 allowed (0.15-0.9 s a step at 128 px, batch 8, on an idle
# machine; 2-4 s beside other work). New decoders start from a
# data-dependent initialization (Decoder.initialize); on relu1_1, 1e-4 oscillated between 20
# and 27 dB of held-out PSNR, 3e-5 reached 29.5 dB in 600 steps.
PLAN = (
    ("relu1_1", None, 5e-5, 2e-3, 1500, 128),
    ("relu2_1", None, 5e-5, 1e-3, 2500, 128),
    ("relu3_1", None, 5e-5, 5e-4, 4000, 128),
    ("relu4_1", "adain", 3e-5, 5e-4, 800, 128),
    ("relu5_1", "relu4_1", 5e-5, 5e-4, 600, 128),
)
INVERSE = ("relu3_1", 3e-5, 5e-4, 500, 128)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default="../shared/train",
        help="folder with content/ and style/ (default: ../shared/train)",
    )
    parser.add_argument(
        "--val", default="../shared/data/content", help="held-out photos scored during training"
    )
    parser.add_argument("--runs", default="runs/decoders", help="where the runs live")
    parser.add_argument(
        "--only", default=None, help="train one network (relu1_1 ... relu5_1, inverse)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, runs = Path(args.data), Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    images = (str(data / "content"), str(data / "style"))
    log = open(runs / "events.jsonl", "a")  # noqa: SIM115 - the whole run's log
    for layer, start, lr, decay, steps, crop in PLAN:
        if args.only not in (None, layer):
            continue
        out = runs / f"wct-{layer}"
        if (out / MODEL).exists():
            continue
        init, method = start, "adain"
        if start is not None and start.startswith("relu"):
            init, method = str(runs / f"wct-{start}" / MODEL), "wct"
        config = DecoderConfig(
            images,
            layer=layer,
            init_from=init,
            init_method=method,
            val_dir=args.val,
            iterations=steps,
            batch_size=8,
            learning_rate=lr,
            lr_decay=decay,
            load_size=crop + 32,
            crop_size=crop,
        )
        run = RunOptions(
            out_dir=str(out),
            resume=(out / CHECKPOINT).exists(),
            save_every=250,
            log_every=25,
            val_every=500,
            workers=1,
            cache_images=True,
        )
        result = train(ReconstructionObjective(config), run, events=JsonLines(log, every=25))
        print(
            json.dumps({"layer": layer, "step": result.step, "finished": result.finished}),
            flush=True,
        )
        if not result.finished:
            return 1
    if args.only in (None, "inverse"):
        layer, lr, decay, steps, crop = INVERSE
        out = runs / "styleswap-inverse"
        if not (out / MODEL).exists():
            config = InverseConfig(
                images[0],
                images[1],
                init_from=str(runs / f"wct-{layer}" / MODEL),
                init_method="wct",
                val_dir=args.val,
                iterations=steps,
                batch_size=4,
                learning_rate=lr,
                lr_decay=decay,
                load_size=crop + 32,
                crop_size=crop,
            )
            run = RunOptions(
                out_dir=str(out),
                resume=(out / CHECKPOINT).exists(),
                save_every=250,
                log_every=25,
                val_every=500,
                workers=1,
                cache_images=True,
            )
            result = train(InverseObjective(config), run, events=JsonLines(log, every=25))
            print(
                json.dumps(
                    {"network": "inverse", "step": result.step, "finished": result.finished}
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
