"""Small PNG figures drawn with PIL (no matplotlib dependency): loss curves, image grids."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from geocolor.io.atomic import atomic_path

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def line_plot(
    series: Mapping[str, Sequence[tuple[float, float]]],
    path: Path,
    title: str = "",
    xlabel: str = "epoch",
    ylabel: str = "loss",
    size: tuple[int, int] = (800, 480),
) -> Path:
    """Draw ``{name: [(x, y), ...]}`` as lines with axes, ticks and a legend; write a PNG atomically."""
    w, h = size
    left, right, top, bottom = 70, 20, 40, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    points = [(x, y) for s in series.values() for x, y in s if math.isfinite(y)]
    if points:
        xs, ys = zip(*points)
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
    else:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    pad = (y1 - y0) * 0.05 or max(abs(y0) * 0.05, 0.05)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x0) / (x1 - x0) * (w - left - right),
            top + (y1 - y) / (y1 - y0) * (h - top - bottom),
        )

    d.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for t in _nice_ticks(y0, y1):
        _, yy = px(x0, t)
        d.line([left, yy, w - right, yy], fill=(230, 230, 230))
        d.text((5, yy - 6), f"{t:.4g}", fill=(0, 0, 0), font=font)
    for t in _nice_ticks(x0, x1, n=8):
        xx, _ = px(t, y0)
        d.line([xx, h - bottom, xx, h - bottom + 4], fill=(0, 0, 0))
        d.text((xx - 8, h - bottom + 6), f"{t:g}", fill=(0, 0, 0), font=font)
    d.text((w // 2 - 20, h - 20), xlabel, fill=(0, 0, 0), font=font)
    d.text((5, top - 30), ylabel, fill=(0, 0, 0), font=font)
    if title:
        d.text((left, 10), title, fill=(0, 0, 0), font=font)
    for i, (name, s) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [px(x, y) for x, y in s if math.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for p in pts:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=colour)
        ly = top + 8 + 14 * i
        d.line([w - right - 120, ly + 6, w - right - 100, ly + 6], fill=colour, width=3)
        d.text((w - right - 95, ly), name, fill=(0, 0, 0), font=font)
    return save_png(np.asarray(img), path)


def to_uint8_image(t) -> np.ndarray:  # noqa: ANN001 - torch tensor, kept import-free here
    """(C, H, W) tensor in [-1, 1] (C = 1 or 3) -> (H, W, 3) uint8."""
    a = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return np.ascontiguousarray(a[:3].transpose(1, 2, 0))


def image_grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized (H, W, 3) uint8 images into a grid (rows x columns) with white gaps."""
    n_rows = len(rows)
    n_cols = max(len(r) for r in rows)
    h, w = rows[0][0].shape[:2]
    grid = np.full((n_rows * (h + gap) - gap, n_cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            grid[i * (h + gap): i * (h + gap) + h, j * (w + gap): j * (w + gap) + w] = im
    return grid


def save_png(array: np.ndarray, path: Path) -> Path:
    """Write an (H, W, 3) uint8 array as PNG atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return path
