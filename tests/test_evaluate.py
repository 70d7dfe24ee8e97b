"""geocolor evaluate: known answers for both model kinds, baselines, errors, CLI output."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from skimage import color
from torch import nn

from geocolor.cli import main
from geocolor.data.sarscale import preset
from geocolor.errors import DataError, ModelFileError
from geocolor.evaluate import PSNR_CAP, evaluate, format_report
from geocolor.io.modelfile import LoadedModel, ModelCard, save_model
from geocolor.models.segcolor import SegColorUNet


class BrightIsForeground(nn.Module):
    """A 'semantic network' that predicts no colour and class 1 where L > 0 (bright)."""

    multiple = 16

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.cat([-x, x], dim=1) * 100
        return logits, torch.zeros(x.shape[0], 2, *x.shape[-2:])


class CopySar(nn.Module):
    """A 'SAR generator' that returns its input on R, G and B."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1)


def _semantic_model(network: nn.Module, image_size: int = 32) -> LoadedModel:
    card = ModelCard(kind="semantic", arch="segcolor-unet", arch_args={"n_classes": 2},
                     input={"image_size": image_size}, classes=["background", "foreground"])
    return LoadedModel(card=card, network=network.eval(), path=Path("oracle.model"))


def _sar_model(scaling: str = "s1s2la-vh-amplitude", tile: int = 32) -> LoadedModel:
    card = ModelCard(kind="sar", arch="unet", arch_args={},
                     input={"sar_scaling": {"name": scaling, **preset(scaling).to_dict()}, "tile_size": tile})
    return LoadedModel(card=card, network=CopySar(), path=Path("copy.model"))


def _grey_photo_with_mask(root: Path, name: str, size: int = 32) -> None:
    (root / "raw").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    grey = np.full((size, size), 40, np.uint8)
    grey[:, size // 2:] = 220  # bright right half = foreground
    Image.fromarray(grey).save(root / "raw" / f"{name}.png")
    Image.fromarray(np.where(grey > 128, 255, 0).astype(np.uint8)).save(root / "masks" / f"{name}.png")


def test_semantic_perfect_prediction(tmp_path: Path) -> None:
    _grey_photo_with_mask(tmp_path, "a")
    _grey_photo_with_mask(tmp_path, "b")
    result = evaluate(_semantic_model(BrightIsForeground()), tmp_path, device="cpu")
    model = result["groups"]["overall"]["model"]
    assert model["psnr"] > 90  # float32 LAB round trip: ~1e-5 error, not exactly 0
    assert model["mse"] < 1e-9 and model["ssim"] == pytest.approx(1.0, abs=1e-6)
    seg = result["segmentation"]
    assert seg["status"] == "computed" and seg["images_with_masks"] == 2
    assert seg["pixel_accuracy"] == 1.0 and seg["mean_iou"] == 1.0
    assert seg["per_class_iou"] == {"background": 1.0, "foreground": 1.0}
    # a grey photo is its own grey baseline
    assert result["groups"]["overall"]["grey"]["psnr"] > 90


def test_semantic_grey_baseline_matches_an_independent_computation(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    rgb = np.zeros((24, 40, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, 20:, 2] = 150
    Image.fromarray(rgb).save(tmp_path / "raw" / "c.png")
    result = evaluate(_semantic_model(BrightIsForeground()), tmp_path, device="cpu")
    unit = rgb / 255.0
    lab = color.rgb2lab(unit)
    lab[..., 1:] = 0
    grey = color.lab2rgb(lab)
    mse = float(((grey - unit) ** 2).mean())
    got = result["groups"]["overall"]["grey"]
    assert got["mse"] == pytest.approx(mse, rel=1e-3)
    assert got["psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=0.01)
    # the 'model' predicts no colour either: the same numbers
    assert result["groups"]["overall"]["model"]["mse"] == pytest.approx(mse, rel=1e-3)
    assert result["segmentation"]["status"] == "skipped" and "no masks" in result["segmentation"]["reason"]
    assert result["per_image"][0]["name"] == "c.png"


def test_semantic_class_iou_for_a_known_error(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "masks").mkdir()
    grey = np.full((32, 32), 40, np.uint8)
    grey[:, 16:] = 220
    Image.fromarray(grey).save(tmp_path / "raw" / "x.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[:, 8:] = 255  # truth: 24 of 32 columns foreground; the net finds 16
    Image.fromarray(mask).save(tmp_path / "masks" / "x.png")
    seg = evaluate(_semantic_model(BrightIsForeground()), tmp_path, device="cpu")["segmentation"]
    assert seg["pixel_accuracy"] == pytest.approx(24 / 32)
    assert seg["per_class_iou"]["foreground"] == pytest.approx(16 / 24)
    assert seg["per_class_iou"]["background"] == pytest.approx(8 / 16)
    assert seg["mean_iou"] == pytest.approx((16 / 24 + 8 / 16) / 2)


def _sar_folders(root: Path, n: int = 2, size: int = 64) -> None:
    (root / "sar").mkdir(parents=True)
    (root / "opt").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        sar = (rng.random((size, size)) * 255).astype(np.uint8)
        Image.fromarray(sar).save(root / "sar" / f"{i:03d}.png")
        Image.fromarray(np.repeat(sar[..., None], 3, axis=2)).save(root / "opt" / f"{i:03d}.png")


def test_sar_known_case_and_baselines(tmp_path: Path) -> None:
    _sar_folders(tmp_path)
    result = evaluate(_sar_model(), tmp_path, device="cpu")
    assert result["chips"] == 8 and result["counts"] == {"overall": 8}
    overall = result["groups"]["overall"]
    # optical == SAR grey: the copying model and the SAR-grey baseline are perfect
    for method in ("model", "sar_grey"):
        assert overall[method]["l1"] == pytest.approx(0, abs=1e-7)
        assert overall[method]["psnr"] == pytest.approx(PSNR_CAP)
    # the mean-colour baseline, computed independently
    opt = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "opt").glob("*.png"))]) / 255.0
    opt = opt.astype(np.float32) * 255 / 127.5 - 1  # same [-1, 1] -> [0, 1] path as the data loader
    opt = (opt + 1) / 2
    mean = opt.reshape(-1, 3).mean(0)
    assert result["mean_colour"] == pytest.approx(mean.tolist(), abs=1e-5)
    assert overall["mean_colour"]["l1"] == pytest.approx(float(np.abs(opt - mean).mean()), rel=1e-4)


def test_sar_per_terrain_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for terrain, scenes in (("urban", 2), ("grassland", 1)):
        for k in range(scenes):
            for sub in ("s1", "s2"):
                (tmp_path / "v_2" / terrain / sub).mkdir(parents=True, exist_ok=True)
            sar = (rng.random((32, 32)) * 255).astype(np.uint8)
            name = f"ROIs1970_fall_s1_{k}_p{k}.png"
            Image.fromarray(sar).save(tmp_path / "v_2" / terrain / "s1" / name)
            Image.fromarray(np.repeat(sar[..., None], 3, axis=2)).save(
                tmp_path / "v_2" / terrain / "s2" / name.replace("_s1_", "_s2_"))
    result = evaluate(_sar_model("kaggle-vv-db"), tmp_path, device="cpu")
    assert list(result["groups"]) == ["overall", "grassland", "urban"]
    assert result["counts"] == {"overall": 3, "grassland": 1, "urban": 2}
    assert result["groups"]["urban"]["model"]["psnr"] == pytest.approx(PSNR_CAP)
    text = format_report(result)
    assert "grassland" in text and "baseline: SAR grey as RGB" in text


def test_sar_scaling_mismatch_is_refused(tmp_path: Path) -> None:
    _sar_folders(tmp_path, n=1)
    with pytest.raises(DataError, match="kaggle-vv-db.*s1s2la-vh-amplitude"):
        evaluate(_sar_model("kaggle-vv-db"), tmp_path, device="cpu")
    # declaring the data's scaling explicitly makes it fit
    result = evaluate(_sar_model("kaggle-vv-db"), tmp_path, device="cpu", sar_scaling="kaggle-vv-db")
    assert result["sar_scaling"] == "kaggle-vv-db"


def test_semantic_evaluate_refuses_sar_data_errors(tmp_path: Path) -> None:
    _sar_folders(tmp_path, n=1)
    with pytest.raises(DataError, match="raw"):
        evaluate(_semantic_model(BrightIsForeground()), tmp_path, device="cpu")


def test_perceptual_metrics_are_skipped_with_reasons(tmp_path: Path) -> None:
    _grey_photo_with_mask(tmp_path, "a")
    result = evaluate(_semantic_model(BrightIsForeground()), tmp_path, device="cpu")
    for name in ("lpips", "fid"):
        info = result["perceptual"][name]
        if info["status"] == "skipped":
            assert info["reason"]
            assert "values" not in info


@pytest.fixture()
def semantic_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    card = ModelCard(kind="semantic", arch="segcolor-unet", arch_args={"n_classes": 2, "base": 4},
                     input={"image_size": 32}, classes=["background", "foreground"])
    return save_model(tmp_path / "sem.model", SegColorUNet(n_classes=2, base=4), card)


def test_cli_table_and_json(tmp_path: Path, semantic_file: Path) -> None:
    data = tmp_path / "data"
    _grey_photo_with_mask(data, "a", size=40)
    runner = CliRunner()
    res = runner.invoke(main, ["evaluate", str(semantic_file), str(data), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "baseline: grey image" in res.stdout and "PSNR" in res.stdout
    assert "mean IoU" in res.stdout and "LPIPS" in res.stdout and "FID" in res.stdout
    res = runner.invoke(main, ["evaluate", str(semantic_file), str(data), "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kind"] == "semantic" and doc["images"] == 1
    assert set(doc["groups"]["overall"]) == {"model", "grey"}
    assert 0 <= doc["segmentation"]["pixel_accuracy"] <= 1


def test_cli_errors(tmp_path: Path, semantic_file: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["evaluate", str(semantic_file), str(tmp_path / "nodata")])
    assert res.exit_code == 1 and "geocolor: error:" in res.stderr and "nodata" in res.stderr
    res = runner.invoke(main, ["evaluate", str(tmp_path / "missing.model"), str(tmp_path)])
    assert res.exit_code == 1 and "model file not found" in res.stderr
    _grey_photo_with_mask(tmp_path / "d", "a")
    res = runner.invoke(main, ["evaluate", str(semantic_file), str(tmp_path / "d"), "--terrain", "urban"])
    assert res.exit_code == 2 and "only for SAR models" in res.stderr


def test_wrong_kind_for_kind_specific_entry_points(tmp_path: Path) -> None:
    from geocolor.evaluate import evaluate_sar, evaluate_semantic

    with pytest.raises(ModelFileError):
        evaluate_sar(_semantic_model(BrightIsForeground()), tmp_path)
    with pytest.raises(ModelFileError):
        evaluate_semantic(_sar_model(), tmp_path)


def test_split_file_restricts_to_the_held_out_images(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    for name in ("a", "b", "c"):
        _grey_photo_with_mask(data, name)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [str(data / "raw" / "a.png")],
                                 "val": [str(data / "raw" / "b.png"), "elsewhere/raw/c.png"]}))
    result = evaluate(_semantic_model(BrightIsForeground()), data, device="cpu", split=split)
    assert [r["name"] for r in result["per_image"]] == ["b.png"]  # exact paths win over names
    assert result["split"] == {"file": str(split), "subset": "val"}
    train = evaluate(_semantic_model(BrightIsForeground()), data, device="cpu", split=split, subset="train")
    assert [r["name"] for r in train["per_image"]] == ["a.png"]
    # SAR runs record {"val": {"groups": [...], "pairs": [...]}}; matched by name when paths moved
    sar = tmp_path / "sar_data"
    _sar_folders(sar, n=3)
    sar_split = tmp_path / "sar_split.json"
    sar_split.write_text(json.dumps({"train": {"groups": ["000", "001"],
                                               "pairs": ["/old/sar/000.png", "/old/sar/001.png"]},
                                     "val": {"groups": ["002"], "pairs": ["/old/sar/002.png"]}}))
    result = evaluate(_sar_model(), sar, device="cpu", split=sar_split)
    assert result["images"] == 1 and result["chips"] == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"val": ["nothing.png"]}))
    with pytest.raises(DataError, match="none of its 1 'val' images") as err:
        evaluate(_semantic_model(BrightIsForeground()), data, device="cpu", split=bad)
    assert "give that data, or the split of a run on this data" in str(err.value)
    # --subset without --split: every image would be scored, silently (it was)
    from click.testing import CliRunner

    from geocolor.cli import main

    res = CliRunner().invoke(main, ["evaluate", "semantic", str(data), "--subset", "val"])
    assert res.exit_code == 2 and "--subset picks a side of --split" in res.stderr
    with pytest.raises(DataError, match="split file not found"):
        evaluate(_semantic_model(BrightIsForeground()), data, device="cpu", split=tmp_path / "nope.json")


def test_cli_split_option(tmp_path: Path, semantic_file: Path) -> None:
    data = tmp_path / "data"
    _grey_photo_with_mask(data, "a", size=40)
    _grey_photo_with_mask(data, "b", size=40)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "val": [str(data / "raw" / "b.png")]}))
    res = CliRunner().invoke(main, ["evaluate", str(semantic_file), str(data), "--split", str(split),
                                    "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["images"] == 1 and doc["per_image"][0]["name"] == "b.png"


def _colour_photo(root: Path) -> None:
    (root / "raw").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    rgb = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(root / "raw" / "colour.png")


def test_structure_metrics_for_both_kinds(tmp_path: Path) -> None:
    _sar_folders(tmp_path / "sar", n=2)
    result = evaluate(_sar_model(), tmp_path / "sar", device="cpu")
    assert {"gmsd", "sharpness", "colourfulness"} <= set(result["metrics"])
    overall = result["groups"]["overall"]
    # the copying model is perfect: GMSD 0, as sharp as the real image
    assert overall["model"]["gmsd"] == pytest.approx(0, abs=1e-6)
    assert overall["model"]["sharpness"] == pytest.approx(1)
    # a constant colour has no edges at all; the real images here are grey (colourfulness 0 / 0)
    assert overall["mean_colour"]["sharpness"] == 0
    assert overall["mean_colour"]["gmsd"] > 0.05
    assert "GMSD" in format_report(result) and "SHARP" in format_report(result)

    _colour_photo(tmp_path / "photos")
    sem = evaluate(_semantic_model(BrightIsForeground()), tmp_path / "photos", device="cpu")
    grey = sem["groups"]["overall"]["grey"]
    assert grey["colourfulness"] == pytest.approx(0, abs=1e-3)  # no colour at all
    assert 0 < grey["sharpness"] < 1.5 and grey["gmsd"] > 0
    assert sem["per_image"][0]["grey"]["colourfulness"] == pytest.approx(0, abs=1e-3)


def test_sar_mean_training_colour_baseline(tmp_path: Path) -> None:
    data = tmp_path / "sar"
    _sar_folders(data, n=3)
    solid = np.zeros((64, 64, 3), np.uint8)
    solid[..., 0] = 255  # the training side is pure red
    Image.fromarray(solid).save(data / "opt" / "000.png")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": {"groups": ["000"], "pairs": [str(data / "sar" / "000.png")]},
                                 "val": {"groups": ["001", "002"], "pairs": [str(data / "sar" / "001.png"),
                                                                            str(data / "sar" / "002.png")]}}))
    result = evaluate(_sar_model(), data, device="cpu", split=split)
    assert result["mean_train_colour"] == pytest.approx([1.0, 0.0, 0.0])
    assert "mean_train_colour" in result["groups"]["overall"]
    # given explicitly (e.g. for data from another region); without it, left out and said why
    other = evaluate(_sar_model(), data, device="cpu", train_colour=(0.2, 0.3, 0.4), tile_size=16)
    assert other["mean_train_colour"] == pytest.approx([0.2, 0.3, 0.4]) and other["tile_size"] == 16
    assert other["chips"] == 3 * 16
    plain = evaluate(_sar_model(), data, device="cpu")
    assert "mean_train_colour" not in plain["groups"]["overall"]
    assert "left out" in format_report(plain)
    res = CliRunner().invoke(main, ["evaluate", "x.model", str(data), "--train-colour", "1,2"])
    assert res.exit_code == 2 and "--train-colour" in res.stderr


def test_evaluate_under_tta(tmp_path: Path, semantic_file: Path) -> None:
    _sar_folders(tmp_path / "sar", n=2)
    result = evaluate(_sar_model(), tmp_path / "sar", device="cpu", tta="d4")
    assert result["tta"] == "d4"
    assert result["groups"]["overall"]["model"]["psnr"] == pytest.approx(PSNR_CAP)  # a pointwise model: unchanged
    data = tmp_path / "photos"
    _grey_photo_with_mask(data, "a", size=40)
    res = CliRunner().invoke(main, ["evaluate", str(semantic_file), str(data), "--tta", "--json", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tta"] == "flips"


def test_sar_per_image_rows(tmp_path: Path) -> None:
    _sar_folders(tmp_path, n=3)
    result = evaluate(_sar_model(), tmp_path, device="cpu")
    rows = result["per_image"]
    assert [r["name"] for r in rows] == ["000", "001", "002"] and all(r["chips"] == 4 for r in rows)
    assert rows[1]["model"]["psnr"] == pytest.approx(PSNR_CAP) and "sar_grey" in rows[1]


def test_small_images_are_scored_at_their_own_size_not_enlarged_to_the_cards_tile(tmp_path: Path) -> None:
    _sar_folders(tmp_path / "small", size=40)
    model = _sar_model(tile=512)
    model.network.multiple = 16
    result = evaluate(model, tmp_path / "small", device="cpu")
    assert result["tile_size"] == 48 and result["chips"] == 2  # 40 px -> the next multiple of 16
    assert evaluate(model, tmp_path / "small", device="cpu", tile_size=64)["tile_size"] == 64  # asked for
    _sar_folders(tmp_path / "large", size=600)
    assert evaluate(model, tmp_path / "large", device="cpu")["tile_size"] == 512  # the card's


def test_sar_evaluation_runs_the_model_without_autograd(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Recording(CopySar):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.is_inference_mode_enabled())
            return super().forward(x)

    _sar_folders(tmp_path)
    model = _sar_model()
    model = LoadedModel(card=model.card, network=Recording(), path=model.path)
    evaluate(model, tmp_path, device="cpu")
    assert seen and all(seen)
