"""A tqdm progress bar fed by optimization steps: step, ETA and every loss term."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """Callback for :func:`brushwork.optim.optimize_image`; ``disable=None`` hides the bar
    when stderr is not a terminal."""

    def __init__(self, total: int, *, desc: str = "", disable: bool | None = None) -> None:
        self.total, self.desc, self.disable = total, desc, disable
        self._bar: Any = None

    def __enter__(self) -> ProgressBar:
        from tqdm import tqdm

        self._bar = tqdm(total=self.total, desc=self.desc, unit="step", disable=self.disable,
                         dynamic_ncols=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, record: Any) -> None:
        if self._bar is None:
            return
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in record.losses.items()}, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
