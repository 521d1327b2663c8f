"""Options declared once (brushwork.options): validation from the declarations, the
descriptions front ends build controls from, and the CLI flags generated from them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from brushwork.errors import BrushworkError
from brushwork.options import REQUIRED, Options, fields_of, option, redefault, split_options


@dataclass
class Example(Options):
    path: str = option(REQUIRED, "a required path")
    count: int = option(3, "how many", minimum=1, maximum=10)
    rate: float = option(0.5, "a rate", minimum=0.0, exclusive_minimum=True)
    mode: str = option("a", "a mode", choices=("a", "b"))
    names: tuple[str, ...] = option(("x",), "names", choices=("x", "y"), min_items=1)
    sizes: tuple[int, ...] | None = option(None, "sizes", minimum=1)
    flag: bool = option(False, "a switch")

    def check(self) -> None:
        if self.mode == "b" and self.count > 5:
            raise BrushworkError("mode b takes at most 5")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": 0}, "count must be >= 1 and <= 10, not 0"),
        ({"count": 11}, "count must be <= 10, not 11"),
        ({"count": 2.5}, "count must be an integer, not 2.5"),
        ({"count": True}, "count must be an integer, not True"),
        ({"rate": 0.0}, "rate must be > 0, not 0.0"),
        ({"rate": float("nan")}, "rate must be a finite number, not nan"),
        ({"rate": "1"}, "rate must be a number, not '1'"),
        ({"mode": "c"}, "mode must be one of a, b, not 'c'"),
        ({"names": ()}, "names needs at least 1 value"),
        ({"names": ("z",)}, "each of names must be one of x, y, not 'z'"),
        ({"sizes": (1, 0)}, "each of sizes must be >= 1, not 0"),
        ({"flag": 1}, "flag must be true or false, not 1"),
        ({"mode": "b", "count": 6}, "mode b takes at most 5"),
        ({"path": None}, "path must be given"),
    ],
)
def test_validation_from_declarations(changes, message) -> None:
    with pytest.raises(BrushworkError) as error:
        Example("p").replace(**changes)
    assert str(error.value) == message


def test_valid_values_pass_and_lists_become_tuples() -> None:
    options = Example("p").replace(names=["x", "y"], sizes=None, rate=2)
    assert options.names == ("x", "y")
    with pytest.raises(BrushworkError, match="unknown option 'colour'"):
        Example("p").replace(colour=1)


def test_descriptions_carry_types_defaults_and_ranges() -> None:
    by_name = {d["name"]: d for d in Example.describe()}
    assert by_name["count"] == {
        **by_name["count"],
        "type": "int",
        "default": 3,
        "minimum": 1,
        "maximum": 10,
    }
    assert by_name["names"]["type"] == "list" and by_name["names"]["items"] == "str"
    assert by_name["sizes"]["optional"] is True
    assert by_name["path"]["required"] is True
    assert next(s.name for s in fields_of(Example)) == "path"


def test_split_options_routes_names() -> None:
    @dataclass
    class Other(Options):
        speed: int = option(1, "speed")

    first, second = split_options({"count": 2, "speed": 4}, Example, Other)
    assert first == {"count": 2} and second == {"speed": 4}
    with pytest.raises(BrushworkError, match="unknown option 'bogus'"):
        split_options({"bogus": 1}, Example, Other)


def test_every_method_and_trainer_declares_valid_defaults() -> None:
    from brushwork.methods import REGISTRY
    from brushwork.stylizer import Controls
    from brushwork.training import get_objective, trainers
    from brushwork.training.trainer import RunOptions

    Controls().validate()
    RunOptions().validate()
    for entry in REGISTRY.values():
        entry.load().default_options().validate()
    for name in trainers():
        specs = fields_of(get_objective(name).config_class)
        assert all(spec.help for spec in specs), name


def test_a_path_the_file_system_refuses_is_one_error() -> None:
    """Found by scripts/fuzz.py: a 5,000-character start image made ``Path.is_file`` raise
    ENAMETOOLONG from a method's ``check``."""
    from brushwork.methods.gatys import GatysOptions

    with pytest.raises(BrushworkError, match=r"^x{77}\.\.\.: File name too long$"):
        GatysOptions(init="x" * 5000).validate()


@dataclass(kw_only=True)
class Shared(Options):
    steps: int = option(10, "steps", minimum=1)
    crop: int = option(64, "crop side", minimum=16)


@dataclass
class Own(Shared):
    folder: str = option(REQUIRED, "a folder")
    steps: int = redefault(Shared, "steps", 500, "steps of this run")


def test_redefault_changes_the_default_and_keeps_the_declaration() -> None:
    specs = {spec.name: spec for spec in fields_of(Own)}
    assert specs["steps"].default == 500 and specs["steps"].help == "steps of this run"
    assert specs["steps"].minimum == 1  # the shared declaration's limits
    with pytest.raises(BrushworkError, match="steps"):
        Own("x", steps=0).validate()
    with pytest.raises(TypeError, match="no option 'step'"):
        redefault(Shared, "step", 1)


def test_a_subclass_lists_its_own_fields_first_as_its_constructor_takes_them() -> None:
    assert [spec.name for spec in fields_of(Own)] == ["folder", "steps", "crop"]
    assert Own("x").folder == "x" and Own("x").crop == 64


def test_every_trainer_shares_one_declaration() -> None:
    from brushwork.training.adain import TrainConfig
    from brushwork.training.decoders import DecoderConfig
    from brushwork.training.depth import DepthTrainConfig
    from brushwork.training.styleswap import InverseConfig
    from brushwork.training.temporal import TemporalConfig
    from brushwork.training.trainer import CropTrainingConfig, TrainingConfig

    assert issubclass(DepthTrainConfig, TrainingConfig)
    shared = {spec.name: spec for spec in fields_of(CropTrainingConfig)}
    for config in (TrainConfig, DecoderConfig, InverseConfig, TemporalConfig, DepthTrainConfig):
        assert issubclass(config, TrainingConfig)
        for spec in fields_of(config):
            if spec.name in shared:
                assert (spec.minimum, spec.maximum) == (
                    shared[spec.name].minimum,
                    shared[spec.name].maximum,
                ), (config.__name__, spec.name)
