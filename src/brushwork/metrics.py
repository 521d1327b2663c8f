"""Objective measures of a stylization, one definition for every benchmark and comparison.

All are distances from an output to the content it keeps or the style it takes, measured
with VGG-19 (relu1_1 … relu4_1) as relative errors (squared error divided by the target's
squared norm), so that they compare across images, sizes and methods:

* ``content``: relu4_1 features of the output vs the content's (what AdaIN's and Gatys's
  content losses keep);
* ``style``: channel means and deviations at relu1_1 … relu4_1 vs the style's (Huang &
  Belongie 2017, eq. 13), summed over layers;
* ``gram``: Gram matrices at the same layers (Gatys et al. 2016, eq. 3-5), summed;
* ``laplacian``: the 4×4-pooled Laplacian of the output vs the content's (Li et al. 2017);
* ``ssim``: structural similarity of the grey output to the grey content (scikit-image).

:class:`Reference` computes a content's or style's side once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from brushwork.ops import gram_matrix, mean_std, pooled_laplacian

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_1"


def relative_error(output: Tensor, target: Tensor) -> float:
    """‖output − target‖² / ‖target‖²."""
    output, target = output.float(), target.float()
    return float((output - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12))


def gray(image: Tensor) -> np.ndarray:
    """An image tensor as 8-bit grey (BT.601 weights), for SSIM."""
    array = image[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return array @ np.array([0.299, 0.587, 0.114])


@dataclass
class Reference:
    """What outputs are compared with, computed once: features, statistics, Gram matrices
    and Laplacian of one image."""

    image: Tensor
    features: dict[str, Tensor]
    statistics: dict[str, tuple[Tensor, Tensor]]
    grams: dict[str, Tensor]
    laplacian: Tensor

    @classmethod
    def of(cls, image: Tensor, encoder: torch.nn.Module) -> Reference:
        with torch.inference_mode():
            features = {k: v.float() for k, v in encoder(image, list(LAYERS)).items()}
            return cls(image, features, {k: mean_std(v) for k, v in features.items()},
                       {k: gram_matrix(v) for k, v in features.items()},
                       pooled_laplacian(image, 4))


def style_statistics_distance(statistics: dict[str, tuple[Tensor, Tensor]],
                              style: Reference) -> float:
    """Σ_layers (‖μ − μ_s‖² + ‖σ − σ_s‖²) / (‖μ_s‖² + ‖σ_s‖²)."""
    total = 0.0
    for layer in LAYERS:
        (mean, std), (style_mean, style_std) = statistics[layer], style.statistics[layer]
        total += float(((mean - style_mean).pow(2).sum() + (std - style_std).pow(2).sum())
                       / (style_mean.pow(2).sum() + style_std.pow(2).sum()).clamp_min(1e-12))
    return total


def distances(output: Tensor, content: Reference, style: Reference,
              encoder: torch.nn.Module, *, ssim: bool = True) -> dict[str, float]:
    """Every measure of one output (see the module docstring)."""
    from skimage.metrics import structural_similarity

    with torch.inference_mode():
        features = {k: v.float() for k, v in encoder(output, list(LAYERS)).items()}
        statistics = {k: mean_std(v) for k, v in features.items()}
        result = {
            "content": relative_error(features[CONTENT_LAYER], content.features[CONTENT_LAYER]),
            "style": style_statistics_distance(statistics, style),
            "gram": sum(relative_error(gram_matrix(features[k]), style.grams[k])
                        for k in LAYERS),
            "laplacian": relative_error(pooled_laplacian(output, 4), content.laplacian),
        }
    if ssim:
        result["ssim"] = float(structural_similarity(gray(output), gray(content.image),
                                                     data_range=255.0))
    return result
