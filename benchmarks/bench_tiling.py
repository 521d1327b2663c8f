"""Print-size output: every one-pass method that tiles at 2048, 4096 and 8192 px (AdaIN
also at 16384), each a separate `brushwork stylize` process under `--max-memory 8G`.

Reports wall time (the whole process), peak RSS, the planner's estimate, the tiles (1:
painted whole, as the planner chose) and the seam measure
(:func:`brushwork.metrics.seam_ratio`: the luminance steps at the middle of the seams over
the steps everywhere; 1 means no seam stands out). The content is the bundled astronaut
(512 px, enlarged), the style the bundled strokes; precision as `auto` picks. Writes the
``tiling`` section of BENCHMARKS.md.

    python -m benchmarks.bench_tiling                      # ~1 h on a 2-core CPU
    python -m benchmarks.bench_tiling --runs adain:8192    # one run
    python -m benchmarks.bench_tiling --smoke              # check the script, no writing
    python -m benchmarks.bench_tiling --table-only         # the table of the stored runs
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.harness import (
    ROOT,
    arguments,
    machine,
    markdown_table,
    recorded_command,
    run_cli,
    write_section,
)
from brushwork.examples import content_image, style_path
from brushwork.metrics import seam_ratio
from brushwork.tiling import TileGrid, seams

METHODS = ("adain", "wct", "styleswap-inverse", "johnson", "lapstyle")
RUNS = [f"{m}:{s}" for s in (2048, 4096, 8192) for m in METHODS] + ["adain:16384"]
SMOKE = ["adain:256", "johnson:256"]
EXTRA = {"styleswap-inverse": ["--style-size", "512"]}
"""Style Swap compares every content patch with every style patch: with the style as large
as the output (the default) a 2048 px run alone takes over 5 minutes here, so its style
stays at 512 px (its strokes are then finer than the others')."""
STORE = ROOT / "out" / "tiling" / "results.json"


def run(method: str, size: int, folder: Path, extra: list[str]) -> dict:
    """One process: wall time, peak RSS, the JSON summary, the seam measure."""
    content = folder / "astronaut.png"
    if not content.exists():
        content_image("astronaut").save(content)
    output = folder / f"{method}-{size}.png"
    styles = [] if method in ("johnson", "lapstyle") else [str(style_path("strokes"))]
    extra = [*extra, *EXTRA.get(method, [])]
    argv = ["stylize", str(content), *styles, "-m", method, "-o", str(output)]
    outcome = run_cli([*argv, "--size", str(size), "--json", "-q", "-f", *extra])
    wall, peak = outcome["wall"], outcome["peak"]
    if "error" in outcome:
        return {"wall": wall, "peak": peak, "error": outcome["error"]}
    summary = json.loads(outcome["stdout"])
    tiling = summary.get("tiling") or {}
    result = {"wall": wall, "peak": peak, "summary": summary, "seam": None}
    if tiling:
        pixels = np.asarray(Image.open(output).convert("RGB"))
        height, width = pixels.shape[:2]
        grid = TileGrid(height, width, tiling["tile"], tiling["overlap"], align=tiling["align"])
        result["seam"] = seam_ratio(
            pixels, seams(grid.rows, grid.overlap), seams(grid.columns, grid.overlap)
        )
    return result


def row(key: str, result: dict) -> list[object]:
    method, size = key.split(":")
    if "error" in result:
        return [method, size, "refused", "-", "-", "-", "-", result["error"].splitlines()[-1]]
    summary = result["summary"]
    tiling = summary.get("tiling") or {}
    tiles = f"{tiling['tiles']} of {tiling['tile']} px" if tiling else "1 (whole)"
    seam = "-" if result["seam"] is None else f"{result['seam']:.2f}"
    return [
        method,
        size,
        f"{result['wall']:.0f} s",
        f"{result['peak'] / 2**30:.2f} GiB",
        f"{summary['memory'].get('memory_estimate', 0) / 2**30:.2f} GiB",
        tiles,
        seam,
        summary["precision"],
    ]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--runs", nargs="*", default=None, help="METHOD:SIZE ... (default: all)")
    parser.add_argument("--max-memory", default="8G", help="memory limit passed to each run")
    parser.add_argument("--smoke", action="store_true", help="256 px runs, no writing")
    parser.add_argument(
        "--table-only", action="store_true", help="write the table of the stored results"
    )
    args = parser.parse_args()
    runs = [] if args.table_only else args.runs or (SMOKE if args.smoke else RUNS)
    store = Path(tempfile.mkdtemp()) / "results.json" if args.smoke else STORE
    store.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(store.read_text()) if store.exists() else {}
    folder = Path(tempfile.mkdtemp(prefix="bench_tiling_"))
    for key in runs:
        method, size = key.split(":")
        result = run(method, int(size), folder, ["--max-memory", args.max_memory])
        for image in folder.glob(f"{method}-*.png"):
            image.unlink()  # (print-size files: up to a gigabyte each)
        results[key] = result
        print(json.dumps({"run": key, **{k: v for k, v in result.items() if k != "summary"}}))
        store.write_text(json.dumps(results, indent=1))
    header = ["method", "size", "wall", "peak RSS", "estimate", "tiles", "seam", "precision"]
    ordered = [k for k in RUNS + SMOKE if k in results]
    table = markdown_table(header, [row(k, results[k]) for k in ordered])
    text = (
        "## Print-size output (tiles)\n\n"
        f"`{recorded_command(__file__, [])}` (the rows of runs kept in out/tiling) on "
        f"{machine()}; `--max-memory "
        f"{args.max_memory}`, one process per row (wall time and peak RSS are the whole "
        "process's). Content: the bundled astronaut enlarged; style: the bundled strokes. "
        "Seam: luminance steps at the seams' middles over the steps everywhere (1: none "
        "stands out). Style Swap's inverse network runs with `--style-size 512` (every "
        "content patch is compared with every style patch).\n\n" + table
    )
    missing = [k for k in RUNS if k not in results]
    if missing:
        text += f"\n\nNot run yet: {', '.join(missing)}."
    print(text)
    if not (args.no_write or args.smoke):
        write_section("tiling", text)


if __name__ == "__main__":
    main()
