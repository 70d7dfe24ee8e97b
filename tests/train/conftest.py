"""Tiny, seeded SAR/optical data sets made in code (no downloads, nothing from shared/)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _pair(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth SAR-like grey image and an RGB image that is a fixed function of it."""
    coarse = rng.random((size // 8 + 1, size // 8 + 1))
    grey = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR))
    grey = np.clip(grey.astype(np.float32) + rng.normal(0, 12, (size, size)), 0, 255).astype(np.uint8)
    g = grey.astype(np.float32) / 255
    rgb = np.stack([g, 1 - g, 0.5 + 0.4 * np.sin(6 * g)], axis=2)
    return grey, (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def make_kaggle(root: Path, terrains=("agri", "urban"), scenes=3, patches=2, size=32,
                s1_channels=1, seed=0) -> Path:
    """``root/v_2/<terrain>/{s1,s2}/ROIs1970_fall_s{1,2}_<scene>_p<patch>.png``."""
    rng = np.random.default_rng(seed)
    for t_i, terrain in enumerate(terrains):
        for d in ("s1", "s2"):
            (root / "v_2" / terrain / d).mkdir(parents=True, exist_ok=True)
        for scene in range(scenes):
            for patch in range(patches):
                grey, rgb = _pair(rng, size)
                if s1_channels == 3:
                    grey = np.repeat(grey[..., None], 3, axis=2)
                name = f"ROIs1970_fall_s1_{t_i * 10 + scene}_p{patch}.png"
                Image.fromarray(grey).save(root / "v_2" / terrain / "s1" / name)
                Image.fromarray(rgb).save(root / "v_2" / terrain / "s2" / name.replace("_s1_", "_s2_"))
    return root


def make_folders(root: Path, n=4, size=96, seed=0, bounds=None) -> Path:
    """``root/sar/NNN.png`` + ``root/opt/NNN.png`` (+ ``pairs.csv`` with bounds if given)."""
    rng = np.random.default_rng(seed)
    (root / "sar").mkdir(parents=True, exist_ok=True)
    (root / "opt").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        grey, rgb = _pair(rng, size)
        Image.fromarray(grey).save(root / "sar" / f"{i:03d}.png")
        Image.fromarray(rgb).save(root / "opt" / f"{i:03d}.png")
    if bounds:
        lines = ["id,sar,xmin_3395,ymin_3395,xmax_3395,ymax_3395"]
        for i, (x0, y0, x1, y1) in enumerate(bounds):
            lines.append(f"{i:03d}.png,sar/{i:03d}.png,{x0},{y0},{x1},{y1}")
        (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def torchrun_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a CPU ``torchrun`` test: one thread per rank, no GPU, and TMPDIR in
    ``tmp_path``, since torchrun leaves a ``torchelastic_*`` log folder in the temp dir."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(tmp_path)}


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    return make_kaggle(tmp_path / "kaggle")


@pytest.fixture
def folders_dir(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "la")
