"""A load test of a running ``brushwork serve``: many concurrent submissions, an event
reader per accepted job, every answer counted (used by the tests and
``benchmarks/bench_service.py``).

    report = asyncio.run(load_test("http://127.0.0.1:8000", submissions=50,
                                   content=png, style=png, method="adain",
                                   options={"size": 64}))
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from brushwork.defaults import DEFAULT_ONE_PASS_METHOD


@dataclass
class LoadReport:
    """What the server answered: status counts, jobs finished, latencies (seconds)."""

    submissions: int
    statuses: dict[int, int]
    finished: dict[str, int]
    submit_latencies: list[float] = field(default_factory=list)
    job_latencies: list[float] = field(default_factory=list)
    events_read: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @staticmethod
    def percentile(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index]

    def summary(self) -> dict[str, Any]:
        return {
            "submissions": self.submissions,
            "statuses": dict(sorted(self.statuses.items())),
            "finished": dict(self.finished),
            "submit_p50": self.percentile(self.submit_latencies, 0.5),
            "submit_p95": self.percentile(self.submit_latencies, 0.95),
            "job_p50": self.percentile(self.job_latencies, 0.5),
            "job_p95": self.percentile(self.job_latencies, 0.95),
            "events_read": self.events_read,
            "seconds": self.seconds,
            "errors": self.errors[:5],
            "mean_job": statistics.fmean(self.job_latencies) if self.job_latencies else None,
        }


async def _follow(
    client: Any, job_id: str, headers: dict[str, str], timeout: float
) -> tuple[str, int]:
    """Read a job's events until its final one: (final state, events read)."""
    count = 0
    state = "unknown"
    async with client.stream(
        "GET", f"/jobs/{job_id}/events", headers=headers, timeout=timeout
    ) as stream:
        name = None
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
                count += 1
            elif line.startswith("data:") and name in ("done", "failed", "cancelled"):
                state = name
                break
            elif line.startswith("data:") and name == "state":
                now = json.loads(line[5:])["state"]
                if now in ("done", "failed", "cancelled"):
                    state = now
    return state, count


@dataclass
class _Submitter:
    """Submits one load test's jobs and follows them, counting into ``report``."""

    client: Any
    headers: dict[str, str]
    form: dict[str, str]
    images: tuple[bytes, bytes]
    timeout: float
    report: LoadReport
    statuses: Counter[int] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)

    async def _post(self, index: int) -> Any:
        content, style = self.images
        return await self.client.post(
            "/jobs",
            headers=self.headers,
            files=[
                ("content", (f"c{index}.png", content, "image/png")),
                ("style", ("s.png", style, "image/png")),
            ],
            data=self.form,
        )

    async def one(self, index: int) -> None:
        """Submit job ``index`` and follow it to its end, if accepted."""
        import httpx

        report = self.report
        begun = time.perf_counter()
        try:
            response = await self._post(index)
        except httpx.HTTPError as error:
            report.errors.append(f"submit: {type(error).__name__}: {error}")
            self.statuses[0] += 1
            return
        report.submit_latencies.append(time.perf_counter() - begun)
        self.statuses[response.status_code] += 1
        if response.status_code != 202:
            if response.status_code != 429:
                report.errors.append(f"submit: {response.status_code} {response.text}")
            return
        try:
            state, count = await _follow(
                self.client, response.json()["id"], self.headers, self.timeout
            )
        except httpx.HTTPError as error:
            report.errors.append(f"events: {type(error).__name__}: {error}")
            return
        report.events_read += count
        self.finished[state] += 1
        report.job_latencies.append(time.perf_counter() - begun)


async def load_test(
    url: str,
    *,
    submissions: int,
    content: bytes,
    style: bytes,
    method: str = DEFAULT_ONE_PASS_METHOD,
    options: dict[str, Any] | None = None,
    token: str | None = None,
    timeout: float = 300.0,
) -> LoadReport:
    """Submit ``submissions`` jobs at once; follow each accepted job's events to its end."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    form = {"method": method, "options": json.dumps(options or {})}
    report = LoadReport(submissions, {}, {})
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=submissions * 2 + 4)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        submitter = _Submitter(client, headers, form, (content, style), timeout, report)
        await asyncio.gather(*(submitter.one(i) for i in range(submissions)))
    report.statuses = dict(submitter.statuses)
    report.finished = dict(submitter.finished)
    report.seconds = time.perf_counter() - start
    return report
