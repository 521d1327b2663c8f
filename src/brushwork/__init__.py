"""brushwork: neural style transfer.

The pipeline, one subpackage per stage: :mod:`brushwork.image` (I/O) →
:mod:`brushwork.encoders` (VGG-19 and its weights) → :mod:`brushwork.ops` and
:mod:`brushwork.losses` (feature operations and losses) → :mod:`brushwork.methods` (style
transfer methods), with the controls shared by all methods in :mod:`brushwork.color` and
:mod:`brushwork.masks` → front ends (:mod:`brushwork.api`, :mod:`brushwork.cli`,
:mod:`brushwork.recording`).
"""

from __future__ import annotations

from brushwork.errors import BrushworkError

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: `import brushwork` stays cheap for the CLI
    if name in ("stylize", "run", "Style", "estimate_depth"):
        from brushwork import api

        return getattr(api, name)
    if name in ("load_image", "save_image"):
        from brushwork import image

        return getattr(image, name)
    if name in ("VGG19", "load_vgg19"):
        from brushwork import encoders

        return getattr(encoders, name)
    if name == "stylize_video":
        from brushwork.video import runner

        return runner.stylize_video
    raise AttributeError(f"module 'brushwork' has no attribute {name!r}")


__all__ = [
    "VGG19",
    "BrushworkError",
    "Style",
    "estimate_depth",
    "load_image",
    "load_vgg19",
    "run",
    "save_image",
    "stylize",
    "stylize_video",
]
