"""Monocular depth estimators for depth-preserving style transfer.

The depth variant of AdaIN training (``brushwork train adain --depth-weight W``) and
``brushwork stylize --method gatys --depth-weight W`` ask the output to keep the content's
depth layout: a frozen estimator D maps both images to depth maps and
:func:`brushwork.losses.scale_shift_invariant_loss` compares them.

Estimators, chosen by ``--depth-model`` (or ``$BRUSHWORK_DEPTH_MODEL``):

* ``depth`` (the default): brushwork's own, :mod:`brushwork.depth.estimator`, shipped with
  the package and trained on indoor scenes (NYU Depth v2); or any checkpoint that
  ``brushwork train depth`` wrote (``.safetensors``);
* ONNX (``.onnx``), e.g. MiDaS (Ranftl et al. 2020) or Depth Anything (Yang et al. 2024)
  exported to ONNX. It is converted to a torch module with ``onnx2torch`` (``pip install
  onnx && pip install --no-deps onnx2torch``; ``brushwork[depth]`` also pulls in
  torchvision, which brushwork does not need): the loss backpropagates through the estimator,
  which an inference runtime such as onnxruntime cannot do;
* TorchScript (``.pt``, ``.pth``, ``.ts``, ``.torchscript``), saved with ``torch.jit.save``.

A foreign network must map a normalized RGB batch (B, 3, S, S) to (B, S', S') or
(B, 1, S', S'). :class:`DepthModel` does the rest: it resizes the [0, 1] RGB input to S × S
(``input_size``; MiDaS small uses 256, DPT 384, Depth Anything 518, a multiple of its
14-pixel patches), normalizes it (ImageNet mean and std for MiDaS; 0.5 / 0.5 for some DPT and
Depth Anything exports) and resizes the prediction back to the input's size. brushwork's own
estimator takes any size and does its own normalization, so those settings do not apply to it.

Every estimator's output follows MiDaS's convention: *relative inverse depth* (disparity),
larger = nearer, known only up to an unknown scale and shift per image. That is why the loss
is scale-and-shift invariant (Ranftl, Lasinger, Hafner, Schindler & Koltun, "Towards Robust
Monocular Depth Estimation: Mixing Datasets for Zero-shot Cross-dataset Transfer", TPAMI
2020, §5).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.errors import BrushworkError

if TYPE_CHECKING:
    import onnx

ENV = "BRUSHWORK_DEPTH_MODEL"
INSTALL_HINT = (
    "install brushwork[depth], or without torchvision: pip install onnx && "
    "pip install --no-deps onnx2torch"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Input normalizations by name (``--depth-normalize``): (mean, std) per RGB channel.
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),  # MiDaS, DPT-large, Depth Anything (HF)
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),  # DPT-hybrid and some Depth Anything exports
}
ONNX2TORCH_OPSET = 17  # retry ONNX models onnx2torch cannot convert at this opset
BRUSHWORK_SUFFIXES = frozenset({".safetensors"})
ONNX_SUFFIXES = frozenset({".onnx"})
TORCHSCRIPT_SUFFIXES = frozenset({".pt", ".pth", ".ts", ".torchscript"})


class DepthModel(nn.Module):
    """A frozen depth network behind brushwork's image convention.

    ``forward`` takes RGB in [0, 1], (B, 3, H, W), and returns relative inverse depth
    (larger = nearer), (B, 1, H, W), differentiable with respect to the input. The image is
    resized (bilinear) to ``input_size`` × ``input_size`` (None: fed at its own size; the
    network must then accept it), normalized with ``mean`` and ``std``, passed through the
    network, and the prediction resized (bilinear) back to H × W.

    The network stays in eval mode, even when a module holding this one is put in training
    mode: batch-norm statistics of a pretrained estimator must not drift.
    """

    def __init__(
        self,
        net: nn.Module,
        input_size: int | None = 256,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        _check_convention(input_size, mean, std)
        self.net = net
        self.input_size = input_size
        self.register_buffer(
            "mean", torch.tensor([float(v) for v in mean]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor([float(v) for v in std]).view(1, 3, 1, 1), persistent=False
        )
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> DepthModel:
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, image: Tensor) -> Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected RGB images (B, 3, H, W), got {tuple(image.shape)}")
        height, width = image.shape[-2:]
        x = image
        if self.input_size is not None and (height, width) != (self.input_size,) * 2:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = self.net(x)
        if isinstance(out, (tuple, list)):  # several graph outputs: the first is the depth
            out = out[0]
        if isinstance(out, dict):
            out = next(iter(out.values()))
        if out.dim() == 3:
            out = out.unsqueeze(1)
        if out.dim() != 4 or out.shape[1] != 1 or out.shape[0] != image.shape[0]:
            raise BrushworkError(
                f"the depth model returned shape {tuple(out.shape)} for "
                f"{tuple(x.shape)}; expected (B, H, W) or (B, 1, H, W)"
            )
        if out.shape[-2:] != (height, width):
            out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)
        return out

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}"


def _check_convention(input_size: int | None, mean: Sequence[float], std: Sequence[float]) -> None:
    if input_size is not None and (
        not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 1
    ):
        raise BrushworkError(f"depth-size must be an integer >= 1, not {input_size}")
    for name, values in (("mean", mean), ("std", std)):
        if len(values) != 3 or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values
        ):
            raise BrushworkError(f"depth {name} must be 3 finite numbers, not {values}")
    if min(std) <= 0:
        raise BrushworkError(f"depth std must be > 0, not {std}")


def load_depth_model(
    path: str | Path | None,
    *,
    input_size: int | None = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> DepthModel:
    """A depth estimator → a frozen :class:`DepthModel` on the CPU, in eval mode, with no
    trainable parameters.

    ``path`` (else ``$BRUSHWORK_DEPTH_MODEL``, else the bundled ``depth``) is a bundled
    name, a brushwork checkpoint (``.safetensors``; ``input_size``, ``mean`` and ``std``
    do not apply: it runs at the image's own size), an ``.onnx`` file (converted with
    onnx2torch, differentiable) or a TorchScript file (``.pt``, ``.pth``, ``.ts``,
    ``.torchscript``). Every problem (a missing or corrupt file, an operator onnx2torch
    cannot convert, onnx2torch not installed) raises :class:`BrushworkError`.
    """
    from brushwork import models
    from brushwork.depth.estimator import load_estimator

    _check_convention(input_size, mean, std)
    if path is None or str(path) == "":
        path = os.environ.get(ENV) or None
    if path is None or str(path) in models.MODELS:
        return DepthModel(load_estimator(path), None, (0.0,) * 3, (1.0,) * 3)
    path = Path(path).expanduser()
    if not path.exists():
        raise BrushworkError(f"depth model {path} does not exist")
    if not path.is_file():
        raise BrushworkError(f"depth model {path} is not a file")
    suffix = path.suffix.lower()
    if suffix in BRUSHWORK_SUFFIXES:
        return DepthModel(load_estimator(path), None, (0.0,) * 3, (1.0,) * 3)
    if suffix in ONNX_SUFFIXES:
        net = _load_onnx(path)
    elif suffix in TORCHSCRIPT_SUFFIXES:
        net = _load_torchscript(path)
    else:
        known = ", ".join(sorted(BRUSHWORK_SUFFIXES | ONNX_SUFFIXES | TORCHSCRIPT_SUFFIXES))
        raise BrushworkError(
            f"depth model {path}: unsupported file type {suffix or '(none)'!r}"
            f"; expected a brushwork, ONNX or TorchScript model ({known})"
        )
    return DepthModel(net, input_size, mean, std)


def _load_torchscript(path: Path) -> nn.Module:
    try:
        with warnings.catch_warnings():  # recent torch deprecates TorchScript; it still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise BrushworkError(
            f"cannot read depth model {path}: not a TorchScript file (save "
            f"it with torch.jit.save, not torch.save; "
            f"{type(error).__name__}: {_first_line(error)})"
        ) from error


def _load_onnx(path: Path) -> nn.Module:
    try:
        import onnx
    except ImportError as error:
        raise BrushworkError(
            f"reading ONNX depth models needs onnx and onnx2torch: {INSTALL_HINT}"
        ) from error
    convert = _onnx2torch_convert()
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:
        raise BrushworkError(
            f"cannot read depth model {path}: not a valid ONNX model "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error
    if not model.graph.node or not model.graph.output:
        raise BrushworkError(f"cannot read depth model {path}: the ONNX graph is empty")
    try:
        try:
            return convert(model)
        except NotImplementedError:
            # onnx2torch knows most operators up to opset ~17, while torch.onnx.export
            # writes opset 18-20 (e.g. Constant-19): retry on the model converted down
            downgraded = _downgrade(model, ONNX2TORCH_OPSET)
            if downgraded is None:
                raise
            return convert(downgraded)
    except NotImplementedError as error:
        found = re.search(r"domain='([^']*)', operation_type='([^']+)', version=(\d+)", str(error))
        what = (
            f"operator {found[1] + '.' if found[1] else ''}{found[2]} (opset {found[3]})"
            if found
            else f"an operator ({_first_line(error)})"
        )
        raise BrushworkError(
            f"cannot convert depth model {path} to torch: onnx2torch does "
            f"not support {what}; export it with another opset or as "
            "TorchScript"
        ) from error
    except BrushworkError:
        raise
    except Exception as error:
        raise BrushworkError(
            f"cannot convert depth model {path} to torch with onnx2torch "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error


def _downgrade(model: onnx.ModelProto, opset: int) -> onnx.ModelProto | None:
    """``model`` converted to the default-domain ``opset`` by onnx's version converter, or
    None when it already is at or below it or the converter fails."""
    from onnx import version_converter

    current = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if current <= opset:
        return None
    try:
        return version_converter.convert_version(model, opset)
    except Exception:
        return None


def _onnx2torch_convert() -> Callable[..., nn.Module]:
    """``onnx2torch.convert``. onnx2torch imports torchvision at import time, for its
    NonMaxSuppression and RoiAlign converters only; depth networks use neither, so when
    torchvision is absent a stand-in lets it import (and fails clearly if ever called)."""
    if "onnx2torch" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        stubs: dict[str, types.ModuleType] = {}
    else:
        stubs = _torchvision_stand_in()
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        from onnx2torch import convert
    except ImportError as error:
        raise BrushworkError(
            f"reading ONNX depth models needs onnx2torch ({error}): {INSTALL_HINT}"
        ) from error
    finally:
        for name, module in saved.items():
            if sys.modules.get(name) is stubs[name]:
                if module is None:
                    del sys.modules[name]
                else:
                    sys.modules[name] = module
    return convert


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    def missing(*args: object, **kwargs: object) -> None:
        raise BrushworkError(
            "this ONNX model uses NonMaxSuppression or RoiAlign, which "
            "onnx2torch runs with torchvision: pip install torchvision"
        )

    def getattr_(name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return missing

    package = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.__getattr__ = getattr_  # type: ignore[method-assign]
    package.ops = ops  # type: ignore[attr-defined]
    return {"torchvision": package, "torchvision.ops": ops}


def _first_line(error: BaseException, limit: int = 160) -> str:
    """The first sentence of an error message, at most ``limit`` characters."""
    text = str(error).strip()
    text = text.splitlines()[0] if text else "no details"
    text = text.split(". ")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"
