"""Tests for Style Swap: the patch swap (brushwork.ops.style_swap) and the optimization method
(brushwork.methods.styleswap). Unit tests use the tiny random encoder and 32-64 px images."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_matches_reference, requires_weights, smooth_image

from brushwork import events as ev
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods import REGISTRY, get_method
from brushwork.methods.base import StyleTarget
from brushwork.methods.styleswap import StyleSwap, StyleSwapLoss, StyleSwapOptions
from brushwork.ops import style_swap

REFERENCE = Path(__file__).parent / "data" / "optimization_reference.safetensors"


def _features(*shape: int, seed: int = 0) -> torch.Tensor:
    """Non-negative random features, like a ReLU layer's."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator).relu()


def _dense_style_swap(
    content: torch.Tensor, style: torch.Tensor, k: int, stride: int
) -> torch.Tensor:
    """The paper's formulation (eq. 3-4) with every score and the one-hot in memory."""
    channels = style.shape[1]
    patches = F.unfold(style, k, stride=stride)[0].T.reshape(-1, channels, k, k)
    filters = patches / patches.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    scores = F.conv2d(content, filters)
    one_hot = F.one_hot(scores.argmax(1), len(patches)).permute(0, 3, 1, 2).to(content)
    total = F.conv_transpose2d(one_hot, patches)
    counts = F.conv_transpose2d(one_hot, torch.ones(len(patches), 1, k, k))
    return total / counts


# ----------------------------------------------------------------------------- the swap


def test_swapping_features_with_themselves_returns_them() -> None:
    features = _features(1, 16, 12, 14)
    assert torch.allclose(style_swap(features, features), features, atol=1e-5)


def test_unit_patches_copy_the_best_matching_style_vector() -> None:
    content, style = _features(1, 8, 9, 11, seed=1), _features(1, 8, 7, 6, seed=2)
    out = style_swap(content, style, patch_size=1, stride=1)
    vectors = style.reshape(8, -1).T  # (N, C)
    cosine = F.normalize(content.reshape(8, -1).T, dim=1) @ F.normalize(vectors, dim=1).T
    expected = vectors[cosine.argmax(dim=1)].T.reshape(content.shape)
    assert torch.equal(out, expected)


@pytest.mark.parametrize(("k", "stride"), [(3, 1), (3, 2), (2, 3), (5, 1)])
def test_matches_the_dense_one_hot_formulation(k: int, stride: int) -> None:
    content, style = _features(2, 8, 11, 13, seed=3), _features(1, 8, 15, 12, seed=4)
    expected = _dense_style_swap(content, style, k, stride)
    assert torch.allclose(style_swap(content, style, k, stride), expected, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 5, 17])
def test_chunked_matching_equals_unchunked(chunk_size: int) -> None:
    content, style = _features(1, 8, 12, 10, seed=5), _features(1, 8, 13, 11, seed=6)
    for stride in (1, 2):
        whole = style_swap(content, style, 3, stride)
        chunked = style_swap(content, style, 3, stride, chunk_size=chunk_size)
        assert torch.equal(whole, chunked)


def test_matching_is_by_normalized_not_raw_correlation() -> None:
    # Content vector (0.6, 0.8): the raw dot product prefers the long vector (10, 0)
    # (6 > 1), the normalized correlation the parallel one (0.6, 0.8) (1 > 0.6).
    style = torch.tensor([[10.0, 0.0], [0.6, 0.8]]).T.reshape(1, 2, 1, 2)
    content = torch.tensor([0.6, 0.8]).reshape(1, 2, 1, 1)
    out = style_swap(content, style, patch_size=1)
    assert torch.allclose(out.flatten(), torch.tensor([0.6, 0.8]))


def test_keeps_shape_and_channels_last() -> None:
    content, style = _features(2, 8, 11, 13, seed=7), _features(1, 8, 9, 10, seed=8)
    plain = style_swap(content, style)
    assert plain.shape == content.shape
    last = style_swap(
        content.contiguous(memory_format=torch.channels_last),
        style.contiguous(memory_format=torch.channels_last),
    )
    assert last.shape == content.shape
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(last, plain, atol=1e-6)


def test_swap_rejects_unusable_inputs() -> None:
    features = _features(1, 8, 6, 6)
    with pytest.raises(BrushworkError, match="too small"):
        style_swap(features, _features(1, 8, 2, 9))
    with pytest.raises(BrushworkError, match="channels"):
        style_swap(features, _features(1, 4, 6, 6))
    with pytest.raises(BrushworkError, match=">= 1"):
        style_swap(features, features, patch_size=0)


# ----------------------------------------------------------------------------- the method


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A content image (32x48) and a style image of another size (40x40)."""
    return smooth_image(32, 48, seed=0), smooth_image(40, 40, seed=1)


def _loss(
    encoder: VGG19,
    content: torch.Tensor,
    styles: list[StyleTarget],
    options: StyleSwapOptions,
) -> StyleSwapLoss:
    """The loss built the way the method builds it: style features prepared once."""
    with torch.no_grad():
        features = StyleSwap(options).prepare_styles(encoder, styles)
    return StyleSwapLoss(encoder, content, styles, features, options)


def test_registered_with_its_defaults() -> None:
    assert get_method("styleswap") is StyleSwap
    assert REGISTRY["styleswap"].load() is StyleSwap
    assert REGISTRY["styleswap"].kind == "optimization"
    options = StyleSwap.default_options()
    assert isinstance(options, StyleSwapOptions)
    assert (options.layer, options.patch_size, options.stride) == ("relu3_1", 3, 1)
    assert options.iterations == 100
    assert StyleSwap().encoder_request() == ("relu3_1", "max")
    assert StyleSwap().min_style_side() == 12
    assert StyleSwap(layer="relu4_1", patch_size=2).min_style_side() == 16
    assert StyleSwap().accepts_init() and StyleSwap().has_losses()
    assert StyleSwap().steps() == 100


def test_runs_and_lowers_the_loss(tiny_encoder, pair) -> None:
    content, style = pair
    collect = ev.Collect()
    result = StyleSwap(encoder=tiny_encoder, iterations=10).stylize(content, style, events=collect)
    records = collect.of(ev.Progress)
    assert [r.step for r in records] == list(range(1, 11))
    assert result.image.shape == content.shape
    assert 0 <= float(result.image.min()) <= float(result.image.max()) <= 1
    assert set(result.losses) == {"swap", "tv", "total"}
    assert result.losses["total"] < 0.5 * records[0].losses["total"]
    # 40 px style → 10x10 relu3_1 features → 8x8 patches of 3x3.
    assert result.details["style_patches"] == 64
    assert result.details["swap_seconds"] >= 0


def test_loss_is_relative_and_zero_at_the_target(tiny_encoder, pair) -> None:
    content, style = pair
    options = StyleSwapOptions(tv_weight=0.0)
    loss = _loss(tiny_encoder, content, [StyleTarget(style)], options)
    features = tiny_encoder(content, ["relu3_1"])["relu3_1"]
    expected = style_swap(features, tiny_encoder(style, ["relu3_1"])["relu3_1"])
    assert torch.allclose(loss.target, expected)
    assert loss.scale == pytest.approx(1 / float(expected.pow(2).mean()), rel=1e-5)
    terms = loss(content)
    assert float(terms["swap"]) == pytest.approx(
        float((features - expected).pow(2).mean()) * loss.scale, rel=1e-4
    )


def test_blend_weights_change_the_target(tiny_encoder, pair) -> None:
    content, style = pair
    other = smooth_image(44, 36, seed=2)
    options = StyleSwapOptions()

    def target(styles: list[StyleTarget]) -> torch.Tensor:
        return _loss(tiny_encoder, content, styles, options).target

    first, second = target([StyleTarget(style)]), target([StyleTarget(other)])
    even = target([StyleTarget(style, 1.0), StyleTarget(other, 1.0)])
    skewed = target([StyleTarget(style, 3.0), StyleTarget(other, 1.0)])
    assert torch.allclose(even, (first + second) / 2, atol=1e-6)
    assert torch.allclose(skewed, 0.75 * first + 0.25 * second, atol=1e-6)
    assert not torch.allclose(even, skewed)


def test_masks_keep_the_content_where_no_style_applies(tiny_encoder, pair) -> None:
    content, style = pair
    mask = torch.zeros(1, 1, 32, 48)
    mask[..., :24] = 1.0  # left half; relu3_1 columns 0-5 of 12
    loss = _loss(tiny_encoder, content, [StyleTarget(style, 2.0, mask=mask)], StyleSwapOptions())
    features = tiny_encoder(content, ["relu3_1"])["relu3_1"]
    swapped = style_swap(features, tiny_encoder(style, ["relu3_1"])["relu3_1"])
    assert torch.equal(loss.target[..., 6:], features[..., 6:])
    assert torch.allclose(loss.target[..., :6], swapped[..., :6])
    assert loss.weight_map is not None
    assert torch.all(loss.weight_map[..., :6] == 2.0)
    assert torch.all(loss.weight_map[..., 6:] == 1.0)
    result = StyleSwap(encoder=tiny_encoder, iterations=3).stylize(
        content, [StyleTarget(style, mask=mask)]
    )
    assert result.image.shape == content.shape


def test_overlapping_masks_are_shared(tiny_encoder, pair) -> None:
    content, style = pair
    other = smooth_image(40, 40, seed=3)
    layer = "relu3_1"
    loss = _loss(
        tiny_encoder,
        content,
        [StyleTarget(style, mask=torch.ones(1, 1, 32, 48)), StyleTarget(other)],
        StyleSwapOptions(),
    )
    features = tiny_encoder(content, [layer])[layer]
    expected = (
        style_swap(features, tiny_encoder(style, [layer])[layer])
        + style_swap(features, tiny_encoder(other, [layer])[layer])
    ) / 2
    assert torch.allclose(loss.target, expected, atol=1e-6)


def test_a_masked_style_of_weight_zero_leaves_its_region_alone(tiny_encoder, pair) -> None:
    content, style = pair
    left = torch.zeros(1, 1, 32, 48)
    left[..., :24] = 1.0
    loss = _loss(
        tiny_encoder,
        content,
        [StyleTarget(style, 0.0, mask=left), StyleTarget(style, 1.0, mask=1 - left)],
        StyleSwapOptions(),
    )
    features = tiny_encoder(content, ["relu3_1"])["relu3_1"]
    assert torch.equal(loss.target[..., :6], features[..., :6])
    assert not torch.allclose(loss.target[..., 6:], features[..., 6:])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layer": "relu9_1"}, "layer must be one of conv1_1, .*, not 'relu9_1'"),
        ({"patch_size": 0}, "patch-size must be >= 1 and <= 64, not 0"),
        ({"patch_size": 65}, "patch-size must be <= 64, not 65"),
        ({"patch_size": 2.5}, "patch-size must be an integer, not 2.5"),
        ({"stride": 0}, "stride must be >= 1 and <= 64, not 0"),
        ({"swap_weight": -1.0}, "swap-weight must be >= 0, not -1.0"),
        ({"swap_weight": float("inf")}, "swap-weight must be a finite number, not inf"),
        ({"tv_weight": float("nan")}, "tv-weight must be a finite number, not nan"),
    ],
)
def test_bad_options_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(BrushworkError, match=message):
        StyleSwap(**changes)


def test_too_small_images_are_refused(tiny_encoder) -> None:
    method = StyleSwap(encoder=tiny_encoder, iterations=1)
    with pytest.raises(BrushworkError, match=r"style 1 is 10×40 px.*at least 12×12 px"):
        method.stylize(smooth_image(32, 32), smooth_image(40, 10))
    with pytest.raises(
        BrushworkError, match=r"the content is 32x8 px; styleswap needs at least 12"
    ):
        method.stylize(smooth_image(8, 32), smooth_image(32, 32))
    # The loss on its own refuses it too, saying why.
    with pytest.raises(BrushworkError, match=r"content image is 32×8 px, too small for Style Swap"):
        _loss(
            tiny_encoder,
            smooth_image(8, 32),
            [StyleTarget(smooth_image(32, 32))],
            StyleSwapOptions(),
        )


def test_style_assigned_other_layers_is_refused(tiny_encoder, pair) -> None:
    content, style = pair
    method = StyleSwap(encoder=tiny_encoder, iterations=1)
    with pytest.raises(BrushworkError, match="Style Swap uses one layer, relu3_1; style 2"):
        method.stylize(content, [StyleTarget(style), StyleTarget(style, layers=("relu1_1",))])
    result = method.stylize(content, [StyleTarget(style, layers=("relu3_1", "relu4_1"))])
    assert result.image.shape == content.shape


# ----------------------------------------------------------------------------- real VGG


@requires_weights
@pytest.mark.integration
def test_real_vgg_run_moves_towards_the_swapped_features() -> None:
    from brushwork.encoders import load_vgg19

    encoder = load_vgg19("relu3_1", progress=False)
    content, style = smooth_image(64, 64, seed=0), smooth_image(64, 64, seed=1)
    result = StyleSwap(encoder=encoder, iterations=5).stylize(content, style)
    history = result.details["history"]
    assert result.image.shape == content.shape
    assert history[-1]["swap"] < history[0]["swap"]
    assert result.details["style_patches"] == 14 * 14


# ----------------------------------------------------------------------------- --inverse


def test_registered_as_optimization_only() -> None:
    method = StyleSwap()
    assert (method.accepts_init(), method.has_losses(), method.steps()) == (True, True, 100)
    assert "inverse" not in {f.name for f in dataclasses.fields(StyleSwapOptions)}
    assert REGISTRY["styleswap"].trainers == {}  # the inverse network's is its method's


INVERSE_MOVED = (
    "--inverse is now a method of its own: use -m styleswap-inverse "
    "(method='styleswap-inverse'), which takes --model, --patch-size and --stride"
)


def test_inverse_says_in_one_line_what_to_use(capsys, no_work) -> None:
    """The option that became the styleswap-inverse method, given on the command line, to
    the class or to the API: one line naming the method to use, before any work."""
    from conftest import expect_error

    from brushwork import api

    argv = ["stylize", "c.png", "s.png", "-o", "out.png", "-m", "styleswap", "--inverse"]
    assert expect_error(capsys, argv) == INVERSE_MOVED
    with pytest.raises(BrushworkError) as caught:
        StyleSwap(inverse=True)
    assert str(caught.value) == INVERSE_MOVED
    with pytest.raises(BrushworkError) as caught:
        api.run(smooth_image(16, 16), smooth_image(16, 16), "styleswap", inverse=True)
    assert str(caught.value) == INVERSE_MOVED


# ----------------------------------------------------------------------------- reference


@pytest.fixture
def reference_threads() -> Iterator[None]:
    """The reference was made with torch's default 2 intra-op threads on a 2-core machine;
    float32 results depend on how reductions are split among threads (see test_gatys.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("reference_threads")
def test_bit_identical_to_the_pre_refactor_output(tiny_encoder) -> None:
    """Style Swap with two blended styles reproduces, bit for bit in float32, what the
    pre-refactor code made (tests/data/optimization_reference.safetensors, key
    "styleswap")."""
    content = smooth_image(40, 48, seed=3)
    style, style2 = smooth_image(40, 32, seed=4), smooth_image(36, 36, seed=5)
    result = StyleSwap(encoder=tiny_encoder, iterations=8).stylize(
        content, [StyleTarget(style, 0.6), StyleTarget(style2, 0.4)]
    )
    assert_matches_reference(result.image, REFERENCE, "styleswap", tolerance=1e-4)
