"""Tile grid and blending weights."""
from __future__ import annotations

import numpy as np
import pytest

from geocolor.errors import UsageError
from geocolor.infer.tiling import BORDER_WEIGHT, TileGrid, ramp_window, tile_starts


@pytest.mark.parametrize("size", [1, 13, 64, 65, 100, 257, 300, 1000])
@pytest.mark.parametrize("tile,overlap", [(64, 16), (64, 0), (64, 32), (256, 64)])
def test_tiles_cover_every_pixel_with_the_overlap(size: int, tile: int, overlap: int) -> None:
    starts = tile_starts(size, tile, overlap, overlap // 2)
    covered = np.zeros(size, dtype=int)
    for s in starts:
        covered[max(0, s): min(size, s + tile)] += 1
    assert covered.min() >= 1
    assert starts == sorted(starts)
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap  # neighbours overlap at least this much


def test_scene_smaller_than_a_tile_gets_one_centred_tile() -> None:
    assert tile_starts(20, 64, 16, 8) == [-22]
    grid = TileGrid(13, 20, 64, 16)
    assert len(grid) == 1 and grid.shape == (1, 1)


def test_window_crops_the_border_and_ramps_smoothly() -> None:
    tile, overlap = 64, 16
    w = ramp_window(tile, overlap)
    assert w.min() > 0 and w.max() == 1.0
    np.testing.assert_array_equal(w, w[::-1])
    border = overlap // 4
    assert (w[:border] == BORDER_WEIGHT).all()
    assert np.all(np.diff(w[border - 1: overlap]) > 0) and (w[overlap: tile - overlap] == 1).all()
    np.testing.assert_array_equal(ramp_window(tile, 0), 1.0)


def test_weights_normalise_to_one_everywhere() -> None:
    grid = TileGrid(257, 300, 64, 16)
    total = np.zeros((257, 300))
    for y in grid.ys:
        for x in grid.xs:
            ya, yb = grid.scene_span(y, 257)
            xa, xb = grid.scene_span(x, 300)
            total[ya:yb, xa:xb] += grid.window[ya - y: yb - y, xa - x: xb - x]
    np.testing.assert_allclose(total / np.outer(grid.norm_y, grid.norm_x), 1.0, rtol=1e-5)


def test_rows_done_after_is_monotone_and_ends_at_height() -> None:
    grid = TileGrid(300, 50, 64, 16)
    done = [grid.rows_done_after(r) for r in range(len(grid.ys))]
    assert done == sorted(done) and done[-1] == 300
    for r, d in enumerate(done[:-1]):
        assert d == max(0, grid.ys[r + 1])  # no later tile touches rows before d


def test_bad_overlap_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="overlap"):
        TileGrid(100, 100, 64, 40)


def test_a_window_grid_is_the_whole_scenes_grid_cut_to_it() -> None:
    """--bounds: the tiles reaching into the window, at the whole grid's places (window
    coordinates), with the whole grid's weights; the data they read extends past the window."""
    whole = TileGrid(300, 500, 64, 16)
    part = TileGrid(70, 90, 64, 16, origin=(100, 200), scene=(300, 500))
    assert part.ys == tuple(y - 100 for y in whole.ys if y < 170 and y + 64 > 100)
    assert part.xs == tuple(x - 200 for x in whole.xs if x < 290 and x + 64 > 200)
    assert part.ys[0] < 0 and part.xs[-1] + 64 > 90  # tiles reach past the window's edges
    np.testing.assert_array_equal(part.norm_y, whole.norm_y[100:170])
    np.testing.assert_array_equal(part.norm_x, whole.norm_x[200:290])
    assert part.data_span(part.ys[0], 0) == (part.ys[0], part.ys[0] + 64)  # the scene's rows
    assert part.scene_span(part.ys[0], part.height) == (0, part.ys[0] + 64)  # the output's
    edge = TileGrid(70, 90, 64, 16, origin=(230, 0), scene=(300, 500))
    assert edge.data_span(edge.ys[-1], 0)[1] == 70  # the scene's bottom: reflected past it
    assert edge.row_pads(len(edge.ys) - 1)[1] > 0
    with pytest.raises(ValueError, match="not inside the scene"):
        TileGrid(70, 90, 64, 16, origin=(250, 0), scene=(300, 500))
