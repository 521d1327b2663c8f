"""``brushwork serve``: the flags, then uvicorn."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.service.config import ServiceConfig

DESCRIPTION = (
    "Serve the web page and the HTTP API (FastAPI on uvicorn; OpenAPI docs at /docs). Jobs "
    "run in a fixed number of workers from a bounded queue and are stored under --data "
    "(SQLite index, one folder per job): a restarted server finishes what it had accepted. "
    "Binds to 127.0.0.1; a non-loopback address needs a token."
)


def _seconds(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    factor = units.get(value[-1:])
    number = value[:-1] if factor else value
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        raise BrushworkError(f"expected a duration like 90, 15m, 24h or 7d, not {text!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise BrushworkError(f"a duration must be > 0, not {text!r}")
    return seconds


def _model(text: str) -> tuple[str, Path]:
    name, equals, path = text.partition("=")
    if not equals or not name or not path:
        raise BrushworkError(f"--model expects NAME=PATH, not {text!r}")
    return name, Path(path).expanduser()


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``brushwork serve``."""
    from brushwork.cli import _Parser
    from brushwork.memory import parse_bytes
    from brushwork.service.config import MB, TOKEN_ENV, default_workers

    d = ServiceConfig()
    parser = _Parser(prog="brushwork serve", description=DESCRIPTION)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; others need --token)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--data",
        default=str(d.data),
        metavar="DIR",
        help=f"where jobs and results are kept (default: {d.data})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help=f"jobs running at once (default: one per two cores: {default_workers()})",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=d.queue,
        help=f"jobs that may wait; more are answered 429 (default: {d.queue})",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help=f"bearer token required on every API request (repeatable; "
        f"default: ${TOKEN_ENV}, comma-separated)",
    )
    parser.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow pages of ORIGIN to call the API (repeatable; default: none)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="answer for this Host name too when running without a token "
        "(e.g. behind a proxy; '*' for any)",
    )
    parser.add_argument(
        "--max-upload",
        type=parse_bytes,
        default=d.max_upload,
        metavar="SIZE",
        help=f"bytes of one request, all files (default: {d.max_upload // MB}M)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=d.max_pixels,
        help=f"pixels of one uploaded image (default: {d.max_pixels:,})",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=d.max_side,
        metavar="PX",
        help=f"largest output side a job may ask for (default: {d.max_side})",
    )
    parser.add_argument(
        "--max-memory",
        type=parse_bytes,
        default=None,
        metavar="SIZE",
        help="memory one job may use, e.g. 4G (default: 80%% of available)",
    )
    parser.add_argument(
        "--job-timeout",
        type=_seconds,
        default=d.job_timeout,
        metavar="DURATION",
        help=f"a job running longer is stopped (default: {d.job_timeout:g} s)",
    )
    parser.add_argument(
        "--expire",
        type=_seconds,
        default=d.expire,
        metavar="DURATION",
        help="finished jobs and results are deleted after this (default: 24h)",
    )
    parser.add_argument(
        "--preview-every",
        type=int,
        default=d.preview_every,
        metavar="N",
        help=f"steps between previews of an optimization, 0: none (default: {d.preview_every})",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        type=_model,
        metavar="NAME=PATH",
        help="offer a trained network (checkpoint of `brushwork train`) as NAME (repeatable)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads (default: the cores divided among the workers)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default: info)",
    )
    return parser


def config_from(args: argparse.Namespace) -> tuple[ServiceConfig, str]:
    """(ServiceConfig, host) from parsed flags."""
    from brushwork.service.config import tokens_from

    if not 0 < args.port < 65536:
        raise BrushworkError(f"--port must be from 1 to 65535, not {args.port}")
    if args.preview_every < 0:
        raise BrushworkError(f"--preview-every must be >= 0, not {args.preview_every}")
    config = ServiceConfig(
        data=Path(args.data).expanduser(),
        workers=args.workers,
        queue=args.queue,
        max_upload=args.max_upload,
        max_pixels=args.max_pixels,
        max_side=args.max_side,
        max_memory=args.max_memory,
        job_timeout=args.job_timeout,
        expire=args.expire,
        preview_every=args.preview_every,
        tokens=tokens_from(args.token),
        cors=tuple(args.cors),
        models=dict(args.model),
    )
    config.check(args.host)
    return config, args.host


def cmd_serve(argv: Sequence[str]) -> int:
    """Run the server until interrupted."""
    args = build_parser().parse_args(list(argv))
    config, host = config_from(args)
    try:
        config.data.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BrushworkError(
            f"cannot create --data {config.data}: {error.strerror or error}"
        ) from None
    import torch

    try:
        import uvicorn

        from brushwork.service.app import create_app
    except ImportError as error:
        raise BrushworkError(
            f"brushwork serve needs FastAPI and uvicorn ({error.name} is missing): "
            "pip install 'brushwork[service]'"
        ) from None

    # one process, N worker threads: split the cores among them
    if args.threads is not None and args.threads < 1:
        raise BrushworkError(f"--threads must be >= 1, not {args.threads}")
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // config.workers))
    app = create_app(config, host=host, allow_hosts=tuple(args.allow_host))
    shown = f"[{host}]" if ":" in host else host
    print(
        f"brushwork: serving http://{shown}:{args.port}/ (data: {config.data}, "
        f"{config.workers} worker{'s' if config.workers != 1 else ''})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=3,
        access_log=args.log_level == "debug",
    )
    return 0
