"""One stylizer for many images: what :func:`brushwork.api.run` does, with the method, its
encoder and decoders loaded once and prepared styles reused.

The HTTP service's workers and ``brushwork batch`` (both engines) paint through a
:class:`Painter`::

    painter = Painter("adain", {"size": 512, "alpha": 0.8})
    painting = painter.paint("photo.jpg", [Style("painting.jpg")])
    painting.image.save("out.png")

Every check of :func:`brushwork.api.check_inputs` runs first, from image headers; styles
are prepared once per (style files, weights, layers, masks, planned sizes) and kept in a
small cache, unless colour preservation makes them depend on each content image.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from brushwork import events as ev
from brushwork.api import ImageInput, Style, as_image, check_inputs, load_masks
from brushwork.image import split_alpha, to_pil, to_tensor
from brushwork.methods.base import StyleTarget, StylizeResult
from brushwork.stylizer import Prepared, RunPlan, Stylizer, make_stylizer


@dataclass
class Painting:
    """A stylized image (RGBA when the content had transparency) with its plan, the
    method's result, the per-scale record and the seconds spent."""

    image: Image.Image
    plan: RunPlan
    result: StylizeResult
    scales: list[dict[str, Any]]
    seconds: float
    reused_styles: bool = False
    details: dict[str, Any] = field(default_factory=dict)


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
    cache of ``cache_size`` prepared style sets. Not thread-safe: one per worker."""

    def __init__(
        self,
        method: str,
        values: Mapping[str, Any] | None = None,
        *,
        encoder: Any = None,
        cache_size: int = 8,
    ) -> None:
        self.stylizer: Stylizer = make_stylizer(method, encoder=encoder, **dict(values or {}))
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], Prepared] = OrderedDict()

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
    ) -> Painting:
        """Stylize ``content`` with ``styles`` (see :func:`brushwork.api.run`); progress and
        warnings go to ``events`` (and to whatever sink is bound)."""
        start = time.perf_counter()
        styles = list(styles)
        stylizer = self.stylizer
        with ev.bound(events):
            plan = self.check(content, styles, mask)
            max_pixels = stylizer.controls.max_pixels
            width, height = plan.content_size
            content_image, alpha = split_alpha(as_image(content, "content", max_pixels))
            if content_image.size != (width, height):
                content_image = content_image.resize((width, height), Image.Resampling.LANCZOS)
            content_tensor = to_tensor(content_image)
            key = self._key(plan, styles, mask, regions)
            prepared = self._cache.get(key) if key is not None else None
            reused = prepared is not None
            if prepared is None:
                masks = load_masks(styles, mask, regions, (width, height), max_pixels)
                targets = []
                for number, (s, m, (sw, sh)) in enumerate(
                    zip(styles, masks, plan.style_sizes, strict=True), 1
                ):
                    image, _ = split_alpha(as_image(s.image, f"style {number}", max_pixels))
                    if image.size != (sw, sh):
                        image = image.resize((sw, sh), Image.Resampling.LANCZOS)
                    targets.append(StyleTarget(to_tensor(image), s.weight, s.layers, m))
                prepared = stylizer.prepare(plan, targets, content_tensor)
                if key is not None:
                    self._cache[key] = prepared
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)  # type: ignore[arg-type]
            stage = stage or stylizer.name
            ev.emit(
                ev.Started(
                    stage,
                    plan.total_steps,
                    details={
                        "precision": stylizer.precision.name,
                        "reason": stylizer.precision.reason,
                        **plan.describe(),
                    },
                )
            )
            done = stylizer.stylize(content_tensor, prepared, stage=stage)
            ev.emit(ev.Finished(stage, done.seconds))
        image = to_pil(done.image.cpu())
        if alpha is not None:
            image.putalpha(alpha.resize(image.size, Image.Resampling.LANCZOS))
        return Painting(image, plan, done.result, done.scales, time.perf_counter() - start, reused)

    def _key(
        self,
        plan: RunPlan,
        styles: Sequence[Style],
        mask: ImageInput | None,
        regions: Mapping[str, int | None] | None,
    ) -> tuple[Any, ...] | None:
        """The cache key of a style set, or None when the prepared styles depend on the
        content (colour preservation recolours the styles to each content image)."""
        if self.cache_size <= 0 or self.stylizer.controls.preserve_color != "none":
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


__all__ = ["Painter", "Painting"]
