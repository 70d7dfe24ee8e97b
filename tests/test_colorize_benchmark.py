"""benchmarks/colorize_throughput.py's ``ceiling`` part: the pipeline timed with a null model."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geocolor.infer.tiling import TileGrid

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "colorize_throughput.py"
_SPEC = importlib.util.spec_from_file_location("colorize_throughput", _SCRIPT)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_ceiling_runs_the_whole_pipeline_with_a_null_model(tmp_path: Path) -> None:
    model = bench.make_model(tmp_path / "tiny.model", ngf=4)
    scene = tmp_path / "scene.tif"
    args = argparse.Namespace(scene_shape=(300, 520), scene_size=0, scene=scene, rounds=1,
                              batch_size=4, overlap=None, blend_threads=2)
    figures = bench.ceiling(model, tmp_path, args)
    run = figures["runs"][0]
    assert scene.is_file()  # generated at the shape asked for, then kept for reuse
    with rasterio.open(scene) as ds:
        assert (ds.height, ds.width) == (300, 520)
    assert run["tiles"] + run["tiles_skipped"] == len(TileGrid(300, 520, 256, 32))
    assert run["seconds"] > 0 and set(run["timing"]) >= {"writer_cpu_s", "overviews_s"}
    with rasterio.open(tmp_path / "ceiling_rgb.tif") as out:
        rgb = out.read()
    # the null model hands each tile back as its own grey: the blend of identical overlapping
    # tiles is the scaled input itself, the same in all three bands
    assert np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[1], rgb[2]) and rgb.any()


@pytest.mark.parametrize("sink", ["cog", "scratch"])
def test_writer_part_times_one_thread_against_the_stripes(tmp_path: Path, sink: str) -> None:
    args = argparse.Namespace(quick=True, overlap=None, blend_threads=3, rounds=1,
                              writer_sink=sink)
    figures = bench.writer_alone(args, tmp_path)
    assert [run["threads"] for run in figures["runs"]] == [1, 3]
    assert all(run["seconds"] > 0 for run in figures["runs"])
    assert figures["tiles"] == len(TileGrid(1024, 2048, 256, 32))
    with rasterio.open(tmp_path / "writer.tif") as out:  # the whole scene was written
        assert out.read_masks(1).all() and out.read(1).any()
