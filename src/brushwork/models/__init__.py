"""The trained networks shipped with brushwork, by name: one registry for every method.

Each entry says which file holds the network, which method and encoder it belongs to, which
encoder layer a decoder starts from, and where its model card is. A per-style model (a
network trained for one style, as Johnson et al. 2016's) names the :class:`Style` it paints;
a model made of several networks (LapStyle's drafting and revision nets, Lin et al. 2021; a
distilled student's encoder, modulator and decoder) names its :attr:`ModelInfo.parts`, all
held in one safetensors file (:mod:`brushwork.models.parts` writes and reads them).

Front ends list these (``brushwork models``: :func:`listing`, :func:`listing_text`);
methods find their networks here (:func:`resolve`, which refuses a model whose parts do not
fit the method, or a per-style model of another method). Importing this module is cheap:
no torch (the files' metadata is read from their safetensors header).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError

PARTS_KEY = "parts"
"""Metadata key of a model's part names (a JSON list); each part's tensors are stored under
``part.NAME.`` (:data:`PART_PREFIX`)."""
STYLE_KEY = "style"
"""Metadata key of the :class:`Style` a per-style model paints (JSON)."""
THUMBNAIL_KEY = "thumbnail"
"""Metadata key of that style's thumbnail: a small PNG, base64."""
STYLES_KEY = "styles"
"""Metadata key of the styles a multi-style model paints (a JSON list of :class:`Style`),
in the order of its network's style parameters (conditional instance normalization)."""
THUMBNAILS_KEY = "thumbnails"
"""Metadata key of those styles' thumbnails: a JSON list of base64 PNGs."""
PART_PREFIX = "part."
PART_NAME = re.compile(r"[a-z][a-z0-9_-]*")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_HEADER = 100_000_000
"""The largest safetensors header read (the format's own limit)."""


@dataclass(frozen=True)
class Style:
    """The one style a per-style model paints: what it is called, where the image comes
    from, and the terms it may be used on."""

    name: str
    source: str
    licence: str

    def __post_init__(self) -> None:
        empty = [k for k, v in asdict(self).items() if not (isinstance(v, str) and v.strip())]
        if empty:
            raise BrushworkError(f"a model's style needs a {' and a '.join(empty)}")


def check_part_names(names: Sequence[str], what: str) -> tuple[str, ...]:
    """``names`` as a tuple, refused unless each is unique and made of lowercase letters,
    digits, ``-`` and ``_`` (a part's tensors are stored under ``part.NAME.``)."""
    bad = [n for n in names if not (isinstance(n, str) and PART_NAME.fullmatch(n))]
    if bad:
        raise BrushworkError(
            f"{what}: part name {bad[0]!r} is not lowercase letters, digits, '-' and '_'"
        )
    doubled = sorted({n for n in names if list(names).count(n) > 1})
    if doubled:
        raise BrushworkError(f"{what}: part {doubled[0]!r} is named twice")
    return tuple(names)


@dataclass(frozen=True)
class ModelInfo:
    """One shipped network, or several (:attr:`parts`) in one file."""

    name: str
    file: str
    """Its file, relative to this folder (or an absolute path)."""
    method: str
    """The method it belongs to; its checkpoint carries that method's
    :func:`checkpoint_method` (checked when loading)."""
    encoder: str
    """The encoder it was trained against, as checkpoints name it (``vgg19:relu4_1:512``)."""
    card: str
    """Its model card, relative to the repository."""
    description: str
    layer: str | None = None
    """The encoder layer a decoder starts from."""
    style: Style | None = None
    """The one style it paints (a per-style model); None: any style, or several."""
    styles: tuple[Style, ...] = ()
    """The styles a multi-style model paints, in its network's order (conditional instance
    normalization, Dumoulin et al. 2017); its file lists the same with their thumbnails."""
    parts: tuple[str, ...] = ()
    """The named networks its file holds; none: one network."""

    def __post_init__(self) -> None:
        check_part_names(self.parts, f"model {self.name!r}")

    @property
    def path(self) -> Path:
        """Where its file is (installed or not)."""
        file = Path(self.file)
        if file.is_absolute():
            return file
        return Path(str(resources.files("brushwork") / "models" / self.file))


def _decoder(
    name: str, method: str, layer: str, channels: int, card: str, description: str
) -> ModelInfo:
    return ModelInfo(
        name, f"{name}.safetensors", method, f"vgg19:{layer}:{channels}", card, description, layer
    )


_PEOPLE_ART = "PeopleArt (BathVisArtData/PeopleArt, JPEGImages/{}), via ../shared/train"
_PUBLIC_DOMAIN = "public domain: the artist died in {}"


def _painting(name: str, title: str, folder: str, died: int) -> Style:
    """A public-domain painting of the training corpus (its manifest's source and terms)."""
    return Style(name, f"{title}; {_PEOPLE_ART.format(folder)}", _PUBLIC_DOMAIN.format(died))


EIGHT_STYLES = (
    _painting("boccioni-city", "Umberto Boccioni, The City Rises (1910)", "Divisionism", 1916),
    _painting("russolo-lightning", "Luigi Russolo, I lampi (1910)", "Divisionism", 1947),
    _painting(
        "ciurlionis-sea",
        "Mikalojus Čiurlionis, Allegro (Sonata of the Sea, 1908)",
        "Symbolism",
        1911,
    ),
    _painting("roerich-ridge", "Nicholas Roerich, All Ridge (1924)", "Symbolism", 1947),
    _painting(
        "klimt-beeches", "Gustav Klimt, Beech Grove (Buchenhain)", "ArtNouveau(Modern)", 1918
    ),
    _painting("malevich-bureau", "Kazimir Malevich, Bureau and Room (1913)", "Cubism", 1935),
    _painting("hartley-e", "Marsden Hartley, E (1915)", "Cubism", 1943),
    _painting(
        "gauguin-sermon",
        "Paul Gauguin, Vision after the Sermon (1888)",
        "Synthetism",
        1903,
    ),
)
"""The styles of the conditional network ``johnson-8styles``, in its order."""
PAINTINGS = {s.name: s for s in EIGHT_STYLES}
"""Those styles by name (the per-style models paint some of them too)."""


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        _decoder(
            "adain",
            "adain",
            "relu4_1",
            512,
            "docs/models/adain.md",
            "AdaIN decoder (default): content + mean/std style loss",
        ),
        _decoder(
            "adain-laplacian",
            "adain",
            "relu4_1",
            512,
            "docs/models/adain.md",
            "AdaIN decoder trained with a Laplacian loss: keeps more content edges",
        ),
        _decoder(
            "adain-depth",
            "adain",
            "relu4_1",
            512,
            "docs/models/adain.md",
            "AdaIN decoder trained with a depth loss: keeps the depth layout",
        ),
        _decoder(
            "adain-temporal",
            "adain",
            "relu4_1",
            512,
            "docs/models/adain.md",
            "AdaIN decoder fine-tuned with a temporal loss on synthetic motion: less flicker "
            "in video",
        ),
        *(
            _decoder(
                f"wct-{layer}",
                "wct",
                layer,
                channels,
                "docs/models/wct.md",
                f"WCT reconstruction decoder from {layer}",
            )
            for layer, channels in (
                ("relu1_1", 64),
                ("relu2_1", 128),
                ("relu3_1", 256),
                ("relu4_1", 512),
                ("relu5_1", 512),
            )
        ),
        _decoder(
            "styleswap-inverse",
            "styleswap-inverse",
            "relu3_1",
            256,
            "docs/models/styleswap.md",
            "Style Swap inverse network: swapped relu3_1 features to an image in one pass",
        ),
        ModelInfo(
            "johnson-8styles",
            "johnson-8styles.safetensors",
            "johnson",
            "none",
            "docs/models/johnson.md",
            "Johnson et al. transform network, conditional instance norm: eight paintings in "
            "one network, blendable",
            styles=EIGHT_STYLES,
        ),
        *(
            ModelInfo(
                f"johnson{kind}-{style.name}",
                f"johnson{kind}-{style.name}.safetensors",
                "johnson",
                "none",
                "docs/models/johnson.md",
                f"Johnson et al. transform network for one painting ({what}): {title}",
                style=style,
            )
            for kind, what in (("", "width 1"), ("-fast", "width 0.5, a quarter of the cost"))
            for style, title in (
                (PAINTINGS["klimt-beeches"], "Klimt's Beech Grove"),
                (PAINTINGS["boccioni-city"], "Boccioni's The City Rises"),
            )
        ),
        *(
            ModelInfo(
                f"lapstyle-{style.name}",
                f"lapstyle-{style.name}.safetensors",
                "lapstyle",
                "vgg19:relu4_1:512",
                "docs/models/lapstyle.md",
                f"LapStyle drafting + revision networks for one painting: {title}",
                style=style,
                parts=("draft", "revision1", "revision2"),
            )
            for style, title in (
                (PAINTINGS["klimt-beeches"], "Klimt's Beech Grove"),
                (PAINTINGS["boccioni-city"], "Boccioni's The City Rises"),
            )
        ),
        ModelInfo(
            "depth",
            "depth.safetensors",
            "depth",
            "vgg19:relu4_1:512",
            "docs/models/depth.md",
            "monocular depth estimator (relative inverse depth), trained on indoor scenes",
        ),
    )
}


CHECKPOINT_METHODS = {"styleswap-inverse": "styleswap"}
"""Methods whose checkpoints carry another method's name: Style Swap's inverse network was
trained (``brushwork train styleswap-inverse`` still writes ``styleswap``) when it ran as
``styleswap --inverse``."""


def checkpoint_method(method: str) -> str:
    """The method name ``method``'s checkpoints carry."""
    return CHECKPOINT_METHODS.get(method, method)


def for_method(method: str) -> list[ModelInfo]:
    """The bundled networks of ``method``, in registry order."""
    return [m for m in MODELS.values() if m.method == method]


def resolve(
    model: str | Path, *, method: str, what: str = "model", parts: Sequence[str] = ()
) -> Path:
    """A bundled name of ``method`` (or of a method whose checkpoints carry the name
    ``method``: a trainer's start) or a file path → the file's path. ``parts``: the named
    networks ``method`` loads from the file (none: one network).

    Refused, each in one line, before any network loads: a bundled name of another method
    (a per-style model says which style and method it is for; so does a per-style file), a
    bundled file missing from this installation, a path that is no file, and a model whose
    parts are not ``parts`` (naming the missing and extra ones)."""
    name = str(model)
    info = MODELS.get(name)
    if info is not None:
        path = _bundled(info, method, what)
        held = info.parts
    else:
        path = _file(name, method, what)
        metadata = file_metadata(path)
        owner = metadata.get("method", "")
        fits = owner in (method, checkpoint_method(method))
        _refuse_other_style(what, name, style_of(metadata), owner, method, fits=fits)
        held = parts_of(metadata)
    _check_parts(what, name, held, check_part_names(parts, f"method {method}"), method)
    return path


def _refuse_other_style(
    what: str, name: str, style: Style | None, owner: str, method: str, *, fits: bool
) -> None:
    """A per-style model of method ``owner`` given to ``method``, which it does not
    ``fit``: one line (before the general one, which would not say it is per style)."""
    if style is not None and not fits:
        raise BrushworkError(
            f"{what} {name!r} is {owner or 'another method'}'s network for the one style "
            f"{style.name!r}; {method} cannot use it"
        )


def _bundled(info: ModelInfo, method: str, what: str) -> Path:
    """The file of a bundled model, if it is ``method``'s and installed."""
    name = info.name
    fits = method in (info.method, checkpoint_method(info.method))
    _refuse_other_style(what, name, info.style, info.method, method, fits=fits)
    if not fits:
        raise BrushworkError(
            f"{what} {name!r} is a bundled {info.method} model, not a "
            f"{method} one; {method}'s are: "
            f"{', '.join(m.name for m in for_method(method)) or 'none'}"
        )
    if not info.path.is_file():
        raise BrushworkError(
            f"the bundled {what} {name!r} is missing from this "
            f"installation ({info.path}); reinstall brushwork or pass a "
            "file"
        )
    return info.path


def _file(name: str, method: str, what: str) -> Path:
    """A file given by path (not a bundled name), if it is one."""
    path = Path(name).expanduser()
    if not path.exists():
        known = ", ".join(m.name for m in for_method(method))
        raise BrushworkError(
            f"{what} {name} is neither a bundled {method} model"
            f"{f' ({known})' if known else ''} nor an existing file"
        )
    if not path.is_file():
        raise BrushworkError(f"{what} {path} is not a file")
    return path


def _check_parts(
    what: str, name: str, held: Sequence[str], wanted: Sequence[str], method: str
) -> None:
    """Refuse, in one line naming them, the parts a model lacks or holds beyond what
    ``method`` loads (``wanted``; none: one network)."""
    missing = [p for p in wanted if p not in held]
    extra = [p for p in held if p not in wanted]
    if not (missing or extra):
        return
    problems = [
        f"{label} part{'s' if len(found) > 1 else ''} {', '.join(map(repr, found))}"
        for label, found in (("missing", missing), ("extra", extra))
        if found
    ]
    takes = f"uses the parts {', '.join(wanted)}" if wanted else "takes one network"
    raise BrushworkError(
        f"{what} {name!r} does not fit {method}: {'; '.join(problems)} ({method} {takes})"
    )


def file_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's metadata, read without torch from its header (8 bytes of
    little-endian length, then JSON whose ``__metadata__`` it is); ``{}`` for a file that
    is not safetensors (loading it then says what is wrong)."""
    try:
        with Path(path).open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size)) if 2 <= size <= MAX_HEADER else {}
    except (OSError, ValueError):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def parts_of(metadata: dict[str, str]) -> tuple[str, ...]:
    """The part names a file's metadata lists (none when it lists none, or nothing
    readable)."""
    try:
        names = json.loads(metadata.get(PARTS_KEY, "[]"))
    except ValueError:
        return ()
    return tuple(n for n in names if isinstance(n, str)) if isinstance(names, list) else ()


def style_of(metadata: dict[str, str]) -> Style | None:
    """The style a file's metadata names (None when it names none, or nothing readable)."""
    try:
        return Style(**json.loads(metadata[STYLE_KEY]))
    except (KeyError, ValueError, TypeError, BrushworkError):
        return None


def styles_of(metadata: dict[str, str]) -> tuple[Style, ...]:
    """The styles a multi-style model's metadata lists (none when it lists none, or
    nothing readable)."""
    try:
        return tuple(Style(**s) for s in json.loads(metadata[STYLES_KEY]))
    except (KeyError, ValueError, TypeError, BrushworkError):
        return ()


def read_thumbnails(path: Path) -> list[bytes | None]:
    """The PNG thumbnails of a multi-style model's styles, in order (None for one that is
    not a PNG); empty when the file lists none."""
    try:
        encoded = json.loads(file_metadata(path).get(THUMBNAILS_KEY, "[]"))
    except ValueError:
        return []
    found: list[bytes | None] = []
    for text in encoded if isinstance(encoded, list) else []:
        try:
            data = base64.b64decode(str(text), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        found.append(data if data.startswith(PNG_SIGNATURE) else None)
    return found


def read_thumbnail(path: Path) -> bytes | None:
    """The PNG thumbnail of a per-style model's style, from its file's metadata; None when
    the file has none (or none that is a PNG)."""
    try:
        data = base64.b64decode(file_metadata(path).get(THUMBNAIL_KEY, ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if data.startswith(PNG_SIGNATURE) else None


def row(info: ModelInfo, *, paths: bool = True) -> dict[str, Any]:
    """What the front ends show of a model: the registry entry, whether its file is
    installed and its size, and for a per-style model its style with the thumbnail as a
    ``data:`` URI (for an ``<img>``). ``paths=False`` leaves out the file's path (the
    service shows no server paths)."""
    installed = info.path.is_file()
    found: dict[str, Any] = {
        "name": info.name,
        "method": info.method,
        "layer": info.layer,
        "encoder": info.encoder,
        "installed": installed,
        "bytes": info.path.stat().st_size if installed else None,
        "card": info.card,
        "description": info.description,
        "parts": list(info.parts),
        "style": None,
    }
    if paths:
        found["file"] = str(info.path)
    if info.style is not None:
        png = read_thumbnail(info.path) if installed else None
        found["style"] = asdict(info.style) | {"thumbnail": _data_uri(png)}
    if info.styles:
        pngs = read_thumbnails(info.path) if installed else []
        pngs += [None] * (len(info.styles) - len(pngs))
        found["styles"] = [
            asdict(s) | {"thumbnail": _data_uri(p)} for s, p in zip(info.styles, pngs, strict=False)
        ]
    return found


def _data_uri(png: bytes | None) -> str | None:
    """A PNG as a ``data:`` URI (for an ``<img>``); None stays None."""
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def listing() -> list[dict[str, Any]]:
    """The bundled models grouped by method, in registry order: each group's networks for
    any style (``models``), then those for one style each (``styles``)."""
    groups: dict[str, dict[str, Any]] = {}
    for info in MODELS.values():
        group = groups.setdefault(info.method, {"method": info.method, "models": [], "styles": []})
        group["styles" if info.style or info.styles else "models"].append(row(info))
    return list(groups.values())


def listing_text(*, thumbnails: bool | None = None) -> str:
    """:func:`listing` for a terminal: a heading per method, its models, then its per-style
    models with their style (and, with ``thumbnails``, the style's thumbnail drawn in
    24-bit colour; by default when standard output is a terminal and ``NO_COLOR`` is
    unset)."""
    if thumbnails is None:
        thumbnails = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    lines = []
    for group in listing():
        lines.append(group["method"])
        lines += [f"  {_line(r)}" for r in group["models"]]
        if group["styles"]:
            lines.append("  per style:")
        for r in group["styles"]:
            lines.append(f"    {_line(r)}")
            for style in [r["style"]] if r["style"] else r.get("styles", []):
                lines.append(f"      {_style_line(style)}")
                if thumbnails and style["thumbnail"]:
                    png = base64.b64decode(style["thumbnail"].partition(",")[2])
                    lines += [f"      {line}" for line in preview(png)]
    return "\n".join(lines)


def _line(r: dict[str, Any]) -> str:
    """One model's line: name, size (or ``missing``), description, parts."""
    size = f"{r['bytes'] / 1e6:5.1f} MB" if r["installed"] else "missing "
    parts = f" [parts: {', '.join(r['parts'])}]" if r["parts"] else ""
    return f"{r['name']:<18} {size}  {r['description']}{parts}"


def _style_line(style: dict[str, Any]) -> str:
    """A per-style model's style: name, source, licence."""
    return f"style {style['name']!r} from {style['source']} ({style['licence']})"


def preview(png: bytes, columns: int = 24) -> list[str]:
    """A thumbnail as terminal lines ``columns`` wide: each character an upper half block
    (U+2580) whose 24-bit foreground is one pixel and background the pixel below."""
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(png)) as image:
        rgb = image.convert("RGB")
    rows = max(1, round(columns * rgb.height / rgb.width / 2))
    pixels = rgb.resize((columns, 2 * rows), Image.Resampling.BOX).load()
    return [
        "".join(
            "\x1b[38;2;{};{};{}m\x1b[48;2;{};{};{}m\u2580".format(
                *pixels[x, 2 * y], *pixels[x, 2 * y + 1]
            )
            for x in range(columns)
        )
        + "\x1b[0m"
        for y in range(rows)
    ]
