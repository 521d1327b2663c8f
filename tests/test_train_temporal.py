"""``brushwork train adain-temporal``: an AdaIN decoder fine-tuned with a temporal loss on
synthetic motion (brushwork.training.temporal; Wang et al. 2020, ReReVST). Tiny random
encoder, 32 px crops, a few steps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import expect_error, save_decoder, smooth_image

from brushwork.checkpoints import load_checkpoint
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.image import to_pil
from brushwork.methods.feedforward import read_decoder
from brushwork.training import get_objective, trainer, trainers
from brushwork.training.runs import LOG, MODEL
from brushwork.training.temporal import (
    TemporalAdaINLoss,
    TemporalAdaINObjective,
    TemporalConfig,
    inside_mask,
    random_flow,
    temporal_l1,
)
from brushwork.training.trainer import RunOptions
from brushwork.video.flow import warp

pytestmark = pytest.mark.usefixtures("one_thread")


def _folder(path: Path, count: int, seed: int) -> Path:
    path.mkdir(parents=True)
    for i in range(count):
        to_pil(smooth_image(40, 40, seed=seed + i)).save(path / f"{i}.png")
    return path


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    return _folder(tmp_path / "photos", 3, 0), _folder(tmp_path / "paintings", 2, 10)


@pytest.fixture
def start(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_decoder(tmp_path / "start.safetensors", tiny_encoder)


def _config(data: tuple[Path, Path], start: Path, **changes: object) -> TemporalConfig:
    values: dict = {
        "init_from": str(start),
        "iterations": 3,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "load_size": 32,
        "crop_size": 32,
    }
    values.update(changes)
    return TemporalConfig(str(data[0]), str(data[1]), **values)


def _run(out: Path, **changes: object) -> RunOptions:
    return RunOptions(
        **{
            "out_dir": str(out),
            "workers": 0,
            "save_every": 1000,
            "log_every": 1,
            "progress": False,
            **changes,
        }
    )


def test_it_is_registered_with_adain() -> None:
    assert trainers()["adain-temporal"] == "brushwork.training.temporal:TemporalAdaINObjective"
    assert get_objective("adain-temporal") is TemporalAdaINObjective
    assert TemporalAdaINObjective.method == "adain"  # its models load with -m adain --model


def test_random_flows_are_smooth_and_of_the_asked_size() -> None:
    generator = torch.Generator().manual_seed(0)
    flow = random_flow(8, 64, 64, motion=6.0, generator=generator)
    assert flow.shape == (8, 2, 64, 64)
    assert 2.0 < float(flow.abs().mean()) < 12.0
    steps = (flow[..., 1:] - flow[..., :-1]).abs().max()
    assert float(steps) < 1.0  # smooth: neighbours move alike
    again = random_flow(8, 64, 64, motion=6.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(flow, again)
    assert float(random_flow(2, 16, 16, motion=0.0).abs().max()) < 0.6  # rotation, zoom only


def test_the_temporal_term_is_zero_for_an_output_that_moves_with_its_input() -> None:
    image = smooth_image(32, 32, seed=4)
    flow = random_flow(1, 32, 32, motion=3.0, generator=torch.Generator().manual_seed(1))
    moved = warp(image, flow)
    mask = inside_mask(flow)
    assert 0.3 < float(mask.mean()) <= 1.0
    assert float(temporal_l1(moved, moved, mask)) == 0.0
    assert float(temporal_l1(moved + 0.1, moved, mask)) == pytest.approx(0.1, rel=1e-4)


def test_the_loss_has_every_term_and_moves_the_decoder(
    tiny_encoder: VGG19,
    data,
    start,
) -> None:
    decoder, _ = read_decoder(str(start), method="adain", layer="relu4_1", width=1 / 16)
    loss = TemporalAdaINLoss(decoder, tiny_encoder, _config(data, start))
    loss.generator.manual_seed(0)
    content, style = smooth_image(32, 32, seed=1).expand(2, -1, -1, -1), smooth_image(32, 32)
    terms = loss(content.contiguous(), style.expand(2, -1, -1, -1).contiguous())
    assert set(terms) == {"content", "style", "temporal", "total"}
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in decoder.parameters())


def test_training_lowers_the_temporal_term_from_the_start_decoder(
    tiny_encoder: VGG19, tmp_path: Path, data, start
) -> None:
    config = _config(data, start, iterations=30, temporal_weight=200.0, learning_rate=3e-3)
    result = trainer.train(
        TemporalAdaINObjective(config, encoder=tiny_encoder), _run(tmp_path / "run")
    )
    assert result.finished
    with open(tmp_path / "run" / LOG, newline="") as f:
        rows = list(csv.DictReader(f))
    first = sum(float(r["temporal"]) for r in rows[:5]) / 5
    last = sum(float(r["temporal"]) for r in rows[-5:]) / 5
    assert last < 0.8 * first
    model = load_checkpoint(tmp_path / "run" / MODEL, method="adain", what="model")
    assert model.config["temporal_weight"] == 200.0 and model.step == 30


@pytest.mark.usefixtures("tiny_pretrained")
def test_the_command_trains_and_resumes(
    tmp_path: Path, data, start, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "train",
        "adain-temporal",
        "--content-dir",
        str(data[0]),
        "--style-dir",
        str(data[1]),
        "--init-from",
        str(start),
        "--iterations",
        "2",
        "--batch-size",
        "1",
        "--crop-size",
        "32",
        "--load-size",
        "32",
        "--workers",
        "0",
        "--log-every",
        "1",
        "--out",
        str(out),
        "-q",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out / MODEL)
    argv[argv.index("--iterations") + 1] = "3"
    assert main([*argv, "--resume"]) == 0
    assert load_checkpoint(out / MODEL, method="adain", what="model").step == 3


@pytest.mark.usefixtures("no_work")
def test_bad_configurations_are_refused_before_any_work(
    tmp_path: Path, data, start, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "train",
        "adain-temporal",
        "--content-dir",
        str(data[0]),
        "--style-dir",
        str(data[1]),
        "--out",
        str(tmp_path / "run"),
    ]
    assert "temporal-weight must be > 0" in expect_error(capsys, [*base, "--temporal-weight", "0"])
    assert "neither a bundled adain model" in expect_error(capsys, [*base, "--init-from", "nosuch"])
    assert "motion must be" in expect_error(capsys, [*base, "--motion", "-1"])
    assert not (tmp_path / "run").exists()


def test_a_decoder_for_another_encoder_width_is_refused(
    tmp_path: Path, data, tiny_encoder: VGG19
) -> None:
    config = _config(data, Path("unused"), init_from="adain")  # the bundled, full width
    with pytest.raises(BrushworkError, match="another encoder width"):
        trainer.train(TemporalAdaINObjective(config, encoder=tiny_encoder), _run(tmp_path / "run"))
