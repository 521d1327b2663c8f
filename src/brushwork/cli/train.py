"""``brushwork train NAME [options]``: one command per registered trainer, its flags generated
from the objective's config and :class:`brushwork.training.trainer.RunOptions`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from brushwork.cli.common import (
    _Parser,
    add_options,
    given,
    pick_named,
    progress_flags,
    progress_sinks,
)
from brushwork.errors import BrushworkError

if TYPE_CHECKING:
    from brushwork.training.trainer import TrainResult


def train_parser(name: str) -> argparse.ArgumentParser:
    """The parser of ``brushwork train NAME``: the objective's config and the run options."""
    from brushwork.training import get_objective
    from brushwork.training.trainer import RunOptions

    objective = get_objective(name)
    parser = _Parser(prog=f"brushwork train {name}", description=objective.description + ".")
    add_options(parser.add_argument_group(f"{name} training"), objective.config_class, "t_")
    add_options(
        parser.add_argument_group("run"),
        RunOptions,
        "r_",
        defaults=RunOptions(out_dir=f"runs/{name}"),
    )
    progress_flags(parser)
    return parser


def cmd_train(argv: Sequence[str]) -> int:
    """``brushwork train NAME``: one trainer, one objective per network."""
    from brushwork.training import trainers

    names = list(trainers())
    picked = pick_named(
        argv,
        prog="brushwork train",
        description=f"Train a network: {'; '.join(names)}. "
        "`brushwork train NAME -h` for its options.",
        dest="network",
        names=names,
    )
    if picked is None:
        return 0
    name, rest = picked
    if name not in names:
        raise BrushworkError(f"nothing to train called {name!r}; choose one of {', '.join(names)}")
    from brushwork import events
    from brushwork.training import get_objective
    from brushwork.training.trainer import RunOptions, train

    args = train_parser(name).parse_args(list(rest))
    objective_class = get_objective(name)
    config = objective_class.config_class(**given(args, "t_"))
    config.validate()
    run = RunOptions(**{"out_dir": f"runs/{name}", **given(args, "r_")})
    run.validate()
    # the weights (run.weights) load in the objective's build, after every check
    with progress_sinks(args) as sinks, events.bound(sinks):
        result = train(objective_class(config), run)
    return _report(result, config.iterations)


def _report(result: TrainResult, iterations: int) -> int:
    """What a training run did, on stderr (the model's path on stdout); the exit status:
    130 when interrupted."""
    if result.skipped:
        print(f"brushwork: skipped {len(result.skipped)} unreadable input(s)", file=sys.stderr)
    if "parts" in result.details:
        parts = ", ".join(f"{n} {part}" for part, n in sorted(result.details["parts"].items()))
        print(f"brushwork: split: {parts}", file=sys.stderr)
    if not result.finished and result.step == 0:
        print("brushwork: stopped before the first step; nothing saved", file=sys.stderr)
        return 130 if result.interrupted else 0
    if not result.finished:
        print(
            f"brushwork: stopped at step {result.step} of {iterations}; checkpoint "
            f"saved in {result.out_dir}; --resume continues",
            file=sys.stderr,
        )
        return 130 if result.interrupted else 0
    print(result.out_dir / "model.safetensors")
    return 0
