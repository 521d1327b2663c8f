"""The job index: one SQLite database under ``--data``, one row per job.

Every change is one committed transaction (WAL, ``synchronous=FULL``), so a job answered
``202`` is on disk before the client hears of it, and a server killed at any point finds
each job in a state it can act on at the next start (:meth:`JobStore.recover`). The files
of a job (uploads, previews, result) live in its own folder, named by its random id.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError

INDEX = "jobs.sqlite3"
"""The index's file name in the data folder."""
HEADER = b"SQLite format 3\x00"
"""The first bytes of every SQLite database (an empty file is a new one)."""
STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = frozenset({"done", "failed", "cancelled"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    method TEXT NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    losses TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, seq);
"""


@dataclass
class Job:
    """One row of the index."""

    id: str
    owner: str
    kind: str
    method: str
    state: str
    spec: dict[str, Any]
    created: float
    started: float | None = None
    finished: float | None = None
    step: int = 0
    total: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    cancel: bool = False
    result: dict[str, Any] | None = None
    seq: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        data["spec"] = json.loads(data["spec"])
        data["losses"] = json.loads(data["losses"] or "{}")
        data["result"] = json.loads(data["result"]) if data["result"] else None
        data["cancel"] = bool(data["cancel"])
        return cls(**data)

    @property
    def final(self) -> bool:
        return self.state in FINAL


def check_index(path: Path) -> None:
    """Refuse, before anything starts or is made, an index file that is not a SQLite
    database (read-only: only its first bytes are read)."""
    try:
        with open(path, "rb") as index:
            head = index.read(len(HEADER))
    except FileNotFoundError:
        return
    except OSError as error:
        raise BrushworkError(f"cannot read the job index {path}: {error.strerror}") from None
    if head and head != HEADER:
        raise BrushworkError(
            f"{path} is not a SQLite database (the job index of --data); move it away or "
            "choose another --data"
        )


class JobStore:
    """Thread-safe access to the index (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        check_index(path)
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise BrushworkError(f"{path} is not a usable job index: {error}") from None
        self.closed = False

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self.closed = True

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, job: Job, queue_limit: int | None) -> bool:
        """Insert a queued job unless ``queue_limit`` jobs already wait; False if full."""
        with self._transaction() as db:
            if queue_limit is not None:
                (waiting,) = db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state = 'queued'"
                ).fetchone()
                if waiting >= queue_limit:
                    return False
            db.execute(
                "INSERT INTO jobs (id, owner, kind, method, state, spec, created, total) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job.id,
                    job.owner,
                    job.kind,
                    job.method,
                    json.dumps(job.spec),
                    job.created,
                    job.total,
                ),
            )
        return True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_row(row)

    def newest(self, owner: str | None, limit: int = 50) -> list[Job]:
        """The newest jobs of ``owner`` (None: everyone's)."""
        with self._lock:
            if owner is None:
                rows = self._db.execute(
                    "SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM jobs WHERE owner = ? ORDER BY seq DESC LIMIT ?", (owner, limit)
                ).fetchall()
        return [Job.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            found = dict(rows.fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def claim(self) -> Job | None:
        """The oldest queued job, now running (its attempts counted); None if none waits."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', started = ?, attempts = attempts "
                "+ 1, step = 0 WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.get(row["id"])

    def progress(self, job_id: str, step: int, total: int | None, losses: dict[str, float]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET step = ?, total = ?, losses = ? WHERE id = ? "
                "AND state = 'running'",
                (step, total, json.dumps(losses), job_id),
            )

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        expected: str = "running",
    ) -> bool:
        """Put a job that is in state ``expected`` (a running one) in a final state;
        whether it was (a job requeued, cancelled or finished meanwhile is left as is)."""
        assert state in FINAL
        with self._lock:
            changed = self._db.execute(
                "UPDATE jobs SET state = ?, error = ?, result = ?, finished = ? WHERE id = ? "
                "AND state = ?",
                (
                    state,
                    error,
                    None if result is None else json.dumps(result),
                    time.time(),
                    job_id,
                    expected,
                ),
            ).rowcount
        return changed > 0

    def requeue(self, job_id: str) -> None:
        """Give a running job back to the queue (the server is stopping: not its fault, so
        the attempt does not count)."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'queued', attempts = MAX(0, attempts "
                "- 1), step = 0 WHERE id = ? AND state = 'running'",
                (job_id,),
            )

    def request_cancel(self, job_id: str) -> str | None:
        """Cancel a queued job at once, or mark a running one; the new state (None: no
        such job)."""
        with self._transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row["state"] == "queued":
                db.execute(
                    "UPDATE jobs SET state = 'cancelled', error = 'cancelled', "
                    "finished = ? WHERE id = ?",
                    (time.time(), job_id),
                )
                return "cancelled"
            if row["state"] == "running":
                db.execute("UPDATE jobs SET cancel = 1 WHERE id = ?", (job_id,))
            return str(row["state"])

    def recover(self, max_attempts: int) -> tuple[list[str], list[str]]:
        """After a restart: jobs left running go back to the queue, unless they were
        started ``max_attempts`` times already (then they fail, saying why). Returns
        (requeued ids, failed ids)."""
        requeued: list[str] = []
        failed: list[str] = []
        now = time.time()
        with self._transaction() as db:
            rows = db.execute(
                "SELECT id, attempts, cancel FROM jobs WHERE state = 'running'"
            ).fetchall()
            for row in rows:
                if row["cancel"]:
                    db.execute(
                        "UPDATE jobs SET state = 'cancelled', error = 'cancelled', "
                        "finished = ? WHERE id = ?",
                        (now, row["id"]),
                    )
                elif row["attempts"] >= max_attempts:
                    db.execute(
                        "UPDATE jobs SET state = 'failed', finished = ?, error = ? WHERE id = ?",
                        (
                            now,
                            f"the server stopped while this job ran, "
                            f"{row['attempts']} times; it is not started again",
                            row["id"],
                        ),
                    )
                    failed.append(row["id"])
                else:
                    db.execute(
                        "UPDATE jobs SET state = 'queued', step = 0 WHERE id = ?", (row["id"],)
                    )
                    requeued.append(row["id"])
        return requeued, failed

    def expired(self, before: float) -> list[str]:
        """Ids of jobs that ended before ``before``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND "
                "finished < ?",
                (before,),
            ).fetchall()
        return [r["id"] for r in rows]

    def ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs").fetchall()}

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
