"""The Ray engine's checks, as pure functions (no Ray starts): option values, the workers
the cluster's nodes can hold, the object store under an address-space limit, an address
that accepts no connection; and one real local Ray instance under ``ulimit -v``."""

from __future__ import annotations

import math
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import save_decoder
from servicekit import png_bytes

from brushwork.batch.ray_engine import (
    RAY_HEADROOM,
    check_ray_options,
    object_store_size,
    plan_workers,
    probe,
)
from brushwork.encoders import VGG19
from brushwork.errors import BrushworkError

GIB = 2**30


@pytest.mark.parametrize(
    ("workers", "cpus", "gpus", "expected"),
    [
        (0, 1.0, 0.0, "--ray-workers must be >= 1, not 0"),
        (None, math.inf, 0.0, "--ray-cpus must be a number > 0, not inf"),
        (None, math.nan, 0.0, "--ray-cpus must be a number > 0, not nan"),
        (None, 0.0, 0.0, "--ray-cpus must be a number > 0, not 0"),
        (None, 1.0, math.nan, "--ray-gpus must be a number >= 0, not nan"),
        (None, 1.0, math.inf, "--ray-gpus must be a number >= 0, not inf"),
        (None, 1.0, -1.0, "--ray-gpus must be a number >= 0, not -1"),
        (None, 0.00001, 0.0, "--ray-cpus 1e-05: Ray counts resources in steps of 0.0001"),
    ],
)
def test_ray_options_are_checked_before_ray_starts(
    workers: int | None, cpus: float, gpus: float, expected: str
) -> None:
    with pytest.raises(BrushworkError, match=f"^{expected}"):
        check_ray_options(workers, cpus, gpus)


def test_good_ray_options_pass() -> None:
    check_ray_options(None, 0.5, 0.0)
    check_ray_options(4, 2.0, 0.25)


NODES = [{"CPU": 2.0}, {"CPU": 8.0, "GPU": 1.0}]


@pytest.mark.parametrize(
    ("workers", "cpus", "gpus", "expected"),
    [
        (None, 1.0, 0.0, 10),
        (None, 3.0, 0.0, 2),
        (None, 0.1, 0.0, 100),  # 2 / 0.1 is 19.999...: still 20 on the first node
        (None, 1.0, 0.5, 2),
        (3, 1.0, 0.0, 3),
        (None, 8.0, 1.0, 1),
    ],
)
def test_workers_are_planned_from_the_nodes(
    workers: int | None, cpus: float, gpus: float, expected: int
) -> None:
    assert plan_workers(NODES, workers, cpus, gpus, "the Ray cluster") == expected


@pytest.mark.parametrize(
    ("workers", "cpus", "gpus", "expected"),
    [
        (None, 9.0, 0.0, "a worker needs 9 CPUs, more than any node of the Ray cluster has"),
        (None, 1.0, 2.0, "a worker needs 1 CPUs and 2 GPUs, more than any node of the Ray"),
        (11, 1.0, 0.0, "--ray-workers 11: the Ray cluster has room for 10 workers of 1 CPUs"),
        (2, 1.0, 1.0, "--ray-workers 2: the Ray cluster has room for 1 workers of 1 CPUs and 1"),
    ],
)
def test_requests_the_cluster_cannot_hold_are_refused(
    workers: int | None, cpus: float, gpus: float, expected: str
) -> None:
    with pytest.raises(BrushworkError, match=f"^{expected}"):
        plan_workers(NODES, workers, cpus, gpus, "the Ray cluster")


def test_the_object_store_fits_the_address_space_limit() -> None:
    plenty = 64 * GIB
    assert object_store_size(None, 2 * GIB, plenty) is None  # no limit: Ray's default
    assert object_store_size(10 * GIB, 2 * GIB, plenty) == 2 * GIB  # a quarter of the room
    assert object_store_size(10 * GIB, 2 * GIB, 4 * GIB) == int(0.3 * 4 * GIB)
    with pytest.raises(BrushworkError, match=r"^the address-space limit \(ulimit -v\) of 3\.0 GiB"):
        object_store_size(3 * GIB, 2 * GIB, plenty)
    assert RAY_HEADROOM == 2 * GIB


def test_an_address_that_accepts_no_connection_is_refused_at_once() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        server.listen()
        probe(f"127.0.0.1:{port}")  # listening: Ray may connect
        probe(f"ray://127.0.0.1:{port}")
    probe("auto")  # Ray finds the cluster itself
    start = time.monotonic()
    with pytest.raises(BrushworkError, match=f"^cannot reach the Ray cluster at 127.0.0.1:{port}"):
        probe(f"127.0.0.1:{port}")
    assert time.monotonic() - start < 5


DRIVER = """
import sys
from pathlib import Path

import torch

from brushwork import events
from brushwork.batch import expand, plan_items, run_batch
from brushwork.encoders import VGG19

torch.manual_seed(0)
encoder = VGG19(last_layer="relu5_1", width=1 / 16).requires_grad_(False).eval()
items = plan_items(expand("photos"), expand("s0.png"), Path("out"), "png")
Path("out").mkdir()
result = run_batch(
    items,
    "adain",
    {"model": sys.argv[1], "size": 32},
    manifest=Path("out/manifest.jsonl"),
    engine="ray",
    encoder=encoder,
    ray_options={"workers": 1},
    events=events.Collect(),
)
sys.exit(0 if result.done == 1 else 1)
"""


def test_a_local_ray_instance_starts_under_an_address_space_limit(
    tmp_path: Path, tiny_encoder: VGG19
) -> None:
    """Ray's default object store (30 % of the memory, mapped by every Ray process) could
    not be mapped under ``ulimit -v`` and the batch waited forever; it is now sized to fit.
    A batch of one item on a local Ray instance, in a process limited to 8 GiB."""
    pytest.importorskip("ray.data")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos/c0.png").write_bytes(png_bytes(40, 32, seed=1))
    (tmp_path / "s0.png").write_bytes(png_bytes(32, 32, seed=2))
    model = save_decoder(tmp_path / "tiny.safetensors", tiny_encoder)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * GIB, 8 * GIB))

    completed = subprocess.run(
        [sys.executable, "-c", DRIVER, str(model)],
        cwd=tmp_path,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "out/c0--s0.png").is_file()
