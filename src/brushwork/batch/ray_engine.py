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

Nothing waits on a request Ray cannot meet (:func:`ray_connection`): the options are
checked first (:func:`check_ray_options`), a cluster address must accept a connection
within :data:`PROBE_SECONDS` (:func:`probe`; Ray itself retries for minutes), the workers
asked for must fit the nodes' CPUs and GPUs (:func:`plan_workers`; Ray would wait for
them), and a local instance gets an object store that fits the process's address-space
limit (:func:`object_store_size`; Ray's default cannot be mapped under ``ulimit -v``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from brushwork.errors import BrushworkError

EXTRA = "pip install 'brushwork[ray]'"
GIB = 2**30
PROBE_SECONDS = 5.0
"""How long a cluster address may take to accept a connection."""
RAY_HEADROOM = 2 * GIB
"""Address space Ray's processes need besides their code and the object store (threads,
buffers; measured: under a tighter ``ulimit -v`` they fail to start, or wait forever)."""
STORE_MINIMUM = 75 * 2**20
"""The smallest object store Ray accepts."""
RESOURCE_STEP = 0.0001
"""Ray counts CPUs and GPUs in steps of this size."""


def require_ray() -> None:
    """Raise a one-line error when Ray (with Ray Data) is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise BrushworkError(f"--engine ray needs Ray Data: {EXTRA}") from None


def check_ray_options(workers: int | None, cpus: float, gpus: float) -> None:
    """Refuse worker counts and per-worker CPUs/GPUs Ray cannot take (checked before Ray
    starts: Ray itself accepts some and fails, or waits, later)."""
    if workers is not None and workers < 1:
        raise BrushworkError(f"--ray-workers must be >= 1, not {workers}")
    if not (math.isfinite(cpus) and cpus > 0):
        raise BrushworkError(f"--ray-cpus must be a number > 0, not {cpus:g}")
    if not (math.isfinite(gpus) and gpus >= 0):
        raise BrushworkError(f"--ray-gpus must be a number >= 0, not {gpus:g}")
    for flag, value in (("--ray-cpus", cpus), ("--ray-gpus", gpus)):
        if 0 < value < RESOURCE_STEP:
            raise BrushworkError(
                f"{flag} {value:g}: Ray counts resources in steps of {RESOURCE_STEP:g}"
            )


def _fits(have: float, need: float) -> float:
    """How many of ``need`` fit in ``have`` (unbounded when nothing is needed)."""
    return math.floor(have / need + 1e-9) if need else math.inf


def plan_workers(
    nodes: Sequence[Mapping[str, float]],
    workers: int | None,
    cpus: float,
    gpus: float,
    where: str,
) -> int:
    """The number of workers of ``cpus`` CPUs and ``gpus`` GPUs to start on ``nodes``
    (their resources, as Ray reports them): ``workers``, or as many as the nodes hold.
    Refuses a worker no node can hold, or more workers than the nodes hold together (Ray
    would wait for them for minutes); ``where`` names the nodes in messages."""
    room = sum(
        int(min(_fits(node.get("CPU", 0.0), cpus), _fits(node.get("GPU", 0.0), gpus)))
        for node in nodes
    )
    need = f"{cpus:g} CPUs" + (f" and {gpus:g} GPUs" if gpus else "")
    if room == 0:
        most_cpus = max((node.get("CPU", 0.0) for node in nodes), default=0.0)
        most_gpus = max((node.get("GPU", 0.0) for node in nodes), default=0.0)
        most = f"{most_cpus:g} CPUs and {most_gpus:g} GPUs"
        has = (
            f"{where} has ({most})"
            if len(nodes) == 1
            else f"any node of {where} has (at most {most})"
        )
        raise BrushworkError(
            f"a worker needs {need}, more than {has}; lower --ray-cpus or --ray-gpus"
        )
    if workers is not None and workers > room:
        raise BrushworkError(
            f"--ray-workers {workers}: {where} has room for {room} workers of {need}; ask for fewer"
        )
    return workers or room


def local_node() -> dict[str, float]:
    """The CPUs and GPUs a local Ray instance gets: those this process may use."""
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"CPU": float(cpus or 1), "GPU": float(torch.cuda.device_count())}


def _address_space() -> tuple[int | None, int]:
    """(this process's address-space limit or None, the address space it uses now)."""
    try:
        import resource
    except ImportError:  # not a Unix: no such limit
        return None, 0
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    try:
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        used = 0
    return (None if limit == resource.RLIM_INFINITY else limit), used


def object_store_size(limit: int | None, used: int, available: int) -> int | None:
    """The object store of a local Ray instance under the address-space limit ``limit``
    (``ulimit -v``) of a process using ``used`` bytes: every Ray process maps the whole
    store, so it gets a quarter of what the limit leaves (at most 30 % of the
    ``available`` memory, Ray's own default); None without a limit (Ray's default).
    Refuses a limit that leaves Ray too little room."""
    if limit is None:
        return None
    room = limit - used
    if room < RAY_HEADROOM:
        raise BrushworkError(
            f"the address-space limit (ulimit -v) of {limit / GIB:.1f} GiB leaves "
            f"{max(room, 0) / GIB:.1f} GiB beside this process; a local Ray instance needs "
            f"{RAY_HEADROOM / GIB:.0f} GiB: raise the limit, or use --engine local"
        )
    return max(STORE_MINIMUM, min(room // 4, int(0.3 * available)))


def probe(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Refuse, within ``timeout`` seconds, a cluster address (``HOST:PORT`` or
    ``ray://HOST:PORT``) that accepts no connection: Ray retries such an address for
    minutes. Other addresses (``auto``) are left to Ray, which finds the cluster itself."""
    parts = urllib.parse.urlsplit("//" + address.removeprefix("ray://"))
    try:
        port = parts.port
    except ValueError:
        return
    if parts.hostname is None or port is None:
        return
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or error
        raise BrushworkError(
            f"cannot reach the Ray cluster at {address}: {reason} (is `ray start --head` "
            "running there?)"
        ) from None


def _cluster_nodes() -> list[dict[str, float]]:
    """The resources of each live node of the cluster Ray is connected to."""
    import ray

    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def _local_options(
    workers: int | None, cpus_per_worker: float, gpus_per_worker: float
) -> dict[str, Any]:
    """``ray.init``'s options for a local instance sized to this machine, once the workers
    asked for fit it."""
    from brushwork.memory import available_memory

    node = local_node()
    plan_workers([node], workers, cpus_per_worker, gpus_per_worker, "this machine")
    options: dict[str, Any] = {"num_cpus": node["CPU"], "num_gpus": node["GPU"]}
    store = object_store_size(*_address_space(), available_memory())
    if store is not None:
        options["object_store_memory"] = store
    return options


def _init_ray(
    address: str | None, workers: int | None, cpus_per_worker: float, gpus_per_worker: float
) -> None:
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``), else start a local instance
    sized to this machine, once what can be checked before Ray starts is."""
    import ray

    target = address or os.environ.get("RAY_ADDRESS") or None
    local = target in (None, "local")
    options = _local_options(workers, cpus_per_worker, gpus_per_worker) if local else {}
    if target is not None and not local:
        probe(target)
    try:
        ray.init(
            address=target,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=True,
            **options,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        what = "start a local Ray instance" if local else f"reach the Ray cluster at {target}"
        raise BrushworkError(f"cannot {what}: {' '.join(str(error).split())[:300]}") from None


@contextlib.contextmanager
def ray_connection(
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
) -> Iterator[int]:
    """Ray for the block, able to hold the workers asked for (it yields their number): a
    Ray already initialized in this process, else the cluster at ``address`` (or
    ``$RAY_ADDRESS``), else a new local instance (stopped at the end). Everything that can
    be checked before Ray starts is (the options, the address, this machine's CPUs and
    GPUs, the address space); the cluster's nodes right after it is joined."""
    require_ray()
    import ray

    check_ray_options(workers, cpus_per_worker, gpus_per_worker)
    started = not ray.is_initialized()
    if started:
        _init_ray(address, workers, cpus_per_worker, gpus_per_worker)
    try:
        yield plan_workers(
            _cluster_nodes(), workers, cpus_per_worker, gpus_per_worker, "the Ray cluster"
        )
    finally:
        if started:
            ray.shutdown()


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


def _dataset(
    items: Sequence[Any],
    constructor: dict[str, Any],
    count: int,
    cpus_per_worker: float,
    gpus_per_worker: float,
) -> Any:
    """The Ray dataset of ``items`` painted by a pool of at most ``count``
    :class:`PaintWorker` (built with ``constructor``), one item per task."""
    import ray.data

    rows = [asdict(item) for item in items]
    resources: dict[str, Any] = {"num_cpus": cpus_per_worker}
    if gpus_per_worker:
        resources["num_gpus"] = gpus_per_worker
    return ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        PaintWorker,
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(
            size=min(count, len(items)), max_tasks_in_flight_per_actor=1
        ),
        fn_constructor_kwargs=constructor,
        **resources,
    )


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
    """Paint ``items`` on Ray; ``on_record`` gets each item's record as it arrives. Ray
    is joined or started as :func:`ray_connection` does (reused when this process
    initialized it already)."""
    require_ray()
    import ray.data

    check_ray_options(workers, cpus_per_worker, gpus_per_worker)
    if not items:
        return
    constructor = {
        "method": method,
        "values": values,
        "force": force,
        "encoder": encoder,
        "threads": max(1, int(cpus_per_worker)),
    }
    with ray_connection(address, workers, cpus_per_worker, gpus_per_worker) as count:
        context = ray.data.DataContext.get_current()
        waited = context.wait_for_min_actors_s
        try:
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            # start every worker before the first item, so that the items spread over all
            # of them (otherwise the first worker up may take them all)
            context.wait_for_min_actors_s = 600
            logging.getLogger("ray.data").setLevel(logging.WARNING)
            dataset = _dataset(items, constructor, count, cpus_per_worker, gpus_per_worker)
            for row in dataset.iter_rows():
                on_record(json.loads(row["record"]))
        except BrushworkError:
            raise
        except Exception as error:
            raise BrushworkError(
                f"the Ray batch stopped: {type(error).__name__}: "
                f"{' '.join(str(error).split())[:300]}"
            ) from None
        finally:
            context.wait_for_min_actors_s = waited
