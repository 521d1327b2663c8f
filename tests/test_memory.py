"""Memory limits checked from sizes alone (brushwork.memory) and the encoder's estimates."""

from __future__ import annotations

import pytest

from brushwork.encoders import feature_elements, inference_peak_elements
from brushwork.errors import BrushworkError
from brushwork.memory import (
    GIB,
    MAX_SIDE,
    TRAINING_FIXED_BYTES,
    check_limit,
    check_side,
    parse_bytes,
    plan_training,
    require,
)


def test_parse_bytes() -> None:
    assert parse_bytes("8G") == 8 * GIB
    assert parse_bytes("1.5GiB") == int(1.5 * GIB)
    assert parse_bytes("512m") == 512 * 2**20
    assert parse_bytes("1000") == 1000
    for bad in ("", "G", "-1G", "0", "nanG", "8Q"):
        with pytest.raises(BrushworkError):
            parse_bytes(bad)


def test_require_names_the_estimate_and_the_limit() -> None:
    require(GIB, "a run", limit=2 * GIB)
    with pytest.raises(
        BrushworkError,
        match=r"a run needs about 3\.0 GiB, over the memory "
        r"limit \(2\.0 GiB\)",
    ):
        require(3 * GIB, "a run", limit=2 * GIB)
    with pytest.raises(BrushworkError, match="unbounded"):
        require(float("inf"), "a run", limit=2 * GIB)


def test_limits_and_sides() -> None:
    assert check_limit(None) is None and check_limit(5) == 5
    for bad in (0, -1, 1.5, True):
        with pytest.raises(BrushworkError):
            check_limit(bad)
    check_side(MAX_SIDE, 1, "the output")
    with pytest.raises(BrushworkError, match="over the 65536 px"):
        check_side(MAX_SIDE + 1, 10, "the output")
    with pytest.raises(BrushworkError, match="0x10"):
        check_side(0, 10, "the output")


def test_inference_peak_is_below_the_sum_and_counts_kept_layers() -> None:
    total = feature_elements(256, 256, "relu5_1")
    peak = inference_peak_elements(256, 256, "relu5_1")
    assert peak < total / 2
    # the two 64-channel full-resolution activations dominate: input + output of conv1_2
    assert peak == 2 * 64 * 256 * 256
    kept = inference_peak_elements(256, 256, "relu5_1", ["relu1_1", "relu2_1"])
    assert kept > peak


def test_plan_training_is_batch_times_crop_times_the_step() -> None:
    need = plan_training(4, (64, 32), 1000, "x training", data_bytes=7, limit=GIB)
    assert need == TRAINING_FIXED_BYTES + 1000 * 4 * 64 * 32 + 7
    with pytest.raises(
        BrushworkError,
        match=r"^x training with batches of 4000 crops of 256x256 px needs about 244\.6 GiB, "
        r"over the memory limit \(1\.0 GiB\); use a smaller --batch-size, --crop-size or "
        r"--side, or a machine with more memory$",
    ):
        plan_training(
            4000, (256, 256), 1000, "x training", limit=GIB, size_flags="--crop-size or --side"
        )
    with pytest.raises(BrushworkError, match="the x training crops would be 70000x16 px"):
        plan_training(1, (16, 70000), 1, "x training", limit=GIB)
