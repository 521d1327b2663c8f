"""Export a trained AdaIN model to ONNX: encoder, AdaIN and decoder in one graph.

    brushwork export adain -o adain.onnx [--model NAME|PATH] [--opset 17]

The graph (:class:`AdaINGraph`) takes

* ``content``: float32 (1, 3, H, W), RGB in [0, 1], H and W at least 9;
* ``style``: float32 (1, 3, H', W'), RGB in [0, 1], H' and W' at least 8 (the encoder pools
  three times before relu4_1);
* ``alpha``: float32 (1,), the content–style trade-off in [0, 1] (1: full style);

and returns ``image``, float32 (1, 3, H, W) in [0, 1]: what ``brushwork stylize --method
adain`` computes for one style without masks, with the same code (:func:`stylized_features`,
:func:`~brushwork.ops.adain`, :func:`~brushwork.ops.mean_std`). The content is padded to a
multiple of 8 inside the graph (reflection, as :func:`~brushwork.methods.adain.pad_to_multiple`),
the padding computed from the input's shape, and the result is cropped back to H×W.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``):
it records the shape arithmetic of the padding as graph operations; the ``onnx`` package
must be installed (``pip install 'brushwork[onnx]'``, which also brings ``onnxruntime`` to run
the file).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork import __version__
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.image import check_output_path, write_atomically
from brushwork.methods.adain import (
    BUNDLED,
    LAYER,
    Decoder,
    encoder_id,
    load_decoder,
    resolve_model,
    stylized_features,
)
from brushwork.ops import mean_std

MULTIPLE = 8
"""The content is padded to a multiple of this (the encoder pools three times)."""
INPUT_NAMES = ("content", "style", "alpha")
OUTPUT_NAMES = ("image",)
MIN_OPSET = 11
"""The lowest opset with a Pad of computed sizes (checked with onnxruntime up to 23)."""


def pad_content(image: Tensor, multiple: int = MULTIPLE) -> Tensor:
    """Reflection-pad the bottom and right of (B, C, H, W) to multiples of ``multiple``, like
    :func:`~brushwork.methods.adain.pad_to_multiple` but without a Python branch on the size:
    traced, the padding amounts become graph operations on the input's shape, so a graph
    exported at one size pads every size right. (``pad_to_multiple`` replicates instead for
    sides under ``multiple``, which AdaIN's decoder cannot take anyway: its 3×3 reflection
    padding needs relu4_1 features of at least 2×2, a content of at least 9×9.)"""
    height, width = image.shape[-2:]
    return F.pad(image, (0, (-width) % multiple, 0, (-height) % multiple), mode="reflect")


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
        height, width = content.shape[-2:]
        features = self.encoder(pad_content(content), [LAYER])[LAYER]
        statistics = mean_std(self.encoder(style, [LAYER])[LAYER])
        mixed = stylized_features(features, [statistics], [1.0], [None],
                                  alpha.reshape(-1, 1, 1, 1))  # type: ignore[arg-type]
        return self.decoder(mixed)[..., :height, :width].clamp(0, 1)


def check_onnx_path(path: str | Path, *, force: bool = False) -> Path:
    """Validate an ONNX output path (extension, folder, no overwrite without ``force``)."""
    return check_output_path(path, force=force, extensions=(".onnx",), what="model")


def export_adain(path: str | Path, model: str | Path | None = None, *,
                 encoder: VGG19 | None = None, opset: int = 17, force: bool = False) -> Path:
    """Write the AdaIN model ``model`` (a bundled name or a checkpoint; default the bundled
    ``adain``) with ``encoder`` (default: the pretrained VGG-19 up to relu4_1) to the ONNX
    file ``path``, atomically; refuses to overwrite an existing file unless ``force``."""
    output = check_onnx_path(path, force=force)
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < MIN_OPSET:
        raise BrushworkError(f"opset must be an integer >= {MIN_OPSET}, not {opset}")
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError:
        raise BrushworkError(
            "ONNX export needs the onnx package: pip install 'brushwork[onnx]'"
        ) from None
    source = resolve_model(model)
    if not source.is_file():  # before loading the encoder: fail fast
        raise BrushworkError(f"model {source} does not exist")
    if encoder is None:
        from brushwork.encoders import load_vgg19

        encoder = load_vgg19(LAYER)
    if model is None:
        model = "adain"
    decoder, _ = load_decoder(model, encoder)
    # a copy: the caller's (possibly cached, possibly CUDA) encoder stays as it is
    graph = AdaINGraph(copy.deepcopy(encoder), decoder).to("cpu").float().eval()
    # example inputs for the trace: sizes off the multiple of 8, so the padding is traced
    # at work; a private generator leaves the caller's random state alone
    generator = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 37, 45, generator=generator)
    style = torch.rand(1, 3, 29, 33, generator=generator)
    alpha = torch.tensor([1.0])
    dynamic_axes = {
        "content": {2: "content_height", 3: "content_width"},
        "style": {2: "style_height", 3: "style_width"},
        "image": {2: "content_height", 3: "content_width"},
    }

    def write(temporary: str) -> None:
        with warnings.catch_warnings(), torch.no_grad(), _no_onnx_log():
            # the TorchScript exporter's deprecation notice and tracer warnings about the
            # shape arithmetic, which is traced as graph operations on purpose
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph, (content, style, alpha), temporary, dynamo=False,
                input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True,
            )
        _add_metadata(temporary, {
            "brushwork_method": "adain",
            "brushwork_version": __version__,
            # a bundled model's name, or a checkpoint's file name (not the local path)
            "brushwork_model": str(model) if str(model) in BUNDLED else source.name,
            "brushwork_encoder": encoder_id(encoder),
        })

    try:
        write_atomically(output, write)
    except BrushworkError:
        raise
    except Exception as error:  # the exporter's own errors: one line, not a traceback
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise BrushworkError(
            f"ONNX export failed: {type(error).__name__}: {message}"
        ) from error
    return output


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


def _add_metadata(path: str, entries: dict[str, str]) -> None:
    """Record where the graph came from in the file's metadata_props."""
    import onnx

    proto = onnx.load(path)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, path)
