"""Generate the two example style images shipped with brushwork.

The package may only ship images it makes itself, so both style images are procedural:

* ``strokes.png`` -- an impressionist painting of thick, curved brush strokes that follow a
  swirling flow field, in a bold blue/yellow palette (a Van Gogh-like texture).
* ``mosaic.png`` -- a stained-glass window: Voronoi cells of jewel-coloured glass with shading
  inside each cell, separated by dark lead lines.

Both are deterministic (fixed numpy seeds) and take a few seconds on one CPU core.

Usage::

    python scripts/make_example_styles.py [--out-dir src/brushwork/examples]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

SIZE = 512
SEED = 20240611

# Bold impressionist palette (RGB) with relative sampling weights.
STROKE_PALETTE: dict[str, tuple[tuple[int, int, int], float]] = {
    "ultramarine": ((28, 48, 150), 1.0),
    "cobalt": ((0, 71, 171), 1.0),
    "cerulean": ((42, 130, 200), 0.9),
    "pale_blue": ((130, 180, 225), 0.5),
    "chrome_yellow": ((255, 196, 20), 1.0),
    "ochre": ((204, 134, 34), 0.7),
    "off_white": ((240, 234, 210), 0.45),
    "navy": ((14, 22, 62), 0.6),
}

# Jewel palette for the stained glass.
GLASS_PALETTE: list[tuple[int, int, int]] = [
    (190, 16, 48),  # ruby
    (10, 150, 80),  # emerald
    (22, 60, 190),  # sapphire
    (250, 165, 10),  # amber
    (128, 40, 170),  # violet
    (20, 190, 190),  # turquoise
]


# --------------------------------------------------------------------------------------------
# Brush strokes
# --------------------------------------------------------------------------------------------


def _stream_function(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random stream function: low-frequency sinusoids plus a few vortex bumps."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    psi = np.zeros((size, size))
    for _ in range(5):
        kx, ky = rng.uniform(-3.0, 3.0, size=2) * np.pi
        phase = rng.uniform(0.0, 2.0 * np.pi)
        psi += rng.uniform(0.5, 1.0) * np.sin(kx * xx + ky * yy + phase) / np.pi
    # Gaussian bumps in the stream function become swirls in the flow.
    for _ in range(4):
        cx, cy = rng.uniform(0.1, 0.9, size=2)
        radius = rng.uniform(0.08, 0.16)
        strength = rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.4)
        psi += strength * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2.0 * radius**2))
    return psi


def _flow_field(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit flow vectors (vx, vy) given by the curl of a smooth stream function."""
    psi = _stream_function(rng, size)
    dpsi_dy, dpsi_dx = np.gradient(psi)
    vx, vy = dpsi_dy, -dpsi_dx
    norm = np.hypot(vx, vy) + 1e-9
    return vx / norm, vy / norm


def _colour_weights(region: float) -> np.ndarray:
    """Palette sampling weights; ``region`` in [0, 1] moves from blue areas to yellow areas."""
    base = np.array([w for _, w in STROKE_PALETTE.values()])
    blue = np.array([1.6, 1.6, 1.4, 1.0, 0.15, 0.1, 0.3, 1.2])
    warm = np.array([0.2, 0.2, 0.3, 0.4, 2.4, 1.8, 1.0, 0.2])
    weights = base * ((1.0 - region) * blue + region * warm)
    return weights / weights.sum()


def _trace_stroke(
    x: float,
    y: float,
    vx: np.ndarray,
    vy: np.ndarray,
    length: float,
    n_steps: int,
) -> list[tuple[float, float]]:
    """Follow the flow field from (x, y) in both directions; return the polyline points."""
    size = vx.shape[0]
    step = length / n_steps
    half = n_steps // 2
    points: list[tuple[float, float]] = []
    for direction in (-1.0, 1.0):
        px, py = x, y
        side = [(px, py)]
        for _ in range(half):
            ix = min(max(int(px), 0), size - 1)
            iy = min(max(int(py), 0), size - 1)
            px += direction * step * vx[iy, ix]
            py += direction * step * vy[iy, ix]
            side.append((px, py))
        if direction < 0:
            points = side[::-1]
        else:
            points.extend(side[1:])
    return points


def _jitter_colour(
    rng: np.random.Generator, colour: tuple[int, int, int], amount: float
) -> tuple[int, int, int]:
    """Per-stroke brightness jitter plus a little per-channel variation."""
    c = np.asarray(colour, dtype=np.float64)
    c = c * rng.uniform(1.0 - amount, 1.0 + amount) + rng.normal(0.0, 8.0, size=3)
    r, g, b = np.clip(c, 0, 255).astype(int)
    return int(r), int(g), int(b)


def make_strokes(size: int = SIZE, seed: int = SEED) -> Image.Image:
    """Render an impressionist brush-stroke painting following a swirling flow field."""
    rng = np.random.default_rng(seed)
    vx, vy = _flow_field(rng, size)
    # Low-frequency "region" field that decides where warm versus cool colours dominate.
    region = gaussian_filter(rng.normal(size=(size // 8, size // 8)), sigma=4.0)
    region = (region - region.min()) / (region.max() - region.min() + 1e-9)
    region = np.kron(region, np.ones((8, 8)))
    region = np.clip((region - 0.35) * 1.9, 0.0, 1.0)

    colours = [c for c, _ in STROKE_PALETTE.values()]
    img = Image.new("RGB", (size, size), (20, 34, 90))
    draw = ImageDraw.Draw(img)

    # (stroke width, stroke length, number of strokes): coarse to fine.
    layers = [(12, 46.0, 1400), (9, 34.0, 2200), (6, 24.0, 3200), (4, 16.0, 3600)]
    for width, length, count in layers:
        xs = rng.uniform(-10, size + 10, size=count)
        ys = rng.uniform(-10, size + 10, size=count)
        for x, y in zip(xs, ys, strict=True):
            reg = region[min(max(int(y), 0), size - 1), min(max(int(x), 0), size - 1)]
            idx = rng.choice(len(colours), p=_colour_weights(reg))
            colour = _jitter_colour(rng, colours[idx], 0.15)
            w = round(width * float(rng.uniform(0.8, 1.2)))
            pts = _trace_stroke(x, y, vx, vy, length * rng.uniform(0.7, 1.3), 6)
            draw.line(pts, fill=colour, width=w, joint="curve")
            r = w / 2.0
            for px, py in (pts[0], pts[-1]):
                draw.ellipse((px - r, py - r, px + r, py + r), fill=colour)
            # A thin lighter/darker streak inside the stroke suggests bristle marks.
            streak = _jitter_colour(rng, colour, 0.25)
            off = rng.uniform(-0.25, 0.25) * w
            ix = min(max(int(x), 0), size - 1)
            iy = min(max(int(y), 0), size - 1)
            nx, ny = -vy[iy, ix] * off, vx[iy, ix] * off
            draw.line(
                [(px + nx, py + ny) for px, py in pts[1:-1]],
                fill=streak,
                width=max(1, w // 4),
            )

    # Faint canvas weave.
    yy, xx = np.mgrid[0:size, 0:size]
    weave = 0.5 * (np.sin(xx * np.pi / 2.0) * np.sin(yy * np.pi / 2.0))
    texture = 1.0 + 0.035 * weave + 0.02 * gaussian_filter(rng.normal(size=(size, size)), 0.7)
    arr = np.asarray(img, dtype=np.float64) * texture[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------------------------------
# Stained glass mosaic
# --------------------------------------------------------------------------------------------


def _assign_colours(
    rng: np.random.Generator, n_cells: int, labels: np.ndarray, n_colours: int
) -> np.ndarray:
    """Greedy colouring so that neighbouring cells mostly get different palette colours."""
    pairs = set()
    for a, b in (
        (labels[:, :-1], labels[:, 1:]),
        (labels[:-1, :], labels[1:, :]),
    ):
        mask = a != b
        for u, v in zip(a[mask].tolist(), b[mask].tolist(), strict=True):
            pairs.add((min(u, v), max(u, v)))
    neighbours: list[set[int]] = [set() for _ in range(n_cells)]
    for u, v in pairs:
        neighbours[u].add(v)
        neighbours[v].add(u)
    assigned = np.full(n_cells, -1, dtype=int)
    counts = np.zeros(n_colours)
    for cell in rng.permutation(n_cells):
        used = {assigned[n] for n in neighbours[cell] if assigned[n] >= 0}
        free = [c for c in range(n_colours) if c not in used]
        candidates = free if free else list(range(n_colours))
        # Prefer the least used colours so the palette stays balanced.
        least = min(counts[c] for c in candidates)
        best = [c for c in candidates if counts[c] <= least + 2]
        choice = int(rng.choice(best))
        assigned[cell] = choice
        counts[choice] += 1
    return assigned


def make_mosaic(size: int = SIZE, seed: int = SEED + 1) -> Image.Image:
    """Render a stained-glass window: shaded Voronoi cells with dark lead lines."""
    rng = np.random.default_rng(seed)
    grid = 16  # 16 x 16 jittered grid -> 256 seeds with fairly even cell sizes
    cell = size / grid
    gy, gx = np.mgrid[0:grid, 0:grid]
    seeds = np.stack(
        [
            (gx.ravel() + 0.5 + rng.uniform(-0.42, 0.42, grid * grid)) * cell,
            (gy.ravel() + 0.5 + rng.uniform(-0.42, 0.42, grid * grid)) * cell,
        ],
        axis=1,
    )
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    dist, idx = cKDTree(seeds).query(pixels, k=2)
    d1 = dist[:, 0].reshape(size, size)
    d2 = dist[:, 1].reshape(size, size)
    labels = idx[:, 0].reshape(size, size)

    n_cells = len(seeds)
    colour_idx = _assign_colours(rng, n_cells, labels, len(GLASS_PALETTE))
    palette = np.asarray(GLASS_PALETTE, dtype=np.float64)
    cell_colours = palette[colour_idx] * rng.uniform(0.8, 1.15, size=(n_cells, 1))
    cell_colours += rng.normal(0.0, 10.0, size=(n_cells, 3))

    # Shading: bright glow near the seed, darker towards the lead, plus a light direction.
    radius = np.zeros(n_cells)
    np.maximum.at(radius, labels.ravel(), d1.ravel())
    rel = d1 / (radius[labels] + 1e-9)
    dx = (xx + 0.5 - seeds[labels, 0]) / (radius[labels] + 1e-9)
    dy = (yy + 0.5 - seeds[labels, 1]) / (radius[labels] + 1e-9)
    shade = 1.18 - 0.5 * rel**1.5 - 0.12 * (dx + dy)
    # Mottled glass: smooth noise, a little stronger than the noise in the lead.
    mottle = gaussian_filter(rng.normal(size=(size, size)), 2.5)
    shade = shade * (1.0 + 0.9 * mottle)
    glass = np.clip(cell_colours[labels] * shade[..., None], 0, 255)

    # Lead lines where the two nearest seeds are nearly equidistant. The exact distance to
    # their bisector is (d2^2 - d1^2) / (2 |s2 - s1|), which keeps the lead a uniform width;
    # the edge is soft for anti-aliasing and the lead has a faint highlight along its middle.
    sep = np.linalg.norm(seeds[idx[:, 1]] - seeds[idx[:, 0]], axis=1).reshape(size, size)
    to_edge = (d2**2 - d1**2) / (2.0 * sep + 1e-9)
    lead_alpha = np.clip((2.4 - to_edge) / 0.9, 0.0, 1.0)
    lead = np.array([30.0, 28.0, 32.0]) + 24.0 * np.clip(1.0 - to_edge, 0.0, 1.0)[..., None]
    # Outer frame.
    border = np.minimum(np.minimum(xx, size - 1 - xx), np.minimum(yy, size - 1 - yy))
    lead_alpha = np.maximum(lead_alpha, np.clip((5.0 - border) / 1.5, 0.0, 1.0))
    out = glass * (1.0 - lead_alpha[..., None]) + lead * lead_alpha[..., None]
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def main(argv: list[str] | None = None) -> None:
    """Write ``strokes.png`` and ``mosaic.png`` into ``--out-dir``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("src/brushwork/examples"),
        help="directory to write the PNGs into (default: src/brushwork/examples)",
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, make in (("strokes.png", make_strokes), ("mosaic.png", make_mosaic)):
        path = out_dir / name
        make().save(path, optimize=True)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
