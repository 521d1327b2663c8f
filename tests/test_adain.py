"""Tests for AdaIN (Huang & Belongie 2017): the ops (mean_std, adain), the decoder, the method
with a tiny random decoder checkpoint (sizes, alpha, several styles, masks, colour
preservation), every kind of bad model file and option (API and CLI), the outputs of the
refactored method against references made before the refactor, and, marked ``integration``,
the bundled decoders with the real VGG-19."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    assert_matches_reference,
    expect_error,
    random_decoder,
    requires_weights,
    save_decoder,
    smooth_image,
)
from kornia.color import rgb_to_yuv
from safetensors.torch import load_file, save_file

from brushwork import api, events, models
from brushwork.api import Style
from brushwork.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from brushwork.cli import main
from brushwork.encoders import CONV_LAYERS, VGG19
from brushwork.encoders.vgg import pools_before
from brushwork.errors import BrushworkError
from brushwork.image import open_image, to_pil, to_tensor
from brushwork.methods import get_method
from brushwork.methods.adain import LAYER, AdaIN, AdaINOptions
from brushwork.methods.base import PreparedStyle, StyleTarget
from brushwork.methods.feedforward import Decoder, decoder_id, load_decoder, min_side, mix_styles
from brushwork.ops import adain, mean_std, pad_to_multiple, reflect_margin, remove_lattice

EPS = 1e-5  # mean_std's default
REFERENCE = Path(__file__).parent / "data" / "adain_reference.safetensors"

# one intra-op thread (conftest's one_thread); the pretrained VGG-19 refused but in tests
# marked integration (no_pretrained)
pytestmark = pytest.mark.usefixtures("one_thread", "no_pretrained")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random decoder checkpoint for the tiny encoder (same seed as conftest's)."""
    torch.manual_seed(0)
    encoder = VGG19(last_layer="relu4_1", width=1 / 16).requires_grad_(False).eval()
    decoder = random_decoder(encoder)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(
        path,
        Checkpoint("adain", decoder_id(LAYER, 32), decoder.state_dict(), {"note": "test"}, step=3),
    )


@pytest.fixture
def method(tiny_encoder: VGG19, model: Path) -> AdaIN:
    return AdaIN(encoder=tiny_encoder, model=str(model))


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def stylized_features(
    content: torch.Tensor,
    statistics: list[tuple[torch.Tensor, torch.Tensor]],
    weights: list[float],
    masks: list[torch.Tensor | None],
    alpha: float,
) -> torch.Tensor:
    """The decoder's input as the method computes it: :func:`mix_styles` with AdaIN's own
    transform."""
    method = AdaIN()
    return mix_styles(
        content, statistics, weights, masks, alpha, lambda c, s, m: method.transform(c, s, m, LAYER)
    )


def halves(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 1, H, W) binary masks of the left and the right half."""
    left = torch.zeros(1, 1, height, width)
    left[..., : width // 2] = 1
    return left, 1 - left


# ----------------------------------------------------------------------------- ops


def test_mean_std_is_the_population_statistics_per_channel() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, 9) * 3 + torch.arange(5.0).view(1, 5, 1, 1)
    mean, std = mean_std(x)
    assert mean.shape == std.shape == (2, 5, 1, 1)
    torch.testing.assert_close(mean, x.mean(dim=(2, 3), keepdim=True))
    var = x.std(dim=(2, 3), keepdim=True, unbiased=False) ** 2
    torch.testing.assert_close(std, (var + EPS).sqrt())
    # computed in float32 whatever the features' dtype
    half_mean, half_std = mean_std(x.to(torch.bfloat16))
    assert half_mean.dtype == half_std.dtype == torch.float32


def test_masked_mean_std_is_the_statistics_of_the_masked_pixels() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 10)
    mask = (torch.rand(1, 1, 6, 10) > 0.6).float()
    mean, std = mean_std(x, mask)
    inside = x[0][:, mask[0, 0].bool()]  # (C, N)
    torch.testing.assert_close(mean.flatten(), inside.mean(dim=1))
    torch.testing.assert_close(std.flatten(), (inside.var(dim=1, unbiased=False) + EPS).sqrt())
    # a mask of ones is no mask
    for a, b in zip(mean_std(x, torch.ones(1, 1, 6, 10)), mean_std(x), strict=True):
        torch.testing.assert_close(a, b)


def test_adain_gives_the_content_the_style_statistics() -> None:
    torch.manual_seed(0)
    content = torch.randn(1, 6, 12, 10) * 4 + 2
    style = torch.randn(1, 6, 8, 8) * torch.rand(1, 6, 1, 1) * 10 - 3
    style_mean, style_std = mean_std(style)
    out = adain(content, style_mean, style_std)
    mean, std = mean_std(out)
    torch.testing.assert_close(mean, style_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std, style_std, atol=1e-4, rtol=1e-4)
    # with a mask, the masked region takes the style's statistics
    left, _ = halves(12, 10)
    out = adain(content, style_mean, style_std, left)
    mean, std = mean_std(out, left)
    torch.testing.assert_close(mean, style_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std, style_std, atol=1e-4, rtol=1e-4)
    assert adain(content.half(), style_mean, style_std).dtype == torch.float16


def test_gradients_stay_finite_on_a_constant_channel() -> None:
    torch.manual_seed(0)
    content = torch.randn(1, 3, 8, 8)
    content[:, 1] = 0.7  # flat channel: zero variance
    content.requires_grad_(True)
    style = torch.randn(1, 3, 8, 8)
    style[:, 2] = -1.0
    style.requires_grad_(True)
    out = adain(content, *mean_std(style))
    assert torch.isfinite(out).all()
    (out**2).sum().backward()
    assert torch.isfinite(content.grad).all() and torch.isfinite(style.grad).all()


# ----------------------------------------------------------------------------- decoder


@pytest.mark.parametrize("width", [1.0, 1 / 16])
def test_decoder_upsamples_eight_times(width: float) -> None:
    decoder = Decoder(width=width).eval()
    assert decoder.layer == LAYER == "relu4_1"  # the default
    assert decoder.in_channels == round(512 * width)
    with torch.no_grad():
        out = decoder(torch.randn(1, decoder.in_channels, 3, 5))
    assert out.shape == (1, 3, 24, 40)


def test_decoder_mirrors_the_encoder(tiny_encoder: VGG19) -> None:
    decoder = Decoder(width=1 / 16)
    convs = [name for name, m in decoder.named_children() if isinstance(m, torch.nn.Conv2d)]
    assert convs == list(reversed(CONV_LAYERS[: CONV_LAYERS.index("conv4_1") + 1]))
    for name in convs:  # each conv undoes its namesake: channels swapped
        conv, mirrored = getattr(decoder, name), tiny_encoder.convs[name]
        assert (conv.in_channels, conv.out_channels) == (
            mirrored.out_channels,
            mirrored.in_channels,
        )
    ups = [m for m in decoder.children() if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == pools_before(LAYER) == 3
    assert not any(isinstance(m, torch.nn.modules.batchnorm._NormBase) for m in decoder.modules())


# ----------------------------------------------------------------------------- the method


def test_registered_with_its_defaults() -> None:
    assert get_method("adain") is AdaIN
    options = AdaIN.default_options()
    assert isinstance(options, AdaINOptions)
    assert (options.alpha, options.model) == (1.0, "adain")
    assert models.resolve("adain", method="adain") == models.MODELS["adain"].path
    bundled = {m.name for m in models.for_method("adain")}
    assert bundled == {"adain", "adain-laplacian", "adain-depth", "adain-temporal"}
    assert all(
        models.MODELS[name].encoder == "vgg19:relu4_1:512" and models.MODELS[name].layer == LAYER
        for name in bundled
    )
    method = AdaIN()
    assert method.encoder_request() == (LAYER, "max")
    assert method.levels() == (LAYER,) and method.steps() == 1
    assert not method.accepts_init() and not method.has_losses()
    assert method.min_style_side() == 8 and min_side(LAYER) == 16


def test_checkpoint_round_trip(model: Path, tiny_encoder: VGG19) -> None:
    checkpoint = load_checkpoint(model, method="adain")
    assert checkpoint.encoder == decoder_id(LAYER, tiny_encoder.out_channels[LAYER])
    assert checkpoint.encoder == "vgg19:relu4_1:32"
    assert (checkpoint.config, checkpoint.step) == ({"note": "test"}, 3)
    decoder = load_decoder(model, method="adain", layer=LAYER, encoder=tiny_encoder)
    assert isinstance(decoder, Decoder) and decoder.layer == LAYER
    assert not decoder.training
    assert all(not p.requires_grad and p.dtype == torch.float32 for p in decoder.parameters())
    for name, tensor in decoder.state_dict().items():
        assert torch.equal(tensor, checkpoint.tensors[name])
    # loaded once per process and file
    assert load_decoder(model, method="adain", layer=LAYER, encoder=tiny_encoder) is decoder


@pytest.mark.parametrize("size", [(37, 53), (9, 13), (8, 8), (5, 7), (1, 1), (3, 40), (64, 2)])
def test_output_has_the_content_size(method: AdaIN, size: tuple[int, int]) -> None:
    content = torch.rand(1, 3, *size)
    result = method.stylize(content, smooth_image(24, 20, seed=1))
    assert result.image.shape == content.shape
    assert torch.isfinite(result.image).all()
    assert float(result.image.min()) >= 0 and float(result.image.max()) <= 1
    assert result.details["models"] == {LAYER: str(method.options.model)}


def test_alpha_zero_decodes_the_content_features(method: AdaIN, tiny_encoder: VGG19) -> None:
    content = smooth_image(37, 53, seed=0)
    result = method.stylize(content, smooth_image(32, 32, seed=1))
    decoder = method.decoders()[LAYER]
    zero = AdaIN(encoder=tiny_encoder, model=method.options.model, alpha=0.0)
    with torch.no_grad():  # a 32 px mirrored margin a side, then padded to 104×120
        framed = reflect_margin(content, 32)[0]
        padded = F.pad(framed, (0, 3, 0, 3), mode="reflect")
        decoded = remove_lattice(decoder(tiny_encoder(padded, [LAYER])[LAYER]))
        expected = decoded[..., 32:69, 32:85].clamp(0, 1)
    torch.testing.assert_close(
        zero.stylize(content, smooth_image(32, 32, seed=1)).image, expected, atol=1e-5, rtol=1e-5
    )
    assert distance(result.image, expected) > 0.01  # full style differs


def test_alpha_moves_the_output_away_from_the_content(method: AdaIN, tiny_encoder: VGG19) -> None:
    content, style = smooth_image(32, 40, seed=0), smooth_image(32, 32, seed=5)

    def output(alpha: float) -> torch.Tensor:
        return (
            AdaIN(encoder=tiny_encoder, model=method.options.model, alpha=alpha)
            .stylize(content, style)
            .image
        )

    base = output(0.0)
    distances = [distance(output(a), base) for a in (0.25, 0.5, 0.75, 1.0)]
    assert distances[0] > 0
    assert all(a < b for a, b in itertools.pairwise(distances)), distances


def test_pad_to_multiple() -> None:
    image = torch.rand(1, 3, 37, 53)
    padded, size = pad_to_multiple(image, 8)
    assert size == (37, 53) and padded.shape[-2:] == (40, 56)
    torch.testing.assert_close(padded, F.pad(image, (0, 3, 0, 3), mode="reflect"))
    assert pad_to_multiple(torch.rand(1, 3, 16, 8), 8)[0].shape[-2:] == (16, 8)  # unchanged
    small_image = torch.rand(1, 1, 3, 5)
    tiny, size = pad_to_multiple(small_image, 8)  # too small to reflect: replicated
    assert size == (3, 5) and tiny.shape[-2:] == (8, 8)
    torch.testing.assert_close(tiny, F.pad(small_image, (0, 3, 0, 5), mode="replicate"))
    small, _ = pad_to_multiple(torch.rand(1, 3, 9, 2), 8, minimum=16)
    assert small.shape[-2:] == (16, 16)
    replicated, _ = pad_to_multiple(image, 8, mode="replicate")
    torch.testing.assert_close(replicated, F.pad(image, (0, 3, 0, 3), mode="replicate"))


# ----------------------------------------------------------------------------- several styles


def test_a_style_of_weight_zero_changes_nothing(method: AdaIN) -> None:
    content = smooth_image(33, 41, seed=0)
    one, two = smooth_image(32, 32, seed=1), smooth_image(40, 24, seed=2)
    alone = method.stylize(content, one).image
    blended = method.stylize(content, [StyleTarget(one, 1.0), StyleTarget(two, 0.0)]).image
    torch.testing.assert_close(blended, alone)
    other = method.stylize(content, two).image
    assert distance(other, alone) > 0.01  # the styles do differ


def test_features_interpolate_linearly_between_styles() -> None:
    torch.manual_seed(0)
    content = torch.randn(1, 8, 6, 7)
    stats = [mean_std(torch.randn(1, 8, 5, 5) * s + s) for s in (1.0, 3.0)]

    def mixed(w: float, alpha: float = 1.0) -> torch.Tensor:
        return stylized_features(content, stats, [w, 1 - w], [None, None], alpha)

    first, second = mixed(1.0), mixed(0.0)
    torch.testing.assert_close(first, adain(content, *stats[0]))
    torch.testing.assert_close(second, adain(content, *stats[1]))
    for w in (0.3, 0.7):
        torch.testing.assert_close(mixed(w), w * first + (1 - w) * second)
    # alpha mixes with the content linearly too
    torch.testing.assert_close(mixed(0.3, 0.4), 0.4 * mixed(0.3) + 0.6 * content)
    torch.testing.assert_close(mixed(0.3, 0.0), content)


def test_the_method_normalizes_blend_weights(method: AdaIN) -> None:
    content = smooth_image(24, 24, seed=0)
    one, two = smooth_image(32, 32, seed=1), smooth_image(40, 24, seed=2)
    a = method.stylize(content, [StyleTarget(one, 0.3), StyleTarget(two, 0.7)]).image
    b = method.stylize(content, [StyleTarget(one, 3.0), StyleTarget(two, 7.0)]).image
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- masks


def test_masked_styles_paint_their_own_half_at_feature_level() -> None:
    torch.manual_seed(0)
    content = torch.randn(1, 8, 6, 8) * 2
    a = mean_std(torch.randn(1, 8, 5, 5) * 0.5 + 4)
    b = mean_std(torch.randn(1, 8, 5, 5) * 3 - 4)
    left, right = halves(6, 8)
    masked = stylized_features(content, [a, b], [1.0, 1.0], [left, right], 1.0)
    only_a = stylized_features(content, [a], [1.0], [None], 1.0)
    only_b = stylized_features(content, [b], [1.0], [None], 1.0)
    assert distance(masked[..., :4], only_a[..., :4]) < distance(masked[..., :4], only_b[..., :4])
    assert distance(masked[..., 4:], only_b[..., 4:]) < distance(masked[..., 4:], only_a[..., 4:])
    # each region has exactly its style's statistics
    for (mean, std), region in ((a, left), (b, right)):
        got_mean, got_std = mean_std(masked, region)
        torch.testing.assert_close(got_mean, mean, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got_std, std, atol=1e-4, rtol=1e-4)


def test_uncovered_pixels_keep_the_content_features() -> None:
    torch.manual_seed(0)
    content = torch.randn(1, 8, 6, 8)
    a = mean_std(torch.randn(1, 8, 5, 5) + 3)
    empty = torch.zeros(1, 1, 6, 8)
    torch.testing.assert_close(stylized_features(content, [a], [1.0], [empty], 1.0), content)
    left, right = halves(6, 8)
    half = stylized_features(content, [a, a], [1.0, 1.0], [left, empty], 1.0)
    torch.testing.assert_close(half * right, content * right)
    assert distance(half[..., :4], content[..., :4]) > 0.5
    # a masked style of weight 0 leaves its region alone too
    unstyled = stylized_features(content, [a, a], [1.0, 0.0], [left, right], 1.0)
    torch.testing.assert_close(unstyled * right, content * right)


def test_masked_styles_through_the_method(method: AdaIN) -> None:
    content = smooth_image(24, 128, seed=0)
    stripes = (torch.arange(32).view(1, 1, 1, 32) % 4 < 2).float().expand(1, 3, 32, 32)
    smooth = smooth_image(32, 32, seed=2)
    left, right = halves(24, 128)
    masked = method.stylize(
        content, [StyleTarget(stripes.clone(), mask=left), StyleTarget(smooth, mask=right)]
    ).image
    only_stripes = method.stylize(content, stripes.clone()).image
    only_smooth = method.stylize(content, smooth).image
    # away from the seam (the decoder sees about ±4 feature pixels, 32 px) each side
    # follows its own style; not exactly, as AdaIN normalizes with its region's statistics
    lhs, rhs = (..., slice(0, 32)), (..., slice(96, 128))
    assert distance(masked[lhs], only_stripes[lhs]) < 0.6 * distance(masked[lhs], only_smooth[lhs])
    assert distance(masked[rhs], only_smooth[rhs]) < 0.6 * distance(masked[rhs], only_stripes[rhs])
    # a mask covering nothing keeps the content: as alpha = 0
    nothing = method.stylize(content, StyleTarget(smooth, mask=torch.zeros(1, 1, 24, 128)))
    zero = AdaIN(encoder=method.encoder, model=method.options.model, alpha=0.0)
    torch.testing.assert_close(nothing.image, zero.stylize(content, smooth).image)


def test_masks_on_tiny_contents(method: AdaIN) -> None:
    content = smooth_image(5, 7, seed=0)
    left, right = halves(5, 7)
    out = method.stylize(
        content,
        [
            StyleTarget(smooth_image(16, 16, seed=1), mask=left),
            StyleTarget(smooth_image(16, 16, seed=2), mask=right),
        ],
    )
    assert out.image.shape == content.shape and torch.isfinite(out.image).all()


# ----------------------------------------------------------------------------- API and colour


def test_api_run_with_preserved_colour(tiny_pretrained: VGG19, model: Path) -> None:
    content = smooth_image(40, 48, seed=0)
    style = 1 - smooth_image(32, 32, seed=3)

    def chroma_error(mode: str) -> float:
        done = api.run(
            content,
            style,
            "adain",
            size=None,
            preserve_color=mode,
            model=str(model),
            alpha=1.0,
            device="cpu",
        )
        assert done.image.size == (48, 40)
        output = to_tensor(done.image)
        uv = rgb_to_yuv(output)[:, 1:]
        return distance(uv, rgb_to_yuv(to_tensor(to_pil(content)))[:, 1:])

    kept, changed = chroma_error("luminance"), chroma_error("none")
    assert kept < 0.01 and kept < 0.3 * changed, (kept, changed)


def test_api_accepts_the_smallest_content(tiny_pretrained: VGG19, model: Path) -> None:
    done = api.run(
        smooth_image(8, 8),
        smooth_image(16, 16, seed=1),
        "adain",
        size=None,
        model=str(model),
        device="cpu",
    )
    assert done.image.size == (8, 8)
    # smaller contents: the style follows the output's size and becomes too small ...
    with pytest.raises(
        BrushworkError,
        match=r"style 1 would be 6x6 px, smaller than the 8 px "
        "adain needs; use a larger --style-scale or --style-size",
    ):
        api.run(
            smooth_image(5, 6),
            smooth_image(16, 16, seed=1),
            "adain",
            size=None,
            model=str(model),
            device="cpu",
        )
    # ... but the method pads the content (to 16 px a side at least), so with a style of
    # its own size any content works
    for height, width in ((5, 6), (1, 3)):
        done = api.run(
            smooth_image(height, width),
            smooth_image(16, 16, seed=1),
            "adain",
            size=None,
            style_size=16,
            model=str(model),
            device="cpu",
        )
        assert done.image.size == (width, height)


# ----------------------------------------------------------------------------- bad input


def _valid(
    path: Path, encoder: VGG19, *, method: str = "adain", encoder_name: str | None = None
) -> Path:
    tensors = Decoder(width=encoder.out_channels[LAYER] / 512).state_dict()
    return save_checkpoint(
        path,
        Checkpoint(method, encoder_name or decoder_id(LAYER, encoder.out_channels[LAYER]), tensors),
    )


def make_bad_model(kind: str, folder: Path, encoder: VGG19) -> Path:
    path = folder / f"{kind}.safetensors"
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
        return path
    if kind == "truncated":
        data = _valid(folder / "valid.safetensors", encoder).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random":
        path.write_bytes(
            torch.randint(
                0, 256, (4096,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
            )
            .numpy()
            .tobytes()
        )
    elif kind == "no-metadata":
        save_file({"model/x": torch.zeros(2)}, str(path))
    elif kind == "johnson":
        _valid(path, encoder, method="johnson")
    elif kind == "vgg-512":
        _valid(path, encoder, encoder_name="vgg19:relu4_1:512")
    elif kind == "resnet":
        _valid(path, encoder, encoder_name="resnet50:layer3:1024")
    elif kind == "relu3_1":
        save_checkpoint(
            path,
            Checkpoint("adain", "vgg19:relu3_1:16", Decoder("relu3_1", width=1 / 16).state_dict()),
        )
    elif kind == "wrong-tensors":
        save_checkpoint(
            path,
            Checkpoint(
                "adain",
                decoder_id(LAYER, encoder.out_channels[LAYER]),
                {"conv1_1.weight": torch.zeros(3, 2, 3, 3)},
            ),
        )
    else:  # pragma: no cover
        raise AssertionError(kind)
    return path


BAD_MODELS = {
    "missing": "is neither a bundled adain model (adain, adain-laplacian, adain-depth, "
    "adain-temporal) nor an existing file",
    "folder": "is not a file",
    "truncated": "not a readable safetensors file",
    "random": "not a readable safetensors file",
    "no-metadata": "not a brushwork checkpoint",
    "johnson": "is a 'johnson' checkpoint, not 'adain'",
    "vgg-512": "trained on encoder 'vgg19:relu4_1:512'; this run uses 'vgg19:relu4_1:32'",
    "resnet": "trained on encoder 'resnet50:layer3:1024'; this run uses 'vgg19:relu4_1:32'",
    "relu3_1": "is a decoder from relu3_1, not from relu4_1; give the relu4_1 decoder",
    "wrong-tensors": "does not hold a relu4_1 decoder for 32 encoder channels",
}


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_bad_model_files_are_refused(kind: str, tmp_path: Path, tiny_encoder: VGG19) -> None:
    path = make_bad_model(kind, tmp_path, tiny_encoder)
    message = re.escape(BAD_MODELS[kind])
    with pytest.raises(BrushworkError, match=message) as caught:
        load_decoder(path, method="adain", layer=LAYER, encoder=tiny_encoder)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    with pytest.raises(BrushworkError, match=message):
        AdaIN(encoder=tiny_encoder, model=str(path)).stylize(
            smooth_image(16, 16), smooth_image(16, 16)
        )


def test_checkpoint_of_another_method_loads_for_that_method(
    tmp_path: Path, tiny_encoder: VGG19
) -> None:
    path = make_bad_model("johnson", tmp_path, tiny_encoder)
    assert load_checkpoint(path, method="johnson").method == "johnson"


def test_bundled_model_does_not_fit_the_tiny_encoder(tiny_encoder: VGG19) -> None:
    with pytest.raises(BrushworkError, match="trained on encoder 'vgg19:relu4_1:512'"):
        load_decoder("adain", method="adain", layer=LAYER, encoder=tiny_encoder)
    with pytest.raises(
        BrushworkError,
        match="'wct-relu4_1' is a bundled wct model, not a "
        "adain one; adain's are: adain, adain-laplacian, adain-depth",
    ):
        load_decoder("wct-relu4_1", method="adain", layer=LAYER, encoder=tiny_encoder)


BAD_ALPHAS = {
    -0.1: "alpha must be >= 0 and <= 1, not -0.1",
    1.5: "alpha must be <= 1, not 1.5",
    math.nan: "alpha must be a finite number, not nan",
    math.inf: "alpha must be a finite number, not inf",
    "x": "alpha must be a number, not 'x'",
    None: "alpha must be given",
    True: "alpha must be a number, not True",
}


@pytest.mark.parametrize("alpha", list(BAD_ALPHAS))
def test_bad_alpha_is_refused(alpha: object) -> None:
    message = re.escape(BAD_ALPHAS[alpha])
    with pytest.raises(BrushworkError, match=message):
        AdaIN(alpha=alpha)
    with pytest.raises(BrushworkError, match=message):
        AdaINOptions(alpha=alpha).validate()  # type: ignore[arg-type]
    with pytest.raises(BrushworkError, match=message):
        api.run(smooth_image(16, 16), smooth_image(16, 16), "adain", alpha=alpha)


def test_a_run_too_large_for_the_memory_limit_is_refused_up_front(model: Path) -> None:
    method = AdaIN(model=str(model))
    # 61x70 with a 32 px margin a side is 125x134, padded to 128x136
    need = AdaIN.fixed_bytes + AdaIN.bytes_per_pixel * 128 * 136
    plan = method.plan(61, 70, [(16, 16)], torch.device("cpu"), need)
    assert plan.estimate == need
    with pytest.raises(
        BrushworkError,
        match=r"a 70x61 adain run needs about .* GiB, over "
        r"the memory limit",
    ):
        method.plan(61, 70, [(16, 16)], torch.device("cpu"), need - 1)
    # through the API, before the (refused, see no_pretrained) VGG-19 is requested
    with pytest.raises(BrushworkError, match="use a smaller --size"):
        api.run(
            smooth_image(61, 70),
            smooth_image(16, 16),
            "adain",
            size=None,
            max_memory=need - 1,
            model=str(model),
        )


def test_other_misuse_is_refused(method: AdaIN, tiny_encoder: VGG19, model: Path) -> None:
    content, style = smooth_image(24, 24), smooth_image(24, 24, seed=1)
    with pytest.raises(BrushworkError, match="weights must not sum to zero"):
        api.run(content, [Style(style, 0), Style(style, 0)], "adain", model=str(model))
    with pytest.raises(BrushworkError, match="weights must not sum to zero"):
        method.stylize(content, [StyleTarget(style, 0.0), StyleTarget(style, 0.0)])
    with pytest.raises(BrushworkError, match="coarse-to-fine needs an optimization method"):
        api.run(content, style, "adain", size=64, start_size=32, model=str(model))
    with pytest.raises(BrushworkError, match="adain cannot start from a given image"):
        method.stylize(content, style, init=content)
    with pytest.raises(BrushworkError, match="adain has no loss to add temporal to"):
        method.stylize(content, style, extra_losses=[("temporal", lambda image: image.sum())])
    with pytest.raises(BrushworkError, match="needs an encoder"):
        AdaIN(model=str(model)).stylize(content, style)
    with pytest.raises(BrushworkError, match="style 1 is 30×7 px; adain needs at least 8×8"):
        method.stylize(content, smooth_image(7, 30))
    with pytest.raises(BrushworkError, match="cannot restrict styles to layers"):
        api.run(content, Style(style, layers=("relu1_1",)), "adain", model=str(model))
    with pytest.raises(BrushworkError, match="unknown option 'iterations'"):
        AdaIN(iterations=3)
    with pytest.raises(BrushworkError, match="styles prepared by gatys cannot be used by adain"):
        method.stylize(content, PreparedStyle("gatys", [StyleTarget(style)], None))
    left, _ = halves(24, 24)
    prepared = method.prepare(StyleTarget(style, mask=left))
    with pytest.raises(
        BrushworkError, match="the styles were prepared with masks for a 24x24 content, not 16x16"
    ):
        method.stylize(smooth_image(16, 16), prepared)


# ----------------------------------------------------------------------------- prepared styles


def test_prepared_styles_serve_many_contents(method: AdaIN) -> None:
    one, two = smooth_image(32, 32, seed=1), smooth_image(40, 24, seed=2)
    styles = [StyleTarget(one, 0.3), StyleTarget(two, 0.7)]
    prepared = method.prepare(styles)
    assert prepared.method == "adain" and prepared.content_size is None
    for seed, size in enumerate([(24, 24), (33, 41)]):
        content = smooth_image(*size, seed=seed)
        assert torch.equal(
            method.stylize(content, prepared).image, method.stylize(content, styles).image
        )


def test_progress_goes_to_the_event_stream(method: AdaIN) -> None:
    collect = events.Collect()
    method.stylize(smooth_image(24, 24), smooth_image(16, 16, seed=1), events=collect)
    progress = collect.of(events.Progress)
    assert [(p.stage, p.step, p.total) for p in progress] == [("adain", 1, 1)]


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """content.png (40×32), style.png (24×24) and a free output path."""
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    to_pil(smooth_image(32, 40, seed=0)).save(content)
    to_pil(smooth_image(24, 24, seed=1)).save(style)
    return content, style, tmp_path / "out.png"


def stylize(content: Path, style: Path | None, output: Path, *extra: str) -> list[str]:
    return [
        "stylize",
        str(content),
        *([str(style)] if style else []),
        "-o",
        str(output),
        "--quiet",
        "-m",
        "adain",
        *extra,
    ]


def test_cli_stylizes(capsys, files, model: Path, tiny_pretrained: VGG19) -> None:
    content, style, output = files
    rc = main(
        stylize(
            content,
            style,
            output,
            "--alpha",
            "0.5",
            "--model",
            str(model),
            "--preserve-color",
            "luminance",
            "--size",
            "40",
        )
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.strip() == str(output)
    image = to_tensor(open_image(output))
    assert image.shape == (1, 3, 32, 40)


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_cli_refuses_bad_models(
    capsys, files, tmp_path: Path, kind: str, tiny_pretrained: VGG19
) -> None:
    content, style, output = files
    path = make_bad_model(kind, tmp_path, tiny_pretrained)
    message = expect_error(capsys, stylize(content, style, output, "--model", str(path)))
    assert BAD_MODELS[kind] in message
    assert not output.exists()


def test_cli_default_model_needs_the_real_encoder(capsys, files, tiny_pretrained: VGG19) -> None:
    content, style, output = files
    message = expect_error(capsys, stylize(content, style, output))
    assert "trained on encoder 'vgg19:relu4_1:512'" in message


@pytest.mark.parametrize(
    "alpha, expected",
    [
        ("-0.1", "alpha must be >= 0 and <= 1, not -0.1"),
        ("1.5", "alpha must be <= 1, not 1.5"),
        ("nan", "alpha must be a finite number, not nan"),
        ("x", "argument --alpha: expected a number, got 'x'"),
    ],
)
def test_cli_refuses_bad_alpha(capsys, files, model: Path, alpha: str, expected: str) -> None:
    content, style, output = files
    message = expect_error(
        capsys, stylize(content, style, output, f"--alpha={alpha}", "--model", str(model))
    )
    assert expected in message
    assert not output.exists()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--start-size", "16", "--size", "40"], "coarse-to-fine needs an optimization method"),
        (
            ["--iterations", "5"],
            "--iterations does not apply to method 'adain' (it is an option "
            "of gatys, gatys-laplacian, styleswap)",
        ),
    ],
)
def test_cli_refuses_options_adain_cannot_use(
    capsys, files, model: Path, extra: list[str], expected: str
) -> None:
    content, style, output = files
    message = expect_error(capsys, stylize(content, style, output, "--model", str(model), *extra))
    assert expected in message


def test_cli_refuses_zero_style_weights(capsys, files, model: Path) -> None:
    content, style, output = files
    message = expect_error(
        capsys,
        stylize(
            content,
            None,
            output,
            "--style",
            f"{style}:0",
            "--style",
            f"{style}:0",
            "--model",
            str(model),
        ),
    )
    assert "must not sum to zero" in message
    assert not output.exists()


# ----------------------------------------------------------------------------- bundled models


@requires_weights
@pytest.mark.integration
def test_bundled_models_stylize_the_examples() -> None:
    from brushwork.encoders import cached_vgg19
    from brushwork.examples import content_image, style_path

    bundled = [m.name for m in models.for_method("adain")]
    encoder = cached_vgg19("relu4_1", "max", "cpu")
    for name in bundled:
        checkpoint = load_checkpoint(models.resolve(name, method="adain"), method="adain")
        assert checkpoint.encoder == "vgg19:relu4_1:512"
        assert all(t.dtype == torch.float16 for t in checkpoint.tensors.values())
        decoder = load_decoder(name, method="adain", layer=LAYER, encoder=encoder)
        assert all(p.dtype == torch.float32 for p in decoder.parameters())
    content = content_image("astronaut").resize((64, 64))
    outputs = {}
    for name in bundled:
        done = api.run(content, style_path("strokes"), "adain", size=64, model=name, device="cpu")
        outputs[name] = to_tensor(done.image)
        assert outputs[name].shape == (1, 3, 64, 64)
        assert torch.isfinite(outputs[name]).all()
        assert distance(outputs[name], to_tensor(content)) > 0.05, name
        assert outputs[name].std() > 0.02  # not a flat image
    assert distance(outputs["adain"], outputs["adain-laplacian"]) > 0.02
    assert distance(outputs["adain"], outputs["adain-depth"]) > 0.02


# ----------------------------------------------------------------------------- references


@pytest.fixture(scope="module")
def reference_inputs() -> dict[str, Any]:
    """The inputs tests/data/adain_reference.safetensors was made from (before the
    refactor): content, two styles, and a mask of the content's 20 left columns."""
    content = smooth_image(37, 45, seed=3)
    style, style2 = smooth_image(40, 32, seed=4), smooth_image(24, 36, seed=5)
    mask = torch.zeros(1, 1, 37, 45)
    mask[..., :, :20] = 1
    return {
        "content": content,
        "style": style,
        "blend": [StyleTarget(style, 0.7), StyleTarget(style2, 0.3)],
        "masked": [StyleTarget(style, 1.0, mask=mask), StyleTarget(style2, 0.5, mask=1 - mask)],
    }


def _assert_bit_identical(output: torch.Tensor, key: str) -> None:
    """Bit for bit on the machine that made the reference (see
    conftest.assert_matches_reference), within 1e-5 elsewhere."""
    assert output.shape == (1, 3, 37, 45)
    assert_matches_reference(output, REFERENCE, key)


def test_references_differ_from_each_other() -> None:
    """Not a vacuous comparison: every stored case is a different image."""
    stored = load_file(REFERENCE)
    assert len(stored) == 7
    for (a, x), (b, y) in itertools.combinations(stored.items(), 2):
        assert distance(x, y) > 1e-4, (a, b)


@pytest.mark.usefixtures("no_margin")
@pytest.mark.parametrize("case", ["single", "blend", "masked"])
def test_tiny_outputs_match_the_pre_refactor_reference(
    case: str, tiny_encoder: VGG19, tmp_path: Path, reference_inputs: dict[str, Any]
) -> None:
    """Bit-identical in float32: the tiny random encoder (relu5_1, 1/16 of the channels)
    with conftest's random decoder as a checkpoint, alpha 0.8."""
    path = save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)
    method = AdaIN(encoder=tiny_encoder, model=str(path), alpha=0.8, degrid=False)
    styles = reference_inputs["style" if case == "single" else case]
    output = method.stylize(reference_inputs["content"], styles).image
    _assert_bit_identical(output, f"tiny_{case}")


@pytest.fixture(scope="module")
def real_encoder() -> VGG19:
    """The real VGG-19 to relu4_1, as load_vgg19 builds it (not channels-last)."""
    from brushwork.encoders import load_vgg19

    return load_vgg19(LAYER)


@requires_weights
@pytest.mark.integration
@pytest.mark.usefixtures("no_margin")
@pytest.mark.parametrize("name", ["adain", "adain-laplacian", "adain-depth", "masked"])
def test_real_outputs_match_the_pre_refactor_reference(
    name: str, real_encoder: VGG19, reference_inputs: dict[str, Any]
) -> None:
    """Bit-identical in float32: the real VGG-19 (not channels-last) with the bundled
    decoders at alpha 0.9, and the default decoder at alpha 1 with the masked pair."""
    encoder = real_encoder
    assert not encoder.channels_last
    if name == "masked":
        method = AdaIN(encoder=encoder, degrid=False)
        styles = reference_inputs["masked"]
    else:
        method = AdaIN(encoder=encoder, model=name, alpha=0.9, degrid=False)
        styles = reference_inputs["style"]
    output = method.stylize(reference_inputs["content"], styles).image
    _assert_bit_identical(output, f"real_{name}")
