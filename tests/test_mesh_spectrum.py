"""benchmarks/mesh_spectrum.py: the mesh measurement finds a drawn grid and passes natural noise."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_SPEC = importlib.util.spec_from_file_location(
    "mesh_spectrum", Path(__file__).resolve().parents[1] / "benchmarks" / "mesh_spectrum.py")
mesh = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(mesh)


def _street_grid(side: int, period: float, contrast: float, rng: np.random.Generator) -> np.ndarray:
    """(side, side, 3) uint8: smooth noise plus bright lines every ``period`` px both ways."""
    base = rng.normal(120, 12, (side, side))
    yy, xx = np.mgrid[:side, :side]
    lines = (np.cos(2 * np.pi * xx / period) + np.cos(2 * np.pi * yy / period)) * contrast
    grey = np.clip(base + lines, 0, 255)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def test_a_drawn_grid_is_found_at_its_period_and_counted_as_excess() -> None:
    rng = np.random.default_rng(0)
    real = _street_grid(256, 12.8, 2.0, rng)     # faint streets, as Sentinel-2 shows them
    meshy = _street_grid(256, 12.8, 30.0, rng)   # the same streets drawn boldly
    report = mesh.mesh_report(real[..., 0], real, {"model": meshy})
    assert abs(report["model"]["period_px"] - 12.8) < 0.5
    assert min(abs(report["model"]["angle_deg"] - a) for a in (0, 90, 180)) < 2  # along the pixel axes
    assert report["model"]["excess_vs_real"] > 20
    assert report["model"]["peak_over_median"] > report["real"]["peak_over_median"]


def test_an_output_with_the_real_images_texture_shows_no_excess() -> None:
    rng = np.random.default_rng(1)
    real = _street_grid(256, 12.8, 10.0, rng)
    similar = _street_grid(256, 12.8, 10.0, rng)
    report = mesh.mesh_report(real[..., 0], real, {"model": similar})
    assert 0.5 < report["model"]["excess_vs_real"] < 2.0


def test_a_turned_grid_reports_its_angle() -> None:
    from PIL import Image

    rng = np.random.default_rng(2)
    grid = _street_grid(384, 12.8, 30.0, rng)[..., 0]
    turned = np.asarray(Image.fromarray(grid).rotate(30, Image.BILINEAR))[64:320, 64:320]
    peak = mesh.spectrum_peak(mesh.luminance(turned))
    assert min(abs(peak["angle_deg"] - a) for a in (30, 60, 120, 150)) < 4


def test_detail_correlation_tells_a_pattern_that_follows_the_scene_from_a_locked_one() -> None:
    rng = np.random.default_rng(1)
    scene = rng.normal(0, 20, (96, 96)).cumsum(1) / 10 + 128  # streaky texture
    s = 3
    back = mesh.moved(scene, s)[s:, s:]  # the moved scene, moved back: the same content
    assert back.shape == (96 - s, 96 - s)
    yy, xx = np.mgrid[:96, :96]
    lattice = 25 * (np.cos(2 * np.pi * xx / 8) + np.cos(2 * np.pi * yy / 8))  # fixed to the pixel grid

    def out(image: np.ndarray) -> np.ndarray:
        return np.clip(image, 0, 255).astype(np.uint8)

    follows = mesh.detail_correlation(out(scene[:-s, :-s] + lattice[:-s, :-s]), out(back + lattice[:-s, :-s]))
    locked = mesh.detail_correlation(out(scene[:-s, :-s] + lattice[:-s, :-s]), out(back + lattice[s:, s:]))
    assert follows > 0.99
    assert locked < 0.8
