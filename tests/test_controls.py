"""Tests for the controls that work with every method: several styles (blended, per layer,
per region), guided Gram matrices, masks at feature resolution, the memory plan,
coarse-to-fine scales, the style scale and colour preservation.

Unit tests use the tiny random encoder and images of 16-64 px; the one test marked
``integration`` uses the real VGG-19 weights at 64 px for 3 steps."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import requires_weights, smooth_image
from kornia.color import rgb_to_yuv
from PIL import Image

from brushwork import api, stylizer
from brushwork import events as ev
from brushwork.api import Style
from brushwork.encoders import LAYERS, VGG19, downsample_mask, feature_elements
from brushwork.errors import BrushworkError, BrushworkWarning
from brushwork.image import to_pil, to_tensor
from brushwork.memory import GIB
from brushwork.methods import optimization
from brushwork.methods.base import StyleTarget, blend_weights, check_style_weights, style_targets
from brushwork.methods.gatys import Gatys, GatysLoss, GatysOptions
from brushwork.ops import gram_matrix
from brushwork.stylizer import scale_schedule

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
RELU_LAYERS = tuple(name for name in LAYERS if name.startswith("relu"))


pytestmark = pytest.mark.usefixtures("no_pretrained")


@pytest.fixture
def no_optimization(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if an optimization starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an optimization started")

    monkeypatch.setattr(optimization, "optimize_image", refuse)


@pytest.fixture
def content_pil() -> Image.Image:
    return to_pil(smooth_image(64, 64, seed=0))


@pytest.fixture
def style_pil() -> Image.Image:
    return to_pil(smooth_image(56, 56, seed=1))


@pytest.fixture
def other_style_pil() -> Image.Image:
    return to_pil(smooth_image(48, 60, seed=2))


def _features(channels: int = 5, height: int = 6, width: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, channels, height, width, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- gram_matrix


def test_gram_with_a_mask_of_ones_is_the_plain_gram() -> None:
    features = _features()
    ones = torch.ones(1, 1, 6, 7)
    torch.testing.assert_close(gram_matrix(features, ones), gram_matrix(features))


def test_plain_gram_is_f_ft_over_c_h_w() -> None:
    features = _features()
    flat = features.reshape(5, 42)
    torch.testing.assert_close(gram_matrix(features)[0], flat @ flat.T / (5 * 42))


def test_gram_with_a_hard_mask_is_the_gram_of_the_selected_pixels() -> None:
    features = _features()
    mask = torch.zeros(1, 1, 6, 7)
    mask[..., 1:4, 2:6] = 1.0
    mask[..., 5, 0] = 1.0
    selected = features[0][:, mask[0, 0].bool()]  # (C, n_r)
    n_r = selected.shape[1]
    assert n_r == 13
    expected = selected @ selected.T / (5 * n_r)
    torch.testing.assert_close(gram_matrix(features, mask)[0], expected)


def test_gram_with_a_soft_mask_weights_the_pixels() -> None:
    features = _features()
    mask = torch.rand(1, 1, 6, 7, generator=torch.Generator().manual_seed(3))
    weighted = (features * mask).reshape(5, 42)
    expected = weighted @ weighted.T / (5 * mask.pow(2).sum())
    torch.testing.assert_close(gram_matrix(features, mask)[0], expected)


def test_gram_of_channels_last_features_is_the_same() -> None:
    features = _features(channels=8, height=5, width=9)
    mask = (torch.arange(45).reshape(1, 1, 5, 9) % 3 == 0).float()
    last = features.contiguous(memory_format=torch.channels_last)
    assert not last.is_contiguous()
    torch.testing.assert_close(gram_matrix(last), gram_matrix(features))
    torch.testing.assert_close(gram_matrix(last, mask), gram_matrix(features, mask))


def test_masked_gram_gradient_matches_autograd() -> None:
    features = _features().requires_grad_(True)
    mask = torch.rand(1, 1, 6, 7, generator=torch.Generator().manual_seed(4))
    target = torch.randn(1, 5, 5, generator=torch.Generator().manual_seed(5))
    (gram_matrix(features, mask) * target).sum().backward()
    reference = features.detach().clone().requires_grad_(True)
    weighted = (reference * mask).reshape(1, 5, 42)
    (weighted @ weighted.transpose(1, 2) / (5 * mask.pow(2).sum()) * target).sum().backward()
    torch.testing.assert_close(features.grad, reference.grad)


# ----------------------------------------------------------------------------- encoder helpers


@pytest.mark.parametrize(("height", "width"), [(37, 53), (64, 48), (17, 31)])
def test_downsample_mask_matches_every_relu_layer(tiny_encoder: VGG19, height, width) -> None:
    image = smooth_image(height, width)
    features = tiny_encoder(image, [n for n in RELU_LAYERS if n in tiny_encoder.layer_names])
    mask = torch.rand(1, 1, height, width)
    for name, feature in features.items():
        small = downsample_mask(mask, name)
        assert small.shape == (1, 1, *feature.shape[-2:]), name
        assert float(small.min()) >= 0 and float(small.max()) <= 1


def test_downsample_mask_averages_the_footprint() -> None:
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :4] = 1.0  # the top-left quarter
    torch.testing.assert_close(downsample_mask(mask, "relu1_1"), mask)
    coarse = downsample_mask(mask, "relu3_1")  # after 2 poolings: 2x2
    torch.testing.assert_close(coarse, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    mask[..., 0, 0] = 0.0
    assert float(downsample_mask(mask, "relu4_1")) == pytest.approx(15 / 64)


def test_feature_elements_counts_conv_and_pool_outputs() -> None:
    torch.manual_seed(0)
    encoder = VGG19(last_layer="pool5", width=1.0).requires_grad_(False).eval()
    counted = [n for n in LAYERS if n.startswith(("conv", "pool"))]
    with torch.no_grad():
        features = encoder(smooth_image(33, 45), counted)  # odd sizes: floor pooling
    assert features["pool5"].shape[-2:] == (1, 1)
    for last in ("conv1_1", "relu1_2", "pool1", "relu3_1", "relu4_2", "relu5_1", "pool5"):
        upto = LAYERS[: LAYERS.index(last) + 1]
        expected = sum(features[n].numel() for n in upto if n in features)
        assert feature_elements(33, 45, last) == expected, last


def test_feature_elements_grows_with_the_image() -> None:
    assert feature_elements(64, 64, "relu5_1") > 3.9 * feature_elements(32, 32, "relu5_1")
    assert feature_elements(32, 32, "relu1_1") == 64 * 32 * 32


@pytest.mark.parametrize("channels_last", [False, True])
def test_checkpointing_gives_the_same_features_and_gradient(
    tiny_encoder: VGG19, channels_last: bool
) -> None:
    layers = ["relu1_1", "conv2_1", "relu3_1", "pool3", "relu4_2", "relu5_1"]
    encoder = copy.deepcopy(tiny_encoder).use_channels_last(channels_last)

    def run(checkpointing: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        image = smooth_image(35, 42).requires_grad_(True)
        features = encoder(image, layers, checkpointing=checkpointing)
        loss = sum((i + 1) * features[name].pow(2).mean() for i, name in enumerate(layers))
        loss.backward()
        assert image.grad is not None
        return {k: v.detach() for k, v in features.items()}, image.grad

    plain_features, plain_grad = run(False)
    checkpoints: list[object] = []
    real = torch.utils.checkpoint.checkpoint

    def counted(*args, **kwargs):
        checkpoints.append(args[0])
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("brushwork.encoders.vgg.checkpoint", counted)
        features, grad = run(True)
    assert len(checkpoints) == 5  # one per block up to relu5_1: it did checkpoint
    assert set(features) == set(layers)
    for name in layers:
        torch.testing.assert_close(features[name], plain_features[name], rtol=1e-5, atol=1e-5)
    assert plain_grad.abs().sum() > 0
    torch.testing.assert_close(grad, plain_grad, rtol=1e-4, atol=1e-6)


def test_checkpointing_without_gradients_is_plain(monkeypatch, tiny_encoder: VGG19) -> None:
    image = smooth_image(24, 24)
    plain = tiny_encoder(image, ["relu3_1"])["relu3_1"]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("checkpointed without gradients")

    monkeypatch.setattr("brushwork.encoders.vgg.checkpoint", refuse)
    with torch.no_grad():
        out = tiny_encoder(image, ["relu3_1"], checkpointing=True)["relu3_1"]
    torch.testing.assert_close(out, plain)
    # nor for an input that needs no gradient
    torch.testing.assert_close(
        tiny_encoder(image, ["relu3_1"], checkpointing=True)["relu3_1"], plain
    )


# ----------------------------------------------------------------------------- several styles


@pytest.fixture
def images() -> dict[str, torch.Tensor]:
    return {
        "content": smooth_image(32, 32, seed=0),
        "a": smooth_image(32, 32, seed=1),
        "b": smooth_image(40, 36, seed=2),
        "x": smooth_image(32, 32, seed=3),  # an image to evaluate the loss at
    }


def _grams(encoder: VGG19, image: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {k: gram_matrix(f) for k, f in encoder(image, STYLE_LAYERS).items()}


def _loss(encoder, images, styles, **options) -> GatysLoss:
    """The loss built as Gatys builds it: the styles prepared (checked, Gram matrices)
    once, then the loss for the content."""
    method = Gatys(GatysOptions(**options), encoder=encoder)
    prepared = method.prepare(styles)
    return GatysLoss(encoder, images["content"], prepared.targets, prepared.data, method.options)


def _targets(loss: GatysLoss, layer: str) -> list[torch.Tensor]:
    return [term.target for term in loss.style_terms[layer]]


def _style_value(loss: GatysLoss, image: torch.Tensor) -> float:
    with torch.no_grad():
        return float(loss(image)["style"])


def test_a_weight_zero_style_changes_nothing(tiny_encoder, images) -> None:
    alone = _loss(tiny_encoder, images, [StyleTarget(images["a"])])
    paired = _loss(
        tiny_encoder, images, [StyleTarget(images["a"], 1.0), StyleTarget(images["b"], 0.0)]
    )
    grams = _grams(tiny_encoder, images["a"])
    for layer in STYLE_LAYERS:
        (target,) = _targets(paired, layer)
        torch.testing.assert_close(target, grams[layer])
        torch.testing.assert_close(target, _targets(alone, layer)[0])
    assert _style_value(paired, images["x"]) == pytest.approx(_style_value(alone, images["x"]))


def test_a_tensor_style_equals_one_style_target(tiny_encoder, images) -> None:
    plain = _loss(tiny_encoder, images, images["a"])
    listed = _loss(tiny_encoder, images, [StyleTarget(images["a"], 5.0)])
    assert _style_value(plain, images["x"]) == pytest.approx(_style_value(listed, images["x"]))


@pytest.mark.parametrize(("wa", "wb"), [(1.0, 1.0), (2.5, 2.5), (3.0, 1.0)])
def test_blended_target_is_the_weighted_mean_of_the_grams(
    tiny_encoder, images, wa: float, wb: float
) -> None:
    loss = _loss(tiny_encoder, images, [StyleTarget(images["a"], wa), StyleTarget(images["b"], wb)])
    ga, gb = _grams(tiny_encoder, images["a"]), _grams(tiny_encoder, images["b"])
    for layer in STYLE_LAYERS:
        (target,) = _targets(loss, layer)
        expected = (wa * ga[layer] + wb * gb[layer]) / (wa + wb)
        torch.testing.assert_close(target, expected)


def test_per_layer_assignment(tiny_encoder, images) -> None:
    styles = [
        StyleTarget(images["a"], layers=("relu1_1",)),
        StyleTarget(images["b"], layers=("relu2_1", "relu3_1", "relu4_1", "relu5_1")),
    ]
    loss = _loss(tiny_encoder, images, styles)
    ga, gb = _grams(tiny_encoder, images["a"]), _grams(tiny_encoder, images["b"])
    torch.testing.assert_close(_targets(loss, "relu1_1")[0], ga["relu1_1"])
    for layer in ("relu2_1", "relu3_1", "relu5_1"):
        (target,) = _targets(loss, layer)
        torch.testing.assert_close(target, gb[layer])


def test_overlapping_assignment_renormalizes_per_layer(tiny_encoder, images) -> None:
    # A everywhere (weight 1), B only at relu1_1 (weight 3): relu1_1 blends 1:3, the other
    # layers are A's alone (its weight renormalized to 1).
    styles = [StyleTarget(images["a"], 1.0), StyleTarget(images["b"], 3.0, ("relu1_1",))]
    loss = _loss(tiny_encoder, images, styles)
    ga, gb = _grams(tiny_encoder, images["a"]), _grams(tiny_encoder, images["b"])
    torch.testing.assert_close(
        _targets(loss, "relu1_1")[0], 0.25 * ga["relu1_1"] + 0.75 * gb["relu1_1"]
    )
    torch.testing.assert_close(_targets(loss, "relu3_1")[0], ga["relu3_1"])


def test_a_style_layer_without_a_style_is_an_error(tiny_encoder, images) -> None:
    styles = [
        StyleTarget(images["a"], layers=("relu1_1",)),
        StyleTarget(images["b"], layers=("relu2_1",)),
    ]
    with pytest.raises(BrushworkError, match="relu3_1 has no style assigned"):
        _loss(tiny_encoder, images, styles)


def test_a_style_assigned_a_non_style_layer_is_an_error(tiny_encoder, images) -> None:
    styles = [StyleTarget(images["a"]), StyleTarget(images["b"], layers=("relu1_1", "relu4_2"))]
    with pytest.raises(BrushworkError, match=r"style 2 .* relu4_2, which is not a style layer"):
        _loss(tiny_encoder, images, styles)


def test_a_layer_whose_styles_all_weigh_zero_is_an_error(tiny_encoder, images) -> None:
    styles = [
        StyleTarget(images["a"], 1.0, ("relu1_1",)),
        StyleTarget(images["b"], 0.0, ("relu2_1", "relu3_1", "relu4_1", "relu5_1")),
    ]
    with pytest.raises(BrushworkError, match="weight 0"):
        _loss(tiny_encoder, images, styles)


def test_style_layers_option_limits_the_terms(tiny_encoder, images) -> None:
    loss = _loss(
        tiny_encoder,
        images,
        [StyleTarget(images["a"], layers=("relu2_1",))],
        style_layers=("relu2_1",),
    )
    assert set(loss.style_terms) == {"relu2_1"}


# ----------------------------------------------------------------------------- masked styles


def test_a_mask_of_ones_is_the_same_as_no_mask(tiny_encoder, images) -> None:
    ones = torch.ones(1, 1, 32, 32)
    plain = _loss(tiny_encoder, images, [StyleTarget(images["a"])])
    masked = _loss(tiny_encoder, images, [StyleTarget(images["a"], mask=ones)])
    assert _style_value(masked, images["x"]) == pytest.approx(
        _style_value(plain, images["x"]), rel=1e-5
    )


def test_a_style_with_an_empty_mask_contributes_nothing(tiny_encoder, images) -> None:
    ones, zeros = torch.ones(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    alone = _loss(tiny_encoder, images, [StyleTarget(images["a"], mask=ones)])
    with_empty = _loss(
        tiny_encoder,
        images,
        [StyleTarget(images["a"], mask=ones), StyleTarget(images["b"], 2.0, mask=zeros)],
    )
    assert _style_value(with_empty, images["x"]) == pytest.approx(
        _style_value(alone, images["x"]), rel=1e-6
    )
    assert all(len(terms) == 1 for terms in with_empty.style_terms.values())


def test_every_mask_empty_gives_a_zero_style_loss(tiny_encoder, images) -> None:
    zeros = torch.zeros(1, 1, 32, 32)
    loss = _loss(tiny_encoder, images, [StyleTarget(images["a"], mask=zeros)])
    terms = loss(images["x"])
    assert all(isinstance(v, torch.Tensor) for v in terms.values())  # the optimizer needs it
    assert float(terms["style"]) == 0.0


def test_run_with_an_all_black_style_mask(tiny_encoder, content_pil, style_pil) -> None:
    black = Image.new("L", (64, 64), 0)
    with pytest.warns(BrushworkWarning, match="mask of style 1 is empty"):
        done = api.run(
            content_pil, Style(style_pil, mask=black), size=32, iterations=2, encoder=tiny_encoder
        )
    assert done.result.losses["style"] == 0.0
    assert done.image.size == (32, 32)


def test_masked_styles_weigh_their_region(tiny_encoder, images) -> None:
    left = torch.zeros(1, 1, 32, 32)
    left[..., :16] = 1.0
    right = 1.0 - left
    loss = _loss(
        tiny_encoder,
        images,
        [StyleTarget(images["a"], 1.0, mask=left), StyleTarget(images["b"], 1.0, mask=right)],
    )
    ga, gb = _grams(tiny_encoder, images["a"]), _grams(tiny_encoder, images["b"])
    for layer in STYLE_LAYERS:
        first, second = loss.style_terms[layer]
        # Each style is matched by its own Gram inside its own region.
        torch.testing.assert_close(first.target, ga[layer])
        torch.testing.assert_close(second.target, gb[layer])
        torch.testing.assert_close(first.mask, downsample_mask(left, layer))
        torch.testing.assert_close(second.mask, downsample_mask(right, layer))
    # Mask mode does not normalize weights: doubling one style's weight raises its share.
    heavier = _loss(
        tiny_encoder,
        images,
        [StyleTarget(images["a"], 2.0, mask=left), StyleTarget(images["b"], 1.0, mask=right)],
    )
    assert heavier.style_terms["relu1_1"][0].weight == pytest.approx(
        2 * loss.style_terms["relu1_1"][0].weight
    )
    assert heavier.style_terms["relu1_1"][1].weight == pytest.approx(
        loss.style_terms["relu1_1"][1].weight
    )


def test_a_masked_style_sees_only_its_region(tiny_encoder) -> None:
    # The content is style A on the left and style B on the right; with matching masks the
    # masked loss is smaller than with the masks swapped.
    red, blue = torch.tensor([1.0, 0.1, 0.1]), torch.tensor([0.1, 0.2, 1.0])
    a = smooth_image(32, 32, seed=11) * red.view(1, 3, 1, 1)
    b = smooth_image(32, 32, seed=12) * blue.view(1, 3, 1, 1)
    image = torch.cat([a[..., :16], b[..., 16:]], dim=-1)
    left = torch.zeros(1, 1, 32, 32)
    left[..., :16] = 1.0
    right = 1.0 - left

    def value(mask_a: torch.Tensor, mask_b: torch.Tensor) -> float:
        styles = [StyleTarget(a, mask=mask_a), StyleTarget(b, mask=mask_b)]
        loss = _loss(tiny_encoder, {"content": image}, styles, style_layers=("relu1_1",))
        with torch.no_grad():
            return float(loss(image)["style"])

    assert value(left, right) < 0.5 * value(right, left)


# ----------------------------------------------------------------------------- style weights


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ((0.0, 0.0), "sum to zero"),
        ((1.0, -0.5), ">= 0"),
        ((math.nan, 1.0), "finite"),
        ((math.inf,), "finite"),
    ],
)
def test_bad_style_weights(weights, match: str, content_pil, style_pil) -> None:
    with pytest.raises(BrushworkError, match=match):
        check_style_weights(weights)
    content = to_tensor(content_pil)
    with pytest.raises(BrushworkError, match=match):
        style_targets([StyleTarget(content, w) for w in weights])
    with pytest.raises(BrushworkError, match=match):
        api.run(content_pil, [Style(style_pil, w) for w in weights], size=32, iterations=1)


def test_blend_weights_normalize_only_without_masks() -> None:
    image, mask = torch.zeros(1, 3, 4, 4), torch.ones(1, 1, 4, 4)
    assert blend_weights([StyleTarget(image, 3.0), StyleTarget(image, 1.0)]) == [0.75, 0.25]
    assert blend_weights([StyleTarget(image, 3.0, mask=mask), StyleTarget(image, 1.0)]) == [
        3.0,
        1.0,
    ]


def test_huge_blend_weights_do_not_overflow(tiny_encoder) -> None:
    """Two styles of weight 1e308 blend half and half (their sum overflowed to inf, which
    made both weights 0: "the styles ... all have weight 0")."""
    from brushwork.methods.gatys import Gatys

    image = torch.zeros(1, 3, 4, 4)
    huge = [StyleTarget(image, 1e308), StyleTarget(image, 1e308)]
    assert blend_weights(huge) == [0.5, 0.5]
    assert blend_weights([StyleTarget(image, 1e308), StyleTarget(image, 1.0)]) == [1.0, 1e-308]
    content, style = smooth_image(32, 32, seed=1), smooth_image(32, 32, seed=2)
    styles = [StyleTarget(style, 1e308), StyleTarget(style.flip(-1), 1e308)]
    result = Gatys(encoder=tiny_encoder, iterations=1).stylize(content, styles)
    assert bool(torch.isfinite(result.image).all())


def test_style_targets_checks_mask_shapes() -> None:
    content = torch.zeros(1, 3, 8, 8)
    with pytest.raises(BrushworkError, match=r"the mask of style 2 must be a \(1, 1, H, W\)"):
        style_targets([StyleTarget(content), StyleTarget(content, mask=torch.ones(1, 2, 8, 8))])
    with pytest.raises(BrushworkError, match="the masks of the styles differ in size"):
        style_targets(
            [
                StyleTarget(content, mask=torch.ones(1, 1, 8, 8)),
                StyleTarget(content, mask=torch.ones(1, 1, 8, 9)),
            ]
        )
    with pytest.raises(BrushworkError, match="at least one style"):
        style_targets([])


def test_masks_must_fit_the_content(tiny_encoder) -> None:
    # Masks are over the content: styles prepared with 32x40 masks refuse a 32x32 content.
    content, style = smooth_image(32, 32), smooth_image(32, 32, seed=1)
    method = Gatys(encoder=tiny_encoder, iterations=1)
    prepared = method.prepare([StyleTarget(style, mask=torch.ones(1, 1, 32, 40))])
    assert prepared.content_size == (32, 40)
    with pytest.raises(BrushworkError, match="prepared with masks for a 40x32 content, not 32x32"):
        method.stylize(content, prepared)


# ----------------------------------------------------------------------------- memory plan


class _Planner:
    """A Gatys method's memory plan under a fixed limit (bytes)."""

    def __init__(self, limit: int, **options) -> None:
        self.method, self.limit = Gatys(**options), limit

    def memory_plan(self, height: int, width: int):
        return self.method.plan(height, width, [], limit=self.limit)


def _gatys(limit: int, **options) -> _Planner:
    return _Planner(limit, **options)


def test_memory_plan_small_image_is_plain() -> None:
    plan = _gatys(2 * GIB).memory_plan(64, 64)
    assert plan.checkpointing is False
    assert plan.history_size == 100
    assert 0 < plan.estimate <= 2 * GIB


def test_memory_plan_uses_checkpointing_then_a_shorter_history() -> None:
    height = width = 2048
    plain = _gatys(2**50).memory_plan(height, width)
    assert plain.checkpointing is False
    checkpointed = _gatys(plain.estimate - 1).memory_plan(height, width)
    assert checkpointed.checkpointing is True
    assert checkpointed.history_size == plain.history_size
    assert checkpointed.estimate < plain.estimate
    shorter = _gatys(checkpointed.estimate - 1).memory_plan(height, width)
    assert shorter.checkpointing is True
    assert shorter.history_size < checkpointed.history_size
    assert shorter.history_size >= 1
    assert shorter.estimate <= checkpointed.estimate - 1
    with pytest.raises(
        BrushworkError,
        match=r"a 2048x2048 gatys run needs about \d+\.\d GiB even with activation "
        r"checkpointing, over the memory limit",
    ):
        _gatys(shorter.estimate - 1).memory_plan(height, width)


def test_memory_plan_grows_with_the_image_and_adam_keeps_no_history() -> None:
    small, large = (_gatys(2**50).memory_plan(s, s) for s in (256, 1024))
    assert large.estimate > small.estimate
    adam = _gatys(2**50, optimizer="adam").memory_plan(1024, 1024)
    assert adam.history_size == 0
    assert adam.estimate < large.estimate


@pytest.mark.usefixtures("no_optimization")
def test_run_refuses_a_tiny_memory_limit_before_any_work(
    tiny_encoder, content_pil, style_pil
) -> None:
    with pytest.raises(BrushworkError, match="GiB"):
        api.run(
            content_pil, style_pil, size=32, iterations=1, encoder=tiny_encoder, max_memory=2**20
        )
    with pytest.raises(BrushworkError, match="GiB"):
        api.run(
            content_pil,
            style_pil,
            size=64,
            start_size=32,
            iterations=1,
            encoder=tiny_encoder,
            max_memory=2**20,
        )


def test_run_applies_the_memory_plan(monkeypatch, tiny_encoder, content_pil, style_pil) -> None:
    # The plan is an argument of each run, passed to the encoder; the shared encoder is
    # never switched into a mode.
    modes: list[bool] = []
    real = VGG19.forward

    def spy(self, image, layers=None, *, checkpointing=False):
        if torch.is_grad_enabled() and image.requires_grad:
            modes.append(checkpointing)
        return real(self, image, layers, checkpointing=checkpointing)

    monkeypatch.setattr(VGG19, "forward", spy)
    plain = _gatys(2**50).memory_plan(32, 32)
    done = api.run(
        content_pil,
        style_pil,
        size=32,
        iterations=1,
        encoder=tiny_encoder,
        device="cpu",
        max_memory=plain.estimate - 1,
    )
    assert done.result.details["checkpointing"] is True
    assert done.result.details["memory_estimate"] <= plain.estimate - 1
    assert modes and all(modes)
    modes.clear()
    done = api.run(
        content_pil,
        style_pil,
        size=32,
        iterations=1,
        encoder=tiny_encoder,
        device="cpu",
        max_memory=4 * GIB,
    )
    assert done.result.details["checkpointing"] is False
    assert modes and not any(modes)
    assert not hasattr(tiny_encoder, "checkpointing")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, "max-memory must be >= 1, not 0"),
        (-1, "max-memory must be >= 1, not -1"),
        (1.5, "max-memory must be an integer, not 1.5"),
        ("8G", "max-memory must be an integer, not '8G'"),
    ],
)
def test_run_rejects_bad_max_memory(tiny_encoder, content_pil, style_pil, value, match) -> None:
    with pytest.raises(BrushworkError, match=match):
        api.run(
            content_pil, style_pil, size=32, iterations=1, encoder=tiny_encoder, max_memory=value
        )


# ----------------------------------------------------------------------------- scale schedule


def test_scale_schedule_default_iterations() -> None:
    assert scale_schedule(2048, 256, 300) == [(256, 300), (512, 75), (1024, 18), (2048, 10)]


def test_scale_schedule_never_adds_iterations_at_finer_scales() -> None:
    assert scale_schedule(64, 16, 3) == [(16, 3), (32, 3), (64, 3)]


@pytest.mark.usefixtures("no_work")
def test_style_restricted_to_a_missing_layer_is_refused_before_any_work(
    content_pil, style_pil
) -> None:
    with pytest.raises(BrushworkError, match="relu2_1 has no style"):
        api.run(content_pil, Style(style_pil, layers=("relu1_1",)), size=32, iterations=1)
    with pytest.raises(BrushworkError, match="Style Swap uses one layer"):
        api.run(content_pil, Style(style_pil, layers=("relu1_1",)), "styleswap", size=32)


def test_scale_schedule_last_scale_is_the_size() -> None:
    assert scale_schedule(1000, 300, 100) == [(300, 100), (600, 25), (1000, 10)]


def test_scale_schedule_explicit_iterations() -> None:
    assert scale_schedule(2048, 512, 300, (200, 50, 20)) == [(512, 200), (1024, 50), (2048, 20)]
    assert scale_schedule(64, None, 300, [7]) == [(64, 7)]


@pytest.mark.parametrize("counts", [(100, 50), (100, 50, 20, 10), ()])
def test_scale_schedule_wrong_count(counts) -> None:
    match = r"scale iterations given for 3 scales \(512, 1024, 2048 px\)"
    with pytest.raises(BrushworkError, match=match):
        scale_schedule(2048, 512, 300, counts)


@pytest.mark.parametrize("counts", [(100, 0, 10), (100, -1, 10), (100, 2.5, 10)])
def test_scale_schedule_bad_counts(counts) -> None:
    with pytest.raises(BrushworkError, match="integers >= 1"):
        scale_schedule(2048, 512, 300, counts)


def test_scale_schedule_start_at_the_size_is_one_scale() -> None:
    assert scale_schedule(512, 512, 300) == [(512, 300)]


@pytest.mark.parametrize("start", [600, 4096])
def test_scale_schedule_start_above_the_size_is_refused(start: int) -> None:
    match = rf"start size \({start} px\) must not be larger than the output size \(512 px\)"
    with pytest.raises(BrushworkError, match=match):
        scale_schedule(512, start, 300)


def test_scale_schedule_without_start_is_one_scale() -> None:
    assert scale_schedule(512, None, 300) == [(512, 300)]


@pytest.mark.parametrize("start", [15, 0, -16, 16.0])
def test_scale_schedule_bad_start(start) -> None:
    with pytest.raises(BrushworkError, match=">= 16"):
        scale_schedule(512, start, 300)


# ----------------------------------------------------------------------------- coarse-to-fine


def test_coarse_to_fine_run(monkeypatch, tiny_encoder, content_pil, style_pil) -> None:
    starts: list[torch.Tensor] = []
    results: list[torch.Tensor] = []
    real = optimization.optimize_image

    def spy(image, *args, **kwargs):
        starts.append(image.detach().clone())
        result = real(image, *args, **kwargs)
        results.append(result.image.detach().clone())
        return result

    monkeypatch.setattr(optimization, "optimize_image", spy)
    collect = ev.Collect()
    # Noise init: only the first scale starts from noise, the others from the result.
    done = api.run(
        content_pil,
        style_pil,
        size=64,
        start_size=16,
        scale_iterations=(3, 2, 2),
        encoder=tiny_encoder,
        device="cpu",
        events=collect,
        init="noise",
    )
    records = collect.of(ev.Progress)
    assert done.image.size == (64, 64)
    assert done.content_size == (64, 64)
    assert [r.step for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert all(r.total == 7 for r in records)
    assert [r.scale for r in records] == [1, 1, 1, 2, 2, 3, 3]
    assert [tuple(r.image.shape[-2:]) for r in records] == [(16, 16)] * 3 + [(32, 32)] * 2 + [
        (64, 64)
    ] * 2
    assert done.result.details["scale_starts"] == [1, 4, 6]
    assert len(done.result.details["history"]) == 7
    assert len(done.scales) == 3
    assert [s["size"] for s in done.scales] == [[16, 16], [32, 32], [64, 64]]
    assert [s["iterations"] for s in done.scales] == [3, 2, 2]
    # Each finer scale starts from the previous scale's result, upsampled.
    assert [tuple(s.shape[-2:]) for s in starts] == [(16, 16), (32, 32), (64, 64)]
    for before, start in zip(results[:-1], starts[1:], strict=True):
        upsampled = F.interpolate(before, size=start.shape[-2:], mode="bilinear")
        content = to_tensor(content_pil.resize(start.shape[-2:][::-1]))
        error = (start - upsampled).abs().mean()
        assert error < 0.1
        assert error < 0.5 * (content - upsampled).abs().mean()


def test_single_scale_run_has_no_scale_starts(tiny_encoder, content_pil, style_pil) -> None:
    done = api.run(content_pil, style_pil, size=32, iterations=2, encoder=tiny_encoder)
    assert "scale_starts" not in done.result.details
    assert len(done.scales) == 1 and done.scales[0]["size"] == [32, 32]


def test_scale_iterations_apply_to_a_single_scale(tiny_encoder, content_pil, style_pil) -> None:
    collect = ev.Collect()
    done = api.run(
        content_pil, style_pil, size=32, scale_iterations=(2,), encoder=tiny_encoder, events=collect
    )
    assert [r.step for r in collect.of(ev.Progress)] == [1, 2]
    assert done.result.details["steps"] == 2
    done = api.run(
        content_pil, style_pil, size=32, start_size=32, scale_iterations=(1,), encoder=tiny_encoder
    )
    assert done.result.details["steps"] == 1
    assert len(done.scales) == 1
    with pytest.raises(BrushworkError, match=r"start size \(64 px\) must not be larger than"):
        api.run(
            content_pil,
            style_pil,
            size=32,
            start_size=64,
            scale_iterations=(1,),
            encoder=tiny_encoder,
        )


@pytest.mark.usefixtures("no_optimization")
def test_coarse_to_fine_count_mismatch_is_refused_early(
    tiny_encoder, content_pil, style_pil
) -> None:
    with pytest.raises(BrushworkError, match="2 scale iterations given for 3 scales"):
        api.run(
            content_pil,
            style_pil,
            size=64,
            start_size=16,
            scale_iterations=(2, 2),
            encoder=tiny_encoder,
        )


@pytest.mark.usefixtures("no_optimization")
def test_a_first_scale_too_small_for_the_encoder_is_refused_early(tiny_encoder, style_pil) -> None:
    wide = to_pil(smooth_image(40, 64))  # 16x10 at the first scale: relu5_1 needs 16 px
    with pytest.raises(BrushworkError, match=r"content at the first scale.*--start-size"):
        api.run(wide, style_pil, size=64, start_size=16, encoder=tiny_encoder)
    with pytest.raises(BrushworkError, match=r"content would be 24x15.*--size"):
        api.run(wide, style_pil, size=24, encoder=tiny_encoder)
    # The styles shrink with the content at coarse scales too.
    with pytest.raises(BrushworkError, match="style 1 at the first scale would be 8x8"):
        api.run(
            to_pil(smooth_image(64, 64)),
            style_pil,
            size=64,
            start_size=16,
            style_scale=0.5,
            encoder=tiny_encoder,
        )


# ----------------------------------------------------------------------------- style scale


def test_style_scale_sets_the_style_size(tiny_encoder, content_pil, style_pil) -> None:
    done = api.run(
        content_pil, style_pil, size=64, style_scale=0.5, iterations=1, encoder=tiny_encoder
    )
    assert done.style_size == (32, 32)
    wide_style = to_pil(smooth_image(30, 60, seed=4))
    done = api.run(
        content_pil, wide_style, size=32, style_scale=1.5, iterations=1, encoder=tiny_encoder
    )
    assert done.style_size == (48, 24)


def test_style_scale_default_is_the_content_size(tiny_encoder, content_pil, style_pil) -> None:
    done = api.run(content_pil, style_pil, size=48, iterations=1, encoder=tiny_encoder)
    assert done.style_size == (48, 48)


@pytest.mark.usefixtures("no_optimization")
def test_style_scale_too_small_for_the_encoder(tiny_encoder, content_pil, style_pil) -> None:
    with pytest.raises(BrushworkError, match=r"style 1 would be 3x3 px.*--style-scale"):
        api.run(
            content_pil, style_pil, size=64, style_scale=0.05, iterations=1, encoder=tiny_encoder
        )


def test_style_scale_and_style_size_together(tiny_encoder, content_pil, style_pil) -> None:
    with pytest.raises(BrushworkError, match="either a style size or a style scale"):
        api.run(
            content_pil,
            style_pil,
            size=32,
            style_size=32,
            style_scale=1.0,
            iterations=1,
            encoder=tiny_encoder,
        )


@pytest.mark.parametrize(
    ("scale", "match"),
    [
        (0, "style-scale must be > 0 and <= 128, not 0"),
        (0.0, "style-scale must be > 0 and <= 128, not 0.0"),
        (-0.5, "style-scale must be > 0 and <= 128, not -0.5"),
        (129.0, "style-scale must be <= 128, not 129.0"),
        (math.nan, "style-scale must be a finite number, not nan"),
        (math.inf, "style-scale must be a finite number, not inf"),
        ("2", "style-scale must be a number, not '2'"),
    ],
)
def test_bad_style_scale(tiny_encoder, content_pil, style_pil, scale, match) -> None:
    with pytest.raises(BrushworkError, match=match):
        api.run(
            content_pil, style_pil, size=32, style_scale=scale, iterations=1, encoder=tiny_encoder
        )


# ----------------------------------------------------------------------------- preserve color


def _chroma(image: Image.Image) -> torch.Tensor:
    return rgb_to_yuv(to_tensor(image))[:, 1:]


def test_preserve_color_luminance_keeps_the_content_chroma(tiny_encoder) -> None:
    # Mid-range colors, so that no channel clips when the luminance changes.
    content_pil = to_pil(0.3 + 0.4 * smooth_image(64, 64, seed=0))
    colorful = to_pil(smooth_image(56, 56, seed=7))
    done = api.run(
        content_pil,
        colorful,
        size=48,
        iterations=3,
        encoder=tiny_encoder,
        preserve_color="luminance",
        optimizer="adam",
        learning_rate=0.05,
    )
    content = content_pil.resize((48, 48), Image.Resampling.LANCZOS)
    assert done.image.size == (48, 48)
    assert (_chroma(done.image) - _chroma(content)).abs().max() < 0.02
    # ... while the luminance was stylized.
    luma = rgb_to_yuv(to_tensor(done.image))[:, :1]
    assert (luma - rgb_to_yuv(to_tensor(content))[:, :1]).abs().mean() > 0.01


@pytest.mark.parametrize("mode", ["histogram", "linear", "none"])
def test_preserve_color_recoloring_modes_run(tiny_encoder, content_pil, style_pil, mode) -> None:
    done = api.run(
        content_pil, style_pil, size=32, iterations=1, encoder=tiny_encoder, preserve_color=mode
    )
    assert done.image.size == (32, 32) and done.image.mode == "RGB"
    assert np.isfinite(done.result.losses["total"])


def test_preserve_color_recolors_the_style(monkeypatch, tiny_encoder, content_pil) -> None:
    # A red style recolored to a blue content: the method sees a blue-ish style.
    red = Image.fromarray(
        np.clip(np.asarray(to_pil(smooth_image(40, 40, seed=5))) * [1.0, 0.2, 0.2], 0, 255).astype(
            np.uint8
        )
    )
    blue = to_pil(smooth_image(32, 32, seed=6) * torch.tensor([0.2, 0.3, 1.0]).view(1, 3, 1, 1))
    seen: list[torch.Tensor] = []
    real = Gatys.build_loss

    def spy(self, encoder, content, prepared, checkpointing):
        seen.extend(s.image for s in prepared.targets)
        return real(self, encoder, content, prepared, checkpointing)

    monkeypatch.setattr(Gatys, "build_loss", spy)
    api.run(blue, red, size=32, iterations=1, encoder=tiny_encoder, preserve_color="linear")
    means = seen[0].mean(dim=(0, 2, 3))
    assert means[2] > means[0]


def test_unknown_preserve_color_mode(tiny_encoder, content_pil, style_pil) -> None:
    with pytest.raises(BrushworkError, match="preserve-color must be one of"):
        api.run(
            content_pil,
            style_pil,
            size=32,
            iterations=1,
            encoder=tiny_encoder,
            preserve_color="sepia",
        )


# ----------------------------------------------------------------------------- styles in run


@pytest.fixture
def seen_styles(monkeypatch) -> list[list[StyleTarget]]:
    """The style targets each scale's loss was built from."""
    calls: list[list[StyleTarget]] = []
    real = Gatys.build_loss

    def spy(self, encoder, content, prepared, checkpointing):
        calls.append(list(prepared.targets))
        return real(self, encoder, content, prepared, checkpointing)

    monkeypatch.setattr(Gatys, "build_loss", spy)
    return calls


def _halves(width: int = 64, height: int = 64, colors=((0, 0, 0), (255, 255, 255))):
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = colors[0]
    array[:, width // 2 :] = colors[1]
    return Image.fromarray(array)


def test_run_with_a_label_image_and_regions(
    seen_styles, tiny_encoder, content_pil, style_pil, other_style_pil
) -> None:
    labels = _halves(colors=((255, 0, 0), (0, 0, 255)))
    done = api.run(
        content_pil,
        [style_pil, other_style_pil],
        size=32,
        iterations=1,
        encoder=tiny_encoder,
        mask=labels,
        regions={"#ff0000": 2, "#0000ff": 1},
    )
    assert done.image.size == (32, 32)
    (styles,) = seen_styles
    first, second = (s.mask for s in styles)
    assert first is not None and second is not None
    assert first.shape == second.shape == (1, 1, 32, 32)
    assert float(first[..., 20:].min()) > 0.99 and float(first[..., :12].max()) < 0.01
    assert float(second[..., :12].min()) > 0.99 and float(second[..., 20:].max()) < 0.01


def test_run_with_a_label_image_in_brightness_order(
    seen_styles, tiny_encoder, content_pil, style_pil, other_style_pil, tmp_path
) -> None:
    path = tmp_path / "labels.png"
    _halves(colors=((255, 255, 255), (0, 0, 0))).save(path)
    api.run(
        content_pil,
        [Style(style_pil, 2.0), other_style_pil],
        size=32,
        iterations=1,
        encoder=tiny_encoder,
        mask=path,
    )
    first, second = (s.mask for s in seen_styles[0])
    assert float(first[..., 20:].min()) > 0.99  # black, on the right: style 1
    assert float(second[..., :12].min()) > 0.99
    assert [s.weight for s in seen_styles[0]] == [2.0, 1.0]


def test_run_with_an_unstyled_region(seen_styles, tiny_encoder, content_pil, style_pil) -> None:
    api.run(
        content_pil,
        style_pil,
        size=32,
        iterations=1,
        encoder=tiny_encoder,
        mask=_halves(),
        regions={"#000000": None, "#ffffff": 1},
    )
    (mask,) = (s.mask for s in seen_styles[0])
    assert float(mask[..., :12].max()) < 0.01 and float(mask[..., 20:].min()) > 0.99


def test_run_with_grayscale_masks_per_style(
    seen_styles, tiny_encoder, content_pil, style_pil, other_style_pil
) -> None:
    left = Image.fromarray(np.tile(np.where(np.arange(16) < 8, 255, 0).astype(np.uint8), (16, 1)))
    styles = [Style(style_pil, mask=left), Style(other_style_pil)]
    api.run(content_pil, styles, size=32, iterations=1, encoder=tiny_encoder)
    first, second = (s.mask for s in seen_styles[0])
    assert first is not None and first.shape == (1, 1, 32, 32)
    assert float(first[..., :12].min()) > 0.99 and float(first[..., 20:].max()) < 0.01
    assert second is None  # everywhere


def test_masks_follow_the_coarse_to_fine_scales(
    seen_styles, tiny_encoder, content_pil, style_pil, other_style_pil
) -> None:
    api.run(
        content_pil,
        [style_pil, other_style_pil],
        size=64,
        start_size=32,
        scale_iterations=(1, 1),
        encoder=tiny_encoder,
        mask=_halves(),
    )
    assert [tuple(calls[0].mask.shape[-2:]) for calls in seen_styles] == [(32, 32), (64, 64)]
    assert [tuple(calls[0].image.shape[-2:]) for calls in seen_styles] == [(32, 32), (64, 64)]


def test_label_image_and_style_masks_together(tiny_encoder, content_pil, style_pil) -> None:
    with pytest.raises(BrushworkError, match="either a label image or a mask per style"):
        api.run(
            content_pil,
            [Style(style_pil, mask=_halves())],
            size=32,
            iterations=1,
            encoder=tiny_encoder,
            mask=_halves(),
        )


def test_regions_without_a_label_image(tiny_encoder, content_pil, style_pil) -> None:
    with pytest.raises(BrushworkError, match="regions need a label image"):
        api.run(
            content_pil,
            style_pil,
            size=32,
            iterations=1,
            encoder=tiny_encoder,
            regions={"#000000": 1},
        )


def test_label_image_with_more_regions_than_styles(tiny_encoder, content_pil, style_pil):
    with pytest.raises(BrushworkError, match="--region"):
        api.run(content_pil, style_pil, size=32, iterations=1, encoder=tiny_encoder, mask=_halves())


def test_per_layer_styles_through_run(
    seen_styles, tiny_encoder, content_pil, style_pil, other_style_pil
) -> None:
    styles = [
        Style(style_pil, layers=("relu1_1", "relu2_1")),
        Style(other_style_pil, 0.5, layers=("relu3_1", "relu4_1", "relu5_1")),
    ]
    done = api.run(content_pil, styles, size=32, iterations=1, encoder=tiny_encoder)
    assert [s.layers for s in seen_styles[0]] == [
        ("relu1_1", "relu2_1"),
        ("relu3_1", "relu4_1", "relu5_1"),
    ]
    assert np.isfinite(done.result.losses["style"])
    with pytest.raises(BrushworkError, match="no style assigned"):
        api.run(
            content_pil,
            [Style(style_pil, layers=("relu1_1",))],
            size=32,
            iterations=1,
            encoder=tiny_encoder,
        )


def test_no_style_is_an_error(tiny_encoder, content_pil) -> None:
    with pytest.raises(BrushworkError, match="at least one style"):
        api.run(content_pil, [], size=32, iterations=1, encoder=tiny_encoder)


# ----------------------------------------------------------------------------- real weights


@requires_weights
@pytest.mark.integration
def test_controls_together_with_real_weights(content_pil, style_pil, other_style_pil) -> None:
    done = api.run(
        content_pil,
        [Style(style_pil, 0.7), Style(other_style_pil, 0.3)],
        size=64,
        start_size=32,
        scale_iterations=(2, 1),
        device="cpu",
        preserve_color="luminance",
        mask=_halves(),
    )
    assert done.image.size == (64, 64)
    assert done.result.details["scale_starts"] == [1, 3]
    assert all(np.isfinite(v) for v in done.result.losses.values())


def test_large_single_scale_run_suggests_coarse_to_fine(monkeypatch, content_pil, style_pil):
    """Above 1024 px a single-scale optimization gets a hint, once the run is known to fit
    (a run refused for its memory gets only the refusal)."""
    import warnings

    monkeypatch.setattr(stylizer, "COARSE_TO_FINE_HINT", 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BrushworkWarning)
        with pytest.raises(BrushworkError, match="GiB"):
            api.run(content_pil, style_pil, size=32, iterations=1, max_memory=1)
    with pytest.warns(BrushworkWarning, match="--start-size"):
        stylizer.make_stylizer("gatys", size=32).plan((32, 32), [(32, 32)])
