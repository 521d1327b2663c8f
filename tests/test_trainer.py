"""Tests for the training step an objective can override (brushwork.training.objective's
``optimizers`` and ``train_step``) and what brushwork.training.trainer does around it: named
optimizer state in checkpoints, exact resume, DDP, precision, divergence.

The default step is pinned to the trainer before named optimizers: a 4-step AdaIN run of the
tiny random encoder must reproduce tests/data/trainer_reference.safetensors (its checkpoint's
weights and optimizer state, and each step's losses), and the checkpoint that trainer wrote at
step 2 (tests/data/trainer_legacy_checkpoint.safetensors) must resume to the same state. The
adversarial steps run tests/adversarial.py's toy GAN.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from adversarial import CENTER, ToyGAN
from conftest import assert_matches_reference, smooth_image
from safetensors.torch import load_file
from torch import Tensor

from brushwork import events as ev
from brushwork.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.image import to_pil
from brushwork.precision import FLOAT32
from brushwork.training.adain import AdaINObjective, TrainConfig
from brushwork.training.objective import StepContext
from brushwork.training.runs import CHECKPOINT, LOG, MODEL
from brushwork.training.trainer import RunOptions, TrainingConfig, TrainResult, train

TESTS = Path(__file__).resolve().parent
REFERENCE = TESTS / "data" / "trainer_reference.safetensors"
LEGACY = TESTS / "data" / "trainer_legacy_checkpoint.safetensors"

pytestmark = pytest.mark.usefixtures("one_thread")


def _options(out: Path, **changes: object) -> RunOptions:
    values: dict = {"out_dir": str(out), "workers": 0, "log_every": 1, "progress": False}
    return RunOptions(**(values | changes))


def _gan(**changes: object) -> TrainingConfig:
    values: dict = {"iterations": 6, "batch_size": 8, "learning_rate": 1e-2}
    return TrainingConfig(**(values | changes))


def _saved(out: Path, method: str = "toy-gan") -> Checkpoint:
    return load_checkpoint(out / CHECKPOINT, method=method)


def _log(out: Path) -> list[list[str]]:
    """losses.csv without its seconds column."""
    return [line.split(",")[:-1] for line in (out / LOG).read_text().splitlines()]


def _assert_equal(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def _signal_at(step: int) -> ev.Sink:
    """An event sink that sends this process SIGTERM when ``step`` is done."""

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.Progress) and event.step == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return sink


# ----------------------------------------------------------------------------- the default step


@pytest.fixture
def adain_run(tmp_path: Path) -> tuple[AdaINObjective, RunOptions]:
    """The recipe of tests/data/trainer_reference.safetensors: one 32 px content and style
    image (every batch the same), crops of 32, batches of 2, lr 3e-3, Laplacian weight 1,
    4 steps, a checkpoint every 2, no margin (the reference came before it)."""
    for name, seed in (("content", 0), ("style", 1)):
        (tmp_path / name).mkdir()
        to_pil(smooth_image(32, 32, seed=seed)).save(tmp_path / name / "0.png")
    torch.manual_seed(0)
    encoder = VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()
    config = TrainConfig(
        str(tmp_path / "content"),
        str(tmp_path / "style"),
        iterations=4,
        batch_size=2,
        learning_rate=3e-3,
        load_size=None,
        crop_size=32,
        lap_weight=1.0,
        margin=0,
    )
    objective = AdaINObjective(config, encoder=encoder)
    return objective, _options(tmp_path / "run", save_every=2)


def _assert_matches_the_reference(out: Path, losses: list[list[float]]) -> None:
    """The run's checkpoint and losses are those the trainer before named optimizers made
    (bit for bit on the machine that made them; see conftest.assert_matches_reference):
    its one Adam's state is now the ``network`` optimizer's."""
    saved = _saved(out, "adain")
    assert saved.step == 4
    for name, tensor in saved.tensors.items():
        assert_matches_reference(tensor, REFERENCE, f"model/{name}")
    stored = {k for k in load_file(REFERENCE) if k.startswith("optimizer/")}
    assert set(saved.optimizer) == {f"network/{k[10:]}" for k in stored} | {"network/lr"}
    for key in stored:
        assert_matches_reference(saved.optimizer[f"network/{key[10:]}"], REFERENCE, key)
    assert saved.optimizer["network/lr"].tolist() == [3e-3 / (1 + 5e-5 * 3)]
    if losses:
        assert_matches_reference(torch.tensor(losses), REFERENCE, "losses")


def test_the_default_step_matches_the_trainer_before_named_optimizers(adain_run) -> None:
    objective, run = adain_run
    losses: list[list[float]] = []

    def collect(event: ev.Event) -> None:
        if isinstance(event, ev.Progress):
            losses.append([event.losses[k] for k in ("content", "style", "laplacian", "total")])

    assert train(objective, run, events=collect).finished
    _assert_matches_the_reference(Path(run.out_dir), losses)


def test_a_checkpoint_from_before_named_optimizers_resumes(adain_run) -> None:
    """Its optimizer state has no name: it resumes as the default optimizer's, exactly."""
    objective, run = adain_run
    assert not any("/" in k for k in load_checkpoint(LEGACY, method="adain").optimizer)
    Path(run.out_dir).mkdir()
    shutil.copy(LEGACY, Path(run.out_dir) / CHECKPOINT)
    result = train(objective, dataclasses.replace(run, resume=True))
    assert (result.step, result.finished) == (4, True)
    _assert_matches_the_reference(Path(run.out_dir), [])


# ----------------------------------------------------------------------------- adversarial


def test_an_adversarial_run_stopped_and_resumed_matches_an_uninterrupted_one(tmp_path) -> None:
    """Two optimizers alternating (the discriminator's step, then the generator's), stopped
    by SIGTERM after step 3 of 6 and resumed: weights, both optimizers' state and the log
    equal those of 6 straight steps bit for bit."""
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(ToyGAN(_gan()), _options(straight, save_every=100))
    stopped = train(ToyGAN(_gan()), _options(halves, save_every=100), events=_signal_at(3))
    assert (stopped.step, stopped.finished, stopped.interrupted) == (3, False, True)
    first = _saved(halves)
    assert {k.split("/")[0] for k in first.optimizer} == {"discriminator", "generator"}
    assert first.optimizer["generator/generator.0.weight.step"].item() == 3
    assert not (halves / MODEL).exists()

    resumed = train(ToyGAN(_gan()), _options(halves, save_every=100, resume=True))
    assert (resumed.step, resumed.finished) == (6, True)
    a, b = _saved(straight), _saved(halves)
    _assert_equal(a.tensors, b.tensors)
    _assert_equal(a.optimizer, b.optimizer)
    assert _log(straight) == _log(halves)
    assert _log(halves)[0] == ["step", "lr", "discriminator", "generator"]
    assert len(_log(halves)) == 7


def test_the_networks_learn_against_each_other(tmp_path) -> None:
    """Not a vacuous comparison: both optimizers move their networks, and the generated
    points drift toward the real ones (seen: their mean from 2.6 to 0.6 away in 150 steps)."""
    start, trained = ToyGAN(_gan()), ToyGAN(_gan(iterations=150))
    start.build(torch.device("cpu"), FLOAT32, RunOptions())  # the run's first weights
    train(trained, _options(tmp_path / "run", log_every=50))
    noise = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        far, near = (
            float((gan.nets["generator"](noise).mean(0) - torch.tensor(CENTER)).norm())
            for gan in (start, trained)
        )
    assert near < 0.5 * far, (near, far)
    for part in ("generator", "discriminator"):
        first = start.nets[part].state_dict()
        for name, tensor in trained.nets[part].state_dict().items():
            assert not torch.equal(tensor, first[name]), (part, name)


def test_bfloat16_autocast_runs_every_step(tmp_path) -> None:
    """Both steps run under autocast: the losses differ from float32's, not by much; the
    weights and the optimizers' moments stay float32."""
    results: dict[str, TrainResult] = {}
    for precision in ("float32", "bfloat16"):
        results[precision] = train(
            ToyGAN(_gan(iterations=4)), _options(tmp_path / precision, precision=precision)
        )
    assert [r.precision for r in results.values()] == ["float32", "bfloat16"]
    f32, bf16 = (_log(tmp_path / p)[1:] for p in ("float32", "bfloat16"))
    assert f32 != bf16
    for row32, row16 in zip(f32, bf16, strict=True):
        assert [float(v) for v in row16] == pytest.approx([float(v) for v in row32], rel=0.05)
    saved = _saved(tmp_path / "bfloat16")
    assert {t.dtype for t in saved.tensors.values()} == {torch.float32}
    moments = [t for k, t in saved.optimizer.items() if k.endswith(("exp_avg", "exp_avg_sq"))]
    assert moments and {t.dtype for t in moments} == {torch.float32}


def test_distributed_adversarial_training_keeps_the_ranks_equal(tmp_path) -> None:
    """Two processes (gloo) read different points, yet end with the same generator and
    discriminator: each optimizer's gradients were averaged, although the discriminator's
    step leaves the generator out."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    out, ranks = tmp_path / "run", tmp_path / "ranks"
    ranks.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
    command += ["--nproc_per_node", "2", str(TESTS / "adversarial.py"), str(out), str(ranks), "3"]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env | {"OMP_NUM_THREADS": "1"}, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reports = [json.loads((ranks / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["step"] == 3 for r in reports)
    assert reports[0]["batches"] != reports[1]["batches"]
    weights = [load_file(ranks / f"rank{r}.safetensors") for r in (0, 1)]
    _assert_equal(weights[0], weights[1])
    saved = _saved(out)
    _assert_equal(saved.tensors, weights[0])
    assert {k.split("/")[0] for k in saved.optimizer} == {"discriminator", "generator"}


# ----------------------------------------------------------------------------- bad input


class Diverging(ToyGAN):
    """The toy GAN whose step ``at`` (0-based) goes wrong: its generator's loss (or, with
    ``weights``, a weight of the generator) becomes ``value``."""

    def __init__(
        self, config: TrainingConfig, value: float, *, weights: bool = False, at: int = 3
    ) -> None:
        super().__init__(config)
        self.value, self.weights, self.at = value, weights, at

    def train_step(self, batch, optimizers, context: StepContext) -> dict[str, Tensor]:
        losses = super().train_step(batch, optimizers, context)
        if context.step == self.at and self.weights:
            with torch.no_grad():
                self.nets["generator"][0].weight[0, 0] = self.value
        elif context.step == self.at:
            losses["generator"] = torch.tensor(self.value)
        return losses


@pytest.mark.parametrize(
    ("value", "weights", "every", "expected"),
    [
        (float("nan"), False, 2, "its 'generator' loss is nan"),
        # found at step 6 (the next log and checkpoint), named at step 4
        (float("inf"), False, 3, "its 'generator' loss is inf"),
        (float("nan"), True, 2, "the weights are no longer finite"),
    ],
)
def test_a_step_that_diverges_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path, value, weights, every, expected
) -> None:
    """Named in one line with its step, before anything of it is saved: the last
    checkpoint and its log stay, finite."""
    out = tmp_path / "run"
    objective = Diverging(_gan(), value, weights=weights)
    with pytest.raises(BrushworkError) as error:
        train(objective, _options(out, save_every=every, log_every=every))
    assert str(error.value) == (
        f"training diverged at step 4: {expected}; lower the learning rate "
        f"({CHECKPOINT} keeps step {every})"
    )
    saved = _saved(out)
    assert saved.step == every
    assert all(
        torch.isfinite(t).all() for t in (*saved.tensors.values(), *saved.optimizer.values())
    )
    assert [row[0] for row in _log(out)] == ["step", str(every)]
    assert not (out / MODEL).exists()


def test_a_run_that_diverges_at_once_leaves_no_folder(tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(BrushworkError, match=r"at step 1: its 'generator' loss is nan; .*"):
        train(Diverging(_gan(), float("nan"), at=0), _options(out, save_every=2))
    assert not out.exists()


def _edit_checkpoint(out: Path, change: str) -> None:
    """Drop the discriminator's state, or add one of an optimizer the run does not have."""
    saved = _saved(out)
    state = saved.optimizer
    if change == "missing":
        state = {k: v for k, v in state.items() if not k.startswith("discriminator/")}
    else:
        state = state | {"critic/lr": torch.tensor([1e-3], dtype=torch.float64)}
    save_checkpoint(out / CHECKPOINT, dataclasses.replace(saved, optimizer=state))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("missing", "holds no state for the optimizer 'discriminator' (it holds: generator)"),
        ("extra", "holds the state of optimizers this run does not have (critic)"),
    ],
)
def test_resume_refuses_a_checkpoint_whose_optimizers_differ(tmp_path, change, expected) -> None:
    out = tmp_path / "run"
    train(ToyGAN(_gan(iterations=2)), _options(out))
    _edit_checkpoint(out, change)
    before = (out / CHECKPOINT).read_bytes()
    objective = ToyGAN(_gan(iterations=4))
    with pytest.raises(BrushworkError) as error:
        train(objective, _options(out, resume=True))
    assert str(error.value).startswith(f"cannot resume: {out / CHECKPOINT} {expected}")
    assert "\n" not in str(error.value)
    assert objective.seen == [] and (out / CHECKPOINT).read_bytes() == before


# ----------------------------------------------------------------------------- the run folder


def test_a_run_folder_in_use_is_refused_and_free_again_afterwards(tmp_path) -> None:
    """While one run trains in a folder (its lock held), a second run there (``--resume``)
    is refused in one line before it loads anything; once the first stops, it resumes."""
    import fcntl

    out = tmp_path / "run"
    objective = ToyGAN(_gan(iterations=2))
    assert train(objective, _options(out)).finished
    holder = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        again = ToyGAN(_gan(iterations=4))
        with pytest.raises(BrushworkError, match="is in use by another training run"):
            train(again, _options(out, resume=True))
        assert len(again.nets) == 0  # refused before anything was built
    finally:
        os.close(holder)
    assert train(ToyGAN(_gan(iterations=4)), _options(out, resume=True)).step == 4
