"""brushwork.models: per-style models (a style with its thumbnail) and models of named parts
in one safetensors file; their listing grouped by method; the refusals made by
:func:`brushwork.models.resolve` before any network loads."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from io import BytesIO
from pathlib import Path

import pytest
import torch
from conftest import expect_error, smooth_image
from PIL import Image
from safetensors import safe_open

from brushwork import models
from brushwork.checkpoints import Checkpoint, save_checkpoint
from brushwork.errors import BrushworkError
from brushwork.examples import content_image, style_path
from brushwork.image import to_pil
from brushwork.models import ModelInfo, Style
from brushwork.models.parts import load_part, load_parts, make_thumbnail, save_model

MOSAIC = Style("Mosaic", "brushwork examples (scripts/make_example_styles.py)", "CC0-1.0")
LAP_PARTS = ("draft", "revise-1", "revise-2")


def tiny_parts(names: tuple[str, ...] = LAP_PARTS) -> dict[str, dict[str, torch.Tensor]]:
    """Tiny random networks, one per name (a drafting net and revision nets' stand-ins)."""
    torch.manual_seed(0)
    return {name: torch.nn.Conv2d(3 + i, 3, 3).state_dict() for i, name in enumerate(names)}


@pytest.fixture
def lapstyle_mosaic(tmp_path: Path) -> Path:
    """A per-style model of three parts painting the bundled mosaic style."""
    return save_model(
        tmp_path / "lapstyle-mosaic.safetensors",
        parts=tiny_parts(),
        method="lapstyle",
        encoder="vgg19:relu4_1:512",
        style=MOSAIC,
        style_image=style_path("mosaic"),
    )


def registered(monkeypatch: pytest.MonkeyPatch, *infos: ModelInfo) -> None:
    """``infos`` added to the registry for one test."""
    monkeypatch.setattr(models, "MODELS", {**models.MODELS, **{i.name: i for i in infos}})


def lapstyle_entry(path: Path, parts: tuple[str, ...] = LAP_PARTS) -> ModelInfo:
    return ModelInfo(
        "lapstyle-mosaic",
        str(path),
        "lapstyle",
        "vgg19:relu4_1:512",
        "docs/models/lapstyle.md",
        "LapStyle for the mosaic style",
        style=MOSAIC,
        parts=parts,
    )


# ----------------------------------------------------------------------- writing, reading


def test_parts_are_stored_under_their_names_and_load_by_name(lapstyle_mosaic: Path) -> None:
    with safe_open(lapstyle_mosaic, framework="pt") as f:
        keys, metadata = set(f.keys()), f.metadata()
    assert keys == {f"model/part.{n}.{k}" for n in LAP_PARTS for k in ("weight", "bias")}
    assert json.loads(metadata["parts"]) == list(LAP_PARTS)
    assert metadata["method"] == "lapstyle" and json.loads(metadata["style"])["name"] == "Mosaic"
    for name, expected in tiny_parts().items():
        found = load_part(lapstyle_mosaic, name, method="lapstyle", encoder="vgg19:relu4_1:512")
        assert found.keys() == expected.keys()
        for key, tensor in expected.items():
            assert found[key].dtype == torch.float16  # shipped as the bundled models are
            assert torch.equal(found[key], tensor.half())
        torch.nn.Conv2d(expected["weight"].shape[1], 3, 3).load_state_dict(found)
    assert list(load_parts(lapstyle_mosaic, method="lapstyle")) == list(LAP_PARTS)


def test_the_thumbnail_is_a_small_png_of_the_style(lapstyle_mosaic: Path) -> None:
    png = models.read_thumbnail(lapstyle_mosaic)
    assert png is not None and png == make_thumbnail(style_path("mosaic"))
    with Image.open(BytesIO(png)) as thumbnail, Image.open(style_path("mosaic")) as style:
        assert thumbnail.format == "PNG" and max(thumbnail.size) == 96
        ratio = style.width / style.height
        assert abs(thumbnail.width / thumbnail.height - ratio) < 0.05
    assert len(png) < 40_000
    photo = make_thumbnail(content_image("chelsea"), size=32)  # an image, not a path
    with Image.open(BytesIO(photo)) as thumbnail:
        assert max(thumbnail.size) == 32
    assert models.read_thumbnail(models.MODELS["wct-relu1_1"].path) is None


def test_a_style_image_that_is_no_image_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "style.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(BrushworkError, match=re.escape(str(tmp_path / "style.png"))) as caught:
        save_model(
            tmp_path / "m.safetensors",
            {"w": torch.ones(1)},
            method="johnson",
            encoder="none",
            style=MOSAIC,
            style_image=bad,
        )
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "m.safetensors").exists()


SAVE_REFUSALS = {
    "both": ({"network": {"w": torch.ones(1)}, "parts": tiny_parts()}, "either one network"),
    "neither": ({}, "either one network or named parts"),
    "style-alone": (
        {"network": {"w": torch.ones(1)}, "style": MOSAIC},
        "needs both its style and the style's image",
    ),
    "image-alone": (
        {"network": {"w": torch.ones(1)}, "style_image": style_path("mosaic")},
        "needs both its style and the style's image",
    ),
    "empty-part": ({"parts": {"draft": {}}}, "part 'draft' has no tensors"),
    "no-parts": ({"parts": {}}, "no parts given"),
    "dotted-name": (
        {"parts": {"draft.v2": {"w": torch.ones(1)}}},
        "part name 'draft.v2' is not lowercase letters, digits, '-' and '_'",
    ),
}


@pytest.mark.parametrize("kind", list(SAVE_REFUSALS))
def test_a_bad_model_is_refused_before_writing(tmp_path: Path, kind: str) -> None:
    arguments, message = SAVE_REFUSALS[kind]
    target = tmp_path / "m.safetensors"
    with pytest.raises(BrushworkError, match=message) as caught:
        save_model(target, method="lapstyle", encoder="none", **arguments)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and not target.exists()


def test_checkpoint_metadata_may_not_override_its_own_keys(tmp_path: Path) -> None:
    with pytest.raises(BrushworkError, match="may not set method"):
        save_checkpoint(
            tmp_path / "m.safetensors",
            Checkpoint("adain", "vgg19:relu4_1:512", {"w": torch.ones(1)}),
            metadata={"method": "wct"},
        )


def test_loading_parts_refuses_files_that_do_not_hold_them(
    tmp_path: Path, lapstyle_mosaic: Path
) -> None:
    with pytest.raises(BrushworkError, match="has no part 'critic'; its parts: draft, revise-1"):
        load_part(lapstyle_mosaic, "critic", method="lapstyle")
    single = save_model(tmp_path / "one.safetensors", {"w": torch.ones(1)}, method="x", encoder="e")
    with pytest.raises(BrushworkError, match="holds one network, not named parts"):
        load_parts(single, method="x")
    stray = save_checkpoint(
        tmp_path / "stray.safetensors",
        Checkpoint("x", "e", {"part.draft.w": torch.ones(1), "head.w": torch.ones(1)}),
        metadata={"parts": '["draft"]'},
    )
    with pytest.raises(BrushworkError, match=r"holds the tensor 'head\.w' outside its parts"):
        load_parts(stray, method="x")
    hollow = save_checkpoint(
        tmp_path / "hollow.safetensors",
        Checkpoint("x", "e", {"part.draft.w": torch.ones(1)}),
        metadata={"parts": '["draft", "revise"]'},
    )
    with pytest.raises(BrushworkError, match="lists the part 'revise' but holds no tensors"):
        load_parts(hollow, method="x")
    with pytest.raises(BrushworkError, match="is a 'lapstyle' checkpoint, not 'adain'"):
        load_parts(lapstyle_mosaic, method="adain")


# ------------------------------------------------------------------ the registry's checks


def test_entries_with_bad_parts_or_styles_are_refused() -> None:
    with pytest.raises(BrushworkError, match="model 'm': part 'draft' is named twice"):
        ModelInfo("m", "m.safetensors", "x", "e", "card", "d", parts=("draft", "draft"))
    with pytest.raises(BrushworkError, match="part name 'Draft' is not lowercase"):
        ModelInfo("m", "m.safetensors", "x", "e", "card", "d", parts=("Draft",))
    with pytest.raises(BrushworkError, match="a model's style needs a source and a licence"):
        Style("Mosaic", "", " ")


def test_bundled_entries_agree_with_their_files() -> None:
    """Every installed bundled file says what its entry says: the method (as checkpoints
    name it), the parts and the style; the bundled ones today are single networks for any
    style, listed as before, and per-style ones (johnson's; lapstyle's, of named parts)."""
    for info in models.MODELS.values():
        if not info.path.is_file():
            continue
        metadata = models.file_metadata(info.path)
        assert metadata["method"] == models.checkpoint_method(info.method)
        assert metadata["encoder"] == info.encoder
        assert models.parts_of(metadata) == info.parts
        assert models.style_of(metadata) == info.style
        assert (models.read_thumbnail(info.path) is not None) == (info.style is not None)
        assert models.resolve(info.name, method=info.method, parts=info.parts) == info.path


BUNDLED_SHA256 = {
    "adain-depth": "b058123dbe5d1a655581ed38deffa340c706e9956627026ed3e2233e137a5429",
    "adain-laplacian": "1afc2a3e509b59e0f777af42f5b7205afc4a200db6c11c32424561bf3d94f1cd",
    "adain-temporal": "6eaf029e377eacb7ced69019eac6cf6aa3b4f7e30456ebc08a02e4fc60bd73eb",
    "adain": "b855b3cded7806da920f2dc586b3aed135e678cc8dc92b90bc75a328b08740c2",
    "depth": "7d1d39b7769514fe78f6906a02e4fcf9fdd81fa770dc590ee41e047d75007456",
    "johnson-8styles": "833f391e49069417af98c6119a40adb62c74698070aea6d894a1e1de7648b771",
    "johnson-boccioni-city": "d547c4434f6066e5217411d74604bcd210898a867f1886c9d8d1f38be21fd4d0",
    "johnson-fast-boccioni-city": (
        "633687a7d113a301e55b6c6ff77d33dfc2888b4a2b3a3c68f291e93e7428cfe9"
    ),
    "johnson-fast-klimt-beeches": (
        "1f9fa99ffb6d80d58717a47df3394d714081fc8a77e4c437fa48767c1722f5c4"
    ),
    "johnson-klimt-beeches": "dcbdbfc38c36cbdeafc9a140c4fbb9fafa9e5edfa887cbfc77f411101597f5fd",
    "lapstyle-boccioni-city": "de6436ba34b21e8e52521bc0f08f57a8ec61613a1395aeb8a5786362be69f37e",
    "lapstyle-klimt-beeches": "8cd6e1f77f17d93a68da4672531a1db94155b0e33b134f6d4a00ee45665ebbdd",
    "styleswap-inverse": "e42b025c90afe5234b2aea691af33e9a1070c53a98bddb8ca51c4a19ceb7e621",
    "wct-relu1_1": "edc7fd35a19bd85bf034277148308d2d82e8dcc17fcd19c45e763a18998a56a1",
    "wct-relu2_1": "5d3f04caef6fa4a86f48790cdd40a4e7409762f19d2d44866069dfbb0ebce2de",
    "wct-relu3_1": "6137671d93dd6f8271e4b14afee0ff79ee256a4a939868cbcff1b893f196c79f",
    "wct-relu4_1": "1a66a53fe8dc4c8d438fbc8f0d6a1fcb82d289d0300e606f3291753aef54ea59",
    "wct-relu5_1": "99d9080ba068219e85bd4165de3586b31a8f315f13d2750ee265cd6b7cf8076e",
}
"""The committed weights' digests (the first eleven taken before models had styles and
parts)."""


def test_bundled_files_are_unchanged() -> None:
    assert set(BUNDLED_SHA256) == set(models.MODELS)
    for name, expected in BUNDLED_SHA256.items():
        path = models.MODELS[name].path
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == expected, name


@pytest.mark.parametrize(
    ("held", "wanted", "message"),
    [
        (
            ("draft", "revise-1"),
            LAP_PARTS,
            "does not fit lapstyle: missing part 'revise-2' "
            "(lapstyle uses the parts draft, revise-1, revise-2)",
        ),
        (
            (*LAP_PARTS, "critic"),
            LAP_PARTS,
            "does not fit lapstyle: extra part 'critic' (lapstyle uses the parts",
        ),
        (
            ("draft", "critic", "patch"),
            LAP_PARTS,
            "missing parts 'revise-1', 'revise-2'; extra parts 'critic', 'patch'",
        ),
        (LAP_PARTS, (), "extra parts 'draft', 'revise-1', 'revise-2' (lapstyle takes one network)"),
    ],
)
def test_a_model_whose_parts_do_not_fit_its_method_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    held: tuple[str, ...],
    wanted: tuple[str, ...],
    message: str,
) -> None:
    path = save_model(
        tmp_path / "m.safetensors", parts=tiny_parts(held), method="lapstyle", encoder="e"
    )
    registered(monkeypatch, lapstyle_entry(path, held))
    for model in ("lapstyle-mosaic", path):  # a bundled entry, then a file
        with pytest.raises(BrushworkError, match=re.escape(message)):
            models.resolve(model, method="lapstyle", parts=wanted)
    assert models.resolve(path, method="lapstyle", parts=held) == path


def test_a_method_of_parts_refuses_a_single_network(tmp_path: Path) -> None:
    path = save_model(
        tmp_path / "m.safetensors", {"w": torch.ones(1)}, method="lapstyle", encoder="e"
    )
    with pytest.raises(
        BrushworkError,
        match=r"does not fit lapstyle: missing parts 'draft', 'revise-1', 'revise-2' \(lapstyle",
    ):
        models.resolve(path, method="lapstyle", parts=LAP_PARTS)
    with pytest.raises(BrushworkError, match="method lapstyle: part name 'Draft'"):
        models.resolve(path, method="lapstyle", parts=("Draft",))


def test_a_per_style_model_given_another_method_is_refused(
    monkeypatch: pytest.MonkeyPatch, lapstyle_mosaic: Path
) -> None:
    registered(monkeypatch, lapstyle_entry(lapstyle_mosaic))
    message = "is lapstyle's network for the one style 'Mosaic'; adain cannot use it"
    for model in ("lapstyle-mosaic", lapstyle_mosaic):
        with pytest.raises(BrushworkError, match=message) as caught:
            models.resolve(model, method="adain")
        assert "\n" not in str(caught.value)
    assert models.resolve("lapstyle-mosaic", method="lapstyle", parts=LAP_PARTS) == lapstyle_mosaic


def test_front_ends_get_the_refusals_through_resolve(
    capsys, tmp_path: Path, lapstyle_mosaic: Path, tiny_pretrained
) -> None:
    """``stylize -m adain --model FILE`` with a per-style file of another method, or with a
    file of parts: one line each, before any work, no output written."""
    content, style, output = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    to_pil(smooth_image(32, 40, seed=0)).save(content)
    to_pil(smooth_image(24, 24, seed=1)).save(style)
    argv = ["stylize", str(content), str(style), "-o", str(output), "--quiet", "-m", "adain"]
    message = expect_error(capsys, [*argv, "--model", str(lapstyle_mosaic)])
    assert "network for the one style 'Mosaic'; adain cannot use it" in message
    parted = save_model(
        tmp_path / "parted.safetensors", parts=tiny_parts(), method="adain", encoder="e"
    )
    message = expect_error(capsys, [*argv, "--model", str(parted)])
    assert "does not fit adain: extra parts 'draft', 'revise-1', 'revise-2'" in message
    assert not output.exists()


def test_other_files_resolve_as_before(tmp_path: Path) -> None:
    """A file that is not safetensors is still left to the loader to describe."""
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 16)
    assert models.resolve(junk, method="adain") == junk
    assert models.file_metadata(junk) == {}
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    assert models.file_metadata(huge) == {}


# ----------------------------------------------------------------------------- listing


def test_per_style_models_are_listed_under_their_method(
    monkeypatch: pytest.MonkeyPatch, capsys, lapstyle_mosaic: Path
) -> None:
    from brushwork.cli import main

    registered(monkeypatch, lapstyle_entry(lapstyle_mosaic))
    groups = models.listing()
    assert [g["method"] for g in groups] == [
        "adain",
        "wct",
        "styleswap-inverse",
        "johnson",
        "lapstyle",
        "depth",
    ]
    lapstyle = groups[4]
    assert lapstyle["models"] == [] and [r["name"] for r in lapstyle["styles"]] == [
        "lapstyle-klimt-beeches",
        "lapstyle-boccioni-city",
        "lapstyle-mosaic",
    ]
    row = lapstyle["styles"][-1]
    assert row["parts"] == list(LAP_PARTS) and row["file"] == str(lapstyle_mosaic)
    uri = row["style"]["thumbnail"]
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.partition(",")[2]) == models.read_thumbnail(lapstyle_mosaic)
    assert {k: row["style"][k] for k in ("name", "source", "licence")} == {
        "name": "Mosaic",
        "source": MOSAIC.source,
        "licence": "CC0-1.0",
    }
    assert "file" not in models.row(models.MODELS["lapstyle-mosaic"], paths=False)
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == groups
    assert main(["models"]) == 0
    text = capsys.readouterr().out.splitlines()
    start = text.index("lapstyle")
    assert text[start + 1] == "  per style:"
    line = next(i for i, t in enumerate(text) if t.startswith("    lapstyle-mosaic "))
    assert text[line].endswith("[parts: draft, revise-1, revise-2]")
    assert text[line + 1] == f"      style 'Mosaic' from {MOSAIC.source} (CC0-1.0)"
    assert "\x1b[" not in "\n".join(text)  # no thumbnail drawn when not a terminal


def test_the_thumbnail_is_drawn_in_a_terminal(
    monkeypatch: pytest.MonkeyPatch, lapstyle_mosaic: Path
) -> None:
    registered(monkeypatch, lapstyle_entry(lapstyle_mosaic))
    png = models.read_thumbnail(lapstyle_mosaic)
    assert png is not None
    drawn = models.preview(png, columns=8)
    with Image.open(style_path("mosaic")) as style:
        assert len(drawn) == max(1, round(8 * style.height / style.width / 2))
    assert all(line.count("\u2580") == 8 and line.endswith("\x1b[0m") for line in drawn)
    text = [line.strip() for line in models.listing_text(thumbnails=True).splitlines()]
    drawn = models.preview(png)
    start = text.index(drawn[0])
    assert text[start : start + len(drawn)] == drawn


def test_the_bundled_models_list_as_before() -> None:
    """Today's bundled models: one group per method, the networks for any style under
    ``models``, the per-style ones (johnson's, lapstyle's) under ``styles``; same names, sizes and
    descriptions as the flat listing had."""
    groups = models.listing()
    per_style = [r["name"] for g in groups for r in g["styles"]]
    assert per_style == [
        "johnson-8styles",
        "johnson-klimt-beeches",
        "johnson-boccioni-city",
        "johnson-fast-klimt-beeches",
        "johnson-fast-boccioni-city",
        "lapstyle-klimt-beeches",
        "lapstyle-boccioni-city",
    ]
    names = [r["name"] for g in groups for r in [*g["models"], *g["styles"]]]
    assert names == list(models.MODELS)
    text = models.listing_text(thumbnails=False)
    for info in models.MODELS.values():
        assert info.description in text
