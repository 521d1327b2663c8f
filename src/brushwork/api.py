"""The Python API: one call from image files (or PIL images, or tensors) to a stylized image.

    >>> import brushwork
    >>> image = brushwork.stylize("photo.jpg", "painting.jpg", method="gatys", iterations=200)
    >>> image.save("out.png")

Keyword arguments are the controls every method shares (:class:`brushwork.stylizer.Controls`:
``size``, ``style_scale``, ``preserve_color``, ``start_size``, ``max_memory``, ``device``,
``precision``, ...) and the method's own options (``iterations``, ``style_weight``,
``alpha``, ...; ``brushwork.methods.get_method(name).default_options()`` lists them). Several
styles are :class:`Style` objects (blended, per layer, or per region with masks)::

    >>> brushwork.stylize("city.jpg", [Style("starry.jpg", 0.7), Style("mosaic.jpg", 0.3)],
    ...                   preserve_color="luminance", size=2048, start_size=512)

Everything is checked from the sizes before any image is decoded at its working size
(:meth:`brushwork.stylizer.Stylizer.plan`); progress goes to ``events`` (see
:mod:`brushwork.events`). The result is a :class:`~brushwork.stylizer.Stylization` (``image``,
``result.losses``, ``seconds``, ...). For many images with the same styles, use a
:class:`brushwork.painter.Painter` (image inputs) or :class:`brushwork.stylizer.Stylizer`
(tensors) directly: they encode the styles once. The input helpers are in
:mod:`brushwork.inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from brushwork import events as ev
from brushwork.defaults import DEFAULT_METHOD
from brushwork.errors import BrushworkError
from brushwork.image import split_alpha, to_tensor
from brushwork.inputs import ImageInput, Style, as_image, as_styles, image_size
from brushwork.memory import MAX_SIDE, check_limit, require
from brushwork.painter import Painter
from brushwork.precision import resolve_device
from brushwork.stylizer import Stylization


def run(
    content: ImageInput,
    style: ImageInput | Style | Sequence[ImageInput | Style] | None,
    method: str = DEFAULT_METHOD,
    *,
    mask: ImageInput | None = None,
    regions: Mapping[str, int | None] | None = None,
    events: ev.Sinks = None,
    encoder: Any = None,
    **options: Any,
) -> Stylization:
    """Stylize and return the image together with losses and timings.

    Args:
        content: image path, PIL image or (1, 3, H, W) tensor in [0, 1].
        style: one image like ``content``, a :class:`Style`, or a list of them (blended by
            their weights, or per layer, or per region with masks).
        method: a name from :data:`brushwork.methods.REGISTRY`.
        mask: a label image with one flat color per region; ``regions`` maps colors to
            1-based style numbers (or None: unstyled); default: by brightness, darkest first.
        events: sinks for progress and warnings (:mod:`brushwork.events`).
        encoder: a VGG-19 to use instead of the shared pretrained one.
        options: controls (:class:`brushwork.stylizer.Controls`: ``size``, ``style_size``,
            ``style_scale``, ``preserve_color``, ``start_size``, ``scale_iterations``,
            ``max_memory``, ``max_pixels``, ``device``, ``precision``, ``weights``,
            ``weights_sha256``) and the method's options.
    """
    with ev.bound(events):
        painter = Painter(method, options, encoder=encoder, cache_size=0)
        return painter.paint(content, as_styles(style), mask=mask, regions=regions)


def stylize(
    content: ImageInput,
    style: ImageInput | Style | Sequence[ImageInput | Style] | None,
    method: str = DEFAULT_METHOD,
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` and return a PIL image.

    Takes the same keyword arguments as :func:`run`.
    """
    return run(content, style, method, **options).image


DEPTH_BYTES_PER_PIXEL = 2000
"""Peak memory per (padded) pixel the estimator sees in one depth estimate: the VGG-19 to
relu4_1 keeps its four skip outputs while the U-Net decoder climbs back up. Measured as the
peak RSS of ``brushwork depth`` on a 2048² image (``/usr/bin/time -f %M``, CPU, float32):
0.87 / 0.88 / 2.31 / 4.78 GB at ``--side`` 224 / 512 / 1024 / 1536, i.e. about 1,930 bytes
per pixel above ~0.4 GB of fixed cost (torch, the model, the image), rounded up."""


def estimate_depth(
    image: ImageInput,
    model: str | Path | torch.nn.Module | None = None,
    side: int | None = 224,
    device: str | torch.device = "auto",
    *,
    max_pixels: int | None = None,
    max_memory: int | None = None,
) -> Tensor:
    """Relative inverse depth of one image: a float32 (1, 1, H, W) CPU tensor at the image's
    size, larger = nearer, with an unknown scale and shift (only the order of depths and
    their ratios of differences mean anything).

    Args:
        image: image path, PIL image or (1, 3, H, W) tensor in [0, 1] (transparency is
            composited over white).
        model: a bundled estimator's name (None: ``"depth"``, trained on indoor scenes,
            NYU Depth v2, and unreliable outdoors), a checkpoint from ``brushwork train
            depth``, or a loaded :class:`brushwork.depth.estimator.DepthNet`.
        side: the image is resized so that its shorter side is ``side`` for the estimator
            (224: the bundled model's training scale; None: as it is) and the prediction
            resized back.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        max_pixels: refuse input images larger than this (default: BRUSHWORK_MAX_PIXELS or
            40 megapixels).
        max_memory: bytes the estimate may use (default: 80 % of the available memory); a
            larger one is refused before any work.

    See :mod:`brushwork.depth.render` to turn the result into images.
    """
    from brushwork.depth.estimator import load_estimator, predict_depth

    if side is not None and (
        isinstance(side, bool) or not isinstance(side, int) or side < 32 or side > MAX_SIDE
    ):
        raise BrushworkError(f"depth side must be an integer from 32 to {MAX_SIDE}, not {side}")
    check_limit(max_memory)
    device = resolve_device(device)
    width, height = image_size(image, "image", max_pixels)
    if side is not None:
        factor = side / min(width, height)
        work = (max(1, round(width * factor)), max(1, round(height * factor)))
    else:
        work = (width, height)
    if max(work) > MAX_SIDE:
        raise BrushworkError(
            f"the estimator would see the image at {work[0]}x{work[1]} px "
            f"(shorter side {side}), over the {MAX_SIDE} px brushwork "
            "handles; use a smaller --side"
        )
    padded = (work[0] + -work[0] % 32) * (work[1] + -work[1] % 32)
    require(
        400 * 2**20 + DEPTH_BYTES_PER_PIXEL * padded + 16 * width * height,
        f"a depth estimate of a {width}x{height} image at {work[0]}x{work[1]}",
        max_memory,
        device,
        "use a smaller --side or a smaller image",
    )
    rgb, _ = split_alpha(as_image(image, "image", max_pixels))
    net = model if isinstance(model, torch.nn.Module) else load_estimator(model)
    net = net.to(device)
    return predict_depth(net, to_tensor(rgb).to(device), side=side).float().cpu()
