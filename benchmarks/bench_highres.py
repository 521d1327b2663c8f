"""High-resolution Gatys: single-scale vs coarse-to-fine at 1024, 2048 and 4096 px.

Each run is a separate `brushwork stylize` process, so its peak memory (RSS) is its own.
Reports wall time, peak RSS, the planner's estimate, and the final content and style losses
(measured at the output size, so single-scale and coarse-to-fine rows of one size compare).
Every run passes ``--precision float32`` (the table's memory and time are float32; ``auto``
would pick bfloat16 on CPUs with bfloat16 units). Writes the ``highres`` section of
BENCHMARKS.md.

    python -m benchmarks.bench_highres                 # ~45 min on a 2-core CPU
    python -m benchmarks.bench_highres --sizes 1024    # one size
    python -m benchmarks.bench_highres --smoke         # check the script: 64 px, no writing
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks.harness import (
    ROOT,
    arguments,
    machine,
    markdown_table,
    recorded_command,
    run_cli,
    write_section,
)

SHARED = ROOT.parent / "shared" / "data"
# (label, extra CLI arguments) per output size: iteration counts chosen so that the two rows
# of a size take comparable time; coarse-to-fine starts at 256 px.
RUNS: dict[int, list[tuple[str, list[str]]]] = {
    1024: [
        ("single-scale, 30 steps", ["--iterations", "30"]),
        (
            "coarse-to-fine 256→1024, 200/50/12 steps",
            ["--start-size", "256", "--scale-iterations", "200,50,12"],
        ),
    ],
    2048: [
        ("single-scale, 10 steps", ["--iterations", "10"]),
        (
            "coarse-to-fine 256→2048, 200/50/12/4 steps",
            ["--start-size", "256", "--scale-iterations", "200,50,12,4"],
        ),
    ],
    4096: [
        ("single-scale, 2 steps", ["--iterations", "2"]),
        (
            "coarse-to-fine 256→4096, 200/50/12/4/2 steps",
            ["--start-size", "256", "--scale-iterations", "200,50,12,4,2"],
        ),
    ],
}
SMOKE_RUNS: dict[int, list[tuple[str, list[str]]]] = {
    64: [
        ("single-scale, 1 step", ["--iterations", "1"]),
        ("coarse-to-fine 32→64, 1/1 steps", ["--start-size", "32", "--scale-iterations", "1,1"]),
    ],
}
"""``--smoke``: the same pipeline at 64 px in seconds, to check the script."""


def pair() -> tuple[str, str, str]:
    content, style = SHARED / "content" / "golden_gate.jpg", SHARED / "style" / "starry_night.jpg"
    if content.is_file() and style.is_file():
        return str(content), str(style), "golden_gate × starry_night (../shared/data)"
    from brushwork.examples import content_image, style_path

    folder = Path(tempfile.mkdtemp())
    content_image("astronaut").save(folder / "astronaut.png")
    return str(folder / "astronaut.png"), str(style_path("strokes")), "astronaut × strokes"


def run(
    content: str, style: str, size: int, extra: list[str], max_memory: str, output: Path
) -> dict:
    argv = ["stylize", content, style, "-o", str(output), "--size", str(size)]
    argv += ["--max-memory", max_memory, "--precision", "float32", "--json", "-q", "-f", *extra]
    result = run_cli(argv)
    if "error" in result:
        return {"wall": result["wall"], "peak": result["peak"], "error": result["error"]}
    return {"wall": result["wall"], "peak": result["peak"], **json.loads(result["stdout"])}


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=None,
        help=f"output sizes (default: {', '.join(map(str, sorted(RUNS)))})",
    )
    parser.add_argument("--max-memory", default="8G", help="memory limit passed to each run")
    parser.add_argument("--out", default=str(ROOT / "out" / "highres"))
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check the script at 64 px with 1-2 steps (a temporary --out, implies --no-write)",
    )
    args = parser.parse_args()
    runs = SMOKE_RUNS if args.smoke else RUNS
    if args.smoke:
        args.no_write = True
        args.out = tempfile.mkdtemp(prefix="bench_highres_smoke_")
    if args.sizes is None:
        args.sizes = sorted(runs)
    for size in args.sizes:
        if size not in runs:
            parser.error(
                f"--sizes: no runs are defined for {size} px; choose from "
                f"{', '.join(map(str, sorted(runs)))}"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    content, style, pair_name = pair()
    # Results are kept in out/ so sizes can be run separately and still share one table.
    store = out / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for size in args.sizes:
        for number, (label, extra) in enumerate(runs[size]):
            result = run(content, style, size, extra, args.max_memory, out / f"{size}-{number}.png")
            print(json.dumps({"label": label, **result})[:600], flush=True)
            results[f"{size}|{label}"] = {"pair": pair_name, **result}
            store.write_text(json.dumps(results, indent=1))
    rows = []
    for size in sorted(runs):
        for label, _ in runs[size]:
            result = results.get(f"{size}|{label}")
            if result is None or result.get("pair") != pair_name:
                continue
            if "error" in result:
                rows.append(
                    [
                        f"{size}",
                        label,
                        "refused",
                        "-",
                        "-",
                        "-",
                        "-",
                        "-",
                        result["error"].removeprefix("brushwork: error: "),
                    ]
                )
                continue
            memory = result.get("memory", {})
            losses = result["losses"]
            rows.append(
                [
                    f"{size}",
                    label,
                    f"{result['wall'] / 60:.1f} min",
                    f"{result['peak'] / 2**30:.2f} GiB",
                    f"{memory.get('memory_estimate', 0) / 2**30:.2f} GiB"
                    + (" (checkpointing)" if memory.get("checkpointing") else ""),
                    " / ".join(f"{scale['seconds']:.0f}" for scale in result["scales"]),
                    f"{losses['content']:.3f}",
                    f"{losses['style']:.3f}",
                    "",
                ]
            )
    table = markdown_table(
        [
            "output px",
            "schedule",
            "wall",
            "peak RSS",
            "planner estimate",
            "s per scale",
            "content loss",
            "style loss",
            "note",
        ],
        rows,
    )
    text = (
        "## High resolution: single-scale vs coarse-to-fine (Gatys, L-BFGS)\n\n"
        f"`{recorded_command(__file__)}` — {pair_name}, `--max-memory "
        f"{args.max_memory}` `--precision float32`, one run each. {machine()}.\n"
        "Losses are the final relative content and style losses at the output size (lower "
        "is better; same normalization as the method's progress bar).\n\n" + table + "\n"
    )
    print(text)
    if not args.no_write:
        write_section("highres", text)


if __name__ == "__main__":
    main()
