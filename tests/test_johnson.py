"""The per-style transform network (Johnson et al. 2016 with instance norm; several styles by
conditional instance norm, Dumoulin et al. 2017) and the front ends without style images:
the network's shape and cost, blending as the mix of (γ, β), adding styles, choosing styles
by name, the CLI, batch, the service and the models listing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import expect_error, smooth_image
from contract import JOHNSON_STYLES, save_johnson
from fastapi.testclient import TestClient
from PIL import Image
from servicekit import png_bytes

from brushwork import frozen, models
from brushwork.cli import main
from brushwork.errors import BrushworkError
from brushwork.export import ExportOptions
from brushwork.image import to_pil
from brushwork.methods import get_entry, get_method
from brushwork.methods.johnson import (
    Johnson,
    JohnsonOptions,
    export_onnx,
    style_names,
    style_weights,
)
from brushwork.methods.johnson_net import TransformNet, infer_shape, one_hot

pytestmark = pytest.mark.usefixtures("one_thread")
FIRST, SECOND = JOHNSON_STYLES


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return save_johnson(tmp_path / "johnson.safetensors")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    to_pil(smooth_image(40, 52, seed=1)).save(path)
    return path


# ----------------------------------------------------------------------------- network


def test_the_network_has_the_paper_s_size_and_keeps_the_image_s() -> None:
    network = TransformNet(styles=1)
    convolutions = sum(p.numel() for n, p in network.named_parameters() if "norm" not in n)
    assert 1_650_000 < convolutions < 1_700_000  # Johnson et al.: 1.68 M
    per_style = sum(n.gamma.shape[1] + n.beta.shape[1] for n in network.norms())
    assert per_style == 3_200  # Dumoulin et al.: 3,206 with their output layer's
    with torch.no_grad():
        image = network(smooth_image(36, 44, seed=0), torch.ones(1, 1))
    assert image.shape == (1, 3, 36, 44)
    assert float(image.min()) > 0 and float(image.max()) < 1
    assert infer_shape(TransformNet(3, width=0.5).state_dict()) == (3, 0.5)


@torch.no_grad()
def test_a_blend_is_the_mix_of_the_styles_normalization_parameters() -> None:
    torch.manual_seed(0)
    network = TransformNet(styles=2, width=0.25)
    for norm in network.norms():
        norm.gamma.uniform_(0.5, 1.5)
        norm.beta.normal_(0, 0.5)
    mixed = TransformNet(styles=1, width=0.25)
    state = network.state_dict()
    for key in state:
        if key.endswith((".gamma", ".beta")):
            state[key] = (0.25 * state[key][0] + 0.75 * state[key][1])[None]
    mixed.load_state_dict(state)
    image = smooth_image(24, 28, seed=2)
    blended = network(image, torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(blended, mixed(image, torch.ones(1, 1)))
    assert float((blended - network(image, one_hot(torch.tensor([0]), 2))).abs().max()) > 1e-3


@torch.no_grad()
def test_added_styles_leave_the_trained_ones_as_they_were() -> None:
    torch.manual_seed(1)
    network = TransformNet(styles=2, width=0.25)
    image = smooth_image(24, 28, seed=3)
    before = network(image, one_hot(torch.tensor([1]), 2))
    network.add_styles(2)
    assert network.styles == 4 and network.norms()[0].gamma.shape[0] == 4
    torch.testing.assert_close(network(image, one_hot(torch.tensor([1]), 4)), before)
    first = network.norms()[0]
    torch.testing.assert_close(first.gamma[2], first.gamma[:2].mean(0))


@torch.no_grad()
def test_tiles_normalized_by_the_whole_picture_s_statistics_paint_as_the_whole() -> None:
    """URST's thumbnail instance normalization: statistics frozen from the whole picture
    (here at full size, so exactly the picture's) make a tile's inside paint as the whole
    picture does there; each tile's own statistics do not."""
    torch.manual_seed(2)
    network = TransformNet(styles=1, width=0.25)
    weights = torch.ones(1, 1)
    picture = smooth_image(96, 96, seed=4)
    picture[..., :48, :] *= 0.3  # a dark top half: its tiles' statistics differ from the whole
    with frozen.recording() as table:
        whole = network(picture, weights)
    assert len(table.values) == len(network.norms())
    with frozen.replaying(table):
        torch.testing.assert_close(network(picture, weights), whole, atol=1e-4, rtol=0)
    with frozen.replaying(table):
        tile = network(picture[..., :48, :48], weights)
    own = network(picture[..., :48, :48], weights)
    torch.testing.assert_close(network(picture, weights), whole)  # thawed after the block
    inside = (..., slice(8, 40), slice(8, 40))
    frozen_error = float((tile - whole[..., :48, :48])[inside].abs().mean())
    own_error = float((own - whole[..., :48, :48])[inside].abs().mean())
    assert frozen_error < own_error / 2, (frozen_error, own_error)


@torch.no_grad()
def test_a_weight_map_paints_each_pixel_in_its_own_mix() -> None:
    """Per-pixel (γ, β) (regions in one pass): a map constant over the image paints as the
    same weights given once."""
    torch.manual_seed(3)
    network = TransformNet(styles=2, width=0.25)
    for norm in network.norms():
        norm.gamma.uniform_(0.5, 1.5)
        norm.beta.normal_(0, 0.5)
    image = smooth_image(32, 40, seed=5)
    weights = torch.tensor([[0.3, 0.7]])
    constant = weights[:, :, None, None].expand(1, 2, 32, 40)
    torch.testing.assert_close(network(image, constant), network(image, weights))


# ----------------------------------------------------------------------------- choosing


def test_styles_are_chosen_by_name_with_weights(model: Path) -> None:
    assert style_names(model) == list(JOHNSON_STYLES)
    assert style_weights(JOHNSON_STYLES, (), "m") == [1.0, 0.0]
    assert style_weights(JOHNSON_STYLES, (f"{FIRST}:1", f"{SECOND}:3"), "m") == [0.25, 0.75]
    with pytest.raises(BrushworkError, match="has no style 'third'; its styles: first, second"):
        style_weights(JOHNSON_STYLES, ("third",), "m")
    for bad in (f"{FIRST}:x", f"{FIRST}:-1", f"{FIRST}:inf"):
        with pytest.raises(BrushworkError, match="--styles"):
            JohnsonOptions(styles=(bad,)).validate()
    with pytest.raises(BrushworkError, match="at least one weight must be above 0"):
        JohnsonOptions(styles=(f"{FIRST}:0",)).validate()


def test_the_method_takes_no_style_image_and_no_mask(model: Path) -> None:
    method = Johnson(model=str(model))
    assert get_method("johnson").style_images is False
    with pytest.raises(BrushworkError, match="takes no style image"):
        method.stylize(smooth_image(24, 24, seed=0), smooth_image(24, 24, seed=1))
    image = method.stylize(smooth_image(24, 30, seed=0), []).image
    assert image.shape == (1, 3, 24, 30)
    assert get_entry("johnson").exporter is not None


# ----------------------------------------------------------------------------- front ends


def test_the_cli_paints_the_named_styles_without_a_style_image(
    capsys: pytest.CaptureFixture[str], model: Path, photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    argv = ["stylize", str(photo), "-m", "johnson", "--model", str(model), "--size", "52"]
    argv += ["-o", str(out)]
    assert main([*argv, "--styles", f"{FIRST}:1,{SECOND}:1", "-q"]) == 0
    capsys.readouterr()
    assert Image.open(out).size == (52, 40)
    message = expect_error(capsys, [*argv, "--styles", "third", "--force"])
    assert message == f"model {model} has no style 'third'; its styles: first, second"
    message = expect_error(capsys, [*argv[:2], str(photo), *argv[2:], "--force"])
    assert "johnson takes no style image" in message
    other = tmp_path / "other.png"
    expect_error(capsys, [*argv[:-1], str(other), "--styles", "third"])
    assert not other.exists()


def test_regions_are_painted_in_their_styles_in_one_pass(
    capsys: pytest.CaptureFixture[str], model: Path, photo: Path, tmp_path: Path
) -> None:
    """A label image's darker region gets the first of --styles, the lighter the second:
    inside each region the output is nearer that style's own painting than the other's
    (a tiny random network: its receptive field spans both halves of the 52 px picture)."""
    labels = tmp_path / "labels.png"
    halves = Image.new("RGB", (52, 40), "white")
    halves.paste((0, 0, 0), (0, 0, 26, 40))
    halves.save(labels)
    argv = ["stylize", str(photo), "-m", "johnson", "--model", str(model), "--size", "52", "-q"]
    paintings = {}
    for name, styles in (("first", FIRST), ("second", SECOND), ("both", f"{FIRST},{SECOND}")):
        out = tmp_path / f"{name}.png"
        extra = ["--regions", str(labels)] if name == "both" else []
        assert main([*argv, "--styles", styles, *extra, "-o", str(out)]) == 0
        paintings[name] = torch.from_numpy(np.asarray(Image.open(out), dtype=np.float32))
    both, first, second = paintings["both"], paintings["first"], paintings["second"]
    left, right = (slice(4, 36), slice(2, 18)), (slice(4, 36), slice(34, 50))
    for inside, own, other in ((left, first, second), (right, second, first)):
        near, far = ((both[inside] - p[inside]).abs().mean() for p in (own, other))
        assert near < 0.8 * far  # not equal: one normalization over the whole picture
    capsys.readouterr()


def test_strength_mixes_the_painting_with_the_photo_in_pixel_space(model: Path) -> None:
    photo = smooth_image(24, 28, seed=6)
    full = Johnson(model=str(model)).stylize(photo, []).image
    half = Johnson(model=str(model), strength=0.25).stylize(photo, []).image
    torch.testing.assert_close(half, 0.75 * photo + 0.25 * full)
    torch.testing.assert_close(
        Johnson(model=str(model), strength=0.0).stylize(photo, []).image, photo
    )
    for bad in (-0.1, 1.5):
        with pytest.raises(BrushworkError, match="strength"):
            JohnsonOptions(strength=bad).validate()


def test_regions_are_checked_before_any_work(
    capsys: pytest.CaptureFixture[str], model: Path, photo: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.png"
    three = Image.new("RGB", (30, 30), "white")
    three.paste((0, 0, 0), (0, 0, 10, 30))
    three.paste((128, 128, 128), (10, 0, 20, 30))
    three.save(labels)
    out = tmp_path / "out.png"
    argv = ["stylize", str(photo), "-m", "johnson", "--model", str(model), "-o", str(out)]
    message = expect_error(capsys, [*argv, "--styles", FIRST, "--regions", str(labels)])
    assert message == "--regions paints each region in one of --styles: name two or more"
    message = expect_error(
        capsys, [*argv, "--styles", f"{FIRST},{SECOND}", "--regions", str(labels)]
    )
    assert message.startswith(
        "the label image has 3 regions (#000000, #808080, #ffffff) but there are 2 styles"
    )
    missing = tmp_path / "none.png"
    message = expect_error(
        capsys, [*argv, "--styles", f"{FIRST},{SECOND}", "--regions", str(missing)]
    )
    assert message.startswith(f"{missing}")
    assert not out.exists()
    overwrite = [*argv[:-1], str(labels), "--styles", f"{FIRST},{SECOND}", "--force"]
    message = expect_error(capsys, [*overwrite, "--regions", str(labels)])
    assert message == f"-o {labels} is the input {labels}; choose another path"
    two = Image.new("RGB", (30, 30), "white")
    two.paste((0, 0, 0), (0, 0, 15, 30))
    two.save(labels)
    message = expect_error(
        capsys,
        [*argv, "--styles", f"{FIRST},{SECOND}", "--regions", str(labels), "--tile", "128"],
    )
    assert message.startswith("johnson paints --regions on a whole picture only")
    assert not out.exists()
    with pytest.raises(BrushworkError, match="takes no --regions or --strength"):
        export_onnx(
            ExportOptions(output=str(tmp_path / "m.onnx")),
            JohnsonOptions(model=str(model), styles=(FIRST, SECOND), regions=str(labels)),
        )


def test_a_batch_paints_each_content_alone(
    capsys: pytest.CaptureFixture[str], model: Path, photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["batch", str(photo), "-m", "johnson", "--model", str(model), "--size", "52"]
    argv += ["-o", str(out), "-q"]
    assert main(argv) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "photo.png"]
    record = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert record["style"] == ""
    message = expect_error(capsys, ["batch", str(photo), "-o", str(tmp_path / "again")])
    assert message == "no style: give --style PATH (or --pairs)"


def test_the_service_paints_without_a_style_upload(
    tmp_path: Path, model: Path, tiny_encoder: Any
) -> None:
    from brushwork.service.app import create_app
    from brushwork.service.config import ServiceConfig

    config = ServiceConfig(
        data=tmp_path / "data", workers=1, models={"tiny": model}, encoder=tiny_encoder
    )
    with TestClient(create_app(config), base_url="http://localhost") as client:
        options = {"model": "tiny", "styles": [SECOND], "size": 48}
        response = client.post(
            "/stylize",
            files=[("content", ("photo.png", png_bytes(), "image/png"))],
            data={"method": "johnson", "options": json.dumps(options)},
        )
        assert response.status_code == 200, response.text
        assert Image.open(io.BytesIO(response.content)).size == (48, 40)
        described = {m["name"]: m for m in client.get("/methods").json()["methods"]}
        assert described["johnson"]["style_images"] is False
        assert described["adain"]["style_images"] is True
        refused = client.post(
            "/stylize",
            files=[("content", ("photo.png", png_bytes(), "image/png"))],
            data={"method": "adain", "options": "{}"},
        )
        assert refused.json() == {"error": "at least one style image is needed"}


def test_a_multi_style_model_lists_its_styles_with_thumbnails(model: Path) -> None:
    info = models.ModelInfo(
        "tiny-styles",
        str(model),
        "johnson",
        "none",
        "docs/models/johnson.md",
        "tiny",
        styles=tuple(models.Style(n, f"{n}.png", "test") for n in JOHNSON_STYLES),
    )
    row = models.row(info)
    assert [s["name"] for s in row["styles"]] == list(JOHNSON_STYLES)
    assert all(s["thumbnail"].startswith("data:image/png;base64,") for s in row["styles"])
    assert len(models.read_thumbnails(model)) == 2
    shipped = models.MODELS["johnson-8styles"]
    assert len(shipped.styles) == 8 and shipped.method == "johnson"
    assert style_names(shipped.path) == [s.name for s in shipped.styles]
