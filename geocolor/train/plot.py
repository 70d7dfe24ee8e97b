"""Small PNG figures drawn with PIL (no matplotlib dependency): loss curves, image grids."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

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


def _draw_panel(
    d: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    series: Mapping[str, Sequence[tuple[float, float]]],
    colours: Sequence[tuple[int, int, int]],
    x_range: tuple[float, float],
    title: str,
    ylabel: str,
    xlabel: str,
    integer_x: bool = False,
) -> None:
    """One set of axes with its own y range inside ``box`` = (x0, y0, x1, y1)."""
    font = ImageFont.load_default()
    bx0, by0, bx1, by1 = box
    left, right, top, bottom = bx0 + 70, bx1 - 20, by0 + 30, by1 - (40 if xlabel else 22)
    x0, x1 = x_range
    ys = [y for s in series.values() for _, y in s if math.isfinite(y)]
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    pad = (y1 - y0) * 0.08 or max(abs(y0) * 0.05, 0.05)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (right - left), top + (y1 - y) / (y1 - y0) * (bottom - top))

    d.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for t in _nice_ticks(y0, y1):
        _, yy = px(x0, t)
        d.line([left, yy, right, yy], fill=(230, 230, 230))
        d.text((bx0 + 5, yy - 6), f"{t:.4g}", fill=(0, 0, 0), font=font)
    x_ticks = _nice_ticks(x0, x1, n=8)
    if integer_x:
        x_ticks = [t for t in x_ticks if float(t).is_integer()] or x_ticks
    for t in x_ticks:
        xx, _ = px(t, y0)
        d.line([xx, bottom, xx, bottom + 4], fill=(0, 0, 0))
        d.text((xx - 8, bottom + 6), f"{t:g}", fill=(0, 0, 0), font=font)
    if xlabel:
        d.text(((left + right) // 2 - 20, by1 - 16), xlabel, fill=(0, 0, 0), font=font)
    d.text((left, by0 + 8), " - ".join(t for t in (title, ylabel) if t), fill=(0, 0, 0), font=font)
    for i, (name, s) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        pts = [px(x, y) for x, y in s if math.isfinite(y)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for p in pts:
            d.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=colour)
        ly = top + 8 + 14 * i
        d.line([right - 120, ly + 6, right - 100, ly + 6], fill=colour, width=3)
        d.text((right - 95, ly), name, fill=(0, 0, 0), font=font)


def line_plot(
    series: Mapping[str, Sequence[tuple[float, float]]],
    path: Path,
    title: str = "",
    xlabel: str = "epoch",
    ylabel: str = "",
    size: tuple[int, int] | None = None,
    panels: bool = True,
) -> Path:
    """Draw ``{name: [(x, y), ...]}`` as lines with axes, ticks and legends; write a PNG atomically.

    With ``panels`` each series gets its own stacked panel and y range (a
    generator loss near 30 and a discriminator loss near 1 both stay readable);
    otherwise all share one set of axes. The x range is shared. Default size:
    800 wide, 480 high for one panel, 280 per panel for more.
    """
    n_panels = len(series) if panels and len(series) > 1 else 1
    w, h = size or (800, 480 if n_panels == 1 else 280 * n_panels)
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    xs = [x for s in series.values() for x, y in s if math.isfinite(y)]
    integer_x = all(float(x).is_integer() for x in xs)
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    groups = [{k: v} for k, v in series.items()] if panels and len(series) > 1 else [dict(series)]
    n = len(groups)
    for i, group in enumerate(groups):
        box = (0, round(i * h / n), w, round((i + 1) * h / n))
        colours = COLOURS[i % len(COLOURS):] + COLOURS[: i % len(COLOURS)] if panels else COLOURS
        _draw_panel(d, box, group, colours, (x0, x1), title if i == 0 else "", ylabel,
                    xlabel if i == n - 1 else "", integer_x)
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
