"""Video: stylize a clip with temporal consistency (``brushwork video``,
:func:`brushwork.stylize_video`).

* :mod:`brushwork.video.io`: PyAV decoding, frame folders, timestamps (variable frame
  rates too), rotation, and every check of the input;
* :mod:`brushwork.video.writer`: PyAV encoding, frame folders, rotation and audio copy, and
  every check of the output;
* :mod:`brushwork.video.flow`: OpenCV DIS optical flow, the forward–backward consistency and
  motion-boundary masks of Ruder et al. 2016 (eq. 6-7), scene cuts, warping;
* :mod:`brushwork.video.temporal`: the temporal loss and warped start of the optimization
  methods (Ruder et al. 2016);
* :mod:`brushwork.video.tracking`: the texture tracking of the feed-forward ones;
* :mod:`brushwork.video.work`: the work folder that makes runs resumable;
* :mod:`brushwork.video.options`: :class:`VideoOptions` and :class:`VideoResult`;
* :mod:`brushwork.video.plan`: the checks before any work;
* :mod:`brushwork.video.runner`: the streaming run (:func:`stylize_video`);
* :mod:`brushwork.video.cli`: ``brushwork video``.

The flicker metric, the warping error of Lai et al. 2018, is
:class:`brushwork.metrics.WarpingError`. Needs ``pip install 'brushwork[video]'`` (PyAV and
OpenCV).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:  # lazy: importing the package loads neither PyAV nor torch
    if name in ("stylize_video", "VideoOptions", "VideoResult"):
        from brushwork.video import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'brushwork.video' has no attribute {name!r}")


__all__ = ["VideoOptions", "VideoResult", "stylize_video"]
