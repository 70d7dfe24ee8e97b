"""Issue 9 item 1: the scene statistic comes from full-resolution pixels, not from overviews.

The same pixels stored with AVERAGE or NEAREST overviews must give the same
amplitude percentile and outputs within 2 DN of the file without overviews.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from colorize_fakes import AMP_VH, ChannelCopy, smooth_field, write_raster
from rasterio.enums import Resampling

from geocolor.data.sarscale import SarScaling
from geocolor.infer.sarinput import resolve_sar_input, sample_windows
from geocolor.io.modelfile import LoadedModel, ModelCard

SIDE = 2048


def _grd_like(side: int) -> np.ndarray:
    """uint16 DN: smooth texture with speckle and sparse bright scatterers (the p99 tail)."""
    rng = np.random.default_rng(1)
    amp = 200.0 + 1500.0 * smooth_field(side, side, seed=3)
    bright = rng.random((side, side)) < 0.02
    amp[bright] = rng.uniform(4000, 20000, int(bright.sum()))
    return np.clip(amp, 1, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ovr")
    plain = write_raster(root / "plain.tif", _grd_like(SIDE), descriptions=("VH",),
                         tiled=True, blockxsize=256, blockysize=256)
    out = {"none": plain}
    for name, resampling in (("average", Resampling.average), ("nearest", Resampling.nearest)):
        copy = root / f"{name}.tif"
        rasterio.shutil.copy(plain, copy, driver="GTiff", tiled=True, blockxsize=256, blockysize=256)
        with rasterio.open(copy, "r+") as ds:
            ds.build_overviews([2, 4, 8], resampling)
        with rasterio.open(copy) as ds:
            assert ds.overviews(1) == [2, 4, 8]
        out[name] = copy
    return out


def _reference(path: Path) -> float:
    with rasterio.open(path) as ds:
        return resolve_sar_input(ds, path, SarScaling.from_dict(AMP_VH)).reference


def test_average_overviews_would_move_the_decimated_statistic(scenes: dict[str, Path]) -> None:
    """Negative control: a decimated read (what 0.1 used) differs between the files."""
    def decimated_p99(path: Path) -> float:
        with rasterio.open(path) as ds:
            return float(np.percentile(ds.read(1, out_shape=(SIDE // 4, SIDE // 4)), 99))

    assert abs(decimated_p99(scenes["average"]) - decimated_p99(scenes["none"])) > 0.05 * decimated_p99(
        scenes["none"])


def test_percentile_is_the_same_with_any_overviews(scenes: dict[str, Path]) -> None:
    ref = _reference(scenes["none"])
    with rasterio.open(scenes["none"]) as ds:
        full = float(np.percentile(ds.read(1).astype(np.float32), 99))
    assert ref == pytest.approx(full, rel=0.05)  # a subsample of the full-resolution pixels
    assert _reference(scenes["average"]) == ref
    assert _reference(scenes["nearest"]) == ref


@pytest.mark.parametrize("kind", ["average", "nearest"])
def test_outputs_within_2_dn_with_overviews(scenes: dict[str, Path], tmp_path: Path, kind: str) -> None:
    from geocolor.infer.scene import colorize_scene

    card = ModelCard(kind="sar", arch="copy", arch_args={}, input={"sar_scaling": AMP_VH, "tile_size": 512})
    model = LoadedModel(card=card, network=ChannelCopy())
    outputs = []
    for name in ("none", kind):
        dst = tmp_path / f"{name}.out.tif"
        colorize_scene(scenes[name], dst, model, device="cpu", batch_size=4, cog=False)
        with rasterio.open(dst) as ds:
            outputs.append(ds.read().astype(np.int16))
    assert int(np.abs(outputs[0] - outputs[1]).max()) <= 2


def test_sample_windows_cover_the_scene_evenly() -> None:
    assert sample_windows(300, 257) == [rasterio.windows.Window(0, 0, 257, 300)]
    windows = sample_windows(20000, 6000)
    assert 32 <= len(windows) <= 64
    assert all(w.width == 256 and w.height == 256 for w in windows)
    assert all(0 <= w.row_off <= 20000 - 256 and 0 <= w.col_off <= 6000 - 256 for w in windows)
    rows = sorted({w.row_off for w in windows})
    cols = sorted({w.col_off for w in windows})
    assert rows[0] < 2000 and rows[-1] > 18000 and cols[0] < 1000 and cols[-1] > 5000


@pytest.mark.parametrize("shape", [(8192, 8192), (25000, 16700), (2100, 2100), (20000, 6000)])
def test_each_sample_window_lies_in_one_block_of_a_cog(shape: tuple[int, int]) -> None:
    """Reading the sample decodes (or fetches, for a URL) one 512-px block per window, not the
    four a window across block edges needs: on an 8192^2 COG, 64 of its 256 blocks."""
    windows = sample_windows(*shape)
    blocks = {(w.row_off // 512, w.col_off // 512) for w in windows}
    assert all((w.row_off + w.height - 1) // 512 == w.row_off // 512 for w in windows)
    assert all((w.col_off + w.width - 1) // 512 == w.col_off // 512 for w in windows)
    assert len(windows) > 32 and len({(w.row_off, w.col_off) for w in windows}) == len(windows)
    if shape == (8192, 8192):
        assert len(blocks) == 64
