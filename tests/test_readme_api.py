"""The README's "Python API" example runs as written (issue 9)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)


def test_python_api_example_runs(tmp_path: Path) -> None:
    from geocolor.io.modelfile import packaged_model_path

    if not (packaged_model_path("sar").is_file() and packaged_model_path("semantic").is_file()):
        pytest.skip("the packaged models are not installed")
    example, training = _python_blocks("Python API")
    compile(training, "README training example", "exec")  # needs data to run; must at least parse
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    (tmp_path / "example.py").write_text(example)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out" / "api"
    scene_line, photo_line = done.stdout.strip().splitlines()[-2:]
    assert scene_line.startswith(str(Path("out/api/scene_rgb.tif")))
    assert photo_line.startswith(str(Path("out/api/colour.png"))) and " semantic " in photo_line
    sample = ROOT / "samples" / "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48.tif"
    with rasterio.open(out / "scene_rgb.tif") as rgb, rasterio.open(sample) as src:
        assert rgb.count == 3 and rgb.shape == src.shape and rgb.crs == src.crs
        assert rgb.transform.almost_equals(src.transform)
    for name in ("scene.preview.png", "colour.png", "photo.preview.png"):
        assert (out / name).is_file(), name
