"""Tests for Style Swap's inverse network as a method of its own
(brushwork.methods.styleswap_inverse): registry, options, the one pass, its checks and
plan, and the bundled network's name. Unit tests use the tiny random encoder and a random
relu3_1 decoder written as a ``styleswap`` checkpoint, as the trainer writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import random_decoder, save_decoder, smooth_image

from brushwork import events as ev
from brushwork import models
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.methods import REGISTRY, get_method
from brushwork.methods.base import StyleTarget
from brushwork.methods.styleswap import StyleSwapOptions, swap_target
from brushwork.methods.styleswap_inverse import (
    INVERSE_LAYER,
    StyleSwapInverse,
    StyleSwapInverseOptions,
)
from brushwork.ops import reflect_margin
from brushwork.options import fields_of


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A content image (32x48) and a style image of another size (40x40)."""
    return smooth_image(32, 48, seed=0), smooth_image(40, 40, seed=1)


@pytest.fixture
def model(tmp_path: Path, tiny_encoder: VGG19) -> str:
    """A random inverse network for the tiny encoder, as `brushwork train styleswap-inverse`
    writes it (method name "styleswap")."""
    return str(save_decoder(tmp_path / "inverse.safetensors", tiny_encoder, "styleswap", "relu3_1"))


def test_registered_as_a_one_pass_method_with_the_trainer() -> None:
    entry = REGISTRY["styleswap-inverse"]
    assert get_method("styleswap-inverse") is StyleSwapInverse
    assert entry.kind == StyleSwapInverse.kind == "feed-forward"
    assert list(entry.trainers) == ["styleswap-inverse"]
    method = StyleSwapInverse()
    assert (method.accepts_init(), method.has_losses(), method.steps()) == (False, False, 1)
    assert method.encoder_request() == ("relu3_1", "max")
    assert (method.min_style_side(), method.min_content_side(), method.stride()) == (12, 12, 4)


def test_options_share_style_swap_s_declarations() -> None:
    """patch_size and stride are declared once (on StyleSwapOptions) and mean the same."""
    options = StyleSwapInverse.default_options()
    assert isinstance(options, StyleSwapInverseOptions)
    assert (options.layer, options.patch_size, options.stride) == ("relu3_1", 3, 1)
    assert options.model == "styleswap-inverse"
    ours = {f.name: f for f in fields_of(StyleSwapInverseOptions)}
    theirs = {f.name: f for f in fields_of(StyleSwapOptions)}
    assert list(ours) == ["patch_size", "stride", "model"]
    for name in ("patch_size", "stride"):
        assert ours[name].metadata == theirs[name].metadata
    with pytest.raises(BrushworkError, match="stride must be >= 1 and <= 64, not 0"):
        StyleSwapInverse(stride=0)
    with pytest.raises(BrushworkError, match="unknown option 'layer'"):
        StyleSwapInverse(layer="relu4_1")


def test_one_pass_decodes_the_swapped_features(tiny_encoder, pair, model) -> None:
    content, style = pair
    method = StyleSwapInverse(encoder=tiny_encoder, model=model)
    method.check_files()
    collect = ev.Collect()
    result = method.stylize(content, style, events=collect)
    assert result.image.shape == content.shape
    assert 0 <= float(result.image.min()) <= float(result.image.max()) <= 1
    assert result.losses == {}
    assert result.details["model"] == model
    assert result.details["style_patches"] == 64  # (40/4 - 3 + 1)²
    assert [(e.step, e.total) for e in collect.of(ev.Progress)] == [(1, 1)]
    # the decoder applied to the swap target of the content with its mirrored margin (31
    # rows a side, as the content has 32; 32 columns), cropped back
    targets = [StyleTarget(style)]
    framed, (top, left) = reflect_margin(content, 32)
    with torch.no_grad():
        features = [tiny_encoder(style, [INVERSE_LAYER])[INVERSE_LAYER]]
        target, _, _ = swap_target(tiny_encoder, framed, targets, features, method.options)
        decoded = random_decoder(tiny_encoder, 1, "relu3_1")(target)
    expected = decoded[..., top : top + 32, left : left + 48].clamp(0, 1)
    torch.testing.assert_close(result.image, expected)


def test_start_image_and_extra_losses_are_refused(tiny_encoder, pair, model) -> None:
    content, style = pair
    method = StyleSwapInverse(encoder=tiny_encoder, model=model)
    with pytest.raises(BrushworkError, match="styleswap-inverse cannot start from a given image"):
        method.stylize(content, style, init=content)
    with pytest.raises(BrushworkError, match="has no loss to add temporal to"):
        method.stylize(content, style, extra_losses=[("temporal", lambda x: x.sum())])


def test_too_small_images_and_other_layers_are_refused(tiny_encoder, pair, model) -> None:
    style = pair[1]
    method = StyleSwapInverse(encoder=tiny_encoder, model=model, patch_size=5)
    with pytest.raises(
        BrushworkError, match="style 1 is 40×16 px; styleswap-inverse needs at least 20×20"
    ):
        method.prepare(smooth_image(16, 40))
    with pytest.raises(
        BrushworkError, match="the content is 48x16 px; styleswap-inverse needs at least 20"
    ):
        method.stylize(smooth_image(16, 48), style)
    with pytest.raises(BrushworkError, match="Style Swap uses one layer, relu3_1; style 1"):
        method.prepare(StyleTarget(style, layers=("relu4_1",)))


def test_blends_and_masks_follow_the_swap(tiny_encoder, pair, model) -> None:
    """A blend of a style with itself is that style; a mask over everything is no mask;
    pixels no mask covers keep the content's features (decoded as they are)."""
    content, style = pair
    method = StyleSwapInverse(encoder=tiny_encoder, model=model)
    single = method.stylize(content, style).image
    twice = method.stylize(content, [StyleTarget(style, 0.3), StyleTarget(style, 0.7)]).image
    torch.testing.assert_close(twice, single)
    everywhere = method.stylize(content, StyleTarget(style, mask=torch.ones(1, 1, 32, 48)))
    torch.testing.assert_close(everywhere.image, single)
    nowhere = method.stylize(content, StyleTarget(style, mask=torch.zeros(1, 1, 32, 48)))
    decoder = random_decoder(tiny_encoder, 1, "relu3_1")
    framed, (top, left) = reflect_margin(content, 32)  # 31 rows: the content has 32
    with torch.no_grad():
        plain = decoder(tiny_encoder(framed, [INVERSE_LAYER])[INVERSE_LAYER])
    plain = plain[..., top : top + 32, left : left + 48].clamp(0, 1)
    torch.testing.assert_close(nowhere.image, plain)
    half = torch.zeros(1, 1, 32, 48)
    half[..., :24] = 1
    placed = method.stylize(content, StyleTarget(style, mask=half)).image
    assert (placed - single).abs().max() > 0.01 and (placed - plain).abs().max() > 0.01


def test_memory_plan_pads_to_the_stride_and_refuses_too_large(tiny_encoder) -> None:
    method = StyleSwapInverse(encoder=tiny_encoder)
    plan = method.plan(61, 70, [(40, 40)], limit=2**40)
    # 61x70 with a 32 px margin a side is 125x134, padded to 128x136
    assert plan.estimate == method.fixed_bytes + method.bytes_per_pixel * 128 * 136
    with pytest.raises(BrushworkError, match="a 4000x3000 styleswap-inverse run needs about"):
        method.plan(3000, 4000, [(512, 512)], limit=2**30)


def test_models_of_another_method_are_refused() -> None:
    with pytest.raises(
        BrushworkError, match="'adain' is a bundled adain model, not a styleswap-inverse"
    ):
        StyleSwapInverse(model="adain").check_files()


def test_checkpoint_of_another_method_is_refused(tiny_encoder, pair, tmp_path) -> None:
    path = save_decoder(tmp_path / "wct.safetensors", tiny_encoder, "wct", "relu3_1")
    method = StyleSwapInverse(encoder=tiny_encoder, model=str(path))
    with pytest.raises(BrushworkError, match="is a 'wct' checkpoint, not 'styleswap'"):
        method.stylize(*pair)


def test_the_bundled_network_is_the_method_s_and_a_trainer_s_start() -> None:
    """The method and the bundled network share the name ``styleswap-inverse`` without a
    clash: ``-m`` names a method, ``--model`` a network (or a file). The network is listed
    under its method, and a trainer starting from a ``styleswap`` checkpoint finds it."""
    info = models.MODELS["styleswap-inverse"]
    assert info.method == "styleswap-inverse"
    assert [m.name for m in models.for_method("styleswap-inverse")] == ["styleswap-inverse"]
    assert models.for_method("styleswap") == []
    assert models.checkpoint_method("styleswap-inverse") == "styleswap"
    assert models.resolve("styleswap-inverse", method="styleswap-inverse") == info.path
    assert models.resolve("styleswap-inverse", method="styleswap") == info.path
    with pytest.raises(BrushworkError, match="bundled styleswap-inverse model, not a wct one"):
        models.resolve("styleswap-inverse", method="wct")


@pytest.mark.skipif(
    not models.MODELS["styleswap-inverse"].path.is_file(), reason="bundled network not installed"
)
def test_the_bundled_network_loads_for_the_method() -> None:
    """The shipped file (method name "styleswap" inside) loads as this method's decoder."""
    from brushwork.encoders import VGG19
    from brushwork.methods.feedforward import Decoder

    encoder = VGG19(last_layer="relu3_1").requires_grad_(False).eval()  # random: shapes only
    method = StyleSwapInverse(encoder=encoder)
    method.check_files()
    assert isinstance(method.networks(), Decoder)
