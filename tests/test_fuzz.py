"""Fuzzing with hypothesis, bounded to a few seconds each: whatever bytes an image file
holds and whatever values the options get, brushwork answers with its own one-line error
(BrushworkError), never another exception. ``scripts/fuzz.py`` runs the same properties
far longer and counts the outcomes."""

from __future__ import annotations

import contextlib
import io
import math
import typing
from pathlib import Path

import pytest
from conftest import smooth_image
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from brushwork.errors import BrushworkError  # noqa: E402
from brushwork.image import open_image, probe_image, to_pil  # noqa: E402
from brushwork.options import fields_of  # noqa: E402

FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
FORMATS = {"jpeg": "JPEG", "png": "PNG", "tiff": "TIFF", "webp": "WEBP"}


def seed_files() -> dict[str, bytes]:
    """Small valid images in every format the loader reads (with EXIF and alpha)."""
    image = to_pil(smooth_image(24, 20, seed=1))
    files = {}
    for suffix, fmt in FORMATS.items():
        buffer = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6
        extra = {"exif": exif.tobytes()} if fmt in ("JPEG", "WEBP", "PNG") else {}
        (image.convert("RGBA") if fmt in ("PNG", "WEBP") else image).save(buffer, fmt, **extra)
        files[suffix] = buffer.getvalue()
    return files


SEEDS = seed_files()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A seed image with bytes flipped, a slice removed or inserted, or cut short."""
    suffix = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[suffix])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("flip", "cut", "insert", "truncate")))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:
            data = data[:at]
    return suffix, bytes(data)


def load(path: Path) -> None:
    """Everything the loader does with a file: header, decode."""
    for reader in (probe_image, open_image):
        with contextlib.suppress(BrushworkError):
            reader(path, max_pixels=1_000_000)


@FAST
@given(mutated())
def test_mutated_images_give_only_brushwork_errors(tmp_path_factory, case) -> None:
    suffix, data = case
    path = tmp_path_factory.mktemp("fuzz") / f"image.{suffix}"
    path.write_bytes(data)
    load(path)


@FAST
@given(st.binary(max_size=2048), st.sampled_from(sorted(SEEDS)))
def test_random_bytes_give_only_brushwork_errors(tmp_path_factory, data, suffix) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"noise.{suffix}"
    path.write_bytes(data)
    load(path)


def any_value() -> st.SearchStrategy[object]:
    """Values of every kind an option could be given by mistake."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.sampled_from(
            [
                "",
                "none",
                "relu1_1",
                "relu9_9",
                "adam",
                "lbfgs",
                "max",
                "luminance",
                "auto",
                "bfloat16",
                "-1",
                "1e309",
            ]
        ),
    )
    return st.one_of(scalars, st.lists(scalars, max_size=4).map(tuple))


def options_classes() -> list[type]:
    from brushwork.export import ExportOptions
    from brushwork.methods import REGISTRY
    from brushwork.stylizer import Controls
    from brushwork.training import get_objective, trainers
    from brushwork.training.trainer import RunOptions

    classes = [Controls, RunOptions, ExportOptions]
    classes += [entry.load().options_class for entry in REGISTRY.values()]
    classes += [get_objective(name).config_class for name in trainers()]
    return list(dict.fromkeys(classes))


@pytest.mark.parametrize("cls", options_classes(), ids=lambda c: c.__name__)
def test_option_values_give_only_brushwork_errors(cls: type) -> None:
    specs = fields_of(cls)
    required = {s.name: "x" for s in specs if s.required}

    @FAST
    @given(st.sampled_from([s.name for s in specs]), any_value())
    def check(name: str, value: object) -> None:
        with contextlib.suppress(BrushworkError):
            cls(**{**required, name: value}).validate()

    check()


def flag_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(min_size=0, max_size=10),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(
            [
                "",
                ",",
                ",,",
                "relu1_1,",
                "none",
                "8G",
                "-1",
                "0",
                "nan",
                "#-1-1-1",
                "1e309",
                "relu4_1,relu9_9",
                "x@y",
                "a:b",
            ]
        ),
    )


class ReachedWork(Exception):
    """Raised by the stand-ins of the expensive parts: the input passed every check."""


@pytest.fixture
def stop_at_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import brushwork.encoders
    from brushwork.methods import feedforward, optimization

    def reached(*args: object, **kwargs: object) -> typing.NoReturn:
        raise ReachedWork

    monkeypatch.setattr(brushwork.encoders, "cached_vgg19", reached)
    monkeypatch.setattr(optimization, "optimize_image", reached)
    monkeypatch.setattr(feedforward.FeedForwardMethod, "prepare", reached)


@pytest.mark.usefixtures("stop_at_work")
def test_cli_values_give_only_one_line_errors(tmp_path: Path, capsys) -> None:
    from brushwork.cli import main
    from brushwork.cli.stylize import stylize_parser

    content, style = tmp_path / "c.png", tmp_path / "s.png"
    to_pil(smooth_image(32, 32, seed=1)).save(content)
    to_pil(smooth_image(32, 32, seed=2)).save(style)
    flags = {
        method: sorted(
            {
                o
                for action in stylize_parser(method)._actions
                for o in action.option_strings
                if o.startswith("--") and o not in ("--help", "--json", "--force", "--quiet")
            }
        )
        for method in ("gatys", "adain", "styleswap")
    }

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.sampled_from(sorted(flags)), st.data())
    def check(method: str, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(flags[method]), min_size=1, max_size=3))
        argv = [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(tmp_path / "o.png"),
            "-m",
            method,
            "-q",
        ]
        for flag in chosen:
            argv += [f"{flag}={data.draw(flag_values())}"]
        try:
            code = main(argv)
        except ReachedWork:
            return
        captured = capsys.readouterr()
        assert code == 2, (argv, captured)
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("brushwork: error: "), (argv, lines)
        assert not (tmp_path / "o.png").exists()

    check()


def test_finite_helper_makes_json_valid() -> None:
    import json

    from brushwork.events import finite

    data = {"a": math.nan, "b": [math.inf, 1.0], "c": {"d": -math.inf}}
    assert json.loads(json.dumps(finite(data), allow_nan=False)) == {
        "a": None,
        "b": [None, 1.0],
        "c": {"d": None},
    }
