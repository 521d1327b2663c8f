"""The service's settings: where jobs live, how many run at once, what an upload may be."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from brushwork.errors import BrushworkError

TOKEN_ENV = "BRUSHWORK_TOKEN"
"""Environment variable with the bearer token(s) (several: separated by commas)."""

MB = 1_000_000


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


@dataclass
class ServiceConfig:
    """Everything ``brushwork serve`` can set; the defaults are safe for one machine.

    ``models`` adds networks the operator allows besides the bundled ones (name → file, for
    methods with a ``model`` option: the method is checked when the file loads). ``encoder``
    stands a VGG-19 in for the pretrained one (tests)."""

    data: Path = Path("brushwork-data")
    workers: int = field(default_factory=default_workers)
    queue: int = 16
    """Jobs that may wait (not counting running ones); one more is answered 429."""
    max_upload: int = 25 * MB
    """Bytes of one request body (all files together)."""
    max_pixels: int = 16_000_000
    """Pixels of one uploaded image, read from its header before decoding."""
    max_styles: int = 8
    max_side: int = 2048
    """Largest output side a job may ask for (``size``)."""
    job_timeout: float = 900.0
    """Seconds a job may run before it is stopped."""
    expire: float = 24 * 3600.0
    """Seconds a finished, failed or cancelled job is kept."""
    max_attempts: int = 2
    """How often a job is started before a job that was running whenever the server stopped
    is failed instead of started again."""
    preview_every: int = 10
    """Steps between previews of an optimization (0: none)."""
    preview_interval: float = 1.0
    """Least seconds between two previews."""
    preview_side: int = 384
    tokens: tuple[str, ...] = ()
    cors: tuple[str, ...] = ()
    """Origins allowed to call the API from other pages (none by default)."""
    models: dict[str, Path] = field(default_factory=dict)
    max_memory: int | None = None
    """Bytes one job may use (default: the method's own planner, 80% of available memory
    shared among the workers)."""
    encoder: object = None

    def check(self, host: str = "127.0.0.1") -> None:
        """Refuse settings the service cannot run with (one line each)."""
        for name in (
            "workers",
            "queue",
            "max_upload",
            "max_pixels",
            "max_styles",
            "max_side",
            "max_attempts",
            "preview_side",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BrushworkError(
                    f"{name.replace('_', '-')} must be an integer >= 1, not {value!r}"
                )
        for name in ("job_timeout", "expire"):
            if not getattr(self, name) > 0:
                raise BrushworkError(f"{name.replace('_', '-')} must be > 0 seconds")
        if any(not t or any(c.isspace() for c in t) or len(t) < 8 for t in self.tokens):
            raise BrushworkError("a token must be at least 8 characters, without spaces")
        if not self.tokens and not is_loopback(host):
            raise BrushworkError(
                f"binding to {host} (not loopback) needs a token: pass --token or set {TOKEN_ENV}"
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
