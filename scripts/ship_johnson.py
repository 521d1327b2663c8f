"""Ship a johnson training run as a bundled model: its latest checkpoint (a finished run's or
one stopped between steps) as float16 safetensors under src/brushwork/models/, with the
styles of the model's registry entry (their sources and terms) and thumbnails made from the
run's style images.

    python scripts/ship_johnson.py RUN_FOLDER MODEL_NAME

The registry entry (brushwork.models.MODELS[MODEL_NAME]) must list the run's styles by the
names the run gave them (--style-names), in the run's order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.models.parts import save_model
from brushwork.training.runs import CHECKPOINT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run folder of `brushwork train johnson`")
    parser.add_argument("name", choices=[m.name for m in models.for_method("johnson")])
    args = parser.parse_args()
    info = models.MODELS[args.name]
    checkpoint = load_checkpoint(args.run / CHECKPOINT, method="johnson", what="checkpoint")
    config = checkpoint.config
    names = list(config["style_names"]) or [Path(p).stem for p in config["style"]]
    listed = [s.name for s in info.styles] or [info.style.name if info.style else ""]
    if names != listed:
        raise SystemExit(f"the run's styles {names} are not the registry's {listed}")
    pairs = list(zip(info.styles or [info.style], config["style"], strict=True))
    path = save_model(
        info.path,
        checkpoint.tensors,
        method="johnson",
        encoder=info.encoder,
        styles=pairs if len(pairs) > 1 else (),
        style=pairs[0][0] if len(pairs) == 1 else None,
        style_image=pairs[0][1] if len(pairs) == 1 else None,
        config={**config, "step": checkpoint.step},
    )
    size = path.stat().st_size / 1e6
    print(json.dumps({"model": str(path), "step": checkpoint.step, "megabytes": round(size, 2)}))


if __name__ == "__main__":
    main()
