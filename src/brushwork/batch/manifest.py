"""The manifest of a batch: one JSON-lines record per item, appended to only when
brushwork wrote it (:func:`check_manifest`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brushwork import events as ev
from brushwork.batch.inputs import Item
from brushwork.errors import BrushworkError
from brushwork.outputs import OutputPlan, check_name_length, check_not_input, is_within

RECORD_KEYS = frozenset({"content", "style", "output", "status"})
"""What every manifest record brushwork writes has (see :func:`item_record`)."""


def item_record(
    item: Item, method: str, status: str, seconds: float = 0.0, **more: Any
) -> dict[str, Any]:
    """One manifest record: the item, its method, status, seconds and error (None unless
    ``more`` gives one), then ``more``."""
    return {
        "content": item.content,
        "style": item.style,
        "output": item.output,
        "method": method,
        "status": status,
        "seconds": round(seconds, 3),
        "error": None,
        **more,
    }


def skipped_record(item: Item, method: str) -> dict[str, Any]:
    """The record of an item whose output already exists."""
    return item_record(item, method, "skipped", reason="the output exists")


def is_manifest(path: Path) -> bool:
    """Whether ``path`` holds records brushwork wrote and nothing else: one JSON object a
    line, each with an item's content, style, output and status."""
    records = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    if not (isinstance(record, dict) and record.keys() >= RECORD_KEYS):
                        return False
                    records += 1
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return False
    return records > 0


def check_manifest(plan: OutputPlan, path: Path, out_dir: Path, items: Sequence[Item]) -> None:
    """Refuse, before any work, a manifest that is an input or an item's output, overlaps
    the output folder, lies in a missing folder or is a folder; an existing file is
    appended to only when brushwork wrote it (:func:`is_manifest`), even with --force.
    ``plan`` holds the batch's inputs and output folder."""
    check_name_length(path)
    check_not_input(path, plan.inputs, label="--manifest")
    if is_within(out_dir, path):
        raise BrushworkError(
            f"--manifest {path} and -o {out_dir} overlap; give the manifest its own path"
        )
    target = os.path.abspath(path)
    for item in items:
        if os.path.abspath(item.output) == target:
            raise BrushworkError(
                f"--manifest {path} is the output of {item.content} × {item.style}; "
                "choose another path"
            )
    if path.is_file():
        if not is_manifest(path):
            raise BrushworkError(
                f"--manifest {path} exists and is not a brushwork manifest (JSON lines "
                "brushwork wrote); brushwork appends only to its own: choose another path"
            )
        if not os.access(path, os.W_OK):
            raise BrushworkError(f"cannot write the manifest {path}: permission denied")
    elif out_dir.exists() or os.path.abspath(path.parent) != os.path.abspath(out_dir):
        plan.add(path, extensions=(), flag="--manifest")  # else made with the output folder


class Manifest:
    """The JSON-lines record of a batch, appended to (a rerun adds its lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts = {"done": 0, "skipped": 0, "failed": 0}

    def write(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] = self.counts.get(record["status"], 0) + 1
        line = json.dumps(ev.finite({**record, "time": round(time.time(), 3)}), allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
