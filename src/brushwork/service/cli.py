"""``brushwork serve``: the flags (generated from :class:`~brushwork.service.config.ServeOptions`),
then uvicorn."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brushwork.errors import BrushworkError
from brushwork.service.config import ServeOptions, ServiceConfig

if TYPE_CHECKING:
    import uvicorn

DESCRIPTION = (
    "Serve the web page and the HTTP API (FastAPI on uvicorn; OpenAPI docs at /docs). Jobs "
    "run in a fixed number of workers from a bounded queue and are stored under --data "
    "(SQLite index, one folder per job): a restarted server finishes what it had accepted. "
    "Binds to 127.0.0.1; a non-loopback address needs a token."
)
PREFIX = "serve_"


def _model(text: str) -> tuple[str, Path]:
    name, equals, path = text.partition("=")
    if not equals or not name or not path:
        raise argparse.ArgumentTypeError(f"--model expects NAME=PATH, not {text!r}")
    return name, Path(path).expanduser()


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``brushwork serve``."""
    from brushwork.cli.common import _Parser, add_options
    from brushwork.service.config import TOKEN_ENV

    parser = _Parser(prog="brushwork serve", description=DESCRIPTION)
    add_options(parser, ServeOptions, PREFIX)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help=f"bearer token required on every request but the page's own files (repeatable; "
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
        "--model",
        action="append",
        default=[],
        type=_model,
        metavar="NAME=PATH",
        help="offer a trained network (checkpoint of `brushwork train`) as NAME (repeatable)",
    )
    return parser


def config_from(args: argparse.Namespace) -> ServiceConfig:
    """The checked :class:`ServiceConfig` of parsed flags."""
    from brushwork.cli.common import given
    from brushwork.service.config import tokens_from

    values = given(args, PREFIX)
    if "data" in values:
        values["data"] = Path(values["data"]).expanduser()
    config = ServiceConfig(
        **values,
        tokens=tokens_from(args.token),
        cors=tuple(args.cors),
        allow_hosts=tuple(args.allow_host),
        models=dict(args.model),
    )
    config.validate()
    return config


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, made before anything else: a port in use (or an
    address this machine does not have) is one line, not a server that starts and stops."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise BrushworkError(
            f"cannot listen on {shown}:{port}: {error.strerror or error}"
        ) from None
    return sock


def _server(app: Any, config: ServiceConfig) -> uvicorn.Server:
    """The uvicorn server of ``app``."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            timeout_graceful_shutdown=3,
            limit_concurrency=config.max_connections,
            access_log=config.log_level == "debug",
        )
    )


def cmd_serve(argv: Sequence[str]) -> int:
    """Run the server until interrupted. Everything is checked before the data folder is
    made or the server starts: the flags, the operator's models, the job index, the port."""
    from brushwork.service.jobs import operator_models
    from brushwork.service.store import INDEX, check_index

    config = config_from(build_parser().parse_args(list(argv)))
    operator_models(config.models)
    check_index(config.data / INDEX)
    import torch

    try:
        import uvicorn  # noqa: F401  (here to refuse early; _server uses it)

        from brushwork.service.app import create_app
    except ImportError as error:
        raise BrushworkError(
            f"brushwork serve needs FastAPI and uvicorn ({error.name} is missing): "
            "pip install 'brushwork[service]'"
        ) from None

    with listen(config.host, config.port) as sock:
        try:
            config.data.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BrushworkError(
                f"cannot create --data {config.data}: {error.strerror or error}"
            ) from None
        # one process, N worker threads: split the cores among them
        torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // config.workers))
        app = create_app(config)
        shown = f"[{config.host}]" if ":" in config.host else config.host
        print(
            f"brushwork: serving http://{shown}:{sock.getsockname()[1]}/ (data: {config.data}, "
            f"{config.workers} worker{'s' if config.workers != 1 else ''})",
            file=sys.stderr,
            flush=True,
        )
        _server(app, config).run(sockets=[sock])
    return 0
