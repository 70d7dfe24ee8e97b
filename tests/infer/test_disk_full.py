"""Issue 9 item 5: a full disk is one line that names the output, says no space, and nothing is left."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from colorize_fakes import db_scene, write_raster

from geocolor.errors import OutputError


def _scene(path: Path, side: int) -> Path:
    return write_raster(path, db_scene(side, side), descriptions=("VV", "VH"))


def _fail_at(step: str, failure, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Make the last step of writing the COG raise ``failure``: GDAL's COG driver copy
    (``finalise``, taken for a ZSTD COG) or the direct COG's assembly (the default COG);
    returns the creation options that lead there."""
    import geocolor.infer.cogwrite as cogwrite
    import geocolor.infer.scene as scene_module

    def fail(*args, **kwargs):
        raise failure

    if step == "finalise":
        monkeypatch.setattr(scene_module, "finalise", fail)
        return {"COMPRESS": "ZSTD"}
    monkeypatch.setattr(cogwrite.CogWriter, "assemble", fail)
    return {}


@pytest.mark.parametrize("step", ["finalise", "assemble"])
def test_simulated_enospc_in_finalise(tmp_path: Path, sar_model: Path,
                                      monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    from geocolor.infer.scene import colorize_scene

    options = _fail_at(step, OSError(errno.ENOSPC, "No space left on device"), monkeypatch)
    src = _scene(tmp_path / "s.tif", 100)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError) as info:
        colorize_scene(src, out / "o.tif", sar_model, device="cpu", creation_options=options)
    message = str(info.value)
    assert str(out / "o.tif") in message and "no space left" in message and "nothing was written" in message
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("step", ["finalise", "assemble"])
def test_gdal_write_failure_on_a_nearly_full_disk(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """GDAL's own "Write failed" (no errno) while the disk has no space left."""
    import rasterio.errors

    import geocolor.io.diskspace as diskspace
    from geocolor.infer.scene import colorize_scene

    failure = rasterio.errors.RasterioIOError("Write failed. See previous exception for details.")
    options = _fail_at(step, failure, monkeypatch)
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    src = _scene(tmp_path / "s.tif", 100)
    with pytest.raises(OutputError, match="no space left"):
        colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", creation_options=options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]
    # with space left the same failure is not called a full disk
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 0, 10**9))
    with pytest.raises(rasterio.errors.RasterioIOError):
        colorize_scene(src, tmp_path / "o.tif", sar_model, device="cpu", creation_options=options)


@pytest.fixture()
def tiny_tmpfs(tmp_path: Path):
    """A 3 MB tmpfs (needs root and mount; skipped elsewhere)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("extra", [[], ["--no-cog"]])
def test_real_full_disk_through_the_cli(tmp_path: Path, sar_model: Path, tiny_tmpfs: Path,
                                        extra: list[str]) -> None:
    src = _scene(tmp_path / "big.tif", 2048)  # about 4 MB of float32 dB: the output cannot fit in 3 MB
    out = tiny_tmpfs / "x.tif"
    done = subprocess.run(  # a real process: libtiff's own lines on fd 2 would show up here
        [sys.executable, "-m", "geocolor", "-q", "colorize", str(src), "-o", str(out), "-m", str(sar_model),
         "--device", "cpu", *extra],
        capture_output=True, text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.strip()]  # nothing from libtiff, no traceback
    assert line.startswith("geocolor: error: ") and str(out) in line
    assert "no space left" in line and "nothing was written" in line
    assert list(tiny_tmpfs.iterdir()) == []


def test_a_full_disk_under_the_preview_names_the_preview(
    tmp_path: Path, sar_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview's own disk filled: the error named the output and its (roomy) disk."""
    import geocolor.infer.preview as preview_module
    from geocolor.infer.scene import colorize_scene

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(preview_module, "atomic_path", full)
    src = _scene(tmp_path / "s.tif", 100)
    with pytest.raises(OutputError) as info:
        colorize_scene(src, tmp_path / "out" / "o.tif", sar_model, device="cpu",
                       preview=tmp_path / "previews" / "p.png")
    assert str(info.value).startswith(f"{tmp_path / 'previews' / 'p.png'}: no space left")
    assert not (tmp_path / "out" / "o.tif").exists()
    assert list((tmp_path / "previews").iterdir()) == []
