"""Video: stylize a clip with temporal consistency (``brushwork video``,
:func:`brushwork.stylize_video`).

* :mod:`brushwork.video.io`: PyAV decoding and encoding, frame folders, timestamps
  (variable frame rates too), rotation, audio copy, and every check of input and output;
* :mod:`brushwork.video.flow`: OpenCV DIS optical flow, the forward–backward consistency and
  motion-boundary masks of Ruder et al. 2016 (eq. 6-7), warping;
* :mod:`brushwork.video.temporal`: the temporal loss and warped start of the optimization
  methods (Ruder et al. 2016) and the flow-guided blend of the feed-forward ones;
* :mod:`brushwork.video.work`: the work folder that makes runs resumable;
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
