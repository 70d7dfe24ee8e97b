"""Issue 8: the COG's overviews are built in the scratch file and copied by the COG driver.

The driver would compute the same overviews itself, about twice as slowly; the output
must not change: the same levels, the same pixels, the same masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling

from geocolor.infer.output import (
    SCRATCH_OPTIONS,
    cog_overview_factors,
    finalise,
    open_scratch,
    scratch_overviews,
)


@pytest.mark.parametrize(
    ("width", "height", "block", "expected"),
    [
        (8192, 8192, 512, [2, 4, 8, 16]),
        (1025, 600, 512, [2]),
        (512, 512, 512, []),
        (3000, 700, 512, [2, 4, 8]),
        (1537, 10, 512, [2, 4]),
        (2049, 2049, 256, [2, 4, 8]),
        (20000, 300, 512, [2, 4, 8, 16, 32, 64]),
    ],
)
def test_cog_overview_factors_match_what_the_driver_builds(
    tmp_path: Path, width: int, height: int, block: int, expected: list[int]
) -> None:
    assert cog_overview_factors(width, height, block) == expected
    src = tmp_path / "src.tif"
    with rasterio.open(src, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="uint8", tiled=True, blockxsize=256, blockysize=256) as ds:
        ds.write(np.zeros((1, height, width), np.uint8))
    rasterio.shutil.copy(src, tmp_path / "cog.tif", driver="COG", BLOCKSIZE=str(block))
    with rasterio.open(tmp_path / "cog.tif") as ds:
        assert ds.overviews(1) == expected


def test_scratch_overviews_follow_the_output_options() -> None:
    plan = scratch_overviews("gtiff", True, 4096, 3000, {})
    assert plan is not None
    assert plan.factors == (2, 4, 8) and plan.resampling == Resampling.average
    cubic = scratch_overviews("gtiff", True, 4096, 3000, {"OVERVIEW_RESAMPLING": "CUBICSPLINE", "BLOCKSIZE": "256"})
    assert cubic is not None
    assert cubic.factors == (2, 4, 8, 16) and cubic.resampling == Resampling.cubic_spline
    # options that change the overviews leave them to the driver
    assert scratch_overviews("gtiff", True, 4096, 3000, {"OVERVIEW_COUNT": "1"}) is None
    assert scratch_overviews("gtiff", True, 4096, 3000, {"TILING_SCHEME": "GoogleMapsCompatible"}) is None
    assert scratch_overviews("gtiff", True, 400, 300, {}) is None  # fits one block
    assert scratch_overviews("png", False, 4096, 3000, {}) is None
    plain = scratch_overviews("gtiff", False, 4096, 3000, {})
    assert plain is not None and plain.factors == (2, 4, 8, 16, 32)  # down to ~128 px


def _scratch(path: Path, rgb: np.ndarray, valid: np.ndarray, alpha: bool) -> Path:
    """A scratch file as the pipeline writes it: RGB (+ alpha or an internal mask)."""
    _, h, w = rgb.shape
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        ds = open_scratch(path, w, h, {"kind": "none"}, alpha, SCRATCH_OPTIONS)
        with ds:
            ds.write(rgb, indexes=[1, 2, 3])
            if alpha:
                ds.write(valid.astype(np.uint8) * 255, indexes=4)
            else:
                ds.write_mask(valid.astype(np.uint8) * 255)
    return path


@pytest.mark.parametrize("alpha", [False, True])
@pytest.mark.parametrize(("h", "w"), [(704, 896), (700, 900)])
def test_prebuilt_overviews_give_the_cog_the_driver_would(tmp_path: Path, alpha: bool, h: int, w: int) -> None:
    """Full resolution and its mask are identical; so are the overviews where GDAL's two size rules agree.

    The driver halves sizes rounding down (900 -> 450 -> 225 -> 112), the GeoTIFF driver's
    overviews (as ``gdaladdo``) round up (900 / 8 -> 113): when a side is not a multiple of
    the level's factor, that level is one pixel larger and covers the scene's last pixels.
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
    rgb = np.stack([base + rng.normal(0, 20, (h, w)) for _ in range(3)]).clip(0, 255).astype(np.uint8)
    valid = (xx + yy) > 250  # a nodata corner, as at a scene's edge
    rgb[:, ~valid] = 0
    options = {"BLOCKSIZE": "128"}

    driver_built = _scratch(tmp_path / "a.tif", rgb, valid, alpha)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        finalise(driver_built, tmp_path / "driver.tif", "gtiff", True, options)

    prebuilt = _scratch(tmp_path / "b.tif", rgb, valid, alpha)
    plan = scratch_overviews("gtiff", True, w, h, options)
    assert plan is not None and plan.factors == (2, 4, 8)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(prebuilt, "r+") as ds:
            plan.build(ds)  # what the pipeline does after its last row
        finalise(prebuilt, tmp_path / "ours.tif", "gtiff", True, options)

    with rasterio.open(tmp_path / "driver.tif") as a, rasterio.open(tmp_path / "ours.tif") as b:
        assert a.overviews(1) == b.overviews(1) == [2, 4, 8]
        assert a.profile == b.profile
        assert b.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(a.read(), b.read())
        np.testing.assert_array_equal(a.read_masks(1), b.read_masks(1))
    for level, factor in enumerate(plan.factors):
        with rasterio.open(tmp_path / "driver.tif", overview_level=level) as a, \
                rasterio.open(tmp_path / "ours.tif", overview_level=level) as b:
            assert b.shape == (-(-h // factor), -(-w // factor))
            if a.shape == b.shape:
                np.testing.assert_array_equal(a.read(), b.read())
                np.testing.assert_array_equal(a.read_masks(1), b.read_masks(1))
            else:
                assert (h % factor, w % factor) != (0, 0)
