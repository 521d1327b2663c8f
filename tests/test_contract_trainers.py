"""The contract every trainer keeps (brushwork.training.trainers(): the registry's and the
depth estimator's), checked through `brushwork train NAME` with the tiny random encoder and
tiny data (tests/contract.py says how each takes its data): a two-step run writes its log,
checkpoint and model; SIGTERM after step 1 leaves a checkpoint of step 1 from which
`--resume` reaches what an uninterrupted run reaches, bit for bit (weights, every
optimizer's state, the log); a run over `--max-memory`, or over 80 % of the machine's memory
without it, is refused in one line before anything loads or is made."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import expect_error
from contract import TRAINER_DATA, train_argv, trainer_data

import brushwork.encoders
from brushwork import events as ev
from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.training import get_objective, trainers
from brushwork.training.runs import CHECKPOINT, LOG, MODEL, read_log

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = sorted(trainers())


def tiny_encoder() -> VGG19:
    """The same random tiny VGG-19 at every call (a run never sees another's changes)."""
    torch.manual_seed(0)
    return VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()


@pytest.fixture(scope="module", autouse=True)
def tiny_weights() -> Iterator[None]:
    """The pretrained VGG-19 replaced by :func:`tiny_encoder` for the module (the
    memory-plan test refuses it again)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(brushwork.encoders, "cached_vgg19", lambda *args, **kwargs: tiny_encoder())
        yield


def _fixed_argv(name: str, folder: Path, out: Path, *extra: str) -> list[str]:
    """`brushwork train NAME` of 2 steps on data that gives the same batch every step."""
    found = trainer_data(name)
    data, sizes = found.fixed(folder)
    return train_argv(name, data, out, *sizes, *found.start(folder, tiny_encoder()), *extra)


def _signal_at(step: int) -> ev.Sink:
    """A sink that sends this process SIGTERM when ``step`` is done."""

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and event.step == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return sink


def _log(out: Path) -> list[list[str]]:
    """losses.csv without its seconds column."""
    return [line.split(",")[:-1] for line in (out / LOG).read_text().splitlines()]


@pytest.fixture(scope="module", params=NAMES)
def straight(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """An uninterrupted two-step run of each trainer: (name, run folder)."""
    name = request.param
    folder = tmp_path_factory.mktemp(name)
    argv = _fixed_argv(name, folder, folder / "run")
    assert main(argv) == 0, name
    return name, folder / "run"


def test_every_trainer_has_its_data_described() -> None:
    assert sorted(TRAINER_DATA) == NAMES


def test_two_steps_write_the_log_the_checkpoint_and_the_model(straight) -> None:
    name, out = straight
    method = get_objective(name).method
    steps = read_log(out / LOG)
    assert [s.step for s in steps] == [1, 2]
    assert all(torch.isfinite(torch.tensor(list(s.losses.values()))).all() for s in steps)
    assert load_checkpoint(out / CHECKPOINT, method=method).step == 2
    assert load_checkpoint(out / MODEL, method=method, what="model").step == 2


def test_sigterm_checkpoints_and_resume_matches_an_uninterrupted_run(
    straight, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, out = straight
    method = get_objective(name).method
    halves = tmp_path / "run"
    argv = _fixed_argv(name, tmp_path, halves)
    capsys.readouterr()
    with ev.bound(_signal_at(1)):
        assert main(argv) == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"brushwork: stopped at step 1 of 2; checkpoint saved in {halves}" in captured.err
    assert load_checkpoint(halves / CHECKPOINT, method=method).step == 1
    assert not (halves / MODEL).exists()

    assert main([*argv, "--resume"]) == 0
    a = load_checkpoint(out / CHECKPOINT, method=method)
    b = load_checkpoint(halves / CHECKPOINT, method=method)
    assert (a.step, b.step) == (2, 2)
    for mine, theirs in ((a.tensors, b.tensors), (a.optimizer, b.optimizer)):
        assert mine.keys() == theirs.keys()
        for key, tensor in mine.items():
            assert torch.equal(tensor, theirs[key]), key
    assert _log(out) == _log(halves)


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("name", NAMES)
def test_a_run_over_max_memory_is_refused_before_anything_loads(capsys, tmp_path, name) -> None:
    out = tmp_path / "new" / "run"
    data = (tmp_path / "photos", tmp_path / "paintings")
    message = expect_error(capsys, train_argv(name, data, out, "--max-memory", "100M"))
    assert re.fullmatch(
        rf"{name} training with batches of 2 crops of \d+x\d+ px needs about [\d.]+ GiB, "
        r"over the memory limit \(0\.1 GiB\); use a smaller --batch-size, .*, or a machine "
        r"with more memory",
        message,
    ), message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("name", NAMES)
def test_a_batch_too_large_for_the_machine_is_refused_before_anything_loads(
    capsys, tmp_path, name
) -> None:
    """Without --max-memory the limit is 80 % of what the machine has."""
    out = tmp_path / "new" / "run"
    data = (tmp_path / "photos", tmp_path / "paintings")
    message = expect_error(capsys, train_argv(name, data, out, "--batch-size", "1000000"))
    assert re.fullmatch(
        rf"{name} training with batches of 1000000 crops of \d+x\d+ px needs about [\d.]+ "
        r"GiB, over 80 % of the available memory \([\d.]+ GiB\); use a smaller --batch-size, "
        r"--crop-(size or --load-size|height, --crop-width or --side), or a machine with "
        r"more memory",
        message,
    ), message
    assert list(tmp_path.iterdir()) == []
