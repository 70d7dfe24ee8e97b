"""Issue 8: the default COG is written directly while the rows stream (geocolor.infer.cogwrite).

What a user gets must be the file GDAL's COG driver made from the scratch file: pixel for
pixel at every level with the same masks, georeference, tags and directory fields, and, where
GDAL compresses with libdeflate as the ``deflate`` package does, the same bytes in every tile.
"""
from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import rasterio
from colorize_fakes import corner_gcps, db_scene, write_raster

import geocolor.infer.cogwrite as cogwrite
import geocolor.infer.scene as scene_module
from geocolor.errors import OutputError
from geocolor.infer.cogwrite import DirectSettings, direct_cog_settings, read_directories
from geocolor.infer.scene import colorize_scene


def _gdal_deflates_as_we_do(tmp_path_factory: pytest.TempPathFactory) -> bool:
    """Whether GDAL's DEFLATE gives the bytes ours gives: both libdeflate (GDAL 3.10's wheels
    and the ``deflate`` package). GDAL 3.9.2 in rasterio 1.3.11's wheels uses zlib: the same
    pixels, other bytes."""
    if importlib.util.find_spec("deflate") is None:
        return False
    path = tmp_path_factory.mktemp("probe") / "probe.tif"
    rgb = np.random.default_rng(0).integers(0, 60, (3, 64, 64), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8",
                       tiled=True, blockxsize=64, blockysize=64, compress="deflate", zlevel=1,
                       predictor=2, photometric="RGB") as ds:
        ds.write(rgb)
    (fields,) = read_directories(path)
    (at,), (n,) = fields[324].numbers(), fields[325].numbers()
    return path.read_bytes()[at : at + n] == cogwrite._encode_image_tile(rgb, 64, 0, 64, 1)


@pytest.fixture(scope="module")
def same_deflate(tmp_path_factory: pytest.TempPathFactory) -> bool:
    return _gdal_deflates_as_we_do(tmp_path_factory)


def _levels(path: Path) -> list[tuple]:
    """Every level's pixels and mask, plus the full resolution's georeference and tags."""
    with rasterio.open(path) as ds:
        head = (ds.profile, ds.tags(), ds.tags(ns="IMAGE_STRUCTURE"), ds.crs, ds.transform,
                [(g.row, g.col, g.x, g.y, g.id) for g in ds.gcps[0]],
                ds.rpcs.to_dict() if ds.rpcs else None, ds.overviews(1), ds.mask_flag_enums)
        levels = [head, (ds.read(), ds.read_masks(1))]
        count = len(ds.overviews(1))
    for i in range(count):
        with rasterio.open(path, overview_level=i) as ds:
            levels.append((ds.read(), ds.read_masks(1)))
    return levels


def _structure(path: Path) -> tuple[bytes, list[dict], list[list[bytes]]]:
    """The bytes before the first directory (header and GDAL's structural metadata), every
    directory's fields but the tile arrays' places, and every directory's compressed tiles."""
    data = path.read_bytes()
    directories = read_directories(path)
    first = struct.unpack_from("<Q" if data[2] == 43 else "<I", data, 8 if data[2] == 43 else 4)[0]
    fields = [{tag: f.data if tag not in (324, 325) else f.count for tag, f in d.items()}
              for d in directories]
    tiles = [[data[at : at + n] for at, n in zip(d[324].numbers(), d[325].numbers())]
             for d in directories]
    return data[:first], fields, tiles


def _assert_same_file(direct: Path, driver: Path, same_deflate: bool) -> None:
    """Same levels, masks, georeference and tags, the same directory fields and structural
    metadata (only where libtiff puts the tile arrays, and whether it stores their byte counts
    as SHORT or LONG, may differ); and where GDAL compresses as we do, the same bytes in every
    tile."""
    a, b = _levels(direct), _levels(driver)
    assert a[0] == b[0]
    assert len(a) == len(b)
    for (x, xm), (y, ym) in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(xm, ym)
    head_a, fields_a, tiles_a = _structure(direct)
    head_b, fields_b, tiles_b = _structure(driver)
    assert head_a == head_b and fields_a == fields_b
    assert [len(t) for t in tiles_a] == [len(t) for t in tiles_b]
    if same_deflate:
        assert tiles_a == tiles_b


def _both_ways(tmp_path: Path, src: Path, model: Path, monkeypatch: pytest.MonkeyPatch,
               **kwargs) -> tuple[Path, Path]:
    """The scene colorized directly and through GDAL's COG driver (the direct writer off)."""
    made = []
    real = scene_module._direct_cog

    def spy(*args, **kw):
        made.append(real(*args, **kw))
        return made[-1]

    monkeypatch.setattr(scene_module, "_direct_cog", spy)
    colorize_scene(src, tmp_path / "direct.tif", model, device="cpu", **kwargs)
    assert made and made[0] is not None  # written directly
    monkeypatch.setattr(scene_module, "_direct_cog", lambda *a, **k: None)
    colorize_scene(src, tmp_path / "driver.tif", model, device="cpu", **kwargs)
    monkeypatch.setattr(scene_module, "_direct_cog", real)
    return tmp_path / "direct.tif", tmp_path / "driver.tif"


@pytest.mark.parametrize(
    ("height", "width", "gcps", "overviews"),
    [
        (256, 1024, False, [2, 4, 8]),  # every level halves; partial and empty mask tiles
        (260, 1032, False, [2, 4, 8, 16]),  # 65 x 129 at 8: GDAL makes 16 from it
        (258, 1026, True, [2, 4, 8]),  # GDAL makes 4 and 8 from the level at 2; GCPs
        (100, 120, False, []),  # one tile, no overviews
    ],
)
def test_direct_cog_is_the_cog_drivers_file(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch, same_deflate: bool,
    height: int, width: int, gcps: bool, overviews: list[int],
) -> None:
    db = db_scene(height, width, bands=1)
    db[:, :, :37] = np.nan  # a nodata margin: partial and empty blocks at every level
    db[:, height // 2 :, width - 50 :] = np.nan
    src = write_raster(tmp_path / "s.tif", db, descriptions=("VV",),
                       **({"gcps": corner_gcps(height, width)} if gcps else {}))
    direct, driver = _both_ways(tmp_path, src, sar_model, monkeypatch,
                                creation_options={"BLOCKSIZE": "128"})
    levels = _levels(direct)
    assert levels[0][7] == overviews and levels[0][2]["LAYOUT"] == "COG"
    assert (levels[1][1] == 0).any() and (levels[1][1] == 255).any()
    assert "GEOCOLOR_VERSION" in levels[0][1] and bool(levels[0][5]) == gcps
    _assert_same_file(direct, driver, same_deflate)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["direct.tif", "driver.tif", "s.tif"]


def test_unmasked_default_blocks_and_level(tmp_path: Path, sar_model: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           same_deflate: bool) -> None:
    """No nodata (no mask), the default 512-px blocks and a DEFLATE level of the user's."""
    grey = (db_scene(600, 1100, bands=1) + 25.0) * 10.0  # 8-bit, no nodata value: no mask
    src = write_raster(tmp_path / "s.tif", grey.astype(np.uint8), descriptions=("VV",))
    direct, driver = _both_ways(tmp_path, src, sar_model, monkeypatch,
                                creation_options={"LEVEL": "6"})
    with rasterio.open(direct) as ds:
        assert ds.block_shapes[0] == (512, 512) and ds.overviews(1) == [2, 4]
        assert ds.mask_flag_enums[0] == [rasterio.enums.MaskFlags.all_valid]
    _assert_same_file(direct, driver, same_deflate)


def test_bigtiff_when_asked_or_needed(tmp_path: Path, sar_model: Path,
                                      monkeypatch: pytest.MonkeyPatch, same_deflate: bool) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(130, 300, bands=1), descriptions=("VV",))
    direct, driver = _both_ways(tmp_path, src, sar_model, monkeypatch,
                                creation_options={"BIGTIFF": "YES", "BLOCKSIZE": "128"})
    assert direct.read_bytes()[2:4] == struct.pack("<H", 43)  # BigTIFF's magic number
    _assert_same_file(direct, driver, same_deflate)
    # a file over the classic limit becomes BigTIFF by itself, or is refused with BIGTIFF=NO
    monkeypatch.setattr(cogwrite, "CLASSIC_TIFF_LIMIT", 1000)
    colorize_scene(src, tmp_path / "auto.tif", sar_model, device="cpu")
    assert (tmp_path / "auto.tif").read_bytes()[2:4] == struct.pack("<H", 43)
    np.testing.assert_array_equal(_levels(tmp_path / "auto.tif")[1][0], _levels(direct)[1][0])
    with pytest.raises(OutputError, match="BIGTIFF=NO"):
        colorize_scene(src, tmp_path / "no.tif", sar_model, device="cpu",
                       creation_options={"BIGTIFF": "NO"})
    assert not (tmp_path / "no.tif").exists()


def test_spools_are_appended_without_copy_file_range(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the kernel cannot copy (another OS, a filesystem without it), Python does."""
    src = write_raster(tmp_path / "s.tif", db_scene(300, 260, bands=1), descriptions=("VV",))
    options = {"BLOCKSIZE": "128"}
    colorize_scene(src, tmp_path / "kernel.tif", sar_model, device="cpu", creation_options=options)

    def unsupported(*args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    colorize_scene(src, tmp_path / "python.tif", sar_model, device="cpu", creation_options=options)
    assert (tmp_path / "kernel.tif").read_bytes() == (tmp_path / "python.tif").read_bytes()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, DirectSettings(1, 512, "IF_SAFER")),
        ({"LEVEL": "6", "NUM_THREADS": "4", "BIGTIFF": "yes"}, DirectSettings(6, 512, "YES")),
        ({"BLOCKSIZE": "256", "PREDICTOR": "STANDARD", "COMPRESS": "deflate"},
         DirectSettings(1, 256, "IF_SAFER")),
        ({"COMPRESS": "ZSTD"}, None),  # what the COG driver makes: another codec,
        ({"PREDICTOR": "NO"}, None),
        ({"OVERVIEWS": "NONE"}, None),  # other overviews,
        ({"OVERVIEW_RESAMPLING": "BILINEAR"}, None),
        ({"LEVEL": "12"}, None),  # levels zlib does not have,
        ({"BLOCKSIZE": "100"}, None),  # blocks TIFF cannot tile with,
        ({"TILING_SCHEME": "GoogleMapsCompatible"}, None),  # a reprojection
    ],
)
def test_which_options_are_written_directly(options: dict, expected: DirectSettings | None) -> None:
    assert direct_cog_settings(options) == expected


def test_other_options_alpha_and_the_environment_go_through_the_cog_driver(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch, same_deflate: bool
) -> None:
    db = db_scene(200, 300, bands=1)
    db[:, :40] = np.nan
    src = write_raster(tmp_path / "s.tif", db, descriptions=("VV",))
    used = []
    real = cogwrite.CogWriter.assemble

    def spy(*args):
        used.append(args)
        real(*args)

    monkeypatch.setattr(cogwrite.CogWriter, "assemble", spy)
    colorize_scene(src, tmp_path / "zstd.tif", sar_model, device="cpu",
                   creation_options={"COMPRESS": "ZSTD"})
    colorize_scene(src, tmp_path / "alpha.tif", sar_model, device="cpu", alpha=True)
    monkeypatch.setenv("GEOCOLOR_COG_WRITER", "GDAL")  # a user's way back to GDAL's driver
    colorize_scene(src, tmp_path / "gdal.tif", sar_model, device="cpu")
    assert not used
    with rasterio.open(tmp_path / "zstd.tif") as a, rasterio.open(tmp_path / "alpha.tif") as b:
        assert a.compression.name == "zstd" and b.count == 4
    monkeypatch.delenv("GEOCOLOR_COG_WRITER")
    colorize_scene(src, tmp_path / "direct.tif", sar_model, device="cpu")
    assert len(used) == 1  # the same scene without the variable: written directly
    _assert_same_file(tmp_path / "direct.tif", tmp_path / "gdal.tif", same_deflate)


def test_directory_reader(tmp_path: Path) -> None:
    """The tag reader behind the georeference template, on a file GDAL wrote."""
    path = write_raster(tmp_path / "s.tif", db_scene(40, 50, bands=1), tiled=True,
                        blockxsize=16, blockysize=16)
    (fields,) = read_directories(path)
    assert fields[256].numbers() == (50,)  # ImageWidth
    assert fields[324].count == 12  # 4 x 3 tiles
    assert fields[34737].data.rstrip(b"\0").endswith(b"|")  # GeoAsciiParams
    assert fields[33550].source_offset > 0 and fields[256].source_offset == -1
    with rasterio.open(path, "r+") as ds:
        ds.build_overviews([2])
    assert [d[256].numbers() for d in read_directories(path)] == [(50,), (25,)]


def test_layout_is_cloud_optimized(tmp_path: Path, sar_model: Path) -> None:
    """What COG readers rely on, checked on the file itself (with or without libdeflate):
    directories and tile arrays before the first tile; the smallest level's tiles first and the
    full resolution's last; tiles in row-major order, each with its byte count before it and
    its last 4 bytes after it; each image tile followed by its mask tile."""
    db = db_scene(520, 700, bands=1)
    db[:, :, :90] = np.nan
    src = write_raster(tmp_path / "s.tif", db, descriptions=("VV",))
    out = tmp_path / "o.tif"
    colorize_scene(src, out, sar_model, device="cpu", creation_options={"BLOCKSIZE": "128"})
    data = out.read_bytes()
    assert b"LAYOUT=IFDS_BEFORE_DATA" in data[:300]
    assert b"MASK_INTERLEAVED_WITH_IMAGERY=YES" in data[:300]
    directories = read_directories(out)
    head_end = max(f.source_offset + len(f.data) for d in directories for f in d.values())
    images = [d for d in directories if not d.get(254, None) or not d[254].numbers()[0] & 4]
    masks = [d for d in directories if d.get(254) and d[254].numbers()[0] & 4]
    assert [d[256].numbers() for d in images] == [(700,), (350,), (175,), (88,)]  # 88: GDAL's
    assert len(masks) == len(images)
    first_tile = min(min(d[324].numbers()) for d in directories)
    assert head_end <= first_tile
    previous_start = len(data)
    for image, mask in zip(images, masks):  # largest first: each starts after the next one
        offsets, counts = image[324].numbers(), image[325].numbers()
        assert list(offsets) == sorted(offsets) and offsets[0] < previous_start
        assert max(mask[324].numbers()) < previous_start
        previous_start = offsets[0]
        mask_offsets, mask_counts = mask[324].numbers(), mask[325].numbers()
        for at, n, mask_at, mask_n in zip(offsets, counts, mask_offsets, mask_counts):
            for start, size in ((at, n), (mask_at, mask_n)):
                end = start + size
                assert struct.unpack_from("<I", data, start - 4)[0] == size  # leader
                assert data[end : end + 4] == data[end - 4 : end]  # trailer
            assert mask_at == at + n + 4 + 4  # the mask tile right after the image tile
    assert first_tile == images[-1][324].numbers()[0]  # the smallest level comes first
