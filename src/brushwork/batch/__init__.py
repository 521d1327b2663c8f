"""``brushwork batch``: stylize folders of images, resumably, on one machine or on Ray.

    brushwork batch photos/ --style styles/ -o out/ -m adain          # every photo × style
    brushwork batch 'shots/*.jpg' list.txt --style starry.jpg -o out/ --size 384
    brushwork batch --pairs pairs.csv -o out/ -m gatys --iterations 200
    brushwork batch photos/ --style styles/ -o out/ --engine ray --ray-address auto

Inputs are image files, folders (their images, sorted; ``--recursive`` for subfolders),
glob patterns (quoted, expanded here) or list files (``.txt``: one path or pattern a line,
relative to the list, ``#`` comments). Every content is paired with every style, or the
pairs come from ``--pairs`` (``content,style[,output]`` lines). An output that already
exists is skipped (a rerun resumes), each item's result goes to a JSON-lines manifest
(``OUT/manifest.jsonl``: status, seconds, error, losses), and a bad file fails only its
item. Exit status: 0 when every item is done or skipped, 1 when some failed, 2 for an
error before any work.

Everything is checked before the output folder is made (and a run refused after that
removes the folders it made): neither the output folder nor the manifest may be or contain
an input (:class:`~brushwork.outputs.OutputPlan`), a folder scan or a pattern never reads
the output folder and ends on symlink loops (:func:`walk`), an existing manifest is
appended to only when brushwork wrote it, a batch none of whose items can run (a --size
over the memory, a style over the pixel limit) is refused, and an output name over the
file system's limit is shortened with a digest (:func:`output_name`).

The work is one :class:`~brushwork.painter.Painter` per worker: the encoder and decoders
load once, the styles are prepared once per size. ``--engine ray`` (``pip install
'brushwork[ray]'``) runs the same items as a Ray Data ``map_batches`` over a pool of
stateful workers (:mod:`brushwork.batch.ray_engine`); inputs and outputs are paths every
Ray node can reach (a shared file system).

The modules: :mod:`~brushwork.batch.inputs` (the items), :mod:`~brushwork.batch.manifest`,
:mod:`~brushwork.batch.run` (painting and the engines) and :mod:`~brushwork.batch.cli` (the
command).
"""

from __future__ import annotations

from brushwork.batch.cli import FORMATS, batch_items, batch_parser, cmd_batch
from brushwork.batch.inputs import (
    LIST_SUFFIXES,
    Item,
    expand,
    output_name,
    plan_items,
    read_list,
    read_pairs,
    walk,
)
from brushwork.batch.manifest import (
    RECORD_KEYS,
    Manifest,
    check_manifest,
    is_manifest,
    item_record,
    skipped_record,
)
from brushwork.batch.run import (
    STAGE,
    BatchResult,
    check_runnable,
    paint_item,
    run_batch,
    to_do,
)
from brushwork.outputs import MAX_NAME_BYTES

__all__ = [
    "FORMATS",
    "LIST_SUFFIXES",
    "MAX_NAME_BYTES",
    "RECORD_KEYS",
    "STAGE",
    "BatchResult",
    "Item",
    "Manifest",
    "batch_items",
    "batch_parser",
    "check_manifest",
    "check_runnable",
    "cmd_batch",
    "expand",
    "is_manifest",
    "item_record",
    "output_name",
    "paint_item",
    "plan_items",
    "read_list",
    "read_pairs",
    "run_batch",
    "skipped_record",
    "to_do",
    "walk",
]
