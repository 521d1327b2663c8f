"""Ship a finished LapStyle run (its last stage) as a bundled model: the run's
``model.safetensors`` networks as float16 safetensors under src/brushwork/models/, with the
style of the model's registry entry (its source and terms) and a thumbnail made from the
run's style image.

    python scripts/ship_lapstyle.py RUN_FOLDER MODEL_NAME

The registry entry (brushwork.models.MODELS[MODEL_NAME]) must name the run's style by the
name the run gave it (--style-name).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brushwork import models
from brushwork.checkpoints import load_checkpoint
from brushwork.models.parts import load_parts, save_model
from brushwork.training.runs import MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run folder of `brushwork train lapstyle`")
    parser.add_argument("name", choices=[m.name for m in models.for_method("lapstyle")])
    args = parser.parse_args()
    info = models.MODELS[args.name]
    source = args.run / MODEL
    checkpoint = load_checkpoint(source, method="lapstyle", what="model")
    config = checkpoint.config
    name = config["style_name"] or Path(config["style"]).stem
    if info.style is None or name != info.style.name:
        raise SystemExit(f"the run's style {name!r} is not the registry's {info.style}")
    path = save_model(
        info.path,
        parts=load_parts(source, method="lapstyle"),
        method="lapstyle",
        encoder=checkpoint.encoder,
        style=info.style,
        style_image=config["style"],
        config={**config, "step": checkpoint.step},
    )
    size = path.stat().st_size / 1e6
    print(json.dumps({"model": str(path), "step": checkpoint.step, "megabytes": round(size, 2)}))


if __name__ == "__main__":
    main()
