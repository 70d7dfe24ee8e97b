"""train semantic: the loss, one optimisation step, the CLI end to end, pretrained weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from cuda_marks import requires_cuda
from PIL import Image

from geocolor.cli import main
from geocolor.data.semantic import IGNORE_INDEX
from geocolor.io.modelfile import load_model, read_card
from geocolor.train.semantic import SemanticSettings, SemanticTask, build_network, semantic_losses

TINY = ["--arch", "unet", "--base", "4", "--img-size", "32", "--batch-size", "2", "--workers", "0",
        "--device", "cpu"]


def _photos(root: Path, n: int = 4, masks: tuple[int, ...] = (0,)) -> Path:
    (root / "raw").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 40 + 3 * i, 50 - 2 * i
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / "raw" / f"p{i}.png")
        if i in masks:
            m = np.zeros((10, 12), np.uint8)
            m[2:8, 3:9] = 255
            Image.fromarray(m).save(root / "masks" / f"p{i}.png")
    return root


# ----------------------------------------------------------------------------- loss
def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    mask = torch.full((2, 8, 8), IGNORE_INDEX)
    mask[0] = 0
    mask[0, :, 4:] = 1
    return {
        "logits": torch.randn(2, 2, 8, 8), "ab_pred": torch.rand(2, 2, 8, 8) - 0.5,
        "ab": torch.rand(2, 2, 8, 8) - 0.5, "mask": mask, "has_mask": torch.tensor([True, False]),
    }


def test_loss_weights_are_applied() -> None:
    b = _batch()
    base = semantic_losses(**b, seg_weight=1.0, color_weight=1.0)
    weighted = semantic_losses(**b, seg_weight=0.3, color_weight=7.0)
    assert torch.allclose(weighted["loss_seg"], base["loss_seg"])
    assert torch.allclose(weighted["loss_total"], 0.3 * base["loss_seg"] + 7.0 * base["loss_color"])
    only_colour = semantic_losses(**b, seg_weight=0.0, color_weight=1.0)
    assert torch.allclose(only_colour["loss_total"], base["loss_color"])


def test_seg_loss_only_where_masks_exist_and_colour_on_foreground() -> None:
    b = _batch()
    out = semantic_losses(**b, seg_weight=1.0, color_weight=1.0)
    ce = torch.nn.functional.cross_entropy(b["logits"][:1], b["mask"][:1])
    assert torch.allclose(out["loss_seg"], ce)
    # colour: foreground (right half) of photo 0, all of photo 1
    sq = (b["ab_pred"] - b["ab"]).pow(2).mean(1)
    expected = (sq[0, :, 4:].sum() + sq[1].sum()) / (32 + 64)
    assert torch.allclose(out["loss_color"], expected)
    every = semantic_losses(**b, seg_weight=1.0, color_weight=1.0, color_pixels="all")
    assert torch.allclose(every["loss_color"], sq.mean())


def test_no_masks_gives_zero_seg_loss_and_zero_seg_gradient() -> None:
    b = _batch()
    b["mask"][:] = IGNORE_INDEX
    b["has_mask"][:] = False
    logits = b.pop("logits").requires_grad_()
    out = semantic_losses(logits, **b, seg_weight=1.0, color_weight=1.0)
    assert float(out["loss_seg"].detach()) == 0.0
    out["loss_total"].backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0
    sq = (b["ab_pred"] - b["ab"]).pow(2).mean(1)
    assert torch.allclose(out["loss_color"], sq.mean())  # all pixels of mask-less photos


# ----------------------------------------------------------------------------- one step
def test_steps_reduce_a_fixed_batch_loss(tmp_path: Path) -> None:
    from geocolor.data.semantic import find_photos
    from geocolor.train.loop import StepContext
    from geocolor.train.runtime import setup_runtime

    data = _photos(tmp_path / "data", n=2, masks=(0,))
    settings = SemanticSettings(data=str(data), arch="unet", base=4, img_size=32, lr=1e-2, grad_clip=1.0)
    records = find_photos(data)
    task = SemanticTask(settings, records, records, [])
    torch.manual_seed(0)
    runtime = setup_runtime("cpu", "off")
    task.setup(runtime)
    train_ds, _ = task.datasets()
    batch = torch.utils.data.default_collate([train_ds[0], train_ds[1]])
    ctx = StepContext(runtime, task.nets)

    def loss() -> float:
        task.train_mode(False)
        with torch.no_grad():
            logits, ab = task.nets["net"](batch["l"])
            value = semantic_losses(logits, ab, batch["ab"], batch["mask"], batch["has_mask"],
                                    settings.seg_weight, settings.color_weight)["loss_total"]
        task.train_mode(True)
        return float(value)

    before = loss()
    for _ in range(5):
        out = task.train_step(batch, ctx)
        assert out["grad_norm"] >= 0 and np.isfinite(out["loss_total"])
    assert loss() < before


# ----------------------------------------------------------------------------- CLI
def test_train_semantic_end_to_end_and_resume(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=4, masks=(0, 2))
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(run), *TINY, "--max-steps", "2",
                               "--val-fraction", "0.25", "--classes", "2", "--class-names", "bg,thing"])
    assert res.exit_code == 0, res.output + str(res.exception)
    model_path = Path(res.stdout.strip().splitlines()[-1])
    assert model_path == run / "model.model" and model_path.is_file()
    card = read_card(model_path)
    assert card.kind == "semantic" and card.arch == "segcolor-unet"
    assert card.arch_args == {"n_classes": 2, "base": 4}
    assert card.input["image_size"] == 32 and card.classes == ["bg", "thing"]
    assert card.training["steps"] == 2 and card.training["data"]["photos"] == 4
    assert card.training["losses"]["color_weight"] == 10.0
    assert {"psnr", "psnr_grey", "ab_mse"} <= set(card.metrics)
    for name in ("config.toml", "metrics.jsonl", "split.json", "checkpoints/latest.ckpt"):
        assert (run / name).is_file(), name
    split = json.loads((run / "split.json").read_text())
    assert split["counts"] == {"train": {"items": 3, "groups": 3}, "val": {"items": 1, "groups": 1}}
    # resume to 4 steps: the step counter continues, the split is kept
    res = runner.invoke(main, ["train", "semantic", "--resume", str(run), "--max-steps", "4"])
    assert res.exit_code == 0, res.output + str(res.exception)
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if r["type"] == "batch"]
    assert steps == [1, 2, 3, 4]
    assert read_card(model_path).training["steps"] == 4
    assert json.loads((run / "split.json").read_text()) == split
    # the trained model colorizes a photo at full size
    from geocolor.infer.image import colorize_image

    info = colorize_image(data / "raw" / "p1.png", tmp_path / "out.png", load_model(model_path))
    assert (info["width"], info["height"]) == (48, 43)


def test_full_epochs_write_samples_and_loss_plot(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=3, masks=(1,))
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(run), *TINY, "--epochs", "2",
                                    "--val-fraction", "0.34", "--half", "--exposure-jitter", "1"])
    assert res.exit_code == 0, res.output + str(res.exception)
    assert (run / "loss_plot.png").is_file()
    samples = sorted((run / "samples").glob("*.png"))
    assert len(samples) == 2
    grid = Image.open(samples[-1])
    assert grid.width >= 4 * 32  # grey | segmentation | colorized | original
    card = read_card(run / "model.model")
    assert card.weights_dtype == "float16" and card.training["epochs"] == 2
    assert card.training["data"]["augmentation"]["exposure_stops"] == 1.0


def test_no_data_and_bad_settings(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["train", "semantic", str(tmp_path / "none"), "-o", str(tmp_path / "r"), *TINY])
    assert res.exit_code == 1 and "data folder not found" in res.stderr
    (tmp_path / "empty").mkdir()
    res = runner.invoke(main, ["train", "semantic", str(tmp_path / "empty"), "-o", str(tmp_path / "r"), *TINY])
    assert res.exit_code == 1 and "raw" in res.stderr
    data = _photos(tmp_path / "data", n=2)
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "r"), *TINY,
                               "--img-size", "40"])
    assert res.exit_code == 2 and "multiple of 16" in res.stderr
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "r"), *TINY,
                               "--classes", "3", "--class-names", "a,b"])
    assert res.exit_code == 2 and "class_names" in res.stderr
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "r"), *TINY,
                               "--arch", "resnet34", "--no-pretrained"])
    assert res.exit_code == 2 and "at least 64" in res.stderr
    assert not (tmp_path / "r" / "checkpoints").exists()


# ----------------------------------------------------------------------------- pretrained
def _random_resnet34_state(path: Path) -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(1)
    state = torchvision.models.resnet34(weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_resnet34_pretrained_from_cache_and_from_file(tmp_path: Path) -> None:
    from geocolor.models.pretrained import cache_path

    state = _random_resnet34_state(cache_path("resnet34"))
    net = build_network(SemanticSettings(arch="resnet34", img_size=32))
    expected_stem = state["conv1.weight"].sum(dim=1, keepdim=True)
    assert torch.allclose(net.encoder[0].weight, expected_stem)
    assert torch.equal(net.encoder[4][0].conv1.weight, state["layer1.0.conv1.weight"])
    other = tmp_path / "r34.pth"
    state2 = _random_resnet34_state(other)
    net2 = build_network(SemanticSettings(arch="resnet34", img_size=32, resnet_weights=str(other)))
    assert torch.equal(net2.encoder[4][0].conv1.weight, state2["layer1.0.conv1.weight"])


def test_train_resnet34_with_weights_file_via_cli(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=2)
    weights = tmp_path / "r34.pth"
    _random_resnet34_state(weights)
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(run), "--arch", "resnet34",
                                    "--resnet-weights", str(weights), "--img-size", "64", "--batch-size", "2",
                                    "--workers", "0", "--device", "cpu", "--max-steps", "1", "--val-fraction", "0"])
    assert res.exit_code == 0, res.output + str(res.exception)
    card = read_card(run / "model.model")
    assert card.arch == "segcolor-resnet34" and card.arch_args == {"n_classes": 2}
    assert str(weights) in card.training["encoder"]
    assert load_model(run / "model.model").network.multiple == 32


def test_missing_imagenet_weights_is_a_clear_error(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=2)
    runner = CliRunner()
    args = ["train", "semantic", str(data), "-o", str(tmp_path / "run"), "--arch", "resnet34",
            "--img-size", "64", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--max-steps", "1"]
    res = runner.invoke(main, args)
    assert res.exit_code == 1
    assert "ImageNet resnet34 weights not found" in res.stderr and "--no-pretrained" in res.stderr
    assert not (tmp_path / "run").exists()  # failed before writing anything
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "run"), "--arch", "resnet34",
                               "--resnet-weights", str(tmp_path / "nope.pth"), "--img-size", "64"])
    assert res.exit_code == 1 and "nope.pth" in res.stderr
    res = runner.invoke(main, [*args, "--no-pretrained"])
    assert res.exit_code == 0, res.output + str(res.exception)
    assert "from scratch" in read_card(tmp_path / "run" / "model.model").training["encoder"]


@requires_cuda
def test_amp_step_on_cuda(tmp_path: Path) -> None:  # pragma: no cover - GPU machines only
    data = _photos(tmp_path / "data", n=2)
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "run"), "--arch", "unet",
                                    "--base", "4", "--img-size", "32", "--batch-size", "2", "--workers", "0",
                                    "--device", "cuda", "--amp", "fp16", "--max-steps", "2"])
    assert res.exit_code == 0, res.output + str(res.exception)


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path: Path, torchrun_env: dict[str, str]) -> None:
    import subprocess
    import sys

    data = _photos(tmp_path / "data", n=4, masks=(0, 1))
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "geocolor", "-q", "train", "semantic", str(data), "-o", str(run), *TINY,
         "--epochs", "2", "--val-fraction", "0"],
        capture_output=True, text=True, env=torchrun_env, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines() == [str(run / "model.model")]  # rank 0 alone prints
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # 4 photos / 2 ranks / batch 2 = 1 step per epoch
    assert [r["step"] for r in records if r["type"] == "batch"] == [1, 2]
    assert load_model(run / "model.model").card.training["world_size"] == 2
