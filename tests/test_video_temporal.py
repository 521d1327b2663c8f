"""Temporal consistency of the optimization methods: Ruder et al.'s temporal loss and
long-term weights (brushwork.video.temporal)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brushwork.video.temporal import TemporalLoss, long_term_weights


def test_long_term_weights_count_each_pixel_once_nearest_first() -> None:
    """Eq. 8: c_long^(t−j) = max(c^(t−j) − Σ_{k<j} c^(t−k), 0)."""
    near = np.array([[1, 0, 0]], np.float32)
    mid = np.array([[1, 1, 0]], np.float32)
    far = np.array([[1, 1, 1]], np.float32)
    weights = long_term_weights([near, mid, far])
    assert [w.tolist() for w in weights] == [[[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]]]


def test_temporal_loss_is_eq_5_times_the_weight() -> None:
    target = torch.zeros(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    loss = TemporalLoss([target], [mask], weight=4.0)
    image = torch.ones(1, 3, 2, 2)
    # 1/D Σ c (x − ω)² = 6 / 12 (two reliable pixels × three channels of 12 values)
    assert float(loss(image)) == pytest.approx(4.0 * 0.5)
    assert float(loss(torch.zeros(1, 3, 2, 2))) == 0.0


def test_temporal_loss_sums_several_earlier_frames_and_has_a_gradient() -> None:
    targets = [torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)]
    masks = [torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)]
    image = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)
    value = TemporalLoss(targets, masks, weight=1.0)(image)
    assert float(value.detach()) == pytest.approx(0.5)
    value.backward()
    assert image.grad is not None and float(image.grad.abs().sum()) == pytest.approx(0.0)
