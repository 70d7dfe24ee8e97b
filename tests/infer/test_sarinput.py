"""Band choice, unit detection and conversion to the model card's SAR scaling."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
from colorize_fakes import corner_gcps, db_scene, write_raster
from PIL import Image

from geocolor.data.sarscale import SarScaling
from geocolor.errors import RasterError, UsageError
from geocolor.infer import sarinput
from geocolor.infer.sarinput import resolve_sar_input

DB = SarScaling("db_clip", "VV", -25.0, 0.0)
AMP = SarScaling("amplitude_percentile", "VH", percentile=99.0)


def _resolve(path: Path, scaling: SarScaling = DB, **kw):
    with rasterio.open(path) as ds:
        return resolve_sar_input(ds, path, scaling, **kw)


def _unit(path: Path, scaling: SarScaling = DB, **kw) -> np.ndarray:
    sar = _resolve(path, scaling, **kw)
    with rasterio.open(path) as ds:
        return sar.to_unit(ds.read(sar.band))


def test_every_unit_converts_to_the_same_db_clip(tmp_path: Path) -> None:
    db = db_scene(40, 50, bands=1)[0]
    linear = (10 ** (db / 10)).astype(np.float32)
    amplitude = np.sqrt(linear)
    dn = np.round(amplitude * 1000).astype(np.uint16)  # DN: amplitude up to a constant
    expected = np.clip((db + 25) / 25, 0, 1)
    for name, data, scale in [("db", db, "db"), ("lin", linear, "linear"), ("amp", amplitude, "amplitude")]:
        path = write_raster(tmp_path / f"{name}.tif", data)
        np.testing.assert_allclose(_unit(path, input_scale=scale), expected, atol=1e-4)
    # DN are an uncalibrated amplitude: 20 log10(DN) dB
    path = write_raster(tmp_path / "dn.tif", dn)
    expected_dn = np.clip((20 * np.log10(dn.astype(np.float64)) + 25) / 25, 0, 1)
    np.testing.assert_allclose(_unit(path, input_scale="dn"), expected_dn, atol=1e-4)


def test_amplitude_percentile_uses_one_scene_statistic(tmp_path: Path) -> None:
    db = db_scene(60, 70, bands=1)[0]
    amplitude = 10 ** (db / 20)
    path = write_raster(tmp_path / "db.tif", db, descriptions=("VH",))
    sar = _resolve(path, AMP)
    assert sar.scale == "db"
    np.testing.assert_allclose(sar.reference, np.percentile(amplitude, 99), rtol=1e-4)
    with rasterio.open(path) as ds:
        full = sar.to_unit(ds.read(1))
        part = sar.to_unit(ds.read(1, window=((0, 16), (0, 16))))
    np.testing.assert_allclose(full, np.clip(amplitude / sar.reference, 0, 1), atol=1e-5)
    np.testing.assert_array_equal(part, full[:16, :16])  # a tile is scaled like the scene


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("scale", ["db", "linear", "amplitude", "dn", "scaled"])
@pytest.mark.parametrize("scaling", [DB, AMP])
def test_integer_lookup_gives_the_arithmetic_numbers(
    tmp_path: Path, dtype: type, scale: str, scaling: SarScaling
) -> None:
    """8- and 16-bit scenes go through a table of all their values: every value, the edges of
    the type included, must come out bit-identical to the per-pixel arithmetic."""
    info = np.iinfo(dtype)
    data = np.arange(info.min, info.max + 1, dtype=np.int64)
    data = np.concatenate([data, data[::-1]]).astype(dtype).reshape(2, -1)[:, ::3]  # strided too
    path = write_raster(tmp_path / "dn.tif", np.full((4, 4), 5, dtype=dtype),
                        descriptions=(scaling.polarisation,))
    sar = dataclasses.replace(_resolve(path, scaling, input_scale=scale),
                              reference=7.5 if scaling is AMP else None)
    looked_up = sar.to_unit(data)
    assert looked_up.dtype == np.float32 and looked_up.shape == data.shape
    np.testing.assert_array_equal(looked_up, sar.convert(data))
    big_endian = data.astype(data.dtype.newbyteorder(">"))  # not native: arithmetic, same numbers
    np.testing.assert_array_equal(sar.to_unit(big_endian), looked_up)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
@pytest.mark.parametrize("scale", ["dn", "scaled", "db"])
@pytest.mark.parametrize(
    ("zero_is_nodata", "read_mask"), [(False, False), (True, False), (True, True)]
)
def test_model_values_are_the_unit_values_rescaled(
    tmp_path: Path, dtype: type, scale: str, zero_is_nodata: bool, read_mask: bool
) -> None:
    """What the reader hands the model: 2 * unit - 1, and -1 wherever a pixel is not valid (0
    as nodata, or GDAL's mask), bit for bit, whether looked up or computed."""
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "f":
        data = rng.uniform(-30, 5, (6, 700)).astype(dtype)
        data[0, :5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, (6, 700), endpoint=True).astype(dtype)
        data[0, :3] = [0, info.min, info.max]
    path = write_raster(tmp_path / "s.tif", np.full((4, 4), 1, dtype=dtype),
                        descriptions=(DB.polarisation,))
    sar = dataclasses.replace(_resolve(path, DB, input_scale=scale),
                              zero_is_nodata=zero_is_nodata, read_mask=read_mask)
    gdal_mask = (rng.random(data.shape) > 0.2).astype(np.uint8) * 255 if read_mask else None
    valid = sar.valid(data, gdal_mask)
    expected = sar.to_unit(data)
    expected[~valid] = 0.0
    expected = expected * np.float32(2.0) - np.float32(1.0)
    got = sar.to_model(data, valid)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert (got[~valid] == -1.0).all() and (~valid).any() == (zero_is_nodata or read_mask or
                                                             np.dtype(dtype).kind == "f")


@pytest.mark.parametrize(
    "data,expected",
    [
        (db_scene(30, 30, bands=1)[0], "db"),
        (10 ** (db_scene(30, 30, bands=1)[0] / 10), "linear"),
        ((np.arange(900).reshape(30, 30) % 400 + 1).astype(np.uint16), "dn"),
        ((np.arange(900).reshape(30, 30) % 256).astype(np.uint8), "scaled"),
    ],
)
def test_auto_scale_from_dtype_and_values(tmp_path: Path, data: np.ndarray, expected: str) -> None:
    path = write_raster(tmp_path / "x.tif", data.astype(data.dtype))
    assert _resolve(path, AMP).scale == expected  # (a dB model refuses DN: the next test)


def test_a_db_model_refuses_a_scene_it_would_see_as_white(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GRD digital numbers read as dB are 30-60 dB, above a [-25, 0] dB model's range."""
    dn = write_raster(tmp_path / "grd.tif", (np.arange(900).reshape(30, 30) % 400 + 40).astype(np.uint16))
    with pytest.raises(RasterError, match=r"grd.tif: 100% of its pixels lie above the model's "
                                          r"range \(-25 to 0 dB\) once read as dn \(GRD digital"):
        _resolve(dn)
    assert _resolve(dn, AMP).scale == "dn"  # an amplitude model takes them as they are
    with caplog.at_level("WARNING", logger="geocolor.infer"):
        assert _resolve(dn, input_scale="dn").scale == "dn"  # the user's explicit choice
    assert "lie above the model's range" in caplog.text
    bright = db_scene(30, 30, bands=1)[0]
    bright[:3] = 5.0  # a few pixels above 0 dB are a real scene's bright targets
    assert _resolve(write_raster(tmp_path / "db.tif", bright)).scale == "db"


def test_auto_scale_reads_metadata(tmp_path: Path) -> None:
    data = (10 ** (db_scene(30, 30, bands=1)[0] / 20)).astype(np.float32)
    path = write_raster(tmp_path / "x.tif", data, descriptions=("Amplitude_VV",))
    sar = _resolve(path)
    assert sar.scale == "amplitude" and "metadata" in sar.scale_reason


def test_band_follows_the_card_polarisation(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "s.tif", db_scene(30, 30), descriptions=("VV", "VH"))
    assert _resolve(path).band == 1
    assert _resolve(path, AMP).band == 2
    assert _resolve(path, band="VH").band == 2
    assert _resolve(path, band="2").band == 2
    with pytest.raises(UsageError, match="out of range"):
        _resolve(path, band="3")
    with pytest.raises(RasterError, match="no band described as 'HH'"):
        _resolve(path, band="HH")


def test_the_band_of_the_polarisation_among_several(tmp_path: Path) -> None:
    """Earth Engine's Sentinel-1 exports: VV, VH and the incidence angle."""
    data = np.concatenate([db_scene(30, 30), np.full((1, 30, 30), 35.0, np.float32)])
    path = write_raster(tmp_path / "gee.tif", data, descriptions=("VV", "VH", "angle"))
    assert _resolve(path).band == 1
    assert _resolve(path, AMP).band == 2
    assert _resolve(path, AMP, band="angle").band == 3  # any band by its description


def test_unusable_bands_and_polarisations(tmp_path: Path) -> None:
    two = write_raster(tmp_path / "two.tif", db_scene(30, 30))
    with pytest.raises(RasterError, match="none of its 2 bands is described as VV"):
        _resolve(two)
    three = write_raster(tmp_path / "three.tif", np.ones((3, 30, 30), np.uint16))
    with pytest.raises(RasterError, match="has 3 bands, none described as VV"):
        _resolve(three)
    twice = write_raster(tmp_path / "twice.tif", db_scene(30, 30), descriptions=("VV", "VV"))
    with pytest.raises(RasterError, match="2 of its bands are described as VV"):
        _resolve(twice)
    vh = write_raster(tmp_path / "scene-vh.tif", db_scene(30, 30, bands=1))
    with pytest.raises(RasterError, match="holds VH polarisation, but the model was trained on VV"):
        _resolve(vh)
    assert _resolve(vh, band="1").band == 1  # explicit --band overrides


def test_complex_slc_is_refused(tmp_path: Path) -> None:
    data = (np.ones((1, 20, 20)) + 1j).astype(np.complex64)
    path = write_raster(tmp_path / "slc.tif", data, gcps=corner_gcps(20, 20))
    with pytest.raises(RasterError, match="complex \\(SLC\\)"):
        _resolve(path)


@pytest.mark.parametrize("fill,nodata", [(np.nan, None), (-9999.0, -9999.0), (0.0, None)])
def test_nodata_forms_and_all_nodata(tmp_path: Path, fill: float, nodata: float | None) -> None:
    data = db_scene(30, 30, bands=1)[0]
    data[:, :5] = fill
    path = write_raster(tmp_path / "n.tif", data, nodata=nodata)
    sar = _resolve(path)
    with rasterio.open(path) as ds:
        mask = ds.read_masks(1) if sar.read_mask else None
        valid = sar.valid(ds.read(1), mask)
    assert not valid[:, :5].any() and valid[:, 5:].all()
    empty = write_raster(tmp_path / "e.tif", np.full((30, 30), fill, np.float32), nodata=nodata)
    with pytest.raises(RasterError, match="all nodata"):
        _resolve(empty)


def _grey_chip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.arange(48 * 48) % 251).astype(np.uint8).reshape(48, 48)).save(path)
    return path


KAGGLE_WARNING = "named like a Kaggle Sentinel12 chip"


def test_kaggle_chips_given_to_a_model_of_other_data_are_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kaggle chip is VV dB in 8 bit: a model trained on VH amplitude takes it as its own
    scaling and paints wrong colours, so the user is told (once for a folder of chips)."""
    monkeypatch.setattr(sarinput, "_WARNED_SCALINGS", set())
    chips = [_grey_chip(tmp_path / "v_2" / "agri" / "s1" / f"ROIs1970_fall_s1_13_p{i}.png")
             for i in (1, 2)]
    with caplog.at_level("WARNING", logger="geocolor.infer"):
        for chip in chips:
            assert _resolve(chip, AMP).scale == "scaled"  # still colorized, as before
    assert caplog.text.count(KAGGLE_WARNING) == 1
    assert "'kaggle-vv-db'" in caplog.text and "scheme and polarisation differ" in caplog.text
    assert "said once for all such chips" in caplog.text

    caplog.clear()  # a dB model of another range: the range is what differs
    with caplog.at_level("WARNING", logger="geocolor.infer"):
        _resolve(chips[0], SarScaling("db_clip", "VV", -30.0, 5.0))
    assert KAGGLE_WARNING in caplog.text and "db_min and db_max differ" in caplog.text


@pytest.mark.parametrize("case", ["kaggle model", "other name", "explicit scale"])
def test_no_kaggle_warning_where_the_chip_suits_the_model_or_the_user_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(sarinput, "_WARNED_SCALINGS", set())
    kaggle = _grey_chip(tmp_path / "ROIs1868_summer_s1_59_p2.png")
    path, scaling, kw = {
        "kaggle model": (kaggle, DB, {}),  # DB is the Kaggle scaling
        "other name": (_grey_chip(tmp_path / "scene_sar_7.png"), AMP, {}),
        "explicit scale": (kaggle, AMP, {"input_scale": "scaled"}),
    }[case]
    with caplog.at_level("WARNING", logger="geocolor.infer"):
        assert _resolve(path, scaling, **kw).scale == "scaled"
    assert KAGGLE_WARNING not in caplog.text


def test_an_input_scale_the_values_cannot_be_in_is_refused(tmp_path: Path) -> None:
    """8-bit chips read as dB (a median of 100 'dB') and dB read as 0-1 values were colorized
    without a word: one flat colour, or a p99 of 1e12."""
    chips = write_raster(tmp_path / "chip.tif", np.full((20, 20), 100, np.uint8),
                         descriptions=("VH",))
    with pytest.raises(RasterError, match="--input-scale db, but the median of its values is 100"):
        _resolve(chips, AMP, input_scale="db")
    db = write_raster(tmp_path / "db.tif", db_scene(20, 20, bands=1), descriptions=("VH",))
    with pytest.raises(RasterError, match=r"--input-scale scaled, but 100% of its values lie "
                                          r"outside 0 to 1"):
        _resolve(db, AMP, input_scale="scaled")
    assert _resolve(db, AMP, input_scale="db").scale == "db"  # what they are: accepted
    assert _resolve(chips, AMP, input_scale="scaled").scale == "scaled"
