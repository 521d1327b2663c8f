"""The contract every registered method keeps, checked over brushwork.methods.REGISTRY with
the tiny random encoder and tiny random networks (tests/contract.py says how to make them):
outputs of odd sizes keep their size and lie in [0, 1]; non-finite inputs are refused in one
line and flat ones work; styles too small are refused; the memory plan refuses a run over
the limit before any work; progress events count the steps; a prepared style gives the same
image every time; blends and masks where the method takes them; two threads sharing a method
get what one gets; an exported method computes what the method does; a one-pass method's
networks see the content with a mirrored margin, so that no frame is painted along its
border (with the real networks: the border ratio of issue 20 at most 1.5)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import requires_weights, smooth_image
from contract import JOHNSON_STYLES, ONNX_RUNNERS, method_options
from PIL import Image

from brushwork import events as ev
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.examples import content_image, style_path
from brushwork.image import open_image, to_pil, to_tensor
from brushwork.methods import REGISTRY, get_method, load_object
from brushwork.methods.base import Method, StepCounter, StyleTarget
from brushwork.metrics import border_ratio
from brushwork.ops import reflect_margin
from brushwork.stylizer import Controls, Stylizer
from brushwork.tiling import TileGrid

pytestmark = pytest.mark.usefixtures("one_thread", "no_pretrained")

NAMES = sorted(REGISTRY)
ONE_PASS = sorted(name for name, entry in REGISTRY.items() if entry.kind != "optimization")
EXPORTED = sorted(name for name, entry in REGISTRY.items() if entry.exporter)


@pytest.fixture(scope="module")
def encoder() -> VGG19:
    torch.manual_seed(0)
    return VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()


@pytest.fixture(scope="module", params=NAMES)
def case(
    request: pytest.FixtureRequest, encoder: VGG19, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    """A registered method's name and the options that run it on tiny networks."""
    name = request.param
    return name, method_options(name, tmp_path_factory.mktemp(name), encoder)


@pytest.fixture
def method(case: tuple[str, dict[str, Any]], encoder: VGG19) -> Method:
    name, options = case
    return get_method(name)(encoder=encoder, **options)


CONTENT = smooth_image(37, 45, seed=0)
STYLE = smooth_image(29, 33, seed=1)
OTHER = smooth_image(35, 31, seed=2)


def styles(method: Method, *images: torch.Tensor) -> list[StyleTarget]:
    """``images`` as styles for a method that takes style images; none for one whose
    network paints its own (johnson), which refuses them."""
    return [StyleTarget(i) for i in images] if method.style_images else []


def refuses_style_images(method: Method, image: torch.Tensor = STYLE) -> bool:
    """For a method without style images: check that one given is refused in one line."""
    if method.style_images:
        return False
    with pytest.raises(BrushworkError) as error:
        method.prepare(image)
    assert "takes no style image" in one_line(error)
    return True


def one_line(error: pytest.ExceptionInfo[BrushworkError]) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def halves(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    left = torch.zeros(1, 1, height, width)
    left[..., : width // 2] = 1
    return left, 1 - left


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("size", [(37, 45), (19, 23)])
def test_odd_sizes_keep_their_size_and_the_unit_range(method: Method, size) -> None:
    image = method.stylize(smooth_image(*size, seed=3), styles(method, STYLE)).image
    assert image.shape == (1, 3, *size) and image.dtype == torch.float32
    assert bool(torch.isfinite(image).all())
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    assert float(image.std()) > 0.01  # an image, not a constant


def test_non_finite_inputs_are_refused_in_one_line(method: Method) -> None:
    broken = CONTENT.clone()
    broken[0, 1, 5, 7] = float("nan")
    with pytest.raises(BrushworkError) as error:
        method.stylize(broken, styles(method, STYLE))
    assert "not finite" in one_line(error)
    if refuses_style_images(method, broken):
        return
    with pytest.raises(BrushworkError) as error:
        method.prepare(broken)
    assert "not finite" in one_line(error)
    infinite = STYLE.clone()
    infinite[0, 0, 0, 0] = float("inf")
    with pytest.raises(BrushworkError) as error:
        method.stylize(CONTENT, infinite)
    assert "not finite" in one_line(error)


@pytest.mark.parametrize("flat", ["content", "style", "both"])
def test_flat_inputs_give_a_finite_image(method: Method, flat: str) -> None:
    content = torch.full_like(CONTENT, 0.5) if flat != "style" else CONTENT
    style = torch.full_like(STYLE, 0.3) if flat != "content" else STYLE
    image = method.stylize(content, styles(method, style)).image
    assert image.shape == CONTENT.shape
    assert bool(torch.isfinite(image).all())
    assert float(image.min()) >= 0 and float(image.max()) <= 1


def test_a_style_too_small_is_refused_in_one_line(method: Method) -> None:
    if refuses_style_images(method):
        return
    least = method.min_style_side()
    assert least > 1, f"{method.name}: which style is too small?"
    for size in ((least - 1, 40), (40, least - 1)):
        with pytest.raises(BrushworkError) as error:
            method.prepare(smooth_image(*size, seed=4))
        assert f"needs at least {least}" in one_line(error)


@pytest.mark.usefixtures("no_work")
def test_the_memory_plan_refuses_a_run_over_the_limit(case, encoder: VGG19) -> None:
    name, options = case
    sizes = [(33, 29)] if get_method(name).style_images else []
    stylizer = Stylizer(name, Controls(size=None, max_memory=1024), encoder=encoder, **options)
    with pytest.raises(BrushworkError) as error:
        stylizer.plan((45, 37), sizes)
    assert "memory" in one_line(error)
    stylizer = Stylizer(name, Controls(size=None), encoder=encoder, **options)
    assert stylizer.plan((45, 37), sizes).memory.estimate > 0


# ----------------------------------------------------------------------------- runs


def test_progress_events_count_the_steps(method: Method) -> None:
    steps = method.steps()
    collect = ev.Collect()
    method.stylize(CONTENT, styles(method, STYLE), events=collect)
    progress = collect.of(ev.Progress)
    assert [(e.step, e.total) for e in progress] == [(i, steps) for i in range(1, steps + 1)]
    collect = ev.Collect()
    counter = StepCounter("frames", offset=5, total=5 + 2 * steps)
    method.stylize(CONTENT, styles(method, STYLE), events=collect, progress=counter)
    progress = collect.of(ev.Progress)
    assert [(e.stage, e.step, e.total) for e in progress] == [
        ("frames", 5 + i, 5 + 2 * steps) for i in range(1, steps + 1)
    ]


def test_a_prepared_style_gives_the_same_image_every_time(method: Method) -> None:
    prepared = method.prepare(styles(method, STYLE))
    first = method.stylize(CONTENT, prepared).image
    assert torch.equal(first, method.stylize(CONTENT, prepared).image)
    assert torch.equal(first, method.stylize(CONTENT, styles(method, STYLE)).image)
    other = method.stylize(smooth_image(37, 45, seed=5), prepared).image
    assert not torch.equal(first, other)


def _blends(method: Method) -> bool:
    return bool(getattr(method, "style_blends", True))


def _masks(method: Method) -> bool:
    return bool(getattr(method, "style_masks", True))


def test_blends_weigh_the_styles(method: Method) -> None:
    if not method.style_images:  # the network's own style(s), blended by its options
        if _blends(method):
            _check_option_blends(method)
        return
    pair = [StyleTarget(STYLE, 1.0), StyleTarget(OTHER, 0.0)]
    if not _blends(method):
        with pytest.raises(BrushworkError) as error:
            method.prepare(pair)
        assert "blend" in one_line(error)
        return
    alone = method.stylize(CONTENT, STYLE).image
    torch.testing.assert_close(method.stylize(CONTENT, pair).image, alone, atol=1e-5, rtol=0)
    even = method.stylize(CONTENT, [StyleTarget(STYLE), StyleTarget(OTHER)]).image
    assert float((even - alone).abs().max()) > 1e-3


def _check_option_blends(method: Method) -> None:
    """A network that paints its own styles blends them by weight in its ``styles``
    option: a weight of 0 leaves a style out, even weights give a third image."""
    first, second = JOHNSON_STYLES

    def paint(*choices: str) -> torch.Tensor:
        options = method.options.replace(styles=choices)
        return type(method)(options, encoder=method.encoder).stylize(CONTENT, []).image

    alone = paint(first)
    torch.testing.assert_close(paint(first, f"{second}:0"), alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(method.stylize(CONTENT, []).image, alone)  # the first: default
    even = paint(first, second)
    assert float((even - alone).abs().max()) > 1e-3
    assert float((even - paint(second)).abs().max()) > 1e-3
    unknown = type(method)(method.options.replace(styles=("third",)), encoder=method.encoder)
    with pytest.raises(BrushworkError) as error:
        unknown.check_files()
    assert "no style 'third'" in one_line(error)


def test_masks_place_the_styles(method: Method) -> None:
    if refuses_style_images(method):
        return
    left, right = halves(37, 45)
    targets = [StyleTarget(STYLE, mask=left), StyleTarget(OTHER, mask=right)]
    if not _masks(method):
        with pytest.raises(BrushworkError) as error:
            method.prepare(targets)
        assert "mask" in one_line(error)
        return
    prepared = method.prepare(targets)
    image = method.stylize(CONTENT, prepared).image
    assert image.shape == CONTENT.shape and bool(torch.isfinite(image).all())
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    swapped = method.stylize(
        CONTENT, [StyleTarget(STYLE, mask=right), StyleTarget(OTHER, mask=left)]
    ).image
    assert float((image - swapped).abs().max()) > 1e-3
    with pytest.raises(BrushworkError) as error:
        method.stylize(smooth_image(36, 45, seed=0), prepared)
    assert "prepared with masks" in one_line(error)


def test_two_threads_at_once_get_what_one_gets(method: Method) -> None:
    prepared = method.prepare(styles(method, STYLE))
    contents = [CONTENT, smooth_image(37, 45, seed=6)]
    alone = [method.stylize(c, prepared).image for c in contents]
    results: dict[int, torch.Tensor] = {}
    start = threading.Barrier(len(contents))

    def work(index: int) -> None:
        start.wait()
        results[index] = method.stylize(contents[index], prepared).image

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(contents))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, image in enumerate(alone):
        assert torch.equal(results[index], image)


# ----------------------------------------------------------------------------- ONNX


@pytest.mark.parametrize("name", EXPORTED)
def test_the_export_computes_what_the_method_does(
    name: str, encoder: VGG19, tmp_path: Path
) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from brushwork.export import ExportOptions

    assert name in ONNX_RUNNERS, f"add how to run {name}'s export to tests/contract.py"
    export = ONNX_RUNNERS[name]
    cls = get_method(name)
    (tmp_path / "networks").mkdir()
    options = cls.default_options().replace(
        **method_options(name, tmp_path / "networks", encoder), **export.options
    )
    exporter = load_object(REGISTRY[name].exporter or "")
    path = exporter(ExportOptions(str(tmp_path / export.output)), options, encoder=encoder)
    method = cls(options, encoder=encoder)
    for size in ((37, 45), (20, 27)):
        content = smooth_image(*size, seed=7)
        expected = method.stylize(content, styles(method, STYLE)).image.numpy()
        got = export.run(path, content, STYLE, options)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=2e-3)


# ----------------------------------------------------------------------------- borders


class RecordingEncoder(torch.nn.Module):
    """The tiny encoder, keeping every image it is given."""

    def __init__(self, encoder: VGG19) -> None:
        super().__init__()
        self.encoder = encoder
        self.out_channels = encoder.out_channels
        self.seen: list[torch.Tensor] = []

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.encoder, name)

    def forward(self, image: torch.Tensor, layers: Any) -> Any:
        self.seen.append(image.detach().clone())
        return self.encoder(image, layers)


class RecordingNetwork(torch.nn.Module):
    """A network without an encoder, keeping every image it is given in ``seen``."""

    def __init__(self, network: torch.nn.Module, seen: list[torch.Tensor]) -> None:
        super().__init__()
        self.network = network
        self.seen = seen

    def forward(self, image: torch.Tensor, *args: Any) -> Any:
        self.seen.append(image.detach().clone())
        return self.network(image, *args)


@pytest.mark.parametrize("name", ONE_PASS)
def test_the_networks_see_the_content_with_a_mirrored_margin(
    name: str, encoder: VGG19, tmp_path: Path
) -> None:
    """Every content pass runs on the picture with at least 32 px mirrored onto each side
    (:func:`brushwork.ops.reflect_margin`): VGG-19's zero padding then shapes features only
    outside the picture, which is cropped back."""
    recording = RecordingEncoder(encoder)
    method = get_method(name)(encoder=recording, **method_options(name, tmp_path, encoder))
    prepared = method.prepare(styles(method, STYLE))
    if method.encoder_request() is None:  # a network without an encoder: record its input
        network = method.networks()  # type: ignore[attr-defined]
        method.networks = lambda: RecordingNetwork(network, recording.seen)  # type: ignore
    recording.seen.clear()
    content = smooth_image(37, 45, seed=8)
    output = method.stylize(content, prepared).image
    assert output.shape == content.shape
    margin = method.margin  # type: ignore[attr-defined]
    assert margin >= 32
    framed, offsets = reflect_margin(content, margin)
    assert offsets == (min(margin, 36), min(margin, 44))
    scale = getattr(method, "encoder_scale", 1)  # the encoder sees the framed image shrunk
    if scale > 1:  # (and mirrored again by its encoder_margin, whose far sides mirror the
        # padding too: compared up to the shrunk picture's bottom and right)
        shrunk = torch.nn.functional.avg_pool2d(framed, scale)
        extra = getattr(method, "encoder_margin", 0)
        framed = reflect_margin(shrunk, extra)[0][
            ..., : shrunk.shape[-2] + extra, : shrunk.shape[-1] + extra
        ]
    first = recording.seen[0].float()
    assert first.shape[-2] >= framed.shape[-2] and first.shape[-1] >= framed.shape[-1]
    torch.testing.assert_close(
        first[..., : framed.shape[-2], : framed.shape[-1]], framed, atol=1e-6, rtol=0
    )
    for seen in recording.seen:  # later passes are framed the same way
        assert seen.shape[-2] >= framed.shape[-2] and seen.shape[-1] >= framed.shape[-1]


@pytest.mark.parametrize("size", [(1, 40), (40, 1), (5, 9)])
def test_a_strip_or_an_image_smaller_than_the_margin_is_painted_or_refused(
    method: Method, size: tuple[int, int]
) -> None:
    """A one-pixel strip and a picture smaller than the border margin: an image of their
    size where the method takes such a content, else one line that says the least."""
    content = smooth_image(*size, seed=9)
    if min(size) < method.min_content_side():
        with pytest.raises(BrushworkError) as error:
            method.stylize(content, styles(method, STYLE))
        assert f"needs at least {method.min_content_side()}" in one_line(error)
        return
    image = method.stylize(content, styles(method, STYLE)).image
    assert image.shape == content.shape and bool(torch.isfinite(image).all())
    assert float(image.min()) >= 0 and float(image.max()) <= 1


@requires_weights
@pytest.mark.integration
@pytest.mark.parametrize("name", ONE_PASS)
def test_the_bundled_networks_paint_no_frame_along_the_border(name: str) -> None:
    """Issue 20's measure on a bundled pair at 256 px: the picture stylized as it is and
    reflect-padded by 64 px differ within 16 px of the border at most 1.5 times as much as
    inside (AdaIN 4–5, WCT 2–3 before the margin)."""
    stylizer = Stylizer(name, Controls(size=None, precision="float32"))
    stylizer.load_encoder()
    method = stylizer.method
    content = to_tensor(content_image("astronaut").resize((256, 256)))
    style = to_tensor(open_image(style_path("strokes")).resize((256, 256)))
    prepared = method.prepare(styles(method, style))
    ratio = border_ratio(lambda x: method.stylize(x, prepared).image, content, pad=64, edge=16)
    assert ratio <= 1.5


# ----------------------------------------------------------------------------- tiles


def _paint(stylizer: Stylizer, content: np.ndarray, style: torch.Tensor | None) -> np.ndarray:
    """``content`` (uint8) painted by ``stylizer`` as its plan says (whole or in tiles)."""
    height, width = content.shape[:2]
    styles = [] if style is None else [StyleTarget(style)]
    plan = stylizer.plan((width, height), [(s.image.shape[-1], s.image.shape[-2]) for s in styles])
    prepared = stylizer.prepare(plan, styles, to_tensor(Image.fromarray(content)))
    if plan.tiles is None:
        return stylizer.stylize(to_tensor(Image.fromarray(content)), prepared).pixels
    return stylizer.stylize_tiled(content, prepared).pixels


@pytest.mark.parametrize("name", ONE_PASS)
def test_tiles_paint_what_the_whole_picture_does(name: str, encoder: VGG19, tmp_path: Path) -> None:
    """A picture painted in 2 × 2 tiles at least the method's receptive field (twice, where
    the picture stays within the thumbnail's 1024 px) is the picture painted whole: the
    statistics are the whole picture's (streamed, or a thumbnail as large as the picture),
    and tiles are cross-faded over an overlap of a quarter tile. Away from the seams (by more
    than a quarter tile) they agree to rounding; across them, within a few
    levels of 255."""
    options = method_options(name, tmp_path, encoder)
    controls = {"size": None, "precision": "float32", "device": "cpu"}
    whole = Stylizer(name, Controls(**controls), encoder=encoder, **options)
    method = whole.method
    stride, field = method.stride(), method.receptive_field()
    tile = -(-field * (2 if field * 2 * 7 // 4 <= 1024 else 1) // stride) * stride
    height, width = tile * 3 // 2 // stride * stride, tile * 7 // 4 // stride * stride
    content = np.asarray(to_pil(smooth_image(height, width, seed=8)))
    style = smooth_image(40, 48, seed=9) if method.style_images else None
    overlap = tile // 4
    tiled = Stylizer(
        name, Controls(**controls, tile=tile, tile_overlap=overlap), encoder=encoder, **options
    )
    assert tiled.plan((width, height), [] if style is None else [(48, 40)]).tiles.count >= 4
    expected = _paint(whole, content, style).astype(float)
    painted = _paint(tiled, content, style).astype(float)
    difference = np.abs(painted - expected).mean(2)
    near = np.zeros(difference.shape, dtype=bool)
    reach = tile // 4
    grid = TileGrid(height, width, tile, overlap, align=stride)
    for start, _ in grid.rows[1:]:
        near[max(0, start - reach) : start + overlap + reach] = True
    for start, _ in grid.columns[1:]:
        near[:, max(0, start - reach) : start + overlap + reach] = True
    assert difference[~near].max() <= 1.0
    assert difference[near].mean() < 2.0


@requires_weights
@pytest.mark.integration
@pytest.mark.parametrize(("name", "limit"), [("adain", 0.5), ("johnson", 0.5)])
def test_the_bundled_networks_paint_tiles_as_the_whole_picture(name: str, limit: float) -> None:
    """Bundled astronaut (× strokes) at 640 px in tiles of 384: AdaIN's streamed
    statistics and johnson's thumbnail (here the whole picture) give, across the whole
    image, seams included, a mean difference under ``limit`` levels of 255 (measured: 0.27
    and under 0.5 here; 0.01 and 0.39 on the Chicago photo at 768 px in tiles of 384)."""
    controls = {"size": None, "precision": "float32"}
    content = np.asarray(content_image("astronaut").resize((640, 640)))
    style = to_tensor(open_image(style_path("strokes")).resize((256, 256)))
    paint_style = style if name == "adain" else None
    whole = _paint(Stylizer(name, Controls(**controls)), content, paint_style).astype(float)
    tiled = Stylizer(name, Controls(**controls, tile=384))
    painted = _paint(tiled, content, paint_style).astype(float)
    difference = np.abs(painted - whole).mean(2)
    assert difference.mean() < limit, difference.mean()
    assert np.percentile(difference, 99) < 8
