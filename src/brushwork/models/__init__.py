"""The trained networks shipped with brushwork, by name: one registry for every method.

Each entry says which file holds the network, which method and encoder it belongs to, which
encoder layer a decoder starts from, and where its model card is. Front ends list these
(``brushwork models``); methods find their bundled networks here (:func:`resolve`).
Importing this module is cheap: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from brushwork.errors import BrushworkError


@dataclass(frozen=True)
class ModelInfo:
    """One shipped network."""

    name: str
    file: str
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

    @property
    def path(self) -> Path:
        return Path(str(resources.files("brushwork") / "models" / self.file))


def _decoder(
    name: str, method: str, layer: str, channels: int, card: str, description: str
) -> ModelInfo:
    return ModelInfo(
        name, f"{name}.safetensors", method, f"vgg19:{layer}:{channels}", card, description, layer
    )


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


def resolve(model: str | Path, *, method: str, what: str = "model") -> Path:
    """A bundled name of ``method`` (or of a method whose checkpoints carry the name
    ``method``: a trainer's start) or a file path → the file's path. A bundled name of
    another method, or a bundled file missing from this installation, is refused."""
    name = str(model)
    info = MODELS.get(name)
    if info is not None:
        if method not in (info.method, checkpoint_method(info.method)):
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
