"""The methods brushwork uses when none is named: one source for every front end (the API,
``brushwork stylize``, ``batch``, ``video`` and the service)."""

from __future__ import annotations

DEFAULT_METHOD = "gatys"
"""Still images (API, ``stylize``, ``batch``, the service's jobs): the optimization method
(Gatys et al. 2016), which needs no trained network."""

DEFAULT_ONE_PASS_METHOD = "adain"
"""Where every image must be quick (each frame of ``brushwork video``, the service's
synchronous stylize): AdaIN (Huang & Belongie 2017), one pass through its bundled decoder."""
