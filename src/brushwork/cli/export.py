"""``brushwork export NAME -o FILE [options]``: one command per registered exporter."""

from __future__ import annotations

from collections.abc import Sequence

from brushwork.cli.common import _Parser, add_options, given
from brushwork.errors import BrushworkError


def cmd_export(argv: Sequence[str]) -> int:
    """``brushwork export NAME -o FILE``: a method's networks to ONNX."""
    from brushwork.methods import REGISTRY, get_entry, load_object

    names = [n for n, e in REGISTRY.items() if e.exporter]
    if not argv or argv[0] in ("-h", "--help"):
        parser = _Parser(
            prog="brushwork export",
            description="Export a method to ONNX: "
            + ", ".join(names)
            + ". `brushwork export NAME -h` for its options.",
        )
        parser.add_argument("method", choices=names)
        parser.parse_args(list(argv))
        return 0
    name, rest = argv[0], argv[1:]
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
