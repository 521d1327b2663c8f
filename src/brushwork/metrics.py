"""Objective measures of a stylization, one definition for every benchmark and comparison.

All are distances from an output to the content it keeps or the style it takes, measured
with VGG-19 (relu1_1 … relu4_1) as relative errors (squared error divided by the target's
squared norm), so that they compare across images, sizes and methods:

* ``content``: relu4_1 features of the output vs the content's (what AdaIN's and Gatys's
  content losses keep);
* ``style``: channel means and deviations at relu1_1 … relu4_1 vs the style's (Huang &
  Belongie 2017, eq. 13), summed over layers;
* ``gram``: Gram matrices at the same layers (Gatys et al. 2016, eq. 3-5), summed;
* ``sliced_wasserstein``: the whole feature distributions at the same layers, compared along
  random directions (Heitz et al. 2021; :func:`sliced_wasserstein`), averaged;
* ``laplacian``: the 4×4-pooled Laplacian of the output vs the content's (Li et al. 2017);
* ``sharpness``: the energy of the output's Laplacian over the content's
  (:func:`sharpness`): detail and stroke texture, above 1 where the painting adds some,
  below 1 where a network paints soft;
* ``ssim``: structural similarity of the grey output to the grey content (scikit-image).

:class:`Reference` computes a content's or style's side once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from brushwork.ops import gram_matrix, laplacian, mean_std, pooled_laplacian

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


def laplacian_energy(image: Tensor) -> float:
    """Mean squared 3×3 Laplacian of the image's luminance (BT.601), in levels of 1."""
    weights = torch.tensor([0.299, 0.587, 0.114]).to(image.device)
    luminance = (image.float().clamp(0, 1) * weights[:, None, None]).sum(-3, keepdim=True)
    return float(laplacian(luminance).pow(2).mean())


def sharpness(output: Tensor, content: Tensor) -> float:
    """Laplacian energy of ``output`` relative to ``content``'s (Pech-Pacheco et al. 2000's
    focus measure, as a ratio): 1 as much fine detail as the photo, less is softer."""
    return laplacian_energy(output) / max(laplacian_energy(content), 1e-12)


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
            return cls(
                image,
                features,
                {k: mean_std(v) for k, v in features.items()},
                {k: gram_matrix(v) for k, v in features.items()},
                pooled_laplacian(image, 4),
            )


def style_statistics_distance(
    statistics: dict[str, tuple[Tensor, Tensor]], style: Reference
) -> float:
    """Σ_layers (‖μ − μ_s‖² + ‖σ − σ_s‖²) / (‖μ_s‖² + ‖σ_s‖²)."""
    total = 0.0
    for layer in LAYERS:
        (mean, std), (style_mean, style_std) = statistics[layer], style.statistics[layer]
        total += float(
            ((mean - style_mean).pow(2).sum() + (std - style_std).pow(2).sum())
            / (style_mean.pow(2).sum() + style_std.pow(2).sum()).clamp_min(1e-12)
        )
    return total


def sorted_projections(features: Tensor, directions: Tensor) -> Tensor:
    """(projections, N): the N feature vectors of ``features`` (B, C, H, W) projected on each
    column of ``directions`` (C, projections), sorted."""
    vectors = features.float().transpose(0, 1).reshape(features.shape[1], -1)
    return (directions.to(vectors).T @ vectors).sort(dim=1).values


def resampled(values: Tensor, length: int) -> Tensor:
    """Sorted (projections, N) values at ``length`` evenly spaced quantiles (linear)."""
    if values.shape[1] == length:
        return values
    return F.interpolate(values[None], size=length, mode="linear", align_corners=True)[0]


def sliced_wasserstein(
    output_features: dict[str, Tensor],
    style_features: dict[str, Tensor],
    projections: int = 64,
    seed: int = 0,
) -> float:
    """The sliced Wasserstein distance of Heitz et al. 2021 ("A Sliced Wasserstein Loss for
    Neural Texture Synthesis", CVPR, eq. 6), as a relative error: per layer of
    :data:`LAYERS`, both images' feature vectors projected on ``projections`` random unit
    directions (a generator seeded with ``seed``: the same directions every call), each
    projection sorted, the longer set resampled to the shorter's length; then
    ‖sorted output − sorted style‖² / ‖sorted style‖², averaged over the layers. Unlike
    means and deviations or Gram matrices it compares the whole distributions."""
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for layer in LAYERS:
        output, style = output_features[layer], style_features[layer]
        directions = torch.randn(output.shape[1], projections, generator=generator)
        directions = F.normalize(directions, dim=0)
        ours, theirs = sorted_projections(output, directions), sorted_projections(style, directions)
        length = min(ours.shape[1], theirs.shape[1])
        total += relative_error(resampled(ours, length), resampled(theirs, length))
    return total / len(LAYERS)


def distances(
    output: Tensor,
    content: Reference,
    style: Reference,
    encoder: torch.nn.Module,
    *,
    ssim: bool = True,
) -> dict[str, float]:
    """Every measure of one output (see the module docstring)."""
    from skimage.metrics import structural_similarity

    with torch.inference_mode():
        features = {k: v.float() for k, v in encoder(output, list(LAYERS)).items()}
        statistics = {k: mean_std(v) for k, v in features.items()}
        result = {
            "content": relative_error(features[CONTENT_LAYER], content.features[CONTENT_LAYER]),
            "style": style_statistics_distance(statistics, style),
            "gram": sum(relative_error(gram_matrix(features[k]), style.grams[k]) for k in LAYERS),
            "sliced_wasserstein": sliced_wasserstein(features, style.features),
            "laplacian": relative_error(pooled_laplacian(output, 4), content.laplacian),
            "sharpness": sharpness(output, content.image),
        }
    if ssim:
        result["ssim"] = float(
            structural_similarity(gray(output), gray(content.image), data_range=255.0)
        )
    return result


# ----------------------------------------------------------------------------- border frames


def border_ratio(
    stylize: Callable[[Tensor], Tensor], content: Tensor, pad: int = 64, edge: int = 16
) -> float:
    """How much more a stylization depends on where the picture ends near its border than
    inside: ``content`` is stylized as it is and reflect-padded by ``pad`` pixels (then
    cropped back); the mean absolute difference of the two within ``edge`` pixels of the
    border over the mean difference inside, the latter at least one level of 255 (a method
    whose interior does not change at all is judged by its border alone). 1 means the border
    is painted like the interior; a decoder that paints a frame along the border (from the
    encoder's zero padding) gives 4–5."""
    height, width = content.shape[-2:]
    if min(height, width) <= 2 * edge:
        raise ValueError(f"a {width}x{height} image has no interior beyond {edge} px borders")
    plain = stylize(content).float()
    padded = F.pad(content, (pad, pad, pad, pad), mode="reflect") if pad else content
    framed = stylize(padded).float()[..., pad : pad + height, pad : pad + width]
    difference = (plain - framed).abs().mean(dim=(0, 1))
    inside = torch.zeros_like(difference, dtype=torch.bool)
    inside[edge:-edge, edge:-edge] = True
    interior = difference[inside].mean()
    return float(difference[~inside].mean() / interior.clamp_min(1 / 255))


def seam_ratio(
    pixels: np.ndarray,
    rows: Sequence[tuple[int, int]],
    columns: Sequence[tuple[int, int]],
    band: int = 512,
) -> float:
    """How much more the picture changes across tile seams than elsewhere: the mean
    absolute step between neighbouring columns (rows) of its luminance at the middle of
    the seams' cross-fades (5 steps around the centre of each; ``columns``, ``rows``:
    (first, end) of each cross-fade), over the mean step between all neighbouring columns
    (rows); the larger of the two. 1: no seam stands out; tiles cut edge to edge and
    painted unlike each other give a step there, and more. ``pixels``
    (H, W, 3) of any integer depth is read ``band`` rows at a time."""
    height, width = pixels.shape[:2]
    across_columns = np.zeros(max(width - 1, 0))
    across_rows = np.zeros(max(height - 1, 0))
    for top in range(0, height, band):
        start = max(top - 1, 0)  # one row of the band above, for the step into this one
        grey = pixels[start : top + band].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        across_columns += np.abs(np.diff(grey[top - start :], axis=1)).sum(0)
        across_rows[start : start + len(grey) - 1] = np.abs(np.diff(grey, axis=0)).mean(1)
    across_columns /= height

    def ratio(steps: np.ndarray, seams: Sequence[tuple[int, int]]) -> float:
        centres = [(first + end) // 2 for first, end in seams]
        at = [i for c in centres for i in range(max(c - 3, 0), min(c + 2, len(steps)))]
        return float(steps[at].mean() / max(steps.mean(), 1e-9)) if at else 1.0

    return max(ratio(across_columns, columns), ratio(across_rows, rows))


# ----------------------------------------------------------------------------- video flicker


class WarpingError:
    """The warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency",
    §5.1), the standard flicker measure, accumulated one frame pair at a time::

        E = 1/(T−1) Σ_t  Σ_p M_t(p) ‖O_t(p) − Ô_{t−1}(p)‖² / (C Σ_p M_t(p))

    where Ô_{t−1} is output frame t−1 warped onto frame t along the optical flow of the
    *input* frames, and M_t is 1 where that flow is reliable (not occluded, not a motion
    boundary; :func:`brushwork.video.flow.reliable`). Images are in [0, 1]; the squared
    difference is averaged over the C colour channels as in the authors' code. A pair whose
    mask is empty counts every pixel. Lower is steadier; the input video's own error is the
    floor a stylization can approach.
    """

    def __init__(self) -> None:
        self.errors: list[float] = []

    def add(self, current: Tensor, warped_previous: Tensor, mask: Tensor) -> float:
        """Add one pair: frame t (1, C, H, W), frame t−1 warped onto it, and the mask
        (1, 1, H, W) or (H, W) in [0, 1]. Returns the pair's error."""
        mask = mask.reshape(1, 1, *current.shape[-2:]).to(current)
        squared = (current.float() - warped_previous.float()).pow(2)
        count = float(mask.sum())
        if count == 0:
            error = float(squared.mean())
        else:
            error = float((squared * mask).sum() / (count * current.shape[1]))
        self.errors.append(error)
        return error

    @property
    def value(self) -> float:
        """The mean over the pairs added (NaN before the first)."""
        return float(np.mean(self.errors)) if self.errors else float("nan")


def warping_error(
    outputs: list[Tensor], inputs: list[Tensor] | None = None, *, flow: str = "farneback"
) -> float:
    """The warping error (:class:`WarpingError`) of a clip of (1, 3, H, W) frames in
    [0, 1], with the flow and mask computed on ``inputs`` (default: the outputs
    themselves). ``flow``: ``"farneback"`` (default: OpenCV's Farnebäck, another algorithm
    than the DIS flow brushwork's temporal methods use, so that a method is not scored by
    its own flow) or a DIS preset (``"ultrafast"``, ``"fast"``, ``"medium"``)."""
    from brushwork.video.flow import DISFlow, FarnebackFlow, FramePair, flow_tensor, gray, warp

    inputs = outputs if inputs is None else inputs
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(outputs)} output frames for {len(inputs)} input frames")
    estimator = FarnebackFlow() if flow == "farneback" else DISFlow(flow)
    measure = WarpingError()
    greys = [gray(frame) for frame in inputs]
    for t in range(1, len(outputs)):
        pair = FramePair.between(greys[t - 1], greys[t], estimator)
        warped = warp(outputs[t - 1].float(), flow_tensor(pair.backward))
        measure.add(outputs[t], warped, torch.from_numpy(pair.mask))
    return measure.value
