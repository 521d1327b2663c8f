"""``brushwork export NAME -o FILE [options]``: one command per registered exporter."""

from __future__ import annotations

from collections.abc import Sequence

from brushwork.cli.common import _Parser, add_options, given, pick_named
from brushwork.errors import BrushworkError


def cmd_export(argv: Sequence[str]) -> int:
    """``brushwork export NAME -o FILE``: a method's networks to ONNX."""
    from brushwork.methods import REGISTRY, get_entry, load_object

    names = [n for n, e in REGISTRY.items() if e.exporter]
    picked = pick_named(
        argv,
        prog="brushwork export",
        description=f"Export a method to ONNX: {', '.join(names)}. "
        "`brushwork export NAME -h` for its options.",
        dest="method",
        names=names,
    )
    if picked is None:
        return 0
    name, rest = picked
    entry = get_entry(name)
    if not entry.exporter:
        raise BrushworkError(f"{name} has no ONNX export; exportable: {', '.join(names)}")
    from brushwork.export import ExportOptions

    cls = entry.load()
    parser = _Parser(
        prog=f"brushwork export {name}", description=f"Export {name} ({entry.description}) to ONNX."
    )
    add_options(parser.add_argument_group("export"), ExportOptions, "e_")
    add_options(
        parser.add_argument_group(f"{name} options"),
        cls.options_class,
        "m_",
        defaults=cls.default_options(),
    )
    args = parser.parse_args(list(rest))
    export = load_object(entry.exporter)
    options = ExportOptions(**given(args, "e_"))
    options.validate()
    method_options = cls.default_options().replace(**given(args, "m_"))
    print(export(options, method_options))  # type: ignore[operator]
    return 0
