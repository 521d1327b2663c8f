"""One stylizer for many images, from image inputs to a :class:`~brushwork.stylizer.Stylization`:
the one run path of :func:`brushwork.api.run`, ``brushwork stylize``, the HTTP service's
workers and ``brushwork batch`` (both engines), with the method, its encoder and decoders
loaded once and prepared styles reused::

    painter = Painter("adain", {"size": 512, "alpha": 0.8})
    done = painter.paint("photo.jpg", [Style("painting.jpg")])
    done.image.save("out.png")

Every check of :func:`brushwork.inputs.check_inputs` runs first, from image headers; styles
are prepared once per (style files, weights, layers, masks, planned sizes) and kept in a
cache bounded in entries and in bytes (the tensors a prepared set holds), unless colour
preservation makes them depend on each content image. ``check``, when given, is called
between the stages of a painting (after planning, after decoding the content, after
preparing the styles): a caller stops the work there by raising from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from brushwork import events as ev
from brushwork.image import split_alpha, to_tensor
from brushwork.inputs import ImageInput, Style, as_image, check_inputs, style_targets
from brushwork.stylizer import Prepared, RunPlan, Stylization, Stylizer, make_stylizer
from brushwork.tiling import THUMBNAIL, thumbnail_tensor

MIB = 2**20
DEFAULT_CACHE_BYTES = 512 * MIB


def held_bytes(value: Any) -> int:
    """Bytes of the tensors ``value`` holds (prepared styles: their images, masks and the
    method's encodings), each storage counted once; dicts, sequences, dataclasses and plain
    objects are looked into, networks (``nn.Module``: shared, not the cache's) are not."""
    storages: dict[tuple[str, int], int] = {}
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (str, bytes, int, float, bool)) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, torch.nn.Module):
            continue
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            storages[(str(item.device), storage.data_ptr())] = storage.nbytes()
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(vars(item).values())
    return sum(storages.values())


def _fingerprint(value: ImageInput | None) -> str:
    """What identifies an input's pixels: a file's sha256, an image's or tensor's bytes."""
    digest = hashlib.sha256()
    if value is None:
        return "-"
    if isinstance(value, (str, Path)):
        with open(value, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    elif isinstance(value, Image.Image):
        digest.update(f"{value.mode}{value.size}".encode())
        digest.update(value.tobytes())
    else:  # a tensor
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


class Painter:
    """A :class:`~brushwork.stylizer.Stylizer` built once from flat ``values`` (controls
    and method options, as :func:`brushwork.stylizer.make_stylizer` takes them), with a
    cache of at most ``cache_size`` prepared style sets holding at most ``cache_bytes``
    bytes of tensors (either 0: no cache; a set larger than ``cache_bytes`` is not kept).
    Not thread-safe: one per worker."""

    def __init__(
        self,
        method: str,
        values: Mapping[str, Any] | None = None,
        *,
        encoder: Any = None,
        cache_size: int = 8,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.stylizer: Stylizer = make_stylizer(method, encoder=encoder, **dict(values or {}))
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[Any, ...], tuple[Prepared, int]] = OrderedDict()

    @property
    def cached_bytes(self) -> int:
        """Bytes of tensors the prepared styles in the cache hold."""
        return sum(size for _, size in self._cache.values())

    def _keep(self, key: tuple[Any, ...], prepared: Prepared) -> None:
        """Cache ``prepared`` (measured now: after painting, with every scale's encoding),
        dropping the least recently used sets to stay within both bounds."""
        size = held_bytes(prepared)
        if size > self.cache_bytes:
            self._cache.pop(key, None)
            return
        self._cache[key] = (prepared, size)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size or self.cached_bytes > self.cache_bytes:
            self._cache.popitem(last=False)

    @property
    def method(self) -> str:
        return self.stylizer.name

    def check(
        self, content: ImageInput, styles: Sequence[Style], mask: ImageInput | None = None
    ) -> RunPlan:
        """Everything that can be told from sizes and headers (no decoding); the plan."""
        return check_inputs(self.stylizer, content, list(styles), mask)

    def paint(
        self,
        content: ImageInput,
        styles: Sequence[Style],
        *,
        mask: ImageInput | None = None,
        regions: Mapping[str, int | None] | None = None,
        events: ev.Sinks = None,
        stage: str | None = None,
        check: Callable[[], None] | None = None,
        plan: RunPlan | None = None,
    ) -> Stylization:
        """Stylize ``content`` with ``styles`` (see :func:`brushwork.api.run`); progress and
        warnings go to ``events`` (and to whatever sink is bound); ``check()`` runs between
        stages (see the module docstring). ``plan``: what :meth:`check` returned for these
        inputs, when the caller checked them already."""
        start = time.perf_counter()
        styles = list(styles)
        between = check or (lambda: None)
        with ev.bound(events):
            plan = plan or self.check(content, styles, mask)
            between()
            image, alpha = self._content(content, plan)
            pixels = to_tensor(image) if plan.tiles is None else np.array(image)
            del image
            between()
            key = self._key(plan, styles, mask, regions)
            found = self._cache.get(key) if key is not None else None
            prepared = found[0] if found is not None else None
            if prepared is None:
                targets = style_targets(
                    styles, plan, mask, regions, self.stylizer.controls.max_pixels
                )
                reference = (
                    pixels if isinstance(pixels, Tensor) else thumbnail_tensor(pixels, THUMBNAIL)
                )
                prepared = self.stylizer.prepare(plan, targets, reference)
            between()
            done = self._stylize(pixels, prepared, stage or self.stylizer.name)
            if key is not None:
                self._keep(key, prepared)
        done.alpha, done.reused_styles = alpha, found is not None
        done.seconds = time.perf_counter() - start
        return done

    def _content(
        self, content: ImageInput, plan: RunPlan
    ) -> tuple[Image.Image, Image.Image | None]:
        """The content decoded (8 bits a channel, held within the pixel limit) at the
        planned size, and its transparency (None: opaque)."""
        image, alpha = split_alpha(as_image(content, "content", self.stylizer.controls.max_pixels))
        if image.size != plan.content_size:
            image = image.resize(plan.content_size, Image.Resampling.LANCZOS)
        return image, alpha

    def _stylize(self, content: Tensor | np.ndarray, prepared: Prepared, stage: str) -> Stylization:
        """Paint between a ``Started`` event (steps or tiles, precision, plan) and a
        ``Finished``."""
        plan, precision = prepared.plan, self.stylizer.precision
        details = {"precision": precision.name, "reason": precision.reason, **plan.describe()}
        ev.emit(ev.Started(stage, plan.total_steps, plan.unit, details=details))
        if isinstance(content, np.ndarray):
            done = self.stylizer.stylize_tiled(content, prepared, stage=stage)
        else:
            done = self.stylizer.stylize(content, prepared, stage=stage)
        ev.emit(ev.Finished(stage, done.seconds))
        return done

    def _key(
        self,
        plan: RunPlan,
        styles: Sequence[Style],
        mask: ImageInput | None,
        regions: Mapping[str, int | None] | None,
    ) -> tuple[Any, ...] | None:
        """The cache key of a style set, or None when the prepared styles depend on the
        content (colour preservation recolours the styles to each content image)."""
        if (
            self.cache_size <= 0
            or self.cache_bytes <= 0
            or self.stylizer.controls.preserve_color != "none"
        ):
            return None
        return (
            tuple(
                (_fingerprint(s.image), float(s.weight), s.layers, _fingerprint(s.mask))
                for s in styles
            ),
            _fingerprint(mask),
            tuple(sorted((regions or {}).items(), key=str)),
            plan.content_size,
            tuple(plan.style_sizes),
        )


__all__ = ["Painter", "held_bytes"]
