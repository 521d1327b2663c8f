"""The method and model registries (brushwork.methods, brushwork.models): every front end
lists from them; adding a method is its module plus one entry."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from brushwork import models
from brushwork.errors import BrushworkError
from brushwork.methods import REGISTRY, get_entry, get_method, load_object


def test_every_entry_loads_its_class_trainers_and_exporter() -> None:
    from brushwork.methods.onepass import OnePassMethod
    from brushwork.methods.optimization import OptimizationMethod

    for name, entry in REGISTRY.items():
        cls = get_method(name)
        assert cls.name == name and cls.description == entry.description
        # the kind is the base class's; the entry's copy (read without importing torch)
        # agrees with it
        base = OnePassMethod if issubclass(cls, OnePassMethod) else OptimizationMethod
        assert issubclass(cls, base) and entry.kind == cls.kind == base.kind
        for trainer in entry.trainers.values():
            objective = load_object(trainer)
            assert objective.method in (name, "wct", "styleswap")  # type: ignore[attr-defined]
        if entry.exporter:
            assert callable(load_object(entry.exporter))


def test_an_entry_whose_kind_or_name_is_not_its_class_s_is_refused() -> None:
    entry = REGISTRY["adain"]
    wrong = dataclasses.replace(entry, kind="optimization")
    with pytest.raises(
        BrushworkError,
        match="adain:AdaIN is registered with kind 'optimization' but its class has 'feed-forward'",
    ):
        wrong.load()
    with pytest.raises(BrushworkError, match="registered with name 'cubism' but its class"):
        dataclasses.replace(entry, name="cubism").load()


def test_unknown_method_is_one_clear_error() -> None:
    with pytest.raises(BrushworkError, match="unknown method 'cubism'; available: gatys"):
        get_entry("cubism")
    with pytest.raises(BrushworkError, match="unknown method"):
        get_method(None)  # type: ignore[arg-type]


def test_models_name_existing_files_of_their_method() -> None:
    for info in models.MODELS.values():
        assert info.method in REGISTRY or info.method == "depth"
        encoded = info.method == "depth" or get_method(info.method)().encoder_request()
        assert info.encoder.startswith("vgg19:") if encoded else info.encoder == "none"
    with pytest.raises(BrushworkError, match="is a bundled adain model, not a wct one"):
        models.resolve("adain", method="wct")
    with pytest.raises(BrushworkError, match="neither a bundled adain model"):
        models.resolve("no-such-model", method="adain")
    assert models.resolve("adain", method="adain").is_file()


def test_bundled_models_hold_the_parts_their_method_loads() -> None:
    """Each entry's ``parts`` are what its bundled models hold (none: one network), so a
    method reading them from its entry can load every model shipped for it."""
    checked = 0
    for name, entry in REGISTRY.items():
        for info in models.for_method(name):
            assert sorted(info.parts) == sorted(entry.parts), (name, info.name)
            models.resolve(info.name, method=name, parts=entry.parts)
            checked += 1
    assert checked >= len([m for m in models.MODELS.values() if m.method in REGISTRY]) > 0


def test_front_ends_list_without_torch() -> None:
    code = (
        "import sys; from brushwork.cli import main; main(['methods']); main(['models']);"
        " assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for name in REGISTRY:
        assert name in result.stdout
    for name in models.MODELS:
        assert name in result.stdout


def test_methods_json_has_options_for_forms(capsys) -> None:
    from brushwork.cli import main

    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == list(REGISTRY)
    adain = next(m for m in listed if m["name"] == "adain")
    alpha = next(o for o in adain["options"] if o["name"] == "alpha")
    assert alpha["minimum"] == 0.0 and alpha["maximum"] == 1.0 and alpha["default"] == 1.0
    assert "adain-laplacian" in adain["models"] and "adain" in adain["trainers"]
    gatys = next(m for m in listed if m["name"] == "gatys-laplacian")
    lap = next(o for o in gatys["options"] if o["name"] == "lap_weight")
    assert lap["default"] == 10.0  # the preset's value, not the class default
