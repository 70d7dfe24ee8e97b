"""The tile grid of a scene and the blending weights that hide tile seams.

A scene of ``height x width`` pixels is covered by square tiles of ``tile``
pixels that overlap by at least ``overlap`` pixels. The grid extends ``pad``
pixels beyond every scene edge (the reader fills that margin by reflection), so
that scene-edge pixels are seen with context instead of the network's zero
padding. Tile starts are spread evenly, so every pixel is covered and neighbours
overlap by about the same amount; a scene smaller than one tile gets one centred
tile.

Each tile's prediction is multiplied by a separable window (:func:`ramp_window`:
flat in the middle, a cropped border, a ``sin^2`` ramp across the rest of the
overlap, never exactly zero) and the sum over tiles is divided by the summed
weights, so the blend is a smooth cross-fade between neighbours. Because every
tile uses the same window, the summed weight is separable too:
``norm(y, x) = norm_y(y) * norm_x(x)``, so nothing of scene size is ever held in
memory for it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from geocolor.errors import UsageError


def smallest_tile(side: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` (at least ``multiple``) that holds ``side`` pixels."""
    return max(multiple, -(-side // multiple) * multiple)


def tile_starts(size: int, tile: int, overlap: int, pad: int) -> list[int]:
    """Start offsets (may be negative) of the tiles covering ``[0, size)`` along one axis.

    Args:
        size: scene length in pixels (>= 1).
        tile: tile length.
        overlap: minimum overlap between neighbouring tiles (``0 <= overlap < tile``).
        pad: how far the grid reaches beyond each scene edge (reflect-padded by the reader).

    Returns:
        Increasing starts; consecutive tiles overlap by at least ``overlap`` pixels
        and together cover ``[-pad, size + pad)`` (or the whole scene, centred,
        when it fits in one tile).
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if size <= tile:
        return [-((tile - size) // 2)]
    extent = size + 2 * pad
    if extent <= tile:
        return [-((tile - size) // 2)]
    stride = tile - overlap
    n = math.ceil((extent - tile) / stride) + 1
    first, last = -pad, size + pad - tile
    return [first + round(i * (last - first) / (n - 1)) for i in range(n)]


#: Weight of the cropped border pixels of a tile (small, but never zero).
BORDER_WEIGHT = 1e-3


def ramp_window(tile: int, overlap: int) -> np.ndarray:
    """1-D blending weights of a tile.

    Over the outer ``overlap // 4`` pixels at each end the weight is
    :data:`BORDER_WEIGHT`: a network's output is worst there (its convolutions
    saw zero padding), so that border is in effect cropped, as in Raster Vision.
    Over the rest of the overlap it rises as ``sin^2`` (at pixel centres) to 1,
    and it is 1 in the middle. No weight is zero, so pixels covered by one tile
    only (scene edges, scenes smaller than a tile) keep their value after
    normalisation; with ``overlap == 0`` all weights are 1.
    """
    w = np.ones(tile, dtype=np.float64)
    if overlap > 0:
        border = overlap // 4
        n = overlap - border
        i = np.arange(n, dtype=np.float64)
        ramp = np.concatenate([np.full(border, BORDER_WEIGHT), np.sin(0.5 * np.pi * (i + 0.5) / n) ** 2])
        w[:overlap] = ramp
        w[tile - overlap:] = np.minimum(w[tile - overlap:], ramp[::-1])
    return w


def _axis_norm(size: int, starts: list[int], window: np.ndarray) -> np.ndarray:
    """Sum over tiles of the window, per scene pixel along one axis."""
    norm = np.zeros(size, dtype=np.float64)
    tile = window.size
    for s in starts:
        a, b = max(0, s), min(size, s + tile)
        norm[a:b] += window[a - s: b - s]
    return norm


@dataclass(frozen=True)
class TileGrid:
    """Tiles covering a ``height x width`` scene; see the module docstring.

    A window of a larger raster (``geocolor colorize --bounds``) is ``height x width`` at
    ``origin`` (row, column) of a ``scene`` of (rows, columns): its tiles are those of the
    whole scene's grid that reach into the window, and they read the scene's pixels around
    it, so the window's output is the whole scene's there.

    Attributes:
        ys, xs: tile start rows / columns (scene coordinates, may be < 0 or reach past the edge).
        window: the (tile, tile) float32 blending weights of every tile.
        norm_y, norm_x: per-row and per-column sums of the weights (float32).
    """

    height: int
    width: int
    tile: int
    overlap: int
    pad: int = -1
    origin: tuple[int, int] = (0, 0)
    scene: tuple[int, int] | None = None
    ys: tuple[int, ...] = field(init=False)
    xs: tuple[int, ...] = field(init=False)
    window: np.ndarray = field(init=False, repr=False)
    norm_y: np.ndarray = field(init=False, repr=False)
    norm_x: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise UsageError(f"cannot tile an empty raster ({self.width}x{self.height})")
        if self.tile < 1:
            raise UsageError(f"tile size must be positive, got {self.tile}")
        if not 0 <= self.overlap <= self.tile // 2:
            raise UsageError(
                f"overlap must be between 0 and half the tile size ({self.tile // 2}), got {self.overlap}"
            )
        pad = self.overlap // 2 if self.pad < 0 else self.pad
        object.__setattr__(self, "pad", pad)
        scene_h, scene_w = self.scene or (self.height, self.width)
        (row0, col0), w1 = self.origin, ramp_window(self.tile, self.overlap)
        if not (0 <= row0 and row0 + self.height <= scene_h
                and 0 <= col0 and col0 + self.width <= scene_w):
            raise ValueError(f"window {self.height}x{self.width} at {self.origin} is not "
                             f"inside the scene {scene_h}x{scene_w}")
        for name, size, scene_size, offset, norm in (
            ("ys", self.height, scene_h, row0, "norm_y"),
            ("xs", self.width, scene_w, col0, "norm_x"),
        ):
            starts = tile_starts(scene_size, self.tile, self.overlap, pad)
            weights = _axis_norm(scene_size, starts, w1)[offset : offset + size]
            inside = [s - offset for s in starts if s < offset + size and s + self.tile > offset]
            object.__setattr__(self, name, tuple(inside))
            object.__setattr__(self, norm, weights.astype(np.float32))
        object.__setattr__(self, "window", np.outer(w1, w1).astype(np.float32))

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def shape(self) -> tuple[int, int]:
        """(tile rows, tile columns)."""
        return len(self.ys), len(self.xs)

    def rows_done_after(self, r: int) -> int:
        """Scene rows ``< this`` get no contribution from tile rows after ``r``."""
        if r + 1 >= len(self.ys):
            return self.height
        return min(self.height, max(0, self.ys[r + 1]))

    def row_pads(self, r: int) -> tuple[int, int]:
        """(top, bottom) rows of tile row ``r`` outside the scene (filled by reflection)."""
        a, b = self.data_span(self.ys[r], 0)
        return a - self.ys[r], self.ys[r] + self.tile - b

    def scene_span(self, start: int, size: int) -> tuple[int, int]:
        """The part ``[a, b)`` of a tile starting at ``start`` that lies inside ``[0, size)``."""
        return max(0, start), min(size, start + self.tile)

    def data_span(self, start: int, axis: int) -> tuple[int, int]:
        """The part ``[a, b)`` of a tile starting at ``start`` along ``axis`` (0: rows, 1:
        columns) that the raster holds: the window's own, and past its edges the scene's
        pixels around a window (window coordinates: ``a`` may be < 0)."""
        scene = (self.scene or (self.height, self.width))[axis]
        offset = self.origin[axis]
        return max(-offset, start), min(scene - offset, start + self.tile)


def seam_ratio(image: np.ndarray, grid: TileGrid, reach: int = 8) -> float:
    """How visible tile seams are: about 1.0 means not at all.

    The mean absolute difference between neighbouring pixels across the grid's
    tile edges (the columns and rows where a tile starts or ends inside the
    scene), divided by the same mean a little inside the tiles: at offsets
    +-2, +-4, ... +-``reach`` from each edge. Even offsets compare like with
    like when a network leaves a stride-2 (checkerboard) pattern in its output,
    and nearby offsets compare like with like in content. ``image`` is
    (bands, H, W) on the grid's scene.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[None]
    across: list[float] = []
    inside: list[float] = []
    for axis, starts, size in ((2, grid.xs, grid.width), (1, grid.ys, grid.height)):
        # diff[i]: |pixel i+1 - pixel i| along the axis, averaged over bands and the other axis
        diff = np.abs(np.diff(img, axis=axis)).mean(axis=(0, 1 if axis == 2 else 2))
        edges = {e - 1 for s in starts for e in (s, s + grid.tile) if 0 < e < size}
        near = {e + k for e in edges for k in range(-reach, reach + 1, 2) if k} - edges
        across += [diff[i] for i in sorted(edges)]
        inside += [diff[i] for i in sorted(near) if 0 <= i < diff.size]
    if not across or not inside:
        return 1.0
    base = float(np.mean(inside))
    return float(np.mean(across)) / base if base > 0 else float("inf")
