"""LapStyle (Lin et al. 2021): the Laplacian pyramid folds back exactly, an untrained model
paints as the AdaIN decoder it starts from, every size and aspect ratio keeps its shape (no
squaring), the draft's alpha trades content for style, and the model is one file of named
parts with its style. Padding, progress, export and memory are the one-pass contract's
(test_contract_methods.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import expect_error, random_decoder, smooth_image
from contract import save_lapstyle

from brushwork import models
from brushwork.checkpoints import Checkpoint, save_checkpoint
from brushwork.cli import main
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.image import to_pil
from brushwork.methods.lapstyle import LapStyle, LapStyleOptions, load_network
from brushwork.methods.lapstyle_net import (
    DRAFT_LAYERS,
    DRAFT_MARGIN,
    LapStyleNet,
    PatchDiscriminator,
    fold_pyramid,
    laplacian_pyramid,
    pyramid_up,
)
from brushwork.ops import adain, pad_to_multiple, reflect_margin

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def model(tmp_path: Path, tiny_encoder: VGG19) -> Path:
    return save_lapstyle(tmp_path / "lapstyle.safetensors", tiny_encoder)


def test_the_pyramid_folds_back_to_the_image() -> None:
    image = smooth_image(36, 52, seed=2)
    pyramid = laplacian_pyramid(image, 2)
    assert [p.shape[-2:] for p in pyramid] == [(36, 52), (18, 26), (9, 13)]
    torch.testing.assert_close(fold_pyramid(pyramid), image, atol=1e-6, rtol=0)
    assert float(pyramid[0].abs().mean()) < float(image.abs().mean()) / 5  # bands: detail


@torch.no_grad()
def test_an_untrained_model_paints_as_the_adain_decoder_it_starts_from(
    tiny_encoder: VGG19,
) -> None:
    network = LapStyleNet(width=1 / 16)
    decoder = random_decoder(tiny_encoder)
    network.draft.decoder.load_state_dict(decoder.state_dict())
    style = tiny_encoder(smooth_image(64, 64, seed=3), DRAFT_LAYERS)
    network.draft.set_style(style)
    image = smooth_image(64, 96, seed=4)
    draft, first, second = network.levels(image, tiny_encoder)
    low = laplacian_pyramid(image, 2)[-1]  # 16x24, mirrored by the draft margin (clamped)
    framed, (top, left) = reflect_margin(low, DRAFT_MARGIN)
    framed = pad_to_multiple(framed, 8)[0]
    mean, std = network.draft.style()["relu4_1"]
    expected = decoder(adain(tiny_encoder(framed, ["relu4_1"])["relu4_1"], mean, std))
    torch.testing.assert_close(draft, expected[..., top : top + 16, left : left + 24])
    torch.testing.assert_close(first, pyramid_up(draft, first))  # no detail added yet
    torch.testing.assert_close(second, pyramid_up(first, second))
    assert second.shape == image.shape


def test_the_networks_have_the_papers_size() -> None:
    network = LapStyleNet()
    count = {
        part: sum(p.numel() for p in getattr(network, part).parameters())
        for part in ("draft", "revision1")
    }
    assert 3_500_000 < count["draft"] < 3_700_000  # the AdaIN decoder and two 1x1 skips
    assert 140_000 < count["revision1"] < 160_000  # PaddleGAN's RevisionNet: 0.15 M
    logits = PatchDiscriminator()(torch.rand(2, 3, 24, 20))
    assert logits.shape == (2, 1, 24, 20)  # one logit per patch (11 px receptive field)


@pytest.mark.parametrize("size", [(40, 120), (97, 33), (64, 64)])
def test_any_size_and_aspect_ratio_keeps_its_shape(
    model: Path, tiny_encoder: VGG19, size: tuple[int, int]
) -> None:
    method = LapStyle(LapStyleOptions(model=str(model)), encoder=tiny_encoder)
    content = smooth_image(*size, seed=5)
    result = method.stylize(content, [])
    assert result.image.shape == content.shape
    assert float((result.image - content).abs().mean()) > 0.01


def test_alpha_trades_the_content_for_the_style(model: Path, tiny_encoder: VGG19) -> None:
    content = smooth_image(48, 64, seed=6)

    def paint(alpha: float) -> torch.Tensor:
        options = LapStyleOptions(model=str(model), alpha=alpha)
        return LapStyle(options, encoder=tiny_encoder).stylize(content, []).image

    full, half, none = paint(1.0), paint(0.5), paint(0.0)
    assert float((full - none).abs().mean()) > 1e-2
    between = float((half - none).abs().mean())
    assert 0 < between < float((full - none).abs().mean())


def test_the_model_is_one_file_of_named_parts_with_its_style(model: Path) -> None:
    metadata = models.file_metadata(model)
    assert models.parts_of(metadata) == ("draft", "revision1", "revision2")
    style = models.style_of(metadata)
    assert style is not None and style.name == "dots"
    assert models.read_thumbnail(model) is not None


def test_a_model_for_another_encoder_or_without_parts_is_refused(
    model: Path, tmp_path: Path, tiny_encoder: VGG19
) -> None:
    wider = VGG19(last_layer="relu4_1", width=1 / 8)
    with pytest.raises(BrushworkError, match="trained on encoder"):
        load_network(str(model), wider)
    single = tmp_path / "single.safetensors"
    save_checkpoint(single, Checkpoint("lapstyle", "none", {"w": torch.zeros(1)}))
    with pytest.raises(BrushworkError, match="missing parts"):
        LapStyle(LapStyleOptions(model=str(single))).check_files()


@pytest.mark.usefixtures("tiny_pretrained")
def test_the_cli_paints_without_a_style_image_and_refuses_one(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.png"
    to_pil(smooth_image(40, 70, seed=1)).save(photo)
    out = tmp_path / "out.png"
    assert (
        main(["stylize", "-m", "lapstyle", "--model", str(model), str(photo), "-o", str(out), "-q"])
        == 0
    )
    assert out.is_file()
    capsys.readouterr()
    refused = tmp_path / "refused.png"
    argv = ["stylize", "-m", "lapstyle", "--model", str(model), str(photo), str(photo)]
    message = expect_error(capsys, [*argv, "-o", str(refused)])
    assert message.startswith("lapstyle takes no style image")
    assert not refused.exists()
