"""What the contract tests (test_contract_methods.py, test_contract_trainers.py) need to know
about each registered method and trainer that cannot be derived from the registry, and the
one argv builder for `brushwork train` that every trainer's tests use.

A new method gets the method contract by being registered: an optimization method needs
nothing here; a one-pass method needs a row in :data:`ONE_PASS_NETWORKS` (how to write its
tiny random networks), and a method with an exporter a row in :data:`ONNX_RUNNERS` (how a
deployment runs the exported files). A new trainer needs a row in :data:`TRAINER_DATA`.
The contract tests fail with a pointer here when a row is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from conftest import random_decoder, save_decoder, smooth_image
from PIL import Image

from brushwork.encoders import VGG19
from brushwork.image import to_pil
from brushwork.methods import REGISTRY
from brushwork.methods.feedforward import DECODER_LAYERS

# ----------------------------------------------------------------------------- methods


def _wct_folder(folder: Path, encoder: VGG19) -> dict[str, Any]:
    """A random decoder per level, as `--models DIR` takes them."""
    target = folder / "wct"
    target.mkdir()
    for seed, layer in enumerate(DECODER_LAYERS, 1):
        save_decoder(target / f"{layer}.safetensors", encoder, "wct", layer, seed)
    return {"models": str(target)}


JOHNSON_STYLES = ("first", "second")
"""The styles of the tiny johnson network (:func:`save_johnson`)."""


def save_johnson(path: Path, styles: tuple[str, ...] = JOHNSON_STYLES, seed: int = 3) -> Path:
    """A tiny random conditional transform network for ``styles`` (each with its own
    normalization parameters, so that they paint differently), as `brushwork train johnson`
    writes one."""
    from brushwork.checkpoints import Checkpoint, save_checkpoint
    from brushwork.methods.johnson_net import TransformNet
    from brushwork.models import Style
    from brushwork.models.parts import style_metadata

    torch.manual_seed(seed)
    network = TransformNet(len(styles), width=0.25)
    with torch.no_grad():
        for norm in network.norms():
            norm.gamma.uniform_(0.5, 1.5)
            norm.beta.normal_(0.0, 0.5)
    pictures = [to_pil(smooth_image(12, 12, seed=i)) for i in range(len(styles))]
    metadata = style_metadata(
        [(Style(n, f"{n}.png", "test"), p) for n, p in zip(styles, pictures, strict=True)]
    )
    checkpoint = Checkpoint("johnson", "none", network.state_dict())
    return save_checkpoint(path, checkpoint, metadata=metadata)


def save_lapstyle(path: Path, encoder: VGG19, seed: int = 4) -> Path:
    """A tiny random LapStyle model for ``encoder``: a random draft (:func:`random_decoder`,
    random AdaIN skips and style statistics) and revisions that add random detail, written
    with its parts and style as `brushwork train lapstyle` writes one."""
    from brushwork.methods.feedforward import decoder_id
    from brushwork.methods.lapstyle_net import PARTS, LapStyleNet
    from brushwork.models import Style
    from brushwork.models.parts import save_model

    network = LapStyleNet(width=encoder.out_channels["relu4_1"] / 512)
    network.draft.decoder.load_state_dict(random_decoder(encoder, seed).state_dict())
    torch.manual_seed(seed)
    with torch.no_grad():
        for skip in (network.draft.skip3, network.draft.skip2):
            skip.weight.normal_(0, 0.1)
        for mean, std in network.draft.style().values():
            mean.uniform_(0, 2)
            std.uniform_(0.5, 2)
        for revision in network.revisions():
            revision.up[-1].weight.normal_(0, 0.01)
    return save_model(
        path,
        parts={part: getattr(network, part).state_dict() for part in PARTS},
        method="lapstyle",
        encoder=decoder_id("relu4_1", encoder.out_channels["relu4_1"]),
        style=Style("dots", "dots.png", "test"),
        style_image=to_pil(smooth_image(12, 12, seed=seed)),
        dtype=torch.float32,
    )


ONE_PASS_NETWORKS: dict[str, Callable[[Path, VGG19], dict[str, Any]]] = {
    "adain": lambda folder, encoder: {
        "model": str(save_decoder(folder / "adain.safetensors", encoder))
    },
    "wct": _wct_folder,
    "johnson": lambda folder, encoder: {"model": str(save_johnson(folder / "johnson.safetensors"))},
    "lapstyle": lambda folder, encoder: {
        "model": str(save_lapstyle(folder / "lapstyle.safetensors", encoder))
    },
    "styleswap-inverse": lambda folder, encoder: {
        "model": str(save_decoder(folder / "inverse.safetensors", encoder, "styleswap", "relu3_1"))
    },
}
"""One-pass method → writes its tiny random networks in a folder for the tiny encoder and
returns the options that name them."""

ITERATIONS = 2
"""Steps of an optimization method in the contract (enough to see progress and a change)."""


def method_options(name: str, folder: Path, encoder: VGG19) -> dict[str, Any]:
    """The options that make ``name`` run fast on the tiny encoder: two iterations for an
    optimization method, tiny random networks for a one-pass one."""
    if REGISTRY[name].kind == "optimization":
        return {"iterations": ITERATIONS}
    if name not in ONE_PASS_NETWORKS:
        raise AssertionError(
            f"{name} is a one-pass method: add how to write its tiny networks to "
            "tests/contract.py's ONE_PASS_NETWORKS"
        )
    return ONE_PASS_NETWORKS[name](folder, encoder)


Runner = Callable[[Path, torch.Tensor, torch.Tensor, Any], np.ndarray]
"""(exported file or folder, content, style, the method's options) → the image."""


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_adain_export(
    path: Path, content: torch.Tensor, style: torch.Tensor, options: Any
) -> np.ndarray:
    """AdaIN's one graph: (content, style, alpha) → image."""
    feeds = {
        "content": content.numpy(),
        "style": style.numpy(),
        "alpha": np.array([options.alpha], dtype=np.float32),
    }
    return _session(path).run(["image"], feeds)[0]


def run_wct_export(
    folder: Path, content: torch.Tensor, style: torch.Tensor, options: Any = None
) -> np.ndarray:
    """WCT's export run as a deployment would: the onnxruntime graphs of each level and the
    transform of wct.json in numpy (float64 eigendecompositions)."""
    description = json.loads((folder / "wct.json").read_text())
    alpha = description["alpha"]

    def stats(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = f[0].reshape(f.shape[1], -1).astype(np.float64)
        mean = x.mean(1, keepdims=True)
        cov = (x - mean) @ (x - mean).T / max(x.shape[1] - 1, 1)
        return mean, cov

    def power(cov: np.ndarray, p: float) -> np.ndarray:
        cov = cov + 1e-5 * np.mean(np.diag(cov)) * np.eye(len(cov))
        values, vectors = np.linalg.eigh(cov)
        keep = values > 1e-5 * values[-1]
        powered = np.where(keep, np.clip(values, 1e-30, None) ** p, 0.0)
        return (vectors * powered) @ vectors.T

    def pad(image: np.ndarray, multiple: int, least: int) -> np.ndarray:
        height, width = image.shape[-2:]
        bottom = max(-height % multiple, least - height)
        right = max(-width % multiple, least - width)
        mode = "reflect" if min(height, width) > max(bottom, right) else "edge"
        return np.pad(image, ((0, 0), (0, 0), (0, bottom), (0, right)), mode=mode)

    def mirror(image: np.ndarray, margin: int) -> tuple[np.ndarray, int, int]:
        rows, cols = min(margin, image.shape[-2] - 1), min(margin, image.shape[-1] - 1)
        return np.pad(image, ((0, 0), (0, 0), (rows, rows), (cols, cols)), "reflect"), rows, cols

    image = content.numpy()
    for level in description["levels"]:
        encode, decode = _session(folder / level["encoder"]), _session(folder / level["decoder"])
        framed, top, left = mirror(image, level["margin"])
        f = encode.run(None, {"image": pad(framed, level["multiple"], level["min_side"])})[0]
        s = encode.run(None, {"image": style.numpy()})[0]
        c_mean, c_cov = stats(f)
        s_mean, s_cov = stats(s)
        x = f[0].reshape(f.shape[1], -1).astype(np.float64)
        out = power(s_cov, 0.5) @ power(c_cov, -0.5) @ (x - c_mean) + s_mean
        mixed = alpha * out.reshape(f.shape) + (1 - alpha) * f
        decoded = decode.run(None, {"features": mixed.astype(np.float32)})[0]
        height, width = image.shape[-2:]
        image = np.clip(decoded[..., top : top + height, left : left + width], 0, 1)
    return image


def run_johnson_export(
    path: Path, content: torch.Tensor, style: torch.Tensor, options: Any
) -> np.ndarray:
    """The transform network's one graph: (content, style weights) → image; the weights
    of the styles the options choose, in the order the graph's metadata names them."""
    from brushwork.methods.johnson import style_weights

    session = _session(path)
    names = json.loads(session.get_modelmeta().custom_metadata_map["brushwork_styles"])
    weights = np.array([style_weights(names, options.styles, "export")], dtype=np.float32)
    return session.run(["image"], {"content": content.numpy(), "style_weights": weights})[0]


def run_lapstyle_export(
    path: Path, content: torch.Tensor, style: torch.Tensor, options: Any
) -> np.ndarray:
    """LapStyle's one graph: (content, alpha) → image."""
    feeds = {"content": content.numpy(), "alpha": np.array([options.alpha], dtype=np.float32)}
    return _session(path).run(["image"], feeds)[0]


@dataclass(frozen=True)
class Export:
    """How the contract exports a method and runs the result."""

    output: str
    """File or folder name of the export (its extension says which)."""
    run: Runner
    options: dict[str, Any]
    """Option changes that keep the export small (fewer graphs)."""


ONNX_RUNNERS: dict[str, Export] = {
    "adain": Export("adain.onnx", run_adain_export, {"alpha": 0.7}),
    "wct": Export("wct", run_wct_export, {"alpha": 0.7, "levels": ("relu2_1", "relu1_1")}),
    "johnson": Export(
        "johnson.onnx",
        run_johnson_export,
        {"styles": (f"{JOHNSON_STYLES[1]}:2", JOHNSON_STYLES[0])},
    ),
    "lapstyle": Export("lapstyle.onnx", run_lapstyle_export, {"alpha": 0.6}),
}
"""Method with an exporter → how its export is run."""

# ----------------------------------------------------------------------------- trainers


def image_folder(path: Path, count: int, seed: int, size: int = 32) -> Path:
    """``count`` smooth images of ``size`` px in a new folder."""
    path.mkdir(parents=True)
    for i in range(count):
        to_pil(smooth_image(size, size, seed=seed + i)).save(path / f"{i}.png")
    return path


def depth_folder(path: Path, count: int, size: int = 32) -> Path:
    """``count`` identical RGB + depth pairs (rgb/, depth/ PNGs, millimetres) of ``size`` px:
    a floor whose depth and shade change by row only, so a horizontal flip changes
    nothing."""
    (path / "rgb").mkdir(parents=True)
    (path / "depth").mkdir()
    rows = np.linspace(4.0, 1.0, size)[:, None] * np.ones((1, size))
    shade = (255 * (1 - rows / 5)).astype(np.uint8)
    rgb = np.stack([shade, shade // 2 + 40, 255 - shade], -1)
    for i in range(count):
        Image.fromarray(rgb).save(path / "rgb" / f"{i}.png")
        Image.fromarray((rows * 1000).astype(np.uint16)).save(path / "depth" / f"{i}.png")
    return path


def _content_and_style(data: tuple[Path, ...]) -> list[str]:
    return ["--content-dir", str(data[0]), "--style-dir", str(data[1])]


CROPS = ["--crop-size", "16", "--load-size", "32", "--lr", "3e-3"]


@dataclass(frozen=True)
class TrainerData:
    """How `brushwork train NAME` is given its data, small crops, and data that gives the
    same batch at every step (so that a resumed run can match an uninterrupted one)."""

    flags: Callable[[tuple[Path, ...]], list[str]]
    sizes: list[str]
    fixed: Callable[[Path], tuple[tuple[Path, ...], list[str]]]
    """A folder → data whose every batch is the same, and the flags that keep it so."""
    start: Callable[[Path, VGG19], list[str]] = lambda folder, encoder: []
    """A folder and the tiny encoder → the flags of a tiny network to start from, for a
    trainer whose default start is a bundled, full-width network."""


def _start(method: str, layer: str) -> Callable[[Path, VGG19], list[str]]:
    """``--init-from`` a random ``layer`` decoder of ``method`` for the tiny encoder."""

    def write(folder: Path, encoder: VGG19) -> list[str]:
        path = save_decoder(folder / f"start-{method}-{layer}.safetensors", encoder, method, layer)
        return ["--init-from", str(path)]

    return write


def _fixed_images(folder: Path) -> tuple[tuple[Path, ...], list[str]]:
    """One 16 px image in each of two folders, the same image in both, loaded and cropped
    whole."""
    data = image_folder(folder / "a", 1, 0, 16), image_folder(folder / "b", 1, 0, 16)
    return data, ["--load-size", "16", "--crop-size", "16"]


def _fixed_depth(folder: Path) -> tuple[tuple[Path, ...], list[str]]:
    """Identical flip-invariant pairs, cropped whole, without colour jitter."""
    sizes = ["--side", "32", "--crop-height", "32", "--crop-width", "32", "--jitter", "0"]
    return (depth_folder(folder / "pairs", 5),), sizes


def _content_and_style_image(data: tuple[Path, ...]) -> list[str]:
    style = data[1] / "0.png"  # the first of image_folder's images
    return ["--content-dir", str(data[0]), "--style", str(style), "--style-size", "16"]


TRAINER_DATA: dict[str, TrainerData] = {
    "adain": TrainerData(_content_and_style, CROPS, _fixed_images),
    "adain-temporal": TrainerData(
        _content_and_style, CROPS, _fixed_images, _start("adain", "relu4_1")
    ),
    "johnson": TrainerData(_content_and_style_image, [*CROPS, "--width", "0.25"], _fixed_images),
    "lapstyle": TrainerData(
        lambda data: ["--content-dir", str(data[0]), "--style", str(data[1] / "0.png")],
        [*CROPS, "--style-size", "64", "--draft-from", "none", "--samples", "32"],
        _fixed_images,
    ),
    "styleswap-inverse": TrainerData(
        _content_and_style, CROPS, _fixed_images, _start("wct", "relu3_1")
    ),
    "wct": TrainerData(
        lambda data: ["--images", ",".join(map(str, data)), "--layer", "relu3_1"],
        CROPS,
        _fixed_images,
    ),
    "depth": TrainerData(
        lambda data: ["--data", str(data[0])],
        ["--side", "32", "--crop-height", "24", "--crop-width", "32"],
        _fixed_depth,
    ),
}
"""Trainer → its data flags, small sizes, fixed data and tiny start."""


def trainer_data(name: str) -> TrainerData:
    if name not in TRAINER_DATA:
        raise AssertionError(f"add how `brushwork train {name}` takes its data to TRAINER_DATA")
    return TRAINER_DATA[name]


def train_argv(name: str, data: tuple[Path, ...], out: Path, *extra: str) -> list[str]:
    """`brushwork train NAME` on ``data`` into ``out``: 2 iterations of batches of 2 small
    crops, no worker processes, a log record every step, quiet; ``extra`` last (it wins)."""
    found = trainer_data(name)
    return [
        "train",
        name,
        *found.flags(data),
        "--out",
        str(out),
        "--iterations",
        "2",
        "--batch-size",
        "2",
        *found.sizes,
        "--workers",
        "0",
        "--log-every",
        "1",
        "-q",
        *extra,
    ]
