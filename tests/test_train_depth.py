"""brushwork's depth estimator: the network, its data (pairs, split, bad files), its metrics and
losses, and `brushwork train depth`. Tiny random encoders and synthetic pairs only."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED, expect_error
from PIL import Image

import brushwork.encoders
from brushwork import events as ev
from brushwork import models
from brushwork.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from brushwork.cli import main
from brushwork.depth import load_depth_model
from brushwork.depth.estimator import (
    DepthNet,
    load_estimator,
    predict_depth,
    resolve_estimator,
    to_checkpoint,
)
from brushwork.depth.metrics import baseline, depth_errors
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.losses import align_scale_shift, gradient_matching_loss
from brushwork.training import trainer
from brushwork.training.depth import (
    BLOCK,
    GUARD,
    SPLIT,
    DepthObjective,
    DepthPair,
    DepthTrainConfig,
    load_pair,
    read_pairs,
    split_pairs,
)
from brushwork.training.runs import LOG, MODEL, read_log
from brushwork.training.trainer import RunOptions, TrainResult

FIELDS = [
    "stem",
    "batch",
    "scene",
    "kind",
    "to_metres",
    "invalid",
    "width",
    "height",
    "source_path",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def encoder() -> VGG19:
    torch.manual_seed(0)
    return VGG19(last_layer="relu4_1", width=1 / 16).eval()


def _scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A floor-and-wall picture whose brightness follows its depth (metres)."""
    rows = np.linspace(0, 1, height)[:, None] * np.ones((1, width))
    horizon = rng.uniform(0.3, 0.6)
    depth = np.where(rows < horizon, 4.0, 4.0 - 3.0 * (rows - horizon) / (1 - horizon))
    left = int(rng.integers(0, width // 2))
    depth[height // 2 :, left : left + width // 4] = 1.2  # a box in front
    shade = (255 * (1 - depth / 5)).astype(np.uint8)
    rgb = np.stack([shade, shade // 2 + 40, 255 - shade], -1)
    return rgb, depth


def _dataset(
    root: Path,
    indoor: int = 8,
    *,
    batch: str = "nyu_synthetic",
    size: tuple[int, int] = (40, 56),
    outdoor: int = 2,
) -> Path:
    rng = np.random.default_rng(0)
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rows = []
    for i in range(indoor + outdoor):
        stem = f"pair_{i:04d}"
        rgb, metres = _scene(rng, *size)
        Image.fromarray(rgb).save(root / "rgb" / f"{stem}.jpg", quality=95)
        Image.fromarray((metres * 1000).astype(np.uint16)).save(root / "depth" / f"{stem}.png")
        rows.append(
            {
                "stem": stem,
                "batch": batch if i < indoor else "street",
                "scene": "indoor" if i < indoor else "outdoor",
                "kind": "metric_depth",
                "to_metres": "0.001",
                "invalid": "0",
                "width": size[1],
                "height": size[0],
                "source_path": "made in the test",
            }
        )
    with open(root / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def _tiny_model_file(path: Path, encoder: VGG19) -> Path:
    torch.manual_seed(1)
    save_checkpoint(path, to_checkpoint(DepthNet(encoder), {}, 0))
    return path


# --- the network -------------------------------------------------------------------------


def test_network_keeps_any_size_and_passes_gradients(encoder: VGG19) -> None:
    net = DepthNet(encoder).eval()
    for height, width in ((37, 53), (1, 1), (64, 32)):
        image = torch.rand(2, 3, height, width, requires_grad=True)
        out = net(image)
        assert out.shape == (2, 1, height, width)
        out.sum().backward()
        assert image.grad is not None and torch.isfinite(image.grad).all()
    names = {id(p) for p in net.decoder_parameters()}
    assert names.isdisjoint(id(p) for p in net.encoder.parameters())
    assert len(names) + len(list(net.encoder.parameters())) == len(list(net.parameters()))


def test_checkpoint_round_trip_and_bad_files(tmp_path: Path, encoder: VGG19) -> None:
    path = _tiny_model_file(tmp_path / "tiny.safetensors", encoder)
    torch.manual_seed(1)
    original = DepthNet(encoder).eval()
    loaded = load_estimator(path)
    image = torch.rand(1, 3, 24, 40)
    torch.testing.assert_close(loaded(image), original(image))
    model = load_depth_model(path)  # the plug-in interface takes it too, differentiably
    image.requires_grad_(True)
    model(image).mean().backward()
    assert image.grad is not None

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:1000])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    other = tmp_path / "adain.safetensors"
    save_checkpoint(other, Checkpoint("adain", "vgg19:relu4_1:32", {"x": torch.zeros(1)}, {}, 0))
    wrong = tmp_path / "wrong.safetensors"
    save_checkpoint(
        wrong,
        Checkpoint(
            "depth",
            "vgg19:relu4_1:32",
            {"encoder.convs.conv4_1.weight": torch.zeros(32, 16, 3, 3)},
            {},
            0,
        ),
    )
    for bad, message in (
        (truncated, "not a readable safetensors file"),
        (garbage, "not a readable safetensors file"),
        (other, "is a 'adain' checkpoint, not 'depth'"),
        (wrong, "does not hold a brushwork depth estimator"),
        (
            tmp_path / "missing.safetensors",
            r"is neither a bundled depth model \(depth\) nor an existing file",
        ),
    ):
        with pytest.raises(BrushworkError, match=message) as error:
            load_estimator(bad)
        assert "\n" not in str(error.value)


def test_bundled_estimator() -> None:
    path = resolve_estimator(None)
    assert [m.name for m in models.for_method("depth")] == ["depth"] and path.is_file()
    assert path == models.MODELS["depth"].path
    assert path.stat().st_size < 16 * 2**20
    saved = load_checkpoint(path, method="depth")
    assert saved.encoder == "vgg19:relu4_1:512" and saved.step > 0
    assert all(t.dtype == torch.float16 for t in saved.tensors.values())
    net = load_estimator("depth")
    rng = np.random.default_rng(0)
    rgb, _ = _scene(rng, 48, 64)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    depth = predict_depth(net, image)
    assert depth.shape == (1, 1, 48, 64) and torch.isfinite(depth).all()
    assert float(depth.std()) > 0


# --- losses and metrics --------------------------------------------------------------------


def test_alignment_and_gradient_matching() -> None:
    torch.manual_seed(0)
    target = torch.rand(2, 1, 16, 20) + 0.5
    prediction = 3.0 * target - 0.7
    torch.testing.assert_close(align_scale_shift(prediction, target), target)
    assert float(gradient_matching_loss(prediction, target)) < 1e-5
    noisy = target + 0.2 * torch.randn_like(target)
    assert float(gradient_matching_loss(noisy, target)) > 0.05
    # masked pixels take no part: damage outside the mask costs nothing
    mask = torch.ones_like(target)
    mask[..., :, 10:] = 0
    damaged = prediction.clone()
    damaged[..., :, 10:] = torch.rand_like(damaged[..., :, 10:])
    assert float(gradient_matching_loss(damaged, target, mask)) < 1e-5
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        gradient_matching_loss(target[:, 0], target[:, 0])


def test_depth_errors_and_baselines() -> None:
    torch.manual_seed(0)
    target = 1.0 / (torch.rand(1, 1, 12, 16) * 5 + 1)  # inverse depth of 1..6 m
    perfect = depth_errors(2 * target + 0.3, target)
    assert perfect["absrel"] < 1e-5 and perfect["delta1"] == 1.0
    constant = depth_errors(baseline("constant", target.shape), target)
    assert constant["absrel"] > 0.1 and constant["delta1"] < 1.0
    ramp = baseline("ramp", (1, 1, 4, 3))
    assert (
        torch.equal(ramp[0, 0, :, 0], torch.linspace(0, 1, 4))
        and (ramp[0, 0, 1] == ramp[0, 0, 1, 0]).all()
    )
    # unknown pixels do not count; a map with none scores nothing and does not crash
    hidden = target.clone()
    hidden[..., :6, :] = 0
    wild = target.clone()
    wild[..., :6, :] = 100.0
    assert depth_errors(wild, hidden) == depth_errors(target, hidden)
    assert depth_errors(torch.zeros_like(target), torch.zeros_like(target)) == {
        "absrel": 0.0,
        "delta1": 0.0,
    }
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline("sky", (1, 1, 2, 2))


# --- data ----------------------------------------------------------------------------------


def test_pairs_targets_and_bad_pairs(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "data", indoor=6, outdoor=1)
    pairs = read_pairs(root)
    assert len(pairs) == 7 and pairs[0].to_metres == 0.001
    rgb, inverse = load_pair(pairs[0])
    border = round(8 / 320 * 56)  # a batch named nyu* loses NYU's white border
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 40 - 2 * border, 56 - 2 * border)
    assert inverse.shape == (1, *rgb.shape[1:])
    assert float(inverse[inverse > 0].min()) >= 0.2 and float(inverse.max()) <= 1.0 + 1e-3

    def broken(stem: str, problem: str) -> DepthPair:
        pair = DepthPair(stem, root / "rgb" / f"{stem}.jpg", root / "depth" / f"{stem}.png")
        Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(pair.rgb)
        if problem == "unreadable":
            pair.depth.write_bytes(b"\x89PNG\r\n\x1a\n not really")
        elif problem == "size":
            Image.fromarray(np.ones((10, 12), np.uint16)).save(pair.depth)
        elif problem == "invalid":
            Image.fromarray(np.zeros((20, 24), np.uint16)).save(pair.depth)
        elif problem == "colour":
            Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(pair.depth)
        return pair

    for problem, message in (
        ("unreadable", "unreadable"),
        ("size", "differ in size"),
        ("invalid", "no valid pixel"),
        ("colour", "single-channel"),
        ("missing", "missing"),
    ):
        with pytest.raises(BrushworkError, match=message):
            load_pair(broken(f"bad_{problem}", problem))
    disparity = DepthPair("d", pairs[0].rgb, pairs[0].depth, kind="disparity_px")
    assert torch.equal(
        load_pair(disparity)[1][0, 0],
        torch.from_numpy(np.asarray(Image.open(pairs[0].depth)).astype(np.float32))[0],
    )

    with pytest.raises(BrushworkError, match="does not exist"):
        read_pairs(tmp_path / "nowhere")
    (tmp_path / "empty" / "rgb").mkdir(parents=True)
    with pytest.raises(BrushworkError, match="needs rgb/ and depth/"):
        read_pairs(tmp_path / "empty")
    (tmp_path / "empty" / "depth").mkdir()
    with pytest.raises(BrushworkError, match="has no RGB"):
        read_pairs(tmp_path / "empty")


def test_split_is_by_block_with_guards() -> None:
    count = 5 * BLOCK + 7
    pairs = [DepthPair(f"nyu_{i:04d}", Path("x"), Path("y"), batch="nyu") for i in range(count)]
    pairs += [
        DepthPair("street", Path("x"), Path("y"), scene="outdoor"),
        DepthPair("raw_1", Path("x"), Path("y"), batch="raw"),
    ]
    parts = split_pairs(pairs)
    assert parts == split_pairs(list(reversed(pairs)))  # fixed: order of reading is irrelevant
    assert parts["street"] == "outdoor" and parts["raw_1"] == "heldout"
    val = [i for i in range(count) if parts[f"nyu_{i:04d}"] == "val"]
    assert val == list(range(2 * BLOCK, 3 * BLOCK))
    guard = [i for i in range(count) if parts[f"nyu_{i:04d}"] == "guard"]
    assert guard == [*range(2 * BLOCK - GUARD, 2 * BLOCK), *range(3 * BLOCK, 3 * BLOCK + GUARD)]
    assert {parts[p.stem] for p in pairs[:count]} == {"train", "val", "guard"}


# --- training ------------------------------------------------------------------------------


def _config(root: Path, **kw: object) -> DepthTrainConfig:
    values = {
        "data_dir": str(root),
        "iterations": 4,
        "batch_size": 2,
        "side": 32,
        "crop_height": 24,
        "crop_width": 32,
        "learning_rate": 1e-3,
    }
    values.update(kw)
    return DepthTrainConfig(**values)  # type: ignore[arg-type]


def _run(out: Path, **kw: object) -> RunOptions:
    values = {
        "out_dir": str(out),
        "progress": False,
        "log_every": 1,
        "val_every": 2,
        "save_every": 2,
    }
    values.update(kw)
    return RunOptions(**values)  # type: ignore[arg-type]


def train_depth(
    config: DepthTrainConfig, run: RunOptions, *, encoder: VGG19, events: ev.Sinks = None
) -> TrainResult:
    """One depth-estimator run through the trainer."""
    return trainer.train(DepthObjective(config, encoder=encoder), run, events=events)


def test_training_run_logs_saves_and_resumes(
    tmp_path: Path, encoder: VGG19, monkeypatch: pytest.MonkeyPatch
) -> None:
    import brushwork.training.depth as training

    monkeypatch.setattr(training, "BLOCK", 2)  # a synthetic set of 8 indoor pairs splits too
    monkeypatch.setattr(training, "GUARD", 0)
    monkeypatch.setattr(training, "MIN_BATCH_FOR_SPLIT", 4)
    root = _dataset(tmp_path / "data")
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    collect = ev.Collect()
    result = train_depth(
        _config(root, iterations=2), _run(tmp_path / "run"), encoder=encoder, events=collect
    )
    assert result.step == 2 and result.finished and not result.skipped
    assert result.details["parts"] == {"train": 6, "val": 2, "outdoor": 2}
    steps = read_log(tmp_path / "run" / LOG)
    assert [s.step for s in steps] == [1, 2]
    assert {"ssi", "gradient", "total"} <= set(steps[0].losses)
    assert not {"val_absrel", "val_delta1", "val_ssi"} & set(steps[0].losses)
    assert {"val_absrel", "val_delta1", "val_ssi"} <= set(steps[1].losses)
    progress = collect.of(ev.Progress)  # the log's rows, as events of stage "train depth"
    assert [(e.stage, e.step) for e in progress] == [("train depth", 1), ("train depth", 2)]
    for event, step in zip(progress, steps, strict=True):
        assert event.losses.keys() == step.losses.keys()
        for name, value in event.losses.items():
            assert step.losses[name] == pytest.approx(value, rel=1e-4, abs=1e-9)
    for key, value in encoder.state_dict().items():  # the encoder given is left as it was
        assert torch.equal(value, before[key])
    with open(tmp_path / "run" / SPLIT) as f:
        assert sum(1 for row in csv.DictReader(f) if row["part"] == "val") == 2
    model = load_estimator(tmp_path / "run" / MODEL)
    for key, value in before.items():  # frozen encoder: stored unchanged
        torch.testing.assert_close(model.encoder.state_dict()[key], value, atol=1e-3, rtol=1e-3)

    more = train_depth(
        _config(root, iterations=4), _run(tmp_path / "run", resume=True), encoder=encoder
    )
    assert more.step == 4 and [s.step for s in read_log(tmp_path / "run" / LOG)] == [1, 2, 3, 4]
    with pytest.raises(BrushworkError, match="different configuration: --grad-weight"):
        train_depth(
            _config(root, iterations=6, grad_weight=2.0),
            _run(tmp_path / "run", resume=True),
            encoder=encoder,
        )
    with pytest.raises(BrushworkError, match="already holds a training run"):
        train_depth(_config(root), _run(tmp_path / "run"), encoder=encoder)

    tuned = train_depth(
        _config(root, iterations=2, finetune_from=0, encoder_lr=1e-2),
        _run(tmp_path / "tuned"),
        encoder=encoder,
    )
    assert tuned.finished
    changed = load_estimator(tmp_path / "tuned" / MODEL).encoder.state_dict()
    assert any(not torch.allclose(changed[k], v, atol=1e-3) for k, v in before.items())


def test_training_learns_the_synthetic_scenes(tmp_path: Path, encoder: VGG19) -> None:
    root = _dataset(tmp_path / "data", indoor=6, outdoor=0)
    train_depth(
        _config(root, iterations=40, batch_size=4, learning_rate=3e-3, jitter=0.0),
        _run(tmp_path / "run", log_every=10, val_every=1000, save_every=1000),
        encoder=encoder,
    )
    losses = [s.losses["total"] for s in read_log(tmp_path / "run" / LOG)]
    assert losses[-1] < 0.7 * losses[0]


def test_bad_pairs_are_skipped_and_counted(tmp_path: Path, encoder: VGG19) -> None:
    root = _dataset(tmp_path / "data", indoor=4, outdoor=0)
    (root / "depth" / "pair_0000.png").write_bytes(b"broken")
    Image.fromarray(np.zeros((40, 56), np.uint16)).save(root / "depth" / "pair_0001.png")
    Image.fromarray(np.ones((20, 28), np.uint16)).save(root / "depth" / "pair_0002.png")
    with pytest.warns(UserWarning, match="skipping depth pair pair_000"):
        result = train_depth(_config(root, iterations=1), _run(tmp_path / "run"), encoder=encoder)
    assert result.finished and len(result.skipped) == 3
    (root / "depth" / "pair_0003.png").unlink()
    with pytest.warns(UserWarning), pytest.raises(BrushworkError, match="no usable training"):
        train_depth(_config(root, iterations=1), _run(tmp_path / "run2"), encoder=encoder)


def test_cli(
    tmp_path: Path,
    encoder: VGG19,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", lambda *args, **kwargs: encoder)
    root = _dataset(tmp_path / "data", indoor=4, outdoor=1)
    argv = [
        "train",
        "depth",
        "--data",
        str(root),
        "--iterations",
        "2",
        "--batch-size",
        "2",
        "--side",
        "32",
        "--crop-height",
        "24",
        "--crop-width",
        "32",
        "--out",
        str(tmp_path / "run"),
        "-q",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(tmp_path / "run" / "model.safetensors")
    assert "split: 1 outdoor, 4 train" in captured.err
    assert math.isfinite(read_log(tmp_path / "run" / LOG)[-1].losses["total"])
    base = argv[:4]
    for extra, message in (
        (["--iterations", "0"], "iterations must be >= 1, not 0"),
        (
            ["--crop-height", "240", "--crop-width", "240"],
            "the crop (240×240) must fit in images whose shorter side is 224",
        ),
        (["--crop-width", "0"], "crop-width must be >= 1, not 0"),
        (["--lr", "nan"], "lr must be a finite number, not nan"),
        (["--encoder-lr", "-1"], "encoder-lr must be >= 0, not -1"),
        (["--finetune-from", "-1"], "finetune-from must be >= 0, not -1"),
        (["--max-minutes", "0"], "max-minutes must be > 0, not 0"),
        (["--val-every", "0"], "val-every must be >= 1, not 0"),
    ):
        assert message in expect_error(
            capsys, [*base, *extra, "--out", str(tmp_path / "bad"), "-q"]
        )
    assert not (tmp_path / "bad").exists()
    assert "does not exist" in expect_error(
        capsys, ["train", "depth", "--data", str(tmp_path / "nowhere")]
    )


@pytest.mark.skipif(
    not (SHARED / "depth" / "pairs.csv").is_file(),
    reason=f"depth pairs not found at {SHARED / 'depth'} (only in the dev workspace)",
)
def test_bundled_estimator_beats_the_baselines_on_held_out_scenes() -> None:
    """The shipped model against the two trivial baselines on 12 validation frames (every
    25th of the 300 held out by the split it was trained with)."""
    pairs = read_pairs(SHARED / "depth")
    parts = split_pairs(pairs)
    held_out = [p for p in pairs if parts[p.stem] == "val"][::25]
    net = load_estimator(None)
    scores: dict[str, list[float]] = {"model": [], "constant": [], "ramp": []}
    for pair in held_out:
        rgb, target = load_pair(pair)
        image = rgb[None].float() / 255
        predictions = {
            "model": predict_depth(net, image),
            "constant": baseline("constant", (1, *target.shape)),
            "ramp": baseline("ramp", (1, *target.shape)),
        }
        for name, prediction in predictions.items():
            scores[name].append(depth_errors(prediction, target[None])["absrel"])
    mean = {name: sum(v) / len(v) for name, v in scores.items()}
    assert len(held_out) == 12
    assert mean["model"] < 0.8 * mean["ramp"] < 0.8 * mean["constant"]
