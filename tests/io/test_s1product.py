"""Sentinel-1 products as downloaded (a .SAFE folder, or its zip) as ``geocolor colorize`` inputs."""
from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from colorize_fakes import (  # noqa: E402
    AMP_VH,
    DB_VV,
    TINY_ARGS,
    ChannelCopy,
    corner_gcps,
    save_tiny_sar_model,
    write_raster,
)

from geocolor.cli import main  # noqa: E402
from geocolor.errors import RasterError, UsageError  # noqa: E402
from geocolor.io.s1product import (  # noqa: E402
    calibration_for,
    is_product,
    measurement_for,
    measurements,
)

NAME = "S1A_IW_GRDH_1SDV_20201107T135058_20201107T135123_035152_041A5F_7E07"
STAMP = "20201107t135058-20201107t135123-035152-041a5f"


def grd(height: int = 70, width: int = 90, seed: int = 0) -> np.ndarray:
    """uint16 GRD amplitude DN with the zero border of a real product."""
    rng = np.random.default_rng(seed)
    dn = (40 + 300 * rng.gamma(4.0, 0.25, (height, width))).astype(np.uint16)
    dn[:, :6] = 0
    return dn


def make_safe(parent: Path, polarisations: tuple[str, ...] = ("vh", "vv"), swaths: int = 1,
              noise: bool = False) -> Path:
    """A GRD product's folder: manifest, one measurement GeoTIFF (with GCPs) per polarisation
    (``swaths`` of them each, as in an SLC product), a quick-look PNG and an annotation; with
    ``noise``, a noise annotation beside each calibration table."""
    safe = parent / f"{NAME}.SAFE"
    (safe / "measurement").mkdir(parents=True)
    (safe / "preview").mkdir()
    (safe / "annotation").mkdir()
    (safe / "manifest.safe").write_text("<xfdu:XFDU/>")
    (safe / "annotation" / f"s1a-iw-grd-vh-{STAMP}-001.xml").write_text("<product/>")
    (safe / "annotation" / "calibration").mkdir()
    for n, pol in enumerate(polarisations, 1):
        for swath in range(1, swaths + 1):
            mode = "iw" if swaths == 1 else f"iw{swath}"
            name = f"s1a-{mode}-grd-{pol}-{STAMP}-00{n}.tiff"
            write_raster(safe / "measurement" / name, grd(seed=n), gcps=corner_gcps(70, 90))
            calibration = safe / "annotation" / "calibration" / f"calibration-{name[:-5]}.xml"
            calibration.write_text(calibration_xml())
            if noise:
                (calibration.parent / f"noise-{name[:-5]}.xml").write_text(noise_xml())
    write_raster(safe / "preview" / "quick-look.png", np.zeros((3, 20, 30), np.uint8), crs=None,
                 driver="PNG")
    return safe


#: The calibration vectors of the fake products: lines, pixels, and A = sigma_nought(line, pixel).
LINES, PIXELS = (-3, 35, 75), (0, 30, 60, 95)


def sigma_nought(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """A smooth table like a real product's (A about 450-700, rising with range)."""
    return 450.0 + 2.0 * pixel + 0.5 * line


def calibration_xml() -> str:
    """A calibration annotation as in a product (other tables and the header trimmed)."""
    vectors = "".join(
        f"<calibrationVector><azimuthTime>2020-11-07T13:50:58</azimuthTime><line>{line}</line>"
        f'<pixel count="{len(PIXELS)}">{" ".join(map(str, PIXELS))}</pixel>'
        f'<sigmaNought count="{len(PIXELS)}">'
        f'{" ".join(f"{a:.6e}" for a in sigma_nought(np.full(4, line), np.array(PIXELS)))}'
        f"</sigmaNought><betaNought count=\"{len(PIXELS)}\">{' '.join(['4.7e+02'] * 4)}</betaNought>"
        "</calibrationVector>"
        for line in LINES
    )
    return ('<?xml version="1.0" encoding="UTF-8"?><calibration><adsHeader/>'
            f'<calibrationVectorList count="{len(LINES)}">{vectors}</calibrationVectorList>'
            "</calibration>")


#: The noise annotation of the fake products: range vectors at these lines and pixels, and two
#: azimuth blocks side by side (two swaths), split after column SPLIT.
NOISE_LINES, NOISE_PIXELS, SPLIT = (-10, 40, 80), (0, 45, 89), 44


def range_noise(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """Noise power in DN^2, linear in line and pixel (so bilinear interpolation is exact)."""
    return 9000.0 + 120.0 * pixel - 20.0 * line


def azimuth_noise(line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """The blocks' factors: the first swath's linear from 1.0 at line 0 to 1.5 at line 69, the
    second's constant 0.5 (one value)."""
    return np.where(pixel <= SPLIT, 1.0 + 0.5 * np.clip(line, 0, 69) / 69, 0.5)


def noise_xml() -> str:
    """A noise annotation in the IPF 2.9 layout (header trimmed)."""
    def numbers(values) -> str:
        return " ".join(f"{v:.6e}" for v in values)

    vectors = "".join(
        f"<noiseRangeVector><azimuthTime>2020-11-07T13:50:58</azimuthTime><line>{line}</line>"
        f'<pixel count="3">{" ".join(map(str, NOISE_PIXELS))}</pixel><noiseRangeLut count="3">'
        f"{numbers(range_noise(np.full(3, line), np.array(NOISE_PIXELS)))}</noiseRangeLut>"
        "</noiseRangeVector>"
        for line in NOISE_LINES
    )
    blocks = (
        "<noiseAzimuthVector><swath>IW1</swath><firstAzimuthLine>0</firstAzimuthLine>"
        f"<firstRangeSample>0</firstRangeSample><lastAzimuthLine>69</lastAzimuthLine>"
        f"<lastRangeSample>{SPLIT}</lastRangeSample><line count=\"2\">0 69</line>"
        '<noiseAzimuthLut count="2">1.0 1.5</noiseAzimuthLut></noiseAzimuthVector>'
        "<noiseAzimuthVector><swath>IW2</swath><firstAzimuthLine>0</firstAzimuthLine>"
        f"<firstRangeSample>{SPLIT + 1}</firstRangeSample><lastAzimuthLine>69</lastAzimuthLine>"
        "<lastRangeSample>89</lastRangeSample><line count=\"1\">35</line>"
        '<noiseAzimuthLut count="1">0.5</noiseAzimuthLut></noiseAzimuthVector>'
    )
    return ('<?xml version="1.0" encoding="UTF-8"?><noise><adsHeader/>'
            f'<noiseRangeVectorList count="{len(NOISE_LINES)}">{vectors}</noiseRangeVectorList>'
            f'<noiseAzimuthVectorList count="2">{blocks}</noiseAzimuthVectorList></noise>')


def zip_of(safe: Path) -> Path:
    """The product zipped as it is distributed: ``<name>.zip`` holding ``<name>.SAFE/...``."""
    target = safe.parent / f"{NAME}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(safe.rglob("*")):
            archive.write(path, path.relative_to(safe.parent))
    return target


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sar_model(tmp_path_factory.mktemp("m") / "tiny_vh.model", AMP_VH)


def run(args: list[str]):
    return CliRunner().invoke(main, args)


def test_products_are_told_from_other_inputs(tmp_path: Path) -> None:
    safe = make_safe(tmp_path / "p")
    assert is_product(safe) and is_product(zip_of(safe))
    tif = safe / "measurement" / f"s1a-iw-grd-vh-{STAMP}-001.tiff"
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes.txt", "not a product")
    (tmp_path / "empty.SAFE").mkdir()
    assert not any(map(is_product, (tif, other, tmp_path / "empty.SAFE", tmp_path)))
    assert sorted(measurements(safe)) == ["VH", "VV"]


def test_the_measurement_of_the_models_polarisation_or_of_band(tmp_path: Path) -> None:
    safe = make_safe(tmp_path)
    for product in (safe, zip_of(safe)):
        path, band = measurement_for(product, "VH", None)
        assert Path(path).name == f"s1a-iw-grd-vh-{STAMP}-001.tiff" and band is None
        path, band = measurement_for(product, "VH", "vv")  # the user's choice, read as band 1
        assert Path(path).name == f"s1a-iw-grd-vv-{STAMP}-002.tiff" and band == 1
        with rasterio.open(path) as ds:  # inside the zip: a path rasterio opens as it is
            assert ds.count == 1 and ds.dtypes[0] == "uint16" and len(ds.gcps[0]) == 4
    with pytest.raises(UsageError, match="pass --band VH or --band VV"):
        measurement_for(safe, "VH", 2)
    with pytest.raises(RasterError, match="has no HH measurement .it holds VH, VV."):
        measurement_for(safe, "VH", "HH")


def test_products_that_cannot_be_colorized_say_why(tmp_path: Path) -> None:
    only_vv = make_safe(tmp_path / "vv", ("vv",))
    with pytest.raises(RasterError, match="holds VV, but the model was trained on VH .pass --band VV"):
        measurement_for(only_vv, "VH", None)
    slc = make_safe(tmp_path / "slc", ("vh",), swaths=3)
    with pytest.raises(RasterError, match="3 VH measurement files"):
        measurement_for(slc, "VH", None)
    empty = make_safe(tmp_path / "empty", ())
    with pytest.raises(RasterError, match="without measurement GeoTIFFs"):
        measurement_for(empty, "VH", None)


def test_colorize_a_product_folder_or_zip_as_its_measurement(tmp_path: Path, model: Path) -> None:
    safe = make_safe(tmp_path / "in")
    tif = safe / "measurement" / f"s1a-iw-grd-vh-{STAMP}-001.tiff"
    outputs = {}
    for name, src in (("tiff", tif), ("safe", safe), ("zip", zip_of(safe))):
        out = tmp_path / f"{name}.tif"
        r = run(["-q", "colorize", str(src), "-o", str(out), "-m", str(model)])
        assert r.exit_code == 0, r.output
        assert r.stdout.strip() == str(out)
        outputs[name] = out.read_bytes()
    assert outputs["safe"] == outputs["tiff"] and outputs["zip"] == outputs["tiff"]
    with rasterio.open(tmp_path / "zip.tif") as ds:
        assert ds.count == 3 and len(ds.gcps[0]) == 4  # georeferenced by the product's GCPs
        assert ds.read_masks(1)[:, :6].max() == 0  # its zero border is nodata


def test_a_folder_of_products_gives_one_output_per_product(tmp_path: Path, model: Path) -> None:
    scenes = tmp_path / "scenes"
    safe = make_safe(scenes / "a")
    zipped = zip_of(make_safe(scenes / "b"))
    shutil.rmtree(zipped.parent / f"{NAME}.SAFE")  # only the zip stays in b/
    zip_of(make_safe(scenes / "c")).rename(scenes / "c" / f"{NAME}.SAFE.zip")  # another naming
    shutil.rmtree(scenes / "c" / f"{NAME}.SAFE")
    r = run(["-q", "colorize", str(scenes), "-o", str(tmp_path / "out"), "-m", str(model),
             "--preview", str(tmp_path / "previews")])
    assert r.exit_code == 0, r.output
    written = sorted(p.relative_to(tmp_path).as_posix()
                     for p in tmp_path.glob("[op]*/**/*") if p.is_file())
    # neither the measurement GeoTIFFs nor the quick-look inside the product are inputs
    assert written == [f"out/{d}/{NAME}.tif" for d in "abc"] + [
        f"previews/{d}/{NAME}.preview.png" for d in "abc"]
    assert safe.is_dir()


def test_a_product_in_another_polarisation_is_one_clear_error(tmp_path: Path, model: Path) -> None:
    only_vv = zip_of(make_safe(tmp_path, ("vv",)))
    r = run(["colorize", str(only_vv), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "pass --band VV" in errors[0] and "Traceback" not in r.output
    assert not (tmp_path / "o.tif").exists()
    r = run(["-q", "colorize", str(only_vv), "-o", str(tmp_path / "o.tif"), "-m", str(model),
             "--band", "VV"])
    assert r.exit_code == 0, r.output


def manifest_of_ipf(version: str) -> str:
    """A manifest.safe's processing record, as ESA writes it (the rest trimmed)."""
    return ('<?xml version="1.0" encoding="UTF-8"?><xfdu:XFDU><metadataSection><safe:processing '
            'name="GRD Post Processing"><safe:facility name="Copernicus S1 Core Ground Segment">'
            f'<safe:software name="Sentinel-1 IPF" version="{version}"/></safe:facility>'
            "</safe:processing></metadataSection></xfdu:XFDU>")


def test_a_product_older_than_ipf_2_90_is_said_to_have_its_border_noise_masked(
    tmp_path: Path, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from geocolor.infer.scene import colorize_scene
    from geocolor.io.s1product import ipf_version

    old = make_safe(tmp_path / "old")
    (old / "manifest.safe").write_text(manifest_of_ipf("002.72"))
    new = make_safe(tmp_path / "new")
    (new / "manifest.safe").write_text(manifest_of_ipf("003.31"))
    tif = f"s1a-iw-grd-vh-{STAMP}-001.tiff"
    old_zip = zip_of(old)
    assert ipf_version(old_zip, f"/vsizip/{{{old_zip}}}/{NAME}.SAFE/measurement/{tif}") == (2, 72)
    assert ipf_version(new, str(new / "measurement" / tif)) == (3, 31)
    assert ipf_version(make_safe(tmp_path / "stub"), tif) is None  # no processing record
    with caplog.at_level("INFO", logger="geocolor"):
        colorize_scene(old_zip, tmp_path / "old.tif", model, device="cpu")
        colorize_scene(new, tmp_path / "new.tif", model, device="cpu")
    said = [r.getMessage() for r in caplog.records if "IPF" in r.getMessage()]
    assert len(said) == 1 and not any(r.levelname == "WARNING" for r in caplog.records)
    assert said[0].startswith(f"{old_zip}: made by IPF 2.72, before 2.90")
    assert "masked as SNAP's Remove-GRD-Border-Noise does" in said[0]
    assert "border noise masked" in caplog.text  # in the description of the input
    described = json.loads(run(["info", "--json", str(old_zip)]).stdout)
    assert described["ipf"] == "2.72" and "border" in described["border_noise"]
    r = run(["info", str(new)])
    assert "made by IPF 3.31" in r.stdout and "border:" not in r.stdout


def noise_vector_xml(value: float) -> str:
    """A noise annotation in the layout before IPF 2.9 (``noiseVector``/``noiseLut``, no
    azimuth blocks): ``value`` DN^2 everywhere."""
    vectors = "".join(
        f"<noiseVector><line>{line}</line><pixel count=\"2\">0 89</pixel>"
        f'<noiseLut count="2">{value:.6e} {value:.6e}</noiseLut></noiseVector>' for line in (0, 69))
    return f'<noise><noiseVectorList count="2">{vectors}</noiseVectorList></noise>'


def old_product(parent: Path, vh: np.ndarray, vv: np.ndarray, version: str = "002.72",
                noise: float | None = None) -> Path:
    """A 70 x 90 product made by IPF ``version`` with these VH and VV digital numbers (and,
    with ``noise``, a noise annotation of that value for both)."""
    safe = make_safe(parent)
    (safe / "manifest.safe").write_text(manifest_of_ipf(version))
    for n, (pol, dn) in enumerate((("vh", vh), ("vv", vv)), 1):
        name = f"s1a-iw-grd-{pol}-{STAMP}-00{n}"
        write_raster(safe / "measurement" / f"{name}.tiff", dn, gcps=corner_gcps(70, 90))
        if noise is not None:
            (safe / "annotation" / "calibration" / f"noise-{name}.xml").write_text(
                noise_vector_xml(noise))
    return safe


def test_border_noise_is_masked_by_snaps_rule_on_the_co_polarised_band(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the reach of the edges (here 20 px of 70 x 90), a pixel whose VV digital number
    is below 30, or whose noise-free VV amplitude is below 0.5, is nodata in the output,
    whatever the colorized VH holds there; farther in, dark water stays."""
    from geocolor.infer.scene import colorize_scene
    from geocolor.io import s1product

    monkeypatch.setattr(s1product, "BORDER_REACH", 20)
    vh, vv = grd(seed=1), grd(seed=2)
    vv[:, 6:14] = 12  # the near-range noise strip (the VH there is bright: not tested)
    vh[:, 6:14] = 500
    vv[:3, :] = 8  # the first lines of a data take
    vv[:, 84:] = 40  # far range: DN 40, but 40^2 = 1600 is under the noise of 2000 DN^2
    vv[30:34, 15:19] = 20  # a dark pond within reach: masked, as SNAP does
    vv[30:40, 40:50] = 10  # a dark lake in the interior: kept
    vh[30:40, 40:50] = 15
    zero = vh == 0
    expected_noise = np.zeros((70, 90), bool)
    expected_noise[:, 6:14] = expected_noise[:3, :] = expected_noise[:, 84:] = True
    expected_noise[30:34, 15:19] = True
    in_reach = np.ones((70, 90), bool)
    in_reach[20:50, 20:70] = False
    # the grd() values are 40 and up: in reach, those with DN^2 < 2000 go too
    expected_noise |= in_reach & (vv.astype(np.float64) ** 2 < 2000)
    products = {"old": old_product(tmp_path / "old", vh, vv, noise=2000.0),
                "new": old_product(tmp_path / "new", vh, vv, version="003.10", noise=2000.0)}
    products["old zip"] = zip_of(products["old"])
    for label, product in products.items():
        out = tmp_path / f"{label}.tif"
        colorize_scene(product, out, model, device="cpu", preview=tmp_path / f"{label}.png")
        with rasterio.open(out) as ds:
            valid = ds.read_masks(1) > 0
            rgb = ds.read()
        expected = ~zero & ~(expected_noise if label != "new" else False)
        assert (valid == expected).all(), label
        assert (rgb[:, ~valid] == 0).all() and rgb[:, valid].std() > 0
    assert valid[30:40, 40:50].all()  # the lake


def test_border_noise_without_a_co_polarised_band_tests_the_band_itself(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geocolor.infer.scene import colorize_scene
    from geocolor.io import s1product

    monkeypatch.setattr(s1product, "BORDER_REACH", 20)
    safe = old_product(tmp_path, grd(seed=1), grd(seed=2))
    next((safe / "measurement").glob("*-vv-*")).unlink()  # a partial download
    vh = grd(seed=1)
    vh[:, 70:80] = 25
    write_raster(next((safe / "measurement").glob("*-vh-*")), vh, gcps=corner_gcps(70, 90))
    colorize_scene(safe, tmp_path / "o.tif", model, device="cpu")
    with rasterio.open(tmp_path / "o.tif") as ds:
        valid = ds.read_masks(1) > 0
    assert not valid[:, 70:80].any() and valid[:, 20:70].all()


def test_a_co_polarised_band_of_another_size_is_one_clear_error(tmp_path: Path, model: Path) -> None:
    safe = old_product(tmp_path, grd(seed=1), grd(seed=2))
    write_raster(next((safe / "measurement").glob("*-vv-*")), grd(60, 90), gcps=corner_gcps(60, 90))
    r = run(["colorize", str(safe), "-o", str(tmp_path / "o.tif")])
    assert r.exit_code == 1
    assert "90 x 60 px, unlike" in r.stderr and "download it again" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.tif").exists()


def test_noise_vectors_before_ipf_2_50_are_rescaled(tmp_path: Path, caplog) -> None:
    """Before IPF 2.50 the noise vectors are on another scale: times K DN0 (before 2.34) or
    K DN0^2, K = 75088.7 for IW and DN0 the first dn calibration value."""
    from geocolor.io.s1product import thermal_noise

    safe = make_safe(tmp_path)
    vh = measurement_for(safe, "VH", None)[0]
    stem = Path(vh).name[:-5]
    (safe / "annotation" / "calibration" / f"noise-{stem}.xml").write_text(noise_vector_xml(2.0))
    table = safe / "annotation" / "calibration" / f"calibration-{stem}.xml"
    table.write_text(calibration_xml().replace("</betaNought>", "</betaNought><dn count=\"4\">"
                                               "3.0 3.0 3.0 3.0</dn>"))
    rows, cols = np.arange(5.0), np.arange(7.0)
    for version, factor in (((2, 33), 75088.7 * 3), ((2, 43), 75088.7 * 9), ((2, 50), 1.0),
                            ((3, 10), 1.0), (None, 1.0)):
        power = thermal_noise(safe, vh, version).power(rows, cols)
        assert np.allclose(power, 2.0 * factor, rtol=1e-5), version
    # a dB model's sigma0 uses the same rescaled noise
    assert np.allclose(calibration_for(safe, vh, (2, 43)).noise.power(rows, cols), 2.0 * 75088.7 * 9)
    table.write_text(calibration_xml())  # no dn vector: the factor is not known
    with caplog.at_level("WARNING"):
        assert thermal_noise(safe, vh, (2, 43)) is None
    assert "made by IPF 2.43" in caplog.text and "thermal noise is not used" in caplog.text
    caplog.clear()
    (safe / "annotation" / "calibration" / f"noise-{stem}.xml").unlink()
    with caplog.at_level("WARNING"):  # no noise to scale: nothing to warn about
        assert thermal_noise(safe, vh, (2, 43)) is None
    assert not caplog.records


def test_the_border_strips_cover_the_reach_of_the_edges_once() -> None:
    from geocolor.io.s1product import BorderNoise

    border = BorderNoise("tested.tif", None, reach=5)
    height, width = 23, 17
    zone = np.ones((height, width), int)
    zone[5:-5, 5:-5] = 0
    for r0, r1, c0, c1 in [(0, 23, 0, 17), (0, 4, 3, 9), (4, 19, 0, 17), (6, 17, 6, 11),
                           (2, 21, 4, 13), (18, 23, 0, 1), (10, 11, 16, 17)]:
        covered = np.zeros_like(zone)
        for a, b, c, d in border.strips(r0, r1, c0, c1, height, width):
            covered[a:b, c:d] += 1
        expected = np.zeros_like(zone)
        expected[r0:r1, c0:c1] = zone[r0:r1, c0:c1]
        assert (covered == expected).all(), (r0, r1, c0, c1)
    assert border.strips(6, 17, 6, 11, height, width) == []  # the interior: nothing to read


def test_info_describes_a_product_by_its_measurements(tmp_path: Path) -> None:
    import json

    safe = make_safe(tmp_path, noise=True)
    zipped = zip_of(safe)
    r = run(["info", "--json", str(zipped)])
    assert r.exit_code == 0, r.output
    described = json.loads(r.stdout)
    assert described["type"] == "product" and described["polarisations"] == ["VH", "VV"]
    assert [m["gcps"]["count"] for m in described["measurements"]] == [4, 4]
    assert [m["calibration"] for m in described["measurements"]] == [
        ["sigmaNought table", "thermal noise"]] * 2
    r = run(["info", str(zipped)])
    assert r.exit_code == 0 and "Sentinel-1 product, polarisations: VH, VV" in r.stdout
    assert r.stdout.count("calibration:  sigmaNought table, thermal noise") == 2
    for table in (safe / "annotation" / "calibration").glob("noise-*-vh-*"):
        table.unlink()  # a partial download, as a folder
    r = run(["info", str(safe)])
    assert "calibration:  sigmaNought table\n" in r.stdout
    for table in (safe / "annotation" / "calibration").glob("calibration-*-vh-*"):
        table.unlink()
    r = run(["info", str(safe)])
    assert "calibration:  none (dB models cannot use it)" in r.stdout


def test_the_calibration_table_is_read_and_interpolated(tmp_path: Path) -> None:
    safe = make_safe(tmp_path)
    for product in (safe, zip_of(safe)):
        table = calibration_for(product, measurement_for(product, "VH", None)[0])
        rows, cols = np.arange(70.0), np.arange(90.0)
        got = table.offset_db(rows, cols)
        # the exact bilinear interpolation of A itself, clamped at the table's last pixel
        exact = 20 * np.log10(sigma_nought(rows[:, None], np.minimum(cols, 95)[None, :]))
        assert got.shape == (70, 90) and np.abs(got - exact).max() < 0.01
    (safe / "annotation" / "calibration" / f"calibration-s1a-iw-grd-vh-{STAMP}-001.xml").write_text(
        "<calibration><calibrationVectorList><calibrationVector><line>0</line>"
        "<pixel>0 10</pixel><sigmaNought>5e2</sigmaNought></calibrationVector>"
        "</calibrationVectorList></calibration>")
    with pytest.raises(RasterError, match="unreadable calibration table"):
        calibration_for(safe, measurement_for(safe, "VH", None)[0])
    (safe / "annotation" / "calibration" / f"calibration-s1a-iw-grd-vh-{STAMP}-001.xml").unlink()
    assert calibration_for(safe, measurement_for(safe, "VH", None)[0]) is None


def test_a_db_model_gets_calibrated_sigma0_from_a_product(tmp_path: Path) -> None:
    """DN would be 32-62 'dB' (refused); calibrated they are sigma0 = DN^2 / A^2."""
    from geocolor.infer.scene import colorize_scene
    from geocolor.io.modelfile import LoadedModel, ModelCard

    copy = LoadedModel(card=ModelCard(kind="sar", arch="unet", arch_args=dict(TINY_ARGS),
                                      input={"sar_scaling": dict(DB_VV), "tile_size": 64}),
                       network=ChannelCopy())
    zipped = zip_of(make_safe(tmp_path))
    with pytest.raises(RasterError, match="GRD digital numbers are not calibrated"):
        colorize_scene(next((tmp_path / f"{NAME}.SAFE" / "measurement").glob("*-vv-*")),
                       tmp_path / "raw.tif", copy, device="cpu")
    result = colorize_scene(zipped, tmp_path / "o.tif", copy, device="cpu",
                            preview=tmp_path / "p.png")
    assert result["input"] == str(zipped)
    dn = grd(seed=2).astype(np.float64)  # the VV measurement
    rows, cols = np.mgrid[0:70, 0:90]
    with np.errstate(divide="ignore"):
        sigma0_db = 20 * np.log10(dn) - 20 * np.log10(sigma_nought(rows, np.minimum(cols, 95)))
    expected = np.rint(np.clip((sigma0_db + 25) / 25, 0, 1) * 255)
    with rasterio.open(tmp_path / "o.tif") as ds:
        red, valid = ds.read(1).astype(np.float64), ds.read_masks(1) > 0
    assert (valid == (dn > 0)).all()
    assert np.abs(red - expected)[valid].max() <= 1  # tiles blended: the same value, rounded
    assert 0.2 < (expected[valid] / 255).mean() < 0.9  # not a white scene
    assert (tmp_path / "p.png").is_file()


def test_the_thermal_noise_is_read_and_interpolated(tmp_path: Path, caplog) -> None:
    safe = make_safe(tmp_path, noise=True)
    rows, cols = np.arange(70.0), np.arange(90.0)
    expected = range_noise(rows[:, None], cols[None, :]) * azimuth_noise(rows[:, None], cols[None, :])
    for product in (safe, zip_of(safe)):
        noise = calibration_for(product, measurement_for(product, "VH", None)[0]).noise
        got = noise.power(rows, cols)
        assert got.shape == (70, 90) and np.abs(got / expected - 1).max() < 1e-5
        # a band of a few rows and a decimated preview grid see the same field
        assert np.allclose(noise.power(rows[20:24], cols), expected[20:24], rtol=1e-5)
        assert np.allclose(noise.power(rows[::7] + 0.5, cols[::9] + 0.5),
                           range_noise(rows[::7, None] + 0.5, cols[None, ::9] + 0.5)
                           * azimuth_noise(rows[::7, None] + 0.5, cols[None, ::9] + 0.5), rtol=1e-5)
    # before IPF 2.9: range vectors only (noiseVector / noiseLut), no azimuth blocks
    where = safe / "annotation" / "calibration" / f"noise-s1a-iw-grd-vh-{STAMP}-001.xml"
    where.write_text(noise_xml().replace("noiseRangeVector", "noiseVector")
                     .replace("noiseRangeLut", "noiseLut").split("<noiseAzimuthVectorList")[0]
                     + "</noise>")
    old = calibration_for(safe, measurement_for(safe, "VH", None)[0]).noise
    assert np.allclose(old.power(rows, cols), range_noise(rows[:, None], cols[None, :]), rtol=1e-5)
    # a noise annotation that cannot be read: calibrated all the same, without the noise, said
    where.write_text("<noise><noiseRangeVectorList><noiseRangeVector><line>0</line>"
                     "<pixel>0 10</pixel><noiseRangeLut>5e2</noiseRangeLut></noiseRangeVector>"
                     "</noiseRangeVectorList></noise>")
    with caplog.at_level("WARNING"):
        calibration = calibration_for(safe, measurement_for(safe, "VH", None)[0])
    assert calibration is not None and calibration.noise is None
    assert "unreadable noise annotation" in caplog.text and "not subtracted" in caplog.text


def test_a_db_model_gets_noise_free_sigma0_from_a_product(tmp_path: Path, caplog) -> None:
    """sigma0 = (DN^2 - N) / A^2; at or below the noise, the bottom of the model's range."""
    from geocolor.infer.scene import colorize_scene
    from geocolor.io.modelfile import LoadedModel, ModelCard

    copy = LoadedModel(card=ModelCard(kind="sar", arch="unet", arch_args=dict(TINY_ARGS),
                                      input={"sar_scaling": dict(DB_VV), "tile_size": 64}),
                       network=ChannelCopy())
    safe = make_safe(tmp_path, noise=True)
    with caplog.at_level("INFO"):
        colorize_scene(safe, tmp_path / "o.tif", copy, device="cpu", preview=tmp_path / "p.png")
    assert "sigmaNought table, thermal noise subtracted" in caplog.text
    assert (tmp_path / "p.png").is_file()
    dn = grd(seed=2).astype(np.float64)  # the VV measurement
    rows, cols = np.mgrid[0:70, 0:90]
    power = dn ** 2 - range_noise(rows, cols) * azimuth_noise(rows, cols)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma0_db = 10 * np.log10(np.maximum(power, 0)) - 20 * np.log10(
            sigma_nought(rows, np.minimum(cols, 95)))
    expected = np.rint(np.clip((sigma0_db + 25) / 25, 0, 1) * 255)
    with rasterio.open(tmp_path / "o.tif") as ds:
        red, valid = ds.read(1).astype(np.float64), ds.read_masks(1) > 0
    assert (valid == (dn > 0)).all()
    below = valid & (power <= 0)
    assert below.sum() > 20 and (red[below] == 0).all()  # under the noise floor: the bottom
    assert np.abs(red - expected)[valid].max() <= 1
    # the noise darkens: subtracted, every valid pixel is at most as bright as without it
    plain = tmp_path / "plain"
    make_safe(plain)
    colorize_scene(plain / f"{NAME}.SAFE", tmp_path / "plain.tif", copy, device="cpu")
    with rasterio.open(tmp_path / "plain.tif") as ds:
        assert (red[valid] <= ds.read(1)[valid]).all() and red[valid].mean() < ds.read(1)[valid].mean() - 5


@pytest.mark.parametrize("ipf", [None, "002.72"])
def test_bounds_on_a_product_keep_the_scenes_calibration(
    tmp_path: Path, ipf: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--bounds: the window's pixels get the sigma0 and noise of their place in the scene,
    and (made before IPF 2.90) its border mask, so the window's output is the whole scene's
    there."""
    from rasterio.windows import Window

    from geocolor.infer.scene import colorize_scene
    from geocolor.io import s1product
    from geocolor.io.modelfile import LoadedModel, ModelCard

    monkeypatch.setattr(s1product, "BORDER_REACH", 20)
    copy = LoadedModel(card=ModelCard(kind="sar", arch="unet", arch_args=dict(TINY_ARGS),
                                      input={"sar_scaling": dict(DB_VV), "tile_size": 64}),
                       network=ChannelCopy())
    safe = make_safe(tmp_path, noise=True)
    if ipf:
        (safe / "manifest.safe").write_text(manifest_of_ipf(ipf))
    colorize_scene(safe, tmp_path / "whole.tif", copy, device="cpu")
    result = colorize_scene(safe, tmp_path / "part.tif", copy, device="cpu",
                            bounds=(10.15, 49.7, 10.4, 49.9), preview=tmp_path / "p.png")
    col, row, width, height = result["window"]
    assert row > 5 and col > 20 and width < 70 and height < 60  # a part, away from the corner
    with rasterio.open(tmp_path / "whole.tif") as whole, rasterio.open(tmp_path / "part.tif") as part:
        expected = whole.read(window=Window(col, row, width, height)).astype(int)
        got = part.read().astype(int)
        mask = part.dataset_mask()
        assert (mask == whole.dataset_mask(window=Window(col, row, width, height))).all()
    dn = grd(seed=2)[row:row + height, col:col + width]  # the VV, tested for border noise
    masked = (mask == 0) & (dn > 0)
    assert masked.any() == bool(ipf) and not masked[20 - row : 50 - row, : 70 - col].any()
    assert np.abs(got - expected).max() <= 1
    assert (tmp_path / "p.png").is_file()


def test_a_damaged_zip_says_to_download_again(tmp_path: Path) -> None:
    db_model = save_tiny_sar_model(tmp_path / "db.model", DB_VV)
    zipped = zip_of(make_safe(tmp_path, noise=True))
    data = bytearray(zipped.read_bytes())
    with zipfile.ZipFile(zipped) as archive:
        member = next(i for i in archive.infolist() if "calibration/calibration-" in i.filename
                      and "-vv-" in i.filename)
    start = member.header_offset + 30 + len(member.filename) + len(member.extra) + 10
    data[start:start + 40] = bytes(b ^ 0xFF for b in data[start:start + 40])  # its deflated bytes
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    r = run(["colorize", str(damaged), "-o", str(tmp_path / "o.tif"), "-m", str(db_model)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "the download looks damaged: download the product again" in errors[0]
    assert not list(tmp_path.glob("o*"))
    # cut short, as a download that stopped: no longer a zip at all, but named like a product
    cut = tmp_path / "cut" / f"{NAME}.zip"
    cut.parent.mkdir()
    cut.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    r = run(["colorize", str(cut), "-o", str(tmp_path / "o.tif"), "-m", str(db_model)])
    assert r.exit_code == 1 and "an incomplete download? download it again" in r.stderr
