"""``brushwork serve`` with the tiny random encoder of the tests (a subprocess for the
tests that need a real uvicorn: server-sent events over HTTP, disconnects, a kill, the
load test, the browser). The tiny decoder is offered as model ``tiny``.

    python tests/service_server.py --data DIR --port N [--hold-at-step S]
        [--start-when-followed] [serve flags]

``--hold-at-step S`` (for the kill tests): the first job whose progress reaches step S holds
there until the server stops or is killed, after writing its id to ``DIR/../held``.
``--start-when-followed`` (for the event tests): a job starts only once an event reader
follows it (see :func:`servicekit.start_when_followed`), so that the reader sees all of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

import brushwork.encoders
from brushwork.encoders import VGG19

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv: list[str]) -> int:
    from conftest import save_decoder

    from brushwork.cli import main as cli

    torch.manual_seed(0)
    encoder = VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()
    brushwork.encoders.cached_vgg19 = lambda *args, **kwargs: encoder
    data = Path(argv[argv.index("--data") + 1])
    data.mkdir(parents=True, exist_ok=True)
    if "--hold-at-step" in argv:
        from servicekit import hold_jobs_at

        from brushwork.service.jobs import JobSink

        at = argv.index("--hold-at-step")
        step = int(argv[at + 1])
        del argv[at : at + 2]
        JobSink.__call__, _ = hold_jobs_at(step, data.parent / "held")  # type: ignore[method-assign]
    if "--start-when-followed" in argv:
        from servicekit import start_when_followed

        from brushwork.service.jobs import JobManager

        argv.remove("--start-when-followed")
        JobManager._run = start_when_followed()  # type: ignore[method-assign]
    model = data.parent / "tiny-decoder.safetensors"
    if not model.is_file():
        save_decoder(model, encoder)
    return cli(
        ["serve", "--threads", "1", *argv, "--model", f"tiny={model}", "--log-level", "warning"]
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
