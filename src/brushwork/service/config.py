"""The service's settings: where jobs live, how many run at once, what an upload may be.

Every setting is declared once, in :class:`ServeOptions`, with :func:`brushwork.options.option`
(help, ranges, parsers): ``brushwork serve`` builds its flags from the declarations
(:func:`brushwork.cli.common.add_options`) and :meth:`ServiceConfig.validate` checks the
values with the CLI's messages. :class:`ServiceConfig` adds what is not a plain flag: tokens,
CORS origins, host names, operator networks and a stand-in encoder (tests).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.options import Options, option

TOKEN_ENV = "BRUSHWORK_TOKEN"
"""Environment variable with the bearer token(s) (several: separated by commas)."""

MB = 1_000_000
MIB = 2**20
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def default_workers() -> int:
    """One worker per two cores (at least one)."""
    return max(1, (os.cpu_count() or 1) // 2)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_duration(text: str) -> float:
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


def parse_size(text: str) -> int:
    """A byte size as :func:`brushwork.memory.parse_bytes` reads it, or ``0``."""
    from brushwork.memory import parse_bytes

    return 0 if text.strip() == "0" else parse_bytes(text)


@dataclass
class ServeOptions(Options):
    """The settings of ``brushwork serve`` that are plain flags (one declaration each)."""

    host: str = option("127.0.0.1", "address to bind (not loopback: needs --token)")
    port: int = option(8000, "port", minimum=1, maximum=65535)
    data: str = option("brushwork-data", "where jobs and results are kept", metavar="DIR")
    workers: int = option(
        default_workers(), "jobs running at once (default: one per two cores)", minimum=1
    )
    queue: int = option(16, "jobs that may wait; one more is answered 429", minimum=1)
    max_upload: int = option(
        25 * MB,
        "bytes of one request body, all files together",
        minimum=1,
        parse=parse_size,
        metavar="SIZE",
    )
    max_pixels: int = option(
        16_000_000, "pixels of one uploaded image, read from its header before decoding", minimum=1
    )
    max_video_frames: int = option(
        1800,
        "frames of one uploaded video (video jobs), read from its header, then counted",
        minimum=1,
        metavar="N",
    )
    max_video_seconds: float = option(
        120.0,
        "duration of one uploaded video (video jobs; seconds, or 2m)",
        minimum=0.0,
        exclusive_minimum=True,
        parse=parse_duration,
        metavar="DURATION",
    )
    max_styles: int = option(8, "style images one job may have", minimum=1)
    max_side: int = option(
        2048,
        "largest side a job may ask for: the output and every style image as planned "
        "(size, style-size, style-scale)",
        minimum=1,
        metavar="PX",
    )
    max_memory: int | None = option(
        None,
        "memory one job may use, e.g. 4G (default: the method's planner, or with several "
        "workers an equal share of 80% of the memory available at the start)",
        minimum=1,
        parse=parse_size,
        metavar="SIZE",
    )
    job_timeout: float = option(
        900.0,
        "a job running longer is stopped (seconds, or 15m, 2h)",
        minimum=0.0,
        exclusive_minimum=True,
        parse=parse_duration,
        metavar="DURATION",
    )
    expire: float = option(
        24 * 3600.0,
        "finished, failed and cancelled jobs are deleted this long after they end",
        minimum=0.0,
        exclusive_minimum=True,
        parse=parse_duration,
        metavar="DURATION",
    )
    max_attempts: int = option(
        2,
        "how many times a job may be started: a job that was running when the server "
        "stopped runs again at the next start, unless it was started this many times "
        "already; then it fails, saying so",
        minimum=1,
    )
    preview_every: int = option(
        10, "steps between previews of an optimization (0: none)", minimum=0, metavar="N"
    )
    preview_interval: float = option(
        1.0, "least seconds between two previews", minimum=0.0, cli=False
    )
    preview_side: int = option(384, "longest side of a preview", minimum=16, cli=False)
    max_readers: int = option(
        64, "event-stream readers of all jobs at once; one more is answered 503", minimum=1
    )
    max_readers_per_job: int = option(
        8, "event-stream readers of one job at once; one more is answered 429", minimum=1
    )
    max_connections: int = option(
        256,
        "connections uvicorn serves at once (more are answered 503); must exceed --max-readers",
        minimum=2,
    )
    style_cache: int = option(
        128 * MIB,
        "bytes of prepared styles each worker keeps for reuse, e.g. 256M (0: none)",
        minimum=0,
        parse=parse_size,
        metavar="SIZE",
    )
    threads: int | None = option(
        None, "torch threads (default: the cores divided among the workers)", minimum=1
    )
    log_level: str = option("info", "uvicorn's log level", choices=LOG_LEVELS)


@dataclass
class ServiceConfig(ServeOptions):
    """Everything ``brushwork serve`` can set; the defaults are safe for one machine.

    ``tokens``: bearer tokens, one of which every request but the page's own files must
    carry (none: no token needed; then only loopback addresses may be bound). ``cors``:
    origins whose pages may call the API. ``allow_hosts``: Host names answered besides the
    loopback ones while running without a token ('*': any). ``models``: networks the
    operator allows besides the bundled ones (name → file, for methods with a ``model``
    option: the method is checked when the file loads). ``encoder``: a VGG-19 standing in for
    the pretrained one (tests)."""

    data: Path = Path("brushwork-data")  # type: ignore[assignment]
    tokens: tuple[str, ...] = ()
    cors: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    models: dict[str, Path] = field(default_factory=dict)
    encoder: object = None

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.models = {name: Path(path) for name, path in dict(self.models).items()}

    def validate(self) -> None:
        """Every declared setting against its declaration (the CLI's messages), then
        :meth:`check`."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(ServeOptions)}
        ServeOptions(**{**values, "data": os.fspath(self.data)}).validate()
        self.check()

    def check(self) -> None:
        """Refuse settings the service cannot run with safely (one line each)."""
        if self.max_connections <= self.max_readers:
            raise BrushworkError(
                f"max-connections ({self.max_connections}) must be larger than max-readers "
                f"({self.max_readers}): readers would leave no connection for requests"
            )
        if any(not t or any(c.isspace() for c in t) or len(t) < 8 for t in self.tokens):
            raise BrushworkError("a token must be at least 8 characters, without spaces")
        if not self.tokens and not is_loopback(self.host):
            raise BrushworkError(
                f"binding to {self.host} (not loopback) needs a token: pass --token or set "
                f"{TOKEN_ENV}"
            )
        for name, path in self.models.items():
            if not Path(path).is_file():
                raise BrushworkError(f"--model {name}={path}: no such file")


def tokens_from(values: list[str] | None) -> tuple[str, ...]:
    """The tokens given on the command line, else those in ``$BRUSHWORK_TOKEN``."""
    given = list(values or [])
    if not given:
        given = [t for t in os.environ.get(TOKEN_ENV, "").split(",") if t.strip()]
    return tuple(t.strip() for t in given)
