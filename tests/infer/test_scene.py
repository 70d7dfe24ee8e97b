"""The streaming scene pipeline: georeference, coverage, nodata, batching, seams, atomic output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from colorize_fakes import (
    CRS_UTM,
    TRANSFORM,
    TileNormalised,
    copy_model,
    corner_gcps,
    db_scene,
    save_tiny_sar_model,
    smooth_field,
    write_raster,
)

from geocolor.errors import OutputError, RasterError, UsageError
from geocolor.infer.scene import colorize_scene
from geocolor.infer.tiling import TileGrid, seam_ratio
from geocolor.io.modelfile import load_model


def expected_grey(db: np.ndarray) -> np.ndarray:
    """What ChannelCopy must give for dB input: the unit scale as 8 bit."""
    return np.rint(np.clip((db + 25) / 25, 0, 1) * 255).astype(np.uint8)


def test_crs_and_transform_kept_exactly_on_odd_size(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(257, 300), descriptions=("VV", "VH"))
    result = colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu")
    with rasterio.open(src) as a, rasterio.open(tmp_path / "o.tif") as b:
        assert (b.width, b.height) == (a.width, a.height) == (300, 257)
        assert b.crs == a.crs == CRS_UTM
        assert b.transform == a.transform == TRANSFORM
        assert b.count == 3 and b.dtypes == ("uint8",) * 3
        assert b.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert b.compression.name.lower() == "deflate"
        assert [c.name for c in b.colorinterp] == ["red", "green", "blue"]
    from PIL import Image

    assert Image.open(tmp_path / "o.tif").tag_v2[262] == 2  # PhotometricInterpretation RGB
    assert result["tiles"] == len(TileGrid(257, 300, 64, 16)) and result["georeference"] == "transform"


@pytest.mark.parametrize("cog", [True, False])  # the direct COG, and the scratch file's copy
def test_an_output_says_what_made_it(tmp_path: Path, sar_model: Path, cog: bool) -> None:
    """Tags name the model file (and its bytes' SHA-256), the tiling and the engine, and
    `geocolor info` shows them: which model made an output stays known."""
    import hashlib
    import json

    from click.testing import CliRunner

    from geocolor.cli import main

    src = write_raster(tmp_path / "s.tif", db_scene(90, 120), descriptions=("VV", "VH"))
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", cog=cog, tta="flips",
                   overlap=8)
    with rasterio.open(tmp_path / "o.tif") as out:
        tags = out.tags()
    assert tags["GEOCOLOR_MODEL"] == "tiny_vv_db.model"
    assert tags["GEOCOLOR_MODEL_SHA256"] == hashlib.sha256(sar_model.read_bytes()).hexdigest()
    assert tags["GEOCOLOR_TILING"] == "64 px tiles, 8 px overlap"
    assert tags["GEOCOLOR_ENGINE"] == "torch cpu float32, TTA flips"
    assert tags["GEOCOLOR_SOURCE"] == "s.tif"
    info = CliRunner().invoke(main, ["info", str(tmp_path / "o.tif"), "--json"])
    assert json.loads(info.stdout)["geocolor"]["GEOCOLOR_MODEL"] == "tiny_vv_db.model"
    text = CliRunner().invoke(main, ["info", str(tmp_path / "o.tif")]).stdout
    assert "  model:        tiny_vv_db.model" in text
    assert "  engine:       torch cpu float32, TTA flips" in text


def test_the_engine_tag_is_the_precision_that_ran(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geocolor.infer import backend

    src = write_raster(tmp_path / "s.tif", db_scene(40, 50), descriptions=("VV", "VH"))
    monkeypatch.setattr(backend, "use_cpu_bf16", lambda requested, *_: requested)  # as if native
    colorize_scene(src, tmp_path / "bf16.tif", sar_model, device="cpu", cpu_bf16=True)
    monkeypatch.setattr(backend, "use_cpu_bf16", lambda *_: False)  # a CPU without it: float32
    colorize_scene(src, tmp_path / "f32.tif", sar_model, device="cpu", cpu_bf16=True)
    engines = []
    for name in ("bf16.tif", "f32.tif"):
        with rasterio.open(tmp_path / name) as out:
            engines.append(out.tags()["GEOCOLOR_ENGINE"])
    assert engines == ["torch cpu bfloat16", "torch cpu float32"]


def test_gcps_kept_exactly(tmp_path: Path, sar_model_vh_amplitude: Path) -> None:
    dn = (np.arange(90 * 70).reshape(90, 70) % 500 + 20).astype(np.uint16)
    dn[:, :4] = 0  # zero border of a GRD product
    gcps = corner_gcps(90, 70)
    src = write_raster(tmp_path / "grd.tif", dn, gcps=gcps)
    colorize_scene(src, tmp_path / "o.tif", sar_model_vh_amplitude, device="cpu")
    with rasterio.open(src) as a, rasterio.open(tmp_path / "o.tif") as b:
        (g_in, crs_in), (g_out, crs_out) = a.gcps, b.gcps
        assert crs_out == crs_in
        assert [(g.row, g.col, g.x, g.y, g.z) for g in g_out] == [(g.row, g.col, g.x, g.y, g.z) for g in g_in]
        assert b.transform.is_identity and b.crs is None
        assert not b.dataset_mask()[:, :4].any() and b.dataset_mask()[:, 4:].all()


def test_plain_grey_png_gives_plain_png(tmp_path: Path, sar_model: Path) -> None:
    from PIL import Image

    grey = (smooth_field(77, 90) * 255).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "chip.png")
    result = colorize_scene(tmp_path / "chip.png", tmp_path / "o.png", copy_model(), device="cpu")
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (77, 90, 3) and out.dtype == np.uint8
    assert result["input_scale"] == "scaled"
    np.testing.assert_array_equal(out[..., 0], grey)  # taken as already scaled: unit = pixel / 255
    assert not (tmp_path / "o.png.aux.xml").exists()
    text = Image.open(tmp_path / "o.png").text  # what made it, in PNG text chunks
    assert text["GEOCOLOR_SOURCE"] == "chip.png" and text["GEOCOLOR_MODEL"] == "(in memory)"
    assert text["GEOCOLOR_ENGINE"] == "torch cpu float32"


def test_non_georeferenced_tiff_stays_non_georeferenced(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "plain.tif", (smooth_field(40, 50) * 255).astype(np.uint8), crs=None)
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu")
    with rasterio.open(tmp_path / "o.tif") as b:
        assert b.crs is None and b.transform.is_identity and not b.gcps[0] and b.rpcs is None
        assert (b.width, b.height) == (50, 40)


@pytest.mark.parametrize("shape", [(257, 300), (13, 20), (64, 64), (1, 1), (200, 33)])
def test_every_pixel_written_and_placed_right(tmp_path: Path, shape: tuple[int, int]) -> None:
    """With a model that copies its input, the output must be the input: no pixel skipped or shifted."""
    db = db_scene(*shape, bands=1)
    src = write_raster(tmp_path / "s.tif", db)
    colorize_scene(src, tmp_path / "o.tif", copy_model(), device="cpu", batch_size=3)
    with rasterio.open(tmp_path / "o.tif") as b:
        out = b.read()
    want = expected_grey(db[0])
    for band in out:
        assert np.abs(band.astype(int) - want).max() <= 1


def test_nodata_is_masked_not_coloured(tmp_path: Path, sar_model: Path) -> None:
    db = db_scene(150, 170)
    db[:, :100, :] = np.nan  # NaN rows
    db[:, :, 150:] = -9999.0  # nodata value columns
    src = write_raster(tmp_path / "s.tif", db, nodata=-9999.0, descriptions=("VV", "VH"))
    result = colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu")
    with rasterio.open(tmp_path / "o.tif") as b:
        mask = b.dataset_mask()
        rgb = b.read()
    invalid = np.zeros((150, 170), bool)
    invalid[:100] = True
    invalid[:, 150:] = True
    np.testing.assert_array_equal(mask == 0, invalid)
    assert (rgb[:, invalid] == 0).all()
    assert result["tiles_skipped"] > 0  # tiles fully in the NaN rows never reached the model


def test_alpha_band_on_request(tmp_path: Path, sar_model: Path) -> None:
    db = db_scene(40, 40, bands=1)
    db[:, :10] = np.nan
    src = write_raster(tmp_path / "s.tif", db)
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", alpha=True)
    with rasterio.open(tmp_path / "o.tif") as b:
        assert b.count == 4 and b.colorinterp[3].name == "alpha"
        assert (b.read(4)[:10] == 0).all() and (b.read(4)[10:] == 255).all()


def test_all_nodata_tiles_are_not_sent_to_the_model(tmp_path: Path) -> None:
    db = db_scene(200, 200, bands=1)
    db[:, :, :120] = np.nan
    src = write_raster(tmp_path / "s.tif", db)
    model = copy_model()
    result = colorize_scene(src, tmp_path / "o.tif", model, device="cpu")
    assert model.network.tiles == result["tiles"] < len(TileGrid(200, 200, 64, 16))


def test_result_does_not_depend_on_batch_size(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(150, 190), descriptions=("VV", "VH"))
    model = load_model(sar_model)
    outputs = []
    for batch in (1, 4, 64):
        dst = tmp_path / f"o{batch}.tif"
        colorize_scene(src, dst, model, device="cpu", batch_size=batch)
        with rasterio.open(dst) as b:
            outputs.append(b.read().astype(int))
    for other in outputs[1:]:
        assert np.abs(other - outputs[0]).max() <= 1
        assert (other == outputs[0]).mean() > 0.999


@pytest.mark.parametrize("alpha", [False, True])
def test_blend_threads_give_the_same_bytes(tmp_path: Path, sar_model: Path, alpha: bool) -> None:
    """The writer cuts its buffer into column stripes when it has threads (on a GPU): every
    pixel, its mask and the nodata border must come out exactly as with one thread, including
    stripes narrower than a tile and a stripe boundary inside every tile."""
    db = db_scene(170, 203, bands=1)
    db[:, :, :83] = np.nan  # nodata on the left: tiles skipped, stripes partly outside
    db[:, 150:, 90:] = np.nan
    src = write_raster(tmp_path / "s.tif", db, descriptions=("VV",))
    model = load_model(sar_model)
    outputs = []
    for threads in (1, 2, 7):
        dst = tmp_path / f"o{threads}.tif"
        result = colorize_scene(src, dst, model, device="cpu", batch_size=3, alpha=alpha,
                                blend_threads=threads)
        with rasterio.open(dst) as b:
            outputs.append((b.read(), b.read_masks(1), b.overviews(1)))
    assert result["tiles_skipped"] > 0
    for pixels, mask, overviews in outputs[1:]:
        np.testing.assert_array_equal(pixels, outputs[0][0])
        np.testing.assert_array_equal(mask, outputs[0][1])
        assert overviews == outputs[0][2]
    assert (outputs[0][1] == 0).any() and (outputs[0][1] == 255).any()


def test_column_stripes_cover_the_scene_once() -> None:
    from geocolor.infer.stream import column_stripes

    for width, parts in [(203, 7), (5, 8), (1, 3), (4096, 8)]:
        stripes = column_stripes(width, parts)
        assert stripes[0][0] == 0 and stripes[-1][1] == width
        assert all(a < b for a, b in stripes) and len(stripes) == min(width, parts)
        assert all(b == c for (_, b), (c, _) in zip(stripes, stripes[1:]))


def test_blending_leaves_no_seams(tmp_path: Path) -> None:
    """A model whose tone differs per tile (as instance norm does) shows seams unless blended."""
    src = write_raster(tmp_path / "s.tif", db_scene(256, 256, bands=1))
    ratios = {}
    for overlap in (0, 16):
        dst = tmp_path / f"o{overlap}.tif"
        colorize_scene(src, dst, copy_model(TileNormalised()), device="cpu", overlap=overlap)
        with rasterio.open(dst) as b:
            ratios[overlap] = seam_ratio(b.read(), TileGrid(256, 256, 64, overlap))
    assert ratios[16] < 1.05, ratios
    assert ratios[0] > 1.1, ratios  # the measure does see seams without blending


def test_large_output_has_overviews_and_creation_options(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(600, 700), descriptions=("VV", "VH"))
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", batch_size=16,
                   creation_options={"compress": "zstd", "BLOCKSIZE": "256"})
    with rasterio.open(tmp_path / "o.tif") as b:
        assert b.overviews(1) and b.compression.name.lower() == "zstd" and b.block_shapes[0] == (256, 256)
    colorize_scene(src, tmp_path / "g.tif", sar_model, device="cpu", cog=False, batch_size=16)
    with rasterio.open(tmp_path / "g.tif") as b:
        assert b.overviews(1) and b.block_shapes[0] == (512, 512) and "LAYOUT" not in b.tags(ns="IMAGE_STRUCTURE")


def test_preview_written_side_by_side(tmp_path: Path, sar_model: Path) -> None:
    from PIL import Image

    src = write_raster(tmp_path / "s.tif", db_scene(120, 120), descriptions=("VV", "VH"))
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", preview=tmp_path / "p" / "prev.png")
    image = Image.open(tmp_path / "p" / "prev.png")
    assert image.mode == "RGB" and image.width > 2 * image.height * 0.95


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_no_partial_output_after_a_failure_mid_scene(tmp_path: Path, error: type[BaseException]) -> None:
    """A crash, Ctrl-C (KeyboardInterrupt) or SIGTERM (SystemExit from the CLI's handler) halfway."""
    src = write_raster(tmp_path / "s.tif", db_scene(300, 300, bands=1))
    model = copy_model()

    def failing(x: torch.Tensor) -> torch.Tensor:
        if model.network.calls >= 3:
            raise error("simulated failure")
        model.network.calls += 1
        return x.repeat(1, 3, 1, 1)

    model.network.forward = failing  # type: ignore[method-assign]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "o.tif").write_bytes(b"previous")
    with pytest.raises(error):
        colorize_scene(src, out_dir / "o.tif", model, device="cpu", batch_size=2, overwrite=True)
    assert model.network.calls == 3  # it did fail halfway, with rows already written
    assert [p.name for p in out_dir.iterdir()] == ["o.tif"]  # no stray temporary files
    assert (out_dir / "o.tif").read_bytes() == b"previous"  # the old output is untouched


def test_existing_output_refused_unless_overwrite(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(30, 30), descriptions=("VV", "VH"))
    (tmp_path / "o.tif").write_bytes(b"old")
    with pytest.raises(OutputError, match="exists"):
        colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu")
    assert (tmp_path / "o.tif").read_bytes() == b"old"
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", overwrite=True)
    with pytest.raises(OutputError, match="output is the input"):
        colorize_scene(src, src, sar_model, device="cpu", overwrite=True)


def test_tile_size_must_fit_the_model(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(30, 30), descriptions=("VV", "VH"))
    with pytest.raises(UsageError, match="multiple of 16"):
        colorize_scene(src, tmp_path / "o.tif", sar_model, tile_size=72, device="cpu")


def test_all_nodata_scene_is_an_error(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", np.full((50, 50), np.nan, np.float32))
    with pytest.raises(RasterError, match="all nodata"):
        colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu")
    assert not (tmp_path / "o.tif").exists()


def test_rpcs_kept(tmp_path: Path, sar_model: Path) -> None:
    from rasterio.rpc import RPC

    coeffs = [0.0] * 20
    rpc = RPC(height_off=100.0, height_scale=500.0, lat_off=50.0, lat_scale=0.1,
              line_den_coeff=[1.0] + coeffs[1:], line_num_coeff=[0.0, 0.0, -1.0] + coeffs[3:],
              line_off=40.0, line_scale=40.0, long_off=10.0, long_scale=0.1,
              samp_den_coeff=[1.0] + coeffs[1:], samp_num_coeff=[0.0, 1.0] + coeffs[2:],
              samp_off=50.0, samp_scale=50.0)
    src = write_raster(tmp_path / "rpc.tif", db_scene(80, 100, bands=1), crs=None)
    with rasterio.open(src, "r+") as ds:
        ds.rpcs = rpc
    colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu")
    with rasterio.open(src) as a, rasterio.open(tmp_path / "o.tif") as b:
        assert b.rpcs is not None
        got, want = b.rpcs.to_dict(), a.rpcs.to_dict()
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, err_msg=key)
        assert b.crs is None and b.transform.is_identity


def test_a_scene_smaller_than_the_tile_gets_a_tile_its_size(tmp_path: Path) -> None:
    from geocolor.infer.sarmodel import fit_tile_to_scene

    assert fit_tile_to_scene(512, 32, 120, 120, 32) == (160, 32)  # a BigEarthNet chip: 160, not 512
    assert fit_tile_to_scene(512, 32, 1024, 700, 32) == (512, 32)  # larger scenes keep the card's tile
    assert fit_tile_to_scene(512, 32, 20, 500, 32) == (512, 32)  # too long on one side
    assert fit_tile_to_scene(64, 16, 5, 5, 64) == (64, 16)  # never below the network's multiple
    assert fit_tile_to_scene(512, 64, 40, 40, 32) == (128, 32)  # overlap capped at a quarter tile
    big = save_tiny_sar_model(tmp_path / "m.model", tile_size=256)  # multiple 16
    src = write_raster(tmp_path / "s.tif", db_scene(20, 30), descriptions=("VV", "VH"))
    fitted = colorize_scene(src, tmp_path / "a.tif", big, device="cpu")
    # 30 px + 16 px padding a side = 62 -> 64 (a multiple of 16), overlap capped at 64 // 4
    assert (fitted["tile_size"], fitted["overlap"], fitted["tiles"]) == (64, 16, 1)
    # an explicit tile too: a 4096-px tile on a 1024-px scene asked for over 20 GB
    explicit = colorize_scene(src, tmp_path / "b.tif", big, tile_size=256, device="cpu")
    assert (explicit["tile_size"], explicit["tiles"]) == (64, 1)
    with rasterio.open(tmp_path / "a.tif") as ds:
        assert (ds.height, ds.width, ds.count) == (20, 30, 3) and ds.crs == CRS_UTM
