"""Plain photos through a semantic model: full resolution kept, L kept, mask and preview files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import geocolor
from geocolor.data.lab import rgb_to_lab_np
from geocolor.errors import ModelFileError, OutputError, RasterError, UsageError
from geocolor.infer.image import colorize_image, network_size
from geocolor.io.modelfile import ModelCard, load_model, save_model
from geocolor.models.segcolor import SegColorUNet
from geocolor.models.unet import UNetGenerator

CLASSES = ["background", "foreground", "sky"]


def _tiny_semantic_model(path: Path, training: dict | None = None) -> Path:
    """A 3-class SegColorUNet (base 4) saved with ``training`` as its card's training record."""
    torch.manual_seed(0)
    card = ModelCard(kind="semantic", arch="segcolor-unet", arch_args={"n_classes": 3, "base": 4},
                     input={"image_size": 32}, classes=CLASSES, training=training or {})
    return save_model(path, SegColorUNet(n_classes=3, base=4), card)


@pytest.fixture(scope="module")
def semantic_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_semantic_model(tmp_path_factory.mktemp("models") / "sem.model")


@pytest.fixture(scope="module")
def untrained_segmentation_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A semantic model trained without masks, as `train semantic` records it on the card."""
    return _tiny_semantic_model(
        tmp_path_factory.mktemp("models") / "colour_only.model",
        {"data": {"segmentation": "untrained: no masks in the training photos"}})


@pytest.fixture(scope="module")
def sar_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    args = {"in_channels": 1, "out_channels": 3, "ngf": 4, "levels": 5}
    try:
        net = UNetGenerator(**args)
    except TypeError:  # pragma: no cover - older signature
        args = {"in_channels": 1, "out_channels": 3}
        net = UNetGenerator(**args)
    path = tmp_path_factory.mktemp("models") / "sar.model"
    return save_model(path, net, ModelCard(kind="sar", arch="unet", arch_args=args, input={"tile_size": 256}))


def _photo(path: Path, width: int, height: int, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth content so that JPEG/L comparisons are meaningful
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([np.sin(x / 7 + c) * np.cos(y / 5 - c) for c in range(3)], axis=-1)
    arr = ((base + 1) / 2 * 200 + rng.random((height, width, 3)) * 40).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return arr


@pytest.mark.parametrize("size", [(301, 257), (17, 50), (64, 64), (5, 3), (1000, 123)])
def test_output_keeps_full_resolution_and_aspect(tmp_path: Path, semantic_model_path: Path,
                                                 size: tuple[int, int]) -> None:
    model = load_model(semantic_model_path)
    src = tmp_path / "in.png"
    _photo(src, *size)
    info = colorize_image(src, tmp_path / "out.png", model)
    out = Image.open(tmp_path / "out.png")
    assert out.size == size and out.mode == "RGB"
    assert (info["width"], info["height"]) == size
    nw, nh = info["network_size"]
    assert nw % 16 == 0 and nh % 16 == 0
    assert info["input_mode"] == "rgb"
    assert abs(sum(info["classes"].values()) - 1) < 1e-6
    assert set(info["classes"]) == set(CLASSES)


def test_network_size_keeps_aspect_and_multiple() -> None:
    assert network_size(500, 500, 256, 16) == (256, 256)
    assert network_size(2000, 3000, 256, 32) == (256, 384)
    assert network_size(3, 5, 256, 16) == (256, 432)
    assert network_size(10, 10000, 64, 16) == (64, 256)  # long side capped at 4x
    h, w = network_size(257, 301, 256, 16)
    assert h % 16 == 0 and w % 16 == 0 and abs(w / h - 301 / 257) < 0.1


def test_output_keeps_the_input_lightness(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    arr = _photo(tmp_path / "in.png", 90, 70)
    colorize_image(tmp_path / "in.png", tmp_path / "out.png", model)
    out = np.asarray(Image.open(tmp_path / "out.png"))
    l_in, l_out = rgb_to_lab_np(arr)[..., 0], rgb_to_lab_np(out)[..., 0]
    # L is kept exactly up to 8-bit rounding and gamut clipping of the new colours
    assert np.median(np.abs(l_in - l_out)) < 1.0


def test_impossible_colours_keep_the_input_lightness_and_hue(tmp_path: Path,
                                                            semantic_model_path: Path) -> None:
    """A network asking for a blue that sRGB cannot show at most lightnesses gets it with
    less chroma: the photo's lightness is kept, and the hue too."""
    model = load_model(semantic_model_path)
    forward = model.network.forward
    blue = (0.2, -0.9)  # a*, b* / 128

    def deep_blue(x: torch.Tensor):  # noqa: ANN202
        logits, ab = forward(x)
        return logits, torch.tensor(blue).view(1, 2, 1, 1).expand_as(ab).contiguous()

    model.network.forward = deep_blue  # type: ignore[method-assign]
    arr = _photo(tmp_path / "in.png", 90, 70)
    colorize_image(tmp_path / "in.png", tmp_path / "out.png", model)
    lab_in, lab_out = rgb_to_lab_np(arr), rgb_to_lab_np(np.asarray(Image.open(tmp_path / "out.png")))
    assert np.abs(lab_in[..., 0] - lab_out[..., 0]).max() < 1.0  # 8-bit rounding only
    chroma = np.hypot(lab_out[..., 1], lab_out[..., 2])
    assert (chroma < 0.9 * 128 * np.hypot(*blue)).all()  # none shown at full strength
    coloured = chroma > 5
    assert coloured.mean() > 0.9
    hue = np.arctan2(lab_out[..., 2], lab_out[..., 1])[coloured]
    assert np.abs(hue - np.arctan2(blue[1], blue[0])).max() < 0.15


def test_the_network_sees_a_resized_copy(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    seen = []
    forward = model.network.forward

    def spy(x: torch.Tensor):  # noqa: ANN202
        seen.append(tuple(x.shape))
        return forward(x)

    model.network.forward = spy  # type: ignore[method-assign]
    _photo(tmp_path / "in.png", 400, 200)
    colorize_image(tmp_path / "in.png", tmp_path / "out.png", model)
    assert seen == [(1, 1, 32, 64)]


def test_grey_16bit_rgba_and_palette_inputs(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    grey16 = (np.arange(35 * 41, dtype=np.uint16).reshape(35, 41) * 40)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    info = colorize_image(tmp_path / "g16.png", tmp_path / "g16_out.png", model)
    assert info["input_mode"] == "grey" and Image.open(tmp_path / "g16_out.png").size == (41, 35)
    for mode in ("L", "RGBA", "P"):
        _photo(tmp_path / f"{mode}.png", 33, 29, mode=mode)
        info = colorize_image(tmp_path / f"{mode}.png", tmp_path / f"{mode}_out.jpg", model)
        assert Image.open(tmp_path / f"{mode}_out.jpg").size == (33, 29)
    assert info["input_mode"] == "rgb"


def test_exif_orientation_is_applied(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    arr = (np.random.default_rng(1).random((20, 40, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to display
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif.tobytes())
    info = colorize_image(tmp_path / "r.jpg", tmp_path / "r_out.png", model)
    assert (info["width"], info["height"]) == (20, 40)
    assert Image.open(tmp_path / "r_out.png").size == (20, 40)


def test_mask_and_preview_files(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    _photo(tmp_path / "in.jpg", 123, 77)
    info = colorize_image(tmp_path / "in.jpg", tmp_path / "out.png", model,
                          mask_out=tmp_path / "mask.png", preview=tmp_path / "preview.png")
    mask = Image.open(tmp_path / "mask.png")
    assert mask.mode == "P" and mask.size == (123, 77)
    labels = np.asarray(mask)
    assert labels.max() < len(CLASSES)
    fractions = np.bincount(labels.ravel(), minlength=3) / labels.size
    np.testing.assert_allclose(fractions, [info["classes"][c] for c in CLASSES], atol=1e-5)
    preview = Image.open(tmp_path / "preview.png")
    assert preview.mode == "RGB"
    assert preview.width >= 3 * 123 and preview.height >= 77  # three views side by side
    assert info["mask"] == str(tmp_path / "mask.png") and info["preview"] == str(tmp_path / "preview.png")
    assert not list(tmp_path.glob(".*partial*"))


def test_a_model_trained_without_masks_shows_and_reports_no_segmentation(
        tmp_path: Path, untrained_segmentation_path: Path) -> None:
    model = load_model(untrained_segmentation_path)
    _photo(tmp_path / "in.jpg", 123, 77)
    info = colorize_image(tmp_path / "in.jpg", tmp_path / "out.png", model,
                          preview=tmp_path / "preview.png")
    assert "classes" not in info.details and "untrained" in info.details["segmentation"]
    assert Image.open(tmp_path / "preview.png").width == 2 * 123 + 4  # input | colorized
    with pytest.raises(UsageError, match="untrained.*--mask-out"):
        colorize_image(tmp_path / "in.jpg", tmp_path / "out2.png", model, mask_out=tmp_path / "m.png")
    assert not (tmp_path / "out2.png").exists() and not (tmp_path / "m.png").exists()


def test_cli_refuses_masks_from_an_untrained_head_before_any_work(
        tmp_path: Path, untrained_segmentation_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png", 40, 30)
    res = _cli(str(photos), "-o", str(tmp_path / "out"), "--model", str(untrained_segmentation_path),
               "--mask-out", str(tmp_path / "masks"), "--device", "cpu")
    assert res.exit_code == 2
    error = res.stderr.strip().splitlines()[-1]
    assert str(untrained_segmentation_path) in error and "drop --mask-out" in error
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "masks").exists()


def test_preview_of_a_large_photo_is_bounded(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    _photo(tmp_path / "big.png", 1500, 600)
    colorize_image(tmp_path / "big.png", tmp_path / "o.png", model, preview=tmp_path / "p.png")
    p = Image.open(tmp_path / "p.png")
    assert p.width <= 3 * 512 + 8 and p.height <= 205 + 16


def test_sar_model_is_refused(tmp_path: Path, sar_model_path: Path) -> None:
    model = load_model(sar_model_path)
    _photo(tmp_path / "in.png", 20, 20)
    with pytest.raises(ModelFileError, match="sar model.*semantic model"):
        colorize_image(tmp_path / "in.png", tmp_path / "out.png", model)
    assert not (tmp_path / "out.png").exists()


def test_unreadable_input_and_bad_output_paths(tmp_path: Path, semantic_model_path: Path) -> None:
    model = load_model(semantic_model_path)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(RasterError, match="bad.jpg"):
        colorize_image(tmp_path / "bad.jpg", tmp_path / "out.png", model)
    with pytest.raises(RasterError, match="file not found"):
        colorize_image(tmp_path / "missing.png", tmp_path / "out.png", model)
    _photo(tmp_path / "in.png", 20, 20)
    with pytest.raises(OutputError, match="unknown image format"):
        colorize_image(tmp_path / "in.png", tmp_path / "out.xyz", model)
    with pytest.raises(OutputError, match="output is the input"):
        colorize_image(tmp_path / "in.png", tmp_path / "in.png", model, overwrite=True)
    assert not (tmp_path / "out.png").exists()
    # side files' folders are created, as for scenes
    colorize_image(tmp_path / "in.png", tmp_path / "out.png", model, mask_out=tmp_path / "new" / "m.png")
    assert (tmp_path / "new" / "m.png").is_file()
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        colorize_image(tmp_path / "in.png", tmp_path / "out.png", model)


def test_public_api_is_lazy_and_points_here() -> None:
    assert geocolor.colorize_image is colorize_image


# ----------------------------------------------------------------------------- through `geocolor colorize`
def _cli(*args: str):  # noqa: ANN202
    from click.testing import CliRunner

    from geocolor.cli import main

    return CliRunner().invoke(main, ["colorize", *args])


def test_cli_photo_with_mask_and_preview(tmp_path: Path, semantic_model_path: Path) -> None:
    _photo(tmp_path / "photo.jpg", 301, 257)
    res = _cli(str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "out.png"), "--model", str(semantic_model_path),
               "--mask-out", str(tmp_path / "mask.png"), "--preview", str(tmp_path / "preview.png"),
               "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == str(tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").size == (301, 257)
    assert Image.open(tmp_path / "mask.png").mode == "P"
    assert Image.open(tmp_path / "mask.png").size == (301, 257)
    assert Image.open(tmp_path / "preview.png").width > 3 * 256


def test_cli_folder_of_photos_json(tmp_path: Path, semantic_model_path: Path) -> None:
    import json

    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png", 40, 30)
    _photo(photos / "b.jpg", 17, 51)
    res = _cli(str(photos), "-o", str(tmp_path / "out"), "--model", str(semantic_model_path), "--json",
               "--mask-out", str(tmp_path / "masks"), "--device", "cpu")
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.strip().splitlines()]
    assert {line["status"] for line in lines} == {"ok"} and len(lines) == 2
    assert {line["kind"] for line in lines} == {"semantic"}
    sizes = {Path(line["output"]).stem.split(".")[0]: Image.open(line["output"]).size for line in lines}
    assert sizes == {"a": (40, 30), "b": (17, 51)}
    assert len(list((tmp_path / "masks").rglob("*.png"))) == 2


def test_cli_sar_model_on_a_photo_and_bad_photo(tmp_path: Path, semantic_model_path: Path,
                                                sar_model_path: Path) -> None:
    _photo(tmp_path / "photo.png", 40, 30)
    res = _cli(str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"), "--model", str(semantic_model_path),
               "--mask-out", str(tmp_path / "m.png"), "--device", "cpu")
    assert res.exit_code == 0, res.output
    res = _cli(str(tmp_path / "photo.png"), "-o", str(tmp_path / "out2.png"), "--model", str(sar_model_path),
               "--mask-out", str(tmp_path / "m2.png"), "--device", "cpu")
    assert res.exit_code in (1, 2) and "semantic" in res.stderr
    assert not (tmp_path / "out2.png").exists()
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8junk")
    res = _cli(str(tmp_path / "junk.jpg"), "-o", str(tmp_path / "out3.png"), "--model", str(semantic_model_path),
               "--device", "cpu")
    assert res.exit_code == 1 and "junk.jpg" in res.stderr


def test_cli_semantic_model_on_a_sar_scene_is_refused(tmp_path: Path, semantic_model_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    scene = tmp_path / "scene.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=40, height=30, count=1, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as ds:
        ds.write(np.full((1, 30, 40), -12.0, np.float32))
    res = _cli(str(scene), "-o", str(tmp_path / "out.tif"), "--model", str(semantic_model_path), "--device", "cpu")
    assert res.exit_code == 1 and "semantic model" in res.stderr
    assert not (tmp_path / "out.tif").exists()


def test_packaged_semantic_model(tmp_path: Path) -> None:
    from geocolor.io.modelfile import packaged_model_path

    path = packaged_model_path("semantic")
    if not path.is_file():
        pytest.skip("no packaged semantic model in this checkout")
    assert path.stat().st_size <= 30 * 2**20
    model = load_model(path, kind="semantic")
    assert model.card.input["image_size"] >= 64 and model.card.training.get("data")
    _photo(tmp_path / "in.png", 97, 61)
    res = _cli(str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--device", "cpu")  # default model
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "out.png").size == (97, 61)


@pytest.mark.parametrize("size", [(100, 57), (3000, 41), (17, 23)])
def test_striped_upsampled_argmax_equals_the_direct_one(size: tuple[int, int]) -> None:
    from torch.nn import functional as F

    from geocolor.infer.image import _upsampled_argmax

    logits = torch.randn(1, 5, 17, 23, generator=torch.Generator().manual_seed(0))
    direct = F.interpolate(logits, size=size, mode="bilinear", align_corners=False).argmax(1)[0]
    assert torch.equal(_upsampled_argmax(logits, size, rows=64), direct)


def test_a_photo_output_says_what_made_it(tmp_path: Path, semantic_model_path: Path) -> None:
    """PNG text chunks name the model (and its SHA-256); `geocolor info` reads them."""
    import hashlib

    _photo(tmp_path / "p.png", 40, 30)
    colorize_image(tmp_path / "p.png", tmp_path / "o.png", semantic_model_path, tta="flips")
    text = Image.open(tmp_path / "o.png").text
    assert text["GEOCOLOR_MODEL"] == "sem.model"
    assert text["GEOCOLOR_MODEL_SHA256"] == hashlib.sha256(
        semantic_model_path.read_bytes()).hexdigest()
    assert text["GEOCOLOR_SOURCE"] == "p.png" and text["GEOCOLOR_VERSION"] == geocolor.__version__
    assert text["GEOCOLOR_ENGINE"] == "torch cpu float32, TTA flips"
    from geocolor.io.raster import describe_raster

    assert describe_raster(tmp_path / "o.png")["geocolor"]["GEOCOLOR_MODEL"] == "sem.model"


def test_the_model_digest_follows_the_file(tmp_path: Path, semantic_model_path: Path) -> None:
    """The SHA-256 is read once per file version, and again when the file is replaced."""
    import hashlib
    import os
    import shutil

    from geocolor.infer.provenance import model_tags

    path = Path(shutil.copy(semantic_model_path, tmp_path / "m.model"))
    model = load_model(path)
    assert model_tags(model)["GEOCOLOR_MODEL_SHA256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes() + b"\0")  # another version of the file
    os.utime(path, ns=(1, 1))
    assert model_tags(model)["GEOCOLOR_MODEL_SHA256"] == hashlib.sha256(path.read_bytes()).hexdigest()
