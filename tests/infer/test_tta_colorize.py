"""colorize --tta: flip-equivariant end to end, independent of the batch size, both model kinds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from click.testing import CliRunner
from colorize_fakes import ChannelCopy, db_scene, write_raster
from PIL import Image
from test_scene import copy_model

from geocolor.cli import main
from geocolor.infer.image import colorize_image
from geocolor.infer.scene import colorize_scene
from geocolor.io.modelfile import load_model


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read().astype(int)


def test_tta_does_not_depend_on_batch_size_and_changes_a_lopsided_model(tmp_path: Path, sar_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(150, 190), descriptions=("VV", "VH"))
    model = load_model(sar_model)
    outputs = []
    for batch in (1, 4, 64):
        dst = tmp_path / f"o{batch}.tif"
        colorize_scene(src, dst, model, device="cpu", batch_size=batch, tta="d4")
        outputs.append(_read(dst))
    for other in outputs[1:]:
        assert np.abs(other - outputs[0]).max() <= 1
        assert (other == outputs[0]).mean() > 0.999
    colorize_scene(src, tmp_path / "plain.tif", model, device="cpu")
    assert (_read(tmp_path / "plain.tif") != outputs[0]).mean() > 0.1  # the untrained U-Net is not symmetric


def test_tta_scene_is_flip_equivariant(tmp_path: Path, sar_model: Path) -> None:
    """One tile covers the scene: TTA(flip(scene)) == flip(TTA(scene)) to within 1 DN; not so without TTA."""
    db = db_scene(64, 64, seed=3, bands=1)
    model = load_model(sar_model)
    results = {}
    for tta in (None, "flips"):
        for name, data in (("a", db), ("lr", db[:, :, ::-1].copy())):
            src = write_raster(tmp_path / f"{name}.tif", data)
            dst = tmp_path / f"{name}-{tta}.tif"
            colorize_scene(src, dst, model, device="cpu", tta=tta, overwrite=True)
            results[(name, tta)] = _read(dst)
    flipped_back = results[("lr", "flips")][:, :, ::-1]
    assert np.abs(flipped_back - results[("a", "flips")]).max() <= 1
    assert np.abs(results[("lr", None)][:, :, ::-1] - results[("a", None)]).max() > 5


def test_an_equivariant_model_is_unchanged_and_runs_once_per_transform(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(64, 64, bands=1))
    plain, augmented = copy_model(ChannelCopy()), copy_model(ChannelCopy())
    colorize_scene(src, tmp_path / "p.tif", plain, device="cpu")
    colorize_scene(src, tmp_path / "t.tif", augmented, device="cpu", tta="d4")
    assert (_read(tmp_path / "p.tif") == _read(tmp_path / "t.tif")).all()
    assert augmented.network.tiles == 8 * plain.network.tiles


def test_cli_flags_and_semantic_photos(tmp_path: Path, sar_model: Path, semantic_model: Path) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(100, 90), descriptions=("VV", "VH"))
    colorize_scene(src, tmp_path / "api.tif", load_model(sar_model), device="cpu", tta="flips")
    runner = CliRunner()
    res = runner.invoke(main, ["colorize", str(src), "-o", str(tmp_path / "cli.tif"), "-m", str(sar_model),
                               "--tta", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert (_read(tmp_path / "cli.tif") == _read(tmp_path / "api.tif")).all()
    res = runner.invoke(main, ["colorize", str(src), "-o", str(tmp_path / "d4.tif"), "-m", str(sar_model),
                               "--tta-rotations", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((40, 56)) * 255).astype(np.uint8)).save(tmp_path / "grey.png")
    info = colorize_image(tmp_path / "grey.png", tmp_path / "c.png", load_model(semantic_model), device="cpu",
                          tta="flips")
    assert (info.width, info.height) == (56, 40)
    assert Image.open(tmp_path / "c.png").size == (56, 40)
