"""Rasters read in place from a URL (``https://...``, ``/vsicurl/...``): ``colorize`` and ``info``.

A local HTTP server with byte ranges (what GDAL's ``/vsicurl/`` needs, as object stores
give) stands in for the cloud.
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.warp import transform as transform_coords

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infer"))
from colorize_fakes import (  # noqa: E402
    db_scene,
    save_tiny_sar_model,
    save_tiny_semantic_model,
    write_raster,
)

from geocolor.cli import main  # noqa: E402
from geocolor.io.source import (  # noqa: E402
    gdal_path,
    is_network,
    raster_source,
    remote_read_env,
    source_name,
    source_path,
)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` answered by 206; counts the bytes it sends.
    Once ``fail_after`` (a one-item list; empty: never) ranged requests are answered, the
    others get 500, as a server that goes down mid-scene."""

    served: list[int]
    fail_after: list[int]

    def send_head(self):  # type: ignore[override]
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if path.name.startswith("private"):
            self.send_error(403, "Forbidden")
            return None
        if match is None or not path.is_file():
            return super().send_head()
        if self.fail_after and len(self.served) >= self.fail_after[0]:
            self.send_error(500, "server down")
            return None
        size = path.stat().st_size
        start = int(match.group(1))
        end = min(int(match.group(2) or size - 1), size - 1)
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.served.append(len(body))
        import io

        return io.BytesIO(body)

    def log_message(self, *args: object) -> None:
        pass


FAIL_AFTER: list[int] = []


@pytest.fixture()
def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path, list[int]]]:
    """(base URL, the folder it serves, bytes sent per ranged request); ``server.fail_after``."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy of the CI machine must not take it
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    # a folder of its own in the URL: GDAL caches what it learns of a URL (size, blocks) for
    # the process, and a later test's server may get the same port
    token = uuid.uuid4().hex
    root = tmp_path / "www" / token
    root.mkdir(parents=True)
    served: list[int] = []
    handler = type("Handler", (RangeHandler,), {"served": served, "fail_after": FAIL_AFTER})
    FAIL_AFTER.clear()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root.parent)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{token}", root, served
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sar_model(tmp_path_factory.mktemp("m") / "tiny.model")


def run(args: list[str], stdin: str | None = None):
    return CliRunner().invoke(main, ["-q", *args], input=stdin)


def test_urls_and_virtual_paths_keep_their_text() -> None:
    signed = "https://h.example/a/b.tif?sig=x%2Fy"
    assert raster_source(signed) == signed
    assert gdal_path(signed) == f"/vsicurl/{signed}"
    assert gdal_path("s3://bucket/k/S1_VH.tif") == "/vsis3/bucket/k/S1_VH.tif"
    assert gdal_path("gs://bucket/x.tif") == "/vsigs/bucket/x.tif"
    assert gdal_path("/vsicurl/https://h/x.tif") == "/vsicurl/https://h/x.tif"
    assert source_name("https://h.example/a/b.tif?sig=x") == "b.tif"
    assert source_name("/vsicurl/https://h/d/c.tiff") == "c.tiff"
    assert source_path("/vsis3/bucket/k/S1_VH.tif") == PurePosixPath("/vsis3/bucket/k/S1_VH.tif")
    assert raster_source("file:///data/a%20b.tif") == Path("/data/a b.tif")
    local = raster_source("scenes//a.tif")
    assert isinstance(local, Path) and local == Path("scenes/a.tif")
    assert is_network("https://h/a.tif") and is_network("/vsizip//vsis3/b/p.zip/m.tif")
    assert not is_network(Path("/vsizip/{/data/p.zip}/m.tif")) and not is_network(local)
    assert not is_network(Path("/data/vsicurl/a.tif"))


def test_remote_reads_get_gdal_defaults_the_environment_can_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "9")
    with remote_read_env("https://h/a.tif"):
        options = rasterio.env.getenv()
        assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
        assert "GDAL_HTTP_MAX_RETRY" not in options  # GDAL reads the user's 9 from the environment
    with remote_read_env(Path("local.tif")):
        options = rasterio.env.getenv() if rasterio.env.hasenv() else {}
        assert "GDAL_DISABLE_READDIR_ON_OPEN" not in options


def test_a_url_colorizes_like_the_local_file(tmp_path: Path, server, model: Path) -> None:
    base, root, _ = server
    write_raster(root / "s.tif", db_scene(70, 90), descriptions=("VV", "VH"))
    local = run(["colorize", str(root / "s.tif"), "-o", str(tmp_path / "local.tif"),
                 "-m", str(model)])
    assert local.exit_code == 0, local.output
    url = f"{base}/s.tif?token=abc"  # a signed URL's query: kept for GDAL, not in the name
    r = run(["colorize", url, "-o", str(tmp_path / "out") + "/", "-m", str(model), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["input"] == url and result["output"] == str(tmp_path / "out" / "s.tif")
    with (rasterio.open(tmp_path / "out" / "s.tif") as got,
          rasterio.open(tmp_path / "local.tif") as want):
        assert np.array_equal(got.read(), want.read())
        assert (got.crs, got.transform) == (want.crs, want.transform)
        assert got.tags()["GEOCOLOR_SOURCE"] == "s.tif"


def test_rio_geocolor_and_the_api_take_a_url(tmp_path: Path, server, model: Path) -> None:
    from rasterio.rio.main import main_group

    from geocolor import colorize_scene
    from geocolor.cli.rio import geocolor as rio_geocolor

    base, root, _ = server
    write_raster(root / "s.tif", db_scene(50, 60), descriptions=("VV", "VH"))
    if main_group.commands.get("geocolor") is not rio_geocolor:
        main_group.add_command(rio_geocolor)
    r = CliRunner().invoke(main_group, ["geocolor", f"{base}/s.tif", str(tmp_path / "rio.tif"),
                                        "-m", str(model)])
    assert r.exit_code == 0, r.output
    result = colorize_scene(f"{base}/s.tif", tmp_path / "api.tif", str(model), device="cpu")
    assert result.input == f"{base}/s.tif"
    with rasterio.open(tmp_path / "rio.tif") as a, rasterio.open(tmp_path / "api.tif") as b:
        assert np.array_equal(a.read(), b.read())


def test_stdin_urls_among_local_files_and_a_missing_one(
    tmp_path: Path, server, model: Path
) -> None:
    base, root, _ = server
    write_raster(root / "a.tif", db_scene(40, 50), descriptions=("VV", "VH"))
    write_raster(tmp_path / "b.tif", db_scene(40, 50, seed=1), descriptions=("VV", "VH"))
    stdin = f"{base}/a.tif\n/vsicurl/{base}/a.tif\n{tmp_path / 'b.tif'}\n{base}/gone.tif\n"
    out = tmp_path / "out"
    r = run(["colorize", "-", "-o", str(out), "-m", str(model), "--json"], stdin=stdin)
    assert r.exit_code == 1, r.output
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["status"] for x in results] == ["ok", "failed", "ok", "failed"]
    # the same name twice: refused, not overwritten
    assert "also the output of" in results[1]["error"]
    assert results[3]["error"] == (
        f"{base}/gone.tif: not a readable raster (HTTP response code: 404)")
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif"]
    assert r.stderr.count("\n") == 2 and "Traceback" not in r.stderr


def test_bounds_fetch_only_the_blocks_of_the_area(
    tmp_path: Path, server, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Besides the scene statistic's sample (up to 64 cells of 256 px spread over the scene,
    whatever the area: here cut to one cell), a run with --bounds fetches the blocks its
    tiles read, not the scene."""
    from rasterio.windows import Window

    from geocolor.infer import sarinput

    monkeypatch.setattr(sarinput, "sample_windows", lambda h, w: [Window(0, 0, 256, 256)])
    base, root, served = server
    rng = np.random.default_rng(0)
    data = rng.normal(-15.0, 3.0, (3072, 3072)).astype(np.float32)
    scene = write_raster(root / "big.tif", data, descriptions=("VV",), tiled=True,
                         blockxsize=256, blockysize=256)
    with rasterio.open(scene) as ds:  # a 96 x 96 px area inside the 2nd block of the 2nd row
        xs, ys = ds.transform * (np.array([300.5, 395.5]), np.array([395.5, 300.5]))
        lons, lats = transform_coords(ds.crs, "EPSG:4326", list(xs), list(ys))
    bounds = f"{min(lons)},{min(lats)},{max(lons)},{max(lats)}"
    r = run(["colorize", f"{base}/big.tif", "-o", str(tmp_path / "area.tif"), "-m", str(model),
             "--bounds", bounds])
    assert r.exit_code == 0, r.output
    with rasterio.open(tmp_path / "area.tif") as out:
        assert out.width <= 100 and out.height <= 100
    assert sum(served) < 0.05 * scene.stat().st_size  # 144 blocks; the tiles reach at most 4


def test_info_reads_a_url_and_a_404_is_one_line(server) -> None:
    base, root, _ = server
    write_raster(root / "s.tif", db_scene(30, 40), descriptions=("VV", "VH"))
    for given in (f"{base}/s.tif", f"/vsicurl/{base}/s.tif"):
        r = run(["info", given, "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["width"] == 40
    r = run(["info", f"{base}/none.tif"])
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        f"geocolor: error: {base}/none.tif: not a readable raster (HTTP response code: 404)"]
    write_raster(root / "private.tif", db_scene(30, 40), descriptions=("VV", "VH"))
    r = run(["info", f"{base}/private.tif?sig=expired"])
    assert r.exit_code == 1 and len(r.stderr.strip().splitlines()) == 1
    assert ("(HTTP response code: 403); the server refused access: a signed URL may have "
            "expired") in r.stderr


def test_a_remote_product_or_photo_says_what_to_do(tmp_path: Path, server, model: Path) -> None:
    base, root, _ = server
    r = run(["info", f"{base}/S1A_IW_GRDH_1SDV_X.SAFE.zip"])
    assert r.exit_code == 1
    assert "download it, or give the URL of its measurement GeoTIFF" in r.stderr
    from PIL import Image

    Image.fromarray(np.full((32, 32), 120, np.uint8)).save(root / "grey.png")
    semantic = save_tiny_semantic_model(tmp_path / "semantic.model")
    r = run(["colorize", f"{base}/grey.png", "-o", str(tmp_path / "o.png"), "-m", str(semantic)])
    assert r.exit_code == 1
    assert "photos are read from local files; download it first" in r.stderr


def test_a_server_failing_mid_scene_is_one_line_and_leaves_nothing(
    tmp_path: Path, server, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")  # the user's setting wins over geocolor's 4
    base, root, served = server
    write_raster(root / "s.tif", db_scene(600, 500), descriptions=("VV", "VH"), tiled=True,
                 blockxsize=256, blockysize=256)
    FAIL_AFTER.append(2)  # the header is read; the pixels are not
    out = tmp_path / "out"
    r = run(["colorize", f"{base}/s.tif", "-o", f"{out}/", "-m", str(model)])
    assert r.exit_code == 1
    assert r.stderr.startswith(f"geocolor: error: {base}/s.tif: reading over the network failed (")
    assert "run it again" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


# --- STAC Items: a scene's catalogue record, pointing at its rasters -------------------------

COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def write_item(folder: Path, assets: dict[str, dict], name: str = "S1A_scene.json") -> Path:
    """A STAC Item as collections write them (the fields geocolor reads, and a few others)."""
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "S1A_IW_GRDH_scene",
            "collection": "sentinel-1-grd", "geometry": None, "bbox": [10, 49, 11, 50],
            "properties": {"datetime": "2020-11-07T13:50:58Z", "sar:polarizations": ["VV", "VH"]},
            "links": [], "assets": assets}
    path = folder / name
    path.write_text(json.dumps(item))
    return path


def dual_pol(folder: Path) -> dict[str, dict]:
    """VV and VH rasters (one band each, as the collections keep them) and their assets, with a
    thumbnail and metadata beside them that must never be picked."""
    vv, vh = db_scene(50, 60)
    (folder / "measurement").mkdir()
    write_raster(folder / "measurement" / "vv.tif", vv)
    write_raster(folder / "measurement" / "vh.tif", vh)
    return {
        "thumbnail": {"href": "preview/thumb.png", "type": "image/png", "roles": ["thumbnail"]},
        "safe-manifest": {"href": "manifest.safe", "type": "application/xml"},
        "vh": {"href": "measurement/vh.tif", "type": COG, "roles": ["data"],
               "title": "VH: vertical transmit, horizontal receive"},
        "vv": {"href": "measurement/vv.tif", "type": COG, "roles": ["data"],
               "title": "VV: vertical transmit, vertical receive"},
    }


def same_pixels(a: Path, b: Path) -> bool:
    with rasterio.open(a) as x, rasterio.open(b) as y:
        return bool((x.read() == y.read()).all() and (x.read_masks(1) == y.read_masks(1)).all())


def test_a_stac_item_is_colorized_as_its_raster_of_the_models_polarisation(
    tmp_path: Path, model: Path
) -> None:
    item = write_item(tmp_path, dual_pol(tmp_path))
    direct = run(["colorize", str(tmp_path / "measurement" / "vv.tif"), "-o", str(tmp_path / "vv.tif"),
                  "-m", str(model)])
    r = run(["colorize", str(item), "-o", str(tmp_path / "out") + "/", "-m", str(model)])
    assert direct.exit_code == 0 and r.exit_code == 0, r.output
    out = tmp_path / "out" / "S1A_scene.tif"  # named after the Item
    assert r.stdout.strip() == str(out)
    assert same_pixels(out, tmp_path / "vv.tif")  # the VV model took the VV asset
    r = run(["colorize", str(item), "-o", str(tmp_path / "b.tif"), "-m", str(model), "--band", "vh"])
    assert r.exit_code == 0, r.output
    run(["colorize", str(tmp_path / "measurement" / "vh.tif"), "-o", str(tmp_path / "vh.tif"),
         "-m", str(model), "--band", "1"])
    assert same_pixels(tmp_path / "b.tif", tmp_path / "vh.tif")
    assert not same_pixels(tmp_path / "b.tif", tmp_path / "vv.tif")


def test_a_stac_asset_of_two_polarisations_is_read_at_the_band_of_each(
    tmp_path: Path, model: Path
) -> None:
    vv, vh = db_scene(50, 60)
    write_raster(tmp_path / "dual.tif", np.stack([vv, vh]))  # no band descriptions
    item = write_item(tmp_path, {"data": {"href": "dual.tif", "type": COG,
                                          "sar:polarizations": ["VV", "VH"]}})
    write_raster(tmp_path / "vh_alone.tif", vh)
    r = run(["colorize", str(item), "-o", str(tmp_path / "vh.tif"), "-m", str(model),
             "--band", "VH"])
    assert r.exit_code == 0, r.output
    run(["colorize", str(tmp_path / "vh_alone.tif"), "-o", str(tmp_path / "ref.tif"),
         "-m", str(model), "--band", "1"])
    assert same_pixels(tmp_path / "vh.tif", tmp_path / "ref.tif")
    described = json.loads(run(["info", "--json", str(item)]).stdout)
    assert described["polarisations"]["VH"] == {"asset": "data", "band": 2,
                                                "href": str(tmp_path / "dual.tif")}


def test_a_stac_items_url_reads_its_assets_beside_it(server, model: Path, tmp_path: Path) -> None:
    base, root, _ = server
    write_item(root, dual_pol(root))
    url = f"{base}/S1A_scene.json"
    r = run(["info", "--json", url])
    assert r.exit_code == 0, r.output
    described = json.loads(r.stdout)
    assert described["type"] == "stac-item" and described["id"] == "S1A_IW_GRDH_scene"
    assert described["polarisations"] == {
        "VH": {"asset": "vh", "href": f"{base}/measurement/vh.tif"},
        "VV": {"asset": "vv", "href": f"{base}/measurement/vv.tif"}}
    r = run(["colorize", url, "-o", str(tmp_path / "remote.tif"), "-m", str(model)])
    assert r.exit_code == 0, r.output
    run(["colorize", str(root / "measurement" / "vv.tif"), "-o", str(tmp_path / "local.tif"),
         "-m", str(model)])
    assert same_pixels(tmp_path / "remote.tif", tmp_path / "local.tif")
    text = run(["info", url]).stdout
    assert "STAC Item S1A_IW_GRDH_scene (sentinel-1-grd, 2020-11-07T13:50:58Z)" in text
    assert f"VV: asset 'vv', {base}/measurement/vv.tif" in text


def test_a_stac_assets_polarisation_is_read_from_the_sar_extension_key_or_title(
    tmp_path: Path,
) -> None:
    from geocolor.io.stac import polarisation_assets

    item = {"type": "Feature", "assets": {
        "measurement-1": {"href": "s3://b/k/one.tiff", "sar:polarizations": ["VH"]},
        "measurement-2": {"href": "s3://b/k/two.tiff", "title": "Sigma0 VV, dB"},
        "hh": {"href": "three.tif"},
        "vv-thumbnail": {"href": "thumb.png", "type": "image/png"},
        "product": {"href": "https://h/S1A.zip", "type": "application/zip"},
    }}
    found = {pol: (a.key, a.band) for pol, a in polarisation_assets(item).items()}
    assert found == {"VH": ("measurement-1", None), "VV": ("measurement-2", None),
                     "HH": ("hh", None)}
    # an asset of two polarisations: its bands in the sar:polarizations order; an asset of
    # one polarisation wins
    item["assets"] = {"both": {"href": "d.tif", "sar:polarizations": ["VV", "VH"]},
                      "vh": {"href": "vh.tif"}}
    found = {pol: (a.key, a.band) for pol, a in polarisation_assets(item).items()}
    assert found == {"VV": ("both", 1), "VH": ("vh", None)}


def test_what_names_a_stac_item() -> None:
    from geocolor.io.stac import is_stac_item

    assert is_stac_item("https://h/api/stac/v1/collections/s1-grd/items/S1A_IW_GRDH_1SDV_X")
    assert is_stac_item("https://h/api/stac/v1/collections/s1-grd/items/S1A_X/")
    assert is_stac_item("https://h/catalog/S1A_X.json?sig=y")
    assert not is_stac_item("https://h/items/e.tif")  # a raster in a folder called items
    assert not is_stac_item("https://h/x/items/a/b/e.tif")
    assert not is_stac_item("/vsicurl/https://h/a.json")


def test_stac_items_that_cannot_be_colorized_say_why(server, tmp_path: Path, model: Path) -> None:
    base, root, _ = server
    assets = dual_pol(tmp_path)
    del assets["vv"]
    only_vh = write_item(tmp_path, assets, "only_vh.json")
    r = run(["colorize", str(only_vh), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1
    assert "holds VH, but the model was trained on VV (pass --band VH to use it anyway)" in r.stderr
    r = run(["colorize", str(only_vh), "-o", str(tmp_path / "o.tif"), "-m", str(model), "--band", "2"])
    assert r.exit_code == 1 and "a STAC Item's bands are its polarisations: pass --band VH" in r.stderr
    collection = tmp_path / "collection.json"
    collection.write_text(json.dumps({"type": "FeatureCollection", "features": [{}, {}]}))
    r = run(["colorize", str(collection), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1 and "a collection of 2 STAC Items" in r.stderr
    assert "jq -r '.features[].links[]" in r.stderr
    (tmp_path / "hello.json").write_text(json.dumps({"hello": "world"}))
    r = run(["info", str(tmp_path / "hello.json")])
    assert r.exit_code == 1 and "this is JSON without a 'type'" in r.stderr
    no_sar = write_item(tmp_path, {"zip": {"href": "S1A.zip", "type": "application/zip"}},
                        "no_sar.json")
    r = run(["colorize", str(no_sar), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1 and "has no SAR raster among its assets" in r.stderr
    assert "give a raster's URL instead" in r.stderr
    (tmp_path / "point.json").write_text(json.dumps({"type": "Point", "coordinates": [0, 0]}))
    r = run(["colorize", str(tmp_path / "point.json"), "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1 and "not a STAC Item" in r.stderr and "'Point'" in r.stderr
    (tmp_path / "broken.json").write_text("{not json")
    r = run(["info", str(tmp_path / "broken.json")])
    assert r.exit_code == 1 and "not JSON" in r.stderr
    r = run(["info", "s3://bucket/items/S1A.json"])
    assert r.exit_code == 1 and "read from a local file or an http(s) URL" in r.stderr
    r = run(["colorize", f"{base}/items/missing", "-o", str(tmp_path / "o.tif"), "-m", str(model)])
    assert r.exit_code == 1 and "the server answered 404" in r.stderr
    assert not (tmp_path / "o.tif").exists()


def test_a_url_without_a_file_name_fails_alone_in_an_output_directory(
    tmp_path: Path, model: Path
) -> None:
    """https://host/ names nothing to call its output after: that input fails with one line,
    and the others of the batch go on (it crashed the whole batch)."""
    write_raster(tmp_path / "a.tif", db_scene(40, 50), descriptions=("VV", "VH"))
    r = run(["colorize", "-", "-o", str(tmp_path / "out") + "/", "-m", str(model)],
            stdin=f"{tmp_path / 'a.tif'}\nhttp://127.0.0.1:9/\n")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "http://127.0.0.1:9/: names no file to call its output after" in r.stderr
    assert r.stdout.strip() == str(tmp_path / "out" / "a.tif")
