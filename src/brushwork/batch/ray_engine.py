"""``brushwork batch --engine ray``: the batch as a Ray Data ``map_batches`` over stateful
workers.

Each worker (:class:`PaintWorker`, one Ray actor) builds one
:class:`~brushwork.painter.Painter` when it starts, so the encoder and decoders load once
per worker and each worker reuses the styles it prepared; items stream through the pool
one at a time and their records stream back to the driver, which writes the manifest and
moves the progress bar as they arrive. Inputs and outputs are paths: on a cluster they
must be on storage every node mounts at the same path (NFS, a shared volume).

    ray start --head                        # on the head node; `ray start --address ...`
    brushwork batch /shared/in --style /shared/styles -o /shared/out -m adain \\
        --engine ray --ray-address auto --ray-cpus 4
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from brushwork.errors import BrushworkError

EXTRA = "pip install 'brushwork[ray]'"


def require_ray() -> None:
    """Raise a one-line error when Ray (with Ray Data) is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BrushworkError(f"--engine ray needs Ray Data: {EXTRA}") from None


class PaintWorker:
    """A Ray Data stateful worker: one painter, many items. Each record says which worker
    process painted it (``worker``: its pid) and how many painters that process has built
    (``painters``: 1 when the pool keeps its workers, as it should)."""

    built = 0
    """Painters built in this process."""

    def __init__(
        self, method: str, values: dict[str, Any], force: bool, encoder: Any, threads: int
    ) -> None:
        import torch

        from brushwork.painter import Painter

        torch.set_num_threads(max(1, threads))
        self.painter = Painter(method, values, encoder=encoder)
        type(self).built += 1
        self.force = force

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        from brushwork.batch import Item, paint_item

        records = []
        for content, style, output in zip(
            batch["content"], batch["style"], batch["output"], strict=True
        ):
            item = Item(str(content), str(style), str(output))
            record = paint_item(self.painter, item, force=self.force)
            records.append(
                json.dumps({**record, "worker": os.getpid(), "painters": type(self).built})
            )
        return {"record": records}


def run_ray(
    items: Sequence[Any],
    method: str,
    values: dict[str, Any],
    *,
    force: bool,
    encoder: Any,
    on_record: Callable[[dict[str, Any]], None],
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
) -> None:
    """Paint ``items`` on Ray; ``on_record`` gets each item's record as it arrives.
    Joins ``address`` (or ``$RAY_ADDRESS``), else starts a local instance (stopped at the
    end); reuses a Ray already initialized in this process."""
    require_ray()
    import ray
    import ray.data

    if not items:
        return
    started = False
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(
                address=target,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise BrushworkError(
                f"cannot reach the Ray cluster at {target}: {' '.join(str(error).split())[:300]}"
            ) from None
        started = True
    context = ray.data.DataContext.get_current()
    waited = context.wait_for_min_actors_s
    try:
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # start every worker before the first item, so that the items spread over all of
        # them (otherwise the first worker up may take them all)
        context.wait_for_min_actors_s = 600
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = float(ray.cluster_resources().get("CPU", 1))
        count = workers or max(1, int(cpus // cpus_per_worker))
        count = min(count, len(items))
        rows = [asdict(item) for item in items]
        resources: dict[str, Any] = {"num_cpus": cpus_per_worker}
        if gpus_per_worker:
            resources["num_gpus"] = gpus_per_worker
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            PaintWorker,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=count, max_tasks_in_flight_per_actor=1),
            fn_constructor_kwargs={
                "method": method,
                "values": values,
                "force": force,
                "encoder": encoder,
                "threads": max(1, int(cpus_per_worker)),
            },
            **resources,
        )
        for row in dataset.iter_rows():
            record = json.loads(row["record"])
            on_record(record)
    except BrushworkError:
        raise
    except Exception as error:
        raise BrushworkError(
            f"the Ray batch stopped: {type(error).__name__}: {' '.join(str(error).split())[:300]}"
        ) from None
    finally:
        context.wait_for_min_actors_s = waited
        if started:
            ray.shutdown()
