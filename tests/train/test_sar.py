"""``train sar``: losses, one step, exact resume, W&B offline, DDP, CLI and its errors."""
from __future__ import annotations

import glob
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from cuda_marks import requires_cuda

from geocolor import metrics
from geocolor.cli import main
from geocolor.data.paired import find_pairs, split_by_group
from geocolor.data.split import read_split
from geocolor.errors import ConfigError, PretrainedWeightsError
from geocolor.io.modelfile import load_model
from geocolor.models.perceptual import VGGPerceptualLoss
from geocolor.train.checkpoint import load_checkpoint
from geocolor.train.runtime import setup_runtime
from geocolor.train.sar import SarSettings, SarTask, prepare_sar_task, train_sar

TINY = ["--arch", "unet", "--img-size", "32", "--ngf", "4", "--ndf", "4", "--batch-size", "2", "--lambda-content", "0",
        "--val-fraction", "0.34"]


def tiny(data: Path, **kw) -> SarSettings:
    base = dict(data=str(data), arch="unet", content_net="vgg16", img_size=32, ngf=4, ndf=4,
                batch_size=2, epochs=2, workers=0,
                lambda_content=0.0, val_fraction=0.34, device="cpu")
    return SarSettings(**{**base, **kw})


def _task(data: Path, content: bool = False, **kw) -> SarTask:
    settings = tiny(data, lambda_content=2.5 if content else 0.0, **kw)
    ps = find_pairs(data)
    train, val = split_by_group(ps.pairs, settings.val_fraction, 0)
    loss = VGGPerceptualLoss(pretrained=False) if content else None  # random features: plumbing only
    task = SarTask(settings, ps, train, val, "kaggle-vv-db", content_loss=loss)
    task.setup(setup_runtime("cpu"))
    return task


def _batch(task: SarTask):
    train, _ = task.datasets()
    items = [train[i] for i in range(2)]
    return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


def test_every_loss_term_is_present_with_its_weight(kaggle_dir):
    torch.manual_seed(0)
    task = _task(kaggle_dir, content=True, lambda_cycle=3.0, lambda_l1=7.0)
    task.train_mode(False)  # no dropout: the same forward twice
    A, B = _batch(task)
    total, terms, fakes = task.generator_losses(A, B, task.nets)
    assert set(terms) == {"adv_AB", "cycle_A", "l1", "content", "adv_BA", "cycle_B"}
    assert task.weights == {"adv_AB": 1.0, "cycle_A": 3.0, "l1": 7.0, "content": 2.5, "grad": 0.0, "ssim": 0.0,
                            "shift": 0.0, "sharp": 0.0, "adv_BA": 1.0, "cycle_B": 3.0}
    expected = (terms["adv_AB"] + 3 * terms["cycle_A"] + 7 * terms["l1"] + 2.5 * terms["content"]
                + terms["adv_BA"] + 3 * terms["cycle_B"])
    assert torch.allclose(total, expected)
    # the terms are what the issue defines
    g_ab, g_ba = task.nets["G_AB"], task.nets["G_BA"]
    with torch.no_grad():
        assert torch.allclose(terms["cycle_A"], (g_ba(g_ab(A)) - A).abs().mean())
        assert torch.allclose(terms["cycle_B"], (g_ab(g_ba(B)) - B).abs().mean())
        assert torch.allclose(terms["l1"], (g_ab(A) - B).abs().mean())
        logits = task.nets["D_Y"](A, fakes["fake_B"])
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        assert torch.allclose(terms["adv_AB"], bce)
    d = task.discriminator_losses(A, B, fakes["fake_A"], fakes["fake_B"], task.nets)
    assert set(d) == {"loss_D_Y", "loss_D_X"}
    # lsgan swaps the adversarial criterion
    ls = _task(kaggle_dir, gan_loss="lsgan")
    logits = torch.tensor([[0.5, -1.0]])
    assert torch.allclose(ls.gan(logits, True), ((logits - 1) ** 2).mean())


def test_one_step_reduces_a_fixed_batch_loss(kaggle_dir):
    torch.manual_seed(0)
    task = _task(kaggle_dir, dropout=0.0, lr_gen=1e-3, lr_disc=1e-3)
    A, B = _batch(task)
    from geocolor.train.loop import StepContext

    ctx = StepContext(setup_runtime("cpu"), dict(task.nets))

    def l1_now() -> float:
        with torch.no_grad():
            return float(task.generator_losses(A, B, task.nets)[1]["l1"])

    before = l1_now()
    losses = task.train_step((A, B), ctx)
    assert set(losses) >= {"loss_G", "loss_D", "l1", "adv_AB", "cycle_A", "cycle_B", "adv_BA"}
    assert l1_now() < before
    assert all(p.grad is not None for p in task.nets["D_Y"].parameters())  # D stepped too


def test_exact_resume_through_the_cli(kaggle_dir, tmp_path):
    runner = CliRunner()
    args = [str(kaggle_dir), *TINY, "--epochs", "3", "--deterministic", "--workers", "0", "--seed", "5"]
    full = runner.invoke(main, ["-q", "train", "sar", *args, "-o", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    part = runner.invoke(main, ["-q", "train", "sar", *args, "-o", str(tmp_path / "part"), "--max-steps", "5"])
    assert part.exit_code == 0, part.output
    resumed = runner.invoke(main, ["-q", "train", "sar", "--resume", str(tmp_path / "part"), "--max-steps", "0"])
    assert resumed.exit_code == 0, resumed.output
    a = load_checkpoint(tmp_path / "full/checkpoints/latest.ckpt")
    b = load_checkpoint(tmp_path / "part/checkpoints/latest.ckpt")
    assert a["counters"]["step"] == b["counters"]["step"] == 12
    for net in ("G_AB", "G_BA", "D_Y", "D_X"):
        for k, v in a["networks"][net].items():
            assert torch.equal(v, b["networks"][net][k]), (net, k)
    wa = load_model(tmp_path / "full/model.model").network.state_dict()
    wb = load_model(tmp_path / "part/model.model").network.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _wandb_records(run_dir: Path):
    """Decode the offline run file (LevelDB-style log of protobuf records), as far as it is written."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb

    paths = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    if len(paths) != 1:
        return
    data = Path(paths[0]).read_bytes()
    if data[:4] != b":W&B":
        return
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):
            return  # a record still being written
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            try:
                record.ParseFromString(buf)
            except DecodeError:
                return
            buf = b""
            yield record


def _wandb_offline_run(run_dir: Path) -> dict[str, Any]:
    """What the offline run holds: history/summary/config keys, artifacts, run names, media files."""
    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    found: dict[str, Any] = {"history": set(), "summary": set(), "config": set(), "artifacts": [],
                             "names": set()}
    for r in _wandb_records(run_dir):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            found["history"] |= {key(i) for i in r.history.item}
        elif kind == "summary":
            found["summary"] |= {key(i) for i in r.summary.update}
        elif kind == "artifact":
            found["artifacts"].append((r.artifact.type, r.artifact.name))
        elif kind == "run":
            found["names"].add((r.run.display_name, r.run.project))
            found["config"] |= {key(i) for i in r.run.config.update}
    found["media"] = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "files" / "media" / "images" / "*.png"))
    return found


def _complete(found: dict[str, Any]) -> bool:
    return (
        {"train/loss_G", "train/loss_D", "train/l1", "train/cycle_A", "epoch/loss_G", "epoch/loss_D",
         "val/psnr", "val/ssim", "val/l1", "lr/G", "lr/D"} <= found["history"]
        and {"samples/_type", "loss_plot/_type"} <= found["history"]  # images
        and {"lambda_l1", "ngf", "img_size", "data"} <= found["config"]
        and {"val/psnr"} <= found["summary"]
        and ("checkpoint", "sar-checkpoint") in found["artifacts"]
        and ("model", "sar-model") in found["artifacts"]
        and any("samples" in m for m in found["media"]) and any("loss_plot" in m for m in found["media"])
    )


def test_wandb_offline_logs_config_losses_metrics_images_artifacts(kaggle_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    run = tmp_path / "run"
    with caplog.at_level("INFO", logger="geocolor"):
        train_sar(tiny(kaggle_dir, wandb=True, wandb_project="p", wandb_run_name="tiny-run", log_every=1), run)
    assert "no login found" in caplog.text and "logging offline" in caplog.text
    # W&B's service process may still be flushing the offline run file on a loaded machine
    # (issue 9 item 12): read it until everything is there, for up to two minutes.
    deadline = time.monotonic() + 120
    found = _wandb_offline_run(run)
    while not _complete(found) and time.monotonic() < deadline:
        time.sleep(0.5)
        found = _wandb_offline_run(run)
    assert found["names"] == {("tiny-run", "p")}
    assert {"train/loss_G", "train/loss_D", "train/l1", "train/cycle_A",
            "epoch/loss_G", "epoch/loss_D", "val/psnr", "val/ssim", "val/l1", "lr/G", "lr/D"} <= found["history"]
    assert {"samples/_type", "loss_plot/_type"} <= found["history"]
    assert {"lambda_l1", "ngf", "img_size", "data"} <= found["config"]
    assert {"val/psnr"} <= found["summary"]
    assert ("checkpoint", "sar-checkpoint") in found["artifacts"]
    assert ("model", "sar-model") in found["artifacts"]
    assert any("samples" in m for m in found["media"]) and any("loss_plot" in m for m in found["media"])


def test_wandb_never_prompts_without_a_login(tmp_path, monkeypatch, caplog):
    from geocolor.train.tracking import WandbTracker

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level("INFO", logger="geocolor"):
        tracker = WandbTracker(tmp_path, "p", None, {"a": 1})
    try:
        assert tracker.mode == "offline" and "no login found" in caplog.text
    finally:
        tracker.finish()


def test_diverged_run_stops_with_one_clear_line(kaggle_dir, tmp_path, monkeypatch):
    """Losses that turn NaN stop the run after NONFINITE_LIMIT steps, instead of training on."""
    from geocolor.models.gradloss import SsimLoss
    from geocolor.train.trainer import NONFINITE_LIMIT

    monkeypatch.setattr(SsimLoss, "forward", lambda self, pred, target: pred.sum() * float("nan"))
    run = tmp_path / "run"
    args = ["train", "sar", str(kaggle_dir), "-o", str(run), "--max-steps", "8", *TINY,
            "--workers", "0", "--lambda-ssim", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert "training diverged at step 1" in lines[-1] and "ssim" in lines[-1]
    assert "Traceback" not in result.stderr
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["type"] == "batch"] == list(range(1, NONFINITE_LIMIT + 1))
    assert not (run / "model.model").exists()


@requires_cuda
def test_bf16_amp_steps_on_cuda_stay_finite(kaggle_dir, tmp_path):  # pragma: no cover - GPU only
    """The precision the first H100 runs diverged in: bf16 autocast with the SSIM loss."""
    run = tmp_path / "run"
    args = ["train", "sar", str(kaggle_dir), "-o", str(run), "--max-steps", "6", *TINY,
            "--workers", "0", "--device", "cuda", "--amp", "bf16", "--lambda-ssim", "150",
            "--lambda-grad", "300"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    batches = [r for r in steps if r["type"] == "batch"]
    assert len(batches) == 6 and all(isinstance(r["ssim"], float) for r in batches)


def test_cli_end_to_end_max_steps_4_and_info(kaggle_dir, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(main, ["train", "sar", str(kaggle_dir), "-o", str(run), "--max-steps", "4",
                                  *TINY, "--workers", "1"])
    assert result.exit_code == 0, result.output
    model = Path(result.stdout.strip().splitlines()[-1])
    assert model == run / "model.model" and model.is_file()
    info = runner.invoke(main, ["info", "--json", str(model)])
    assert info.exit_code == 0, info.output
    card = json.loads(info.stdout)["card"]
    assert card["kind"] == "sar" and card["arch"] == "unet"
    assert card["arch_args"] == {"in_channels": 1, "out_channels": 3, "ngf": 4, "levels": 5,
                                 "norm": "batch", "dropout": 0.5}
    assert card["input"]["sar_scaling"]["name"] == "kaggle-vv-db"
    assert card["input"]["sar_scaling"]["scheme"] == "db_clip"
    assert card["input"]["tile_size"] == 32 and card["input"]["in_channels"] == 1
    assert card["training"]["steps"] == 4 and card["training"]["data"]["layout"] == "kaggle"
    assert "--max-steps 4" in card["training"]["command"]
    assert "no pretrained net used" in card["training"]["losses"]["content_loss"]
    assert set(card["metrics"]) == {"l1", "psnr", "ssim"}
    for name in ("config.toml", "metrics.jsonl", "split.json", "checkpoints/latest.ckpt"):
        assert (run / name).is_file(), name
    split = read_split(run / "split.json")
    assert split.version == 2 and split.kind == "sar" and split.ids("train") and split.ids("val")
    assert not set(split.groups("train")) & set(split.groups("val"))


def test_config_file_with_cli_overrides_and_saved_config(kaggle_dir, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\narch = "unet"\nngf = 4\nndf = 4\nimg-size = 32\nlambda_content = 0\nlambda_l1 = 50\n'
                   'batch_size = 2\nworkers = 0\n')
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["-q", "train", "sar", str(kaggle_dir), "-o", str(run), "--config", str(cfg),
                                       "--lambda-l1", "60", "--max-steps", "1", "--terrain", "urban",
                                       "--limit-per-terrain", "5", "--val-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    saved = (run / "config.toml").read_text()
    assert "lambda_l1 = 60.0" in saved and "ngf = 4" in saved and f'data = "{kaggle_dir}"' in saved
    assert 'terrains = ["urban"]' in saved and "limit_per_terrain = 5" in saved
    data = load_model(run / "model.model").card.training["data"]
    assert data["terrains"] == ["urban"] and data["pairs"] == 5 and data["per_terrain"] == {"urban": 5}


def test_bad_config_key_is_a_clear_error(kaggle_dir, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("lamda_l1 = 3\n")
    result = CliRunner().invoke(
        main, ["train", "sar", str(kaggle_dir), "-o", str(tmp_path / "r"), "--config", str(cfg)])
    assert result.exit_code == 2
    assert "c.toml: unknown setting 'lamda_l1'" in result.output
    assert not (tmp_path / "r").exists()


def test_no_data_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["train", "sar", str(tmp_path / "empty"), "-o", str(tmp_path / "r"), *TINY])
    assert result.exit_code == 1
    assert "geocolor: error:" in result.output and "no training pairs found: looked for" in result.output
    assert not (tmp_path / "r").exists()


def test_missing_vgg_weights_is_a_clear_error(kaggle_dir, tmp_path):
    runner = CliRunner()
    args = ["train", "sar", str(kaggle_dir), "-o", str(tmp_path / "r"), "--arch", "unet", "--img-size", "32",
            "--ngf", "4", "--content-net", "vgg16"]
    result = runner.invoke(main, args)  # lambda_content defaults to > 0; no VGG16 in the empty cache
    assert result.exit_code == 1
    assert "ImageNet vgg16 weights not found" in result.output
    assert "--lambda-content 0" in result.output
    assert not (tmp_path / "r").exists()
    result = runner.invoke(main, args + ["--vgg-weights", str(tmp_path / "vgg.pth")])
    assert result.exit_code == 1 and "vgg16 weights file not found" in result.output
    with pytest.raises(PretrainedWeightsError):
        prepare_sar_task(tiny(kaggle_dir, lambda_content=1.0))
    with pytest.raises(PretrainedWeightsError, match="efficientnet-lite0"):  # auto: VGG16, then Lite0
        prepare_sar_task(tiny(kaggle_dir, lambda_content=1.0, content_net="auto"))


def test_resume_and_output_errors(kaggle_dir, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    assert runner.invoke(main, ["-q", "train", "sar", str(kaggle_dir), "-o", str(run), *TINY, "--max-steps", "1",
                                "--workers", "0"]).exit_code == 0
    again = runner.invoke(main, ["train", "sar", str(kaggle_dir), "-o", str(run), *TINY, "--workers", "0"])
    assert again.exit_code == 2 and "already holds a training run; resume it" in again.output
    changed = runner.invoke(main, ["train", "sar", "--resume", str(run), "--ngf", "8"])
    assert changed.exit_code == 2 and "cannot change ngf" in changed.output
    missing = runner.invoke(main, ["train", "sar", "--resume", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "not a geocolor run directory" in missing.output


@pytest.mark.slow
def test_two_process_gloo_ddp(kaggle_dir, tmp_path, torchrun_env):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "geocolor", "-q", "train", "sar", str(kaggle_dir), "-o", str(run), *TINY,
         "--epochs", "2", "--workers", "0", "--device", "cpu"],
        capture_output=True, text=True, env=torchrun_env, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines == [str(run / "model.model")]  # rank 0 alone prints (and writes)
    ckpt = load_checkpoint(run / "checkpoints" / "latest.ckpt")
    # 8 training chips / 2 ranks / batch 2 = 2 steps per epoch
    assert ckpt["counters"]["step"] == 4 and ckpt["counters"]["epoch"] == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "batch"] == [1, 2, 3, 4]
    assert load_model(run / "model.model").card.training["world_size"] == 2


@pytest.mark.slow
def test_sigint_saves_a_resumable_checkpoint(kaggle_dir, tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "geocolor", "train", "sar", str(kaggle_dir), "-o", str(run), *TINY,
         "--epochs", "500", "--workers", "0", "--sample-every", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "metrics.jsonl").is_file():
            time.sleep(0.2)
        while time.time() < deadline and len((run / "metrics.jsonl").read_text().splitlines()) < 3:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "resume with --resume" in err and out == ""
    step = load_checkpoint(run / "checkpoints" / "latest.ckpt")["counters"]["step"]
    assert step >= 3
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "batch"]
    assert steps[-1] == step  # the checkpoint holds the last logged step



def test_folders_layout_trains_on_random_crops_with_its_scaling(folders_dir, tmp_path):
    result = train_sar(tiny(folders_dir, max_steps=3, val_fraction=0.25, crops_per_image=3), tmp_path / "run")
    card = load_model(result.model_path).card
    assert card.input["sar_scaling"]["name"] == "s1s2la-vh-amplitude"
    assert card.input["sar_scaling"]["scheme"] == "amplitude_percentile"
    data = card.training["data"]
    assert data["layout"] == "folders" and data["train_pairs"] == 3 and data["val_pairs"] == 1
    assert len(read_split(tmp_path / "run" / "split.json").ids("val")) == 1


def test_without_validation_split(kaggle_dir, tmp_path):
    result = train_sar(tiny(kaggle_dir, val_fraction=0.0, epochs=1), tmp_path / "run")
    assert result.metrics == {} and result.steps == 6  # 12 chips / batch 2
    assert (tmp_path / "run" / "samples" / "epoch-0001.png").is_file()  # from training items
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    assert load_model(result.model_path).card.training["data"]["val_pairs"] == 0


def test_pretrained_efficientnet_generator_trains_exports_and_loads(kaggle_dir, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from efficientnet_fakes import imagenet_like_state as _imagenet_like_state

    weights = tmp_path / "lite0.pth"
    torch.save(_imagenet_like_state(), weights)
    settings = tiny(kaggle_dir, arch="unet-efficientnet", encoder_weights=str(weights),
                    decoder_channels=(8, 8, 8, 8, 4), freeze_levels=2, lambda_cycle=0.0, max_steps=2,
                    gain_jitter=0.3, gamma_jitter=0.2, scale_jitter=0.2, rotate_jitter=30.0,
                    antialias=True, half=True)
    result = train_sar(settings, tmp_path / "run")
    model = load_model(result.model_path)
    card = model.card
    assert card.arch == "unet-efficientnet" and card.arch_args["decoder_channels"] == [8, 8, 8, 8, 4]
    assert card.training["losses"]["encoder_init"] == "ImageNet efficientnet-lite0"
    assert card.training["losses"]["frozen_encoder_levels"] == 2 and card.training["losses"]["dual"] is False
    assert card.training["losses"]["augment"]["rotate"] == 30.0  # the card says how it was trained
    assert card.arch_args["antialias"] is True and model.network.encoder.antialias  # rebuilt as trained
    stem = torch.load(weights, weights_only=True)["_conv_stem.weight"].sum(1, keepdim=True)
    assert torch.allclose(model.network.encoder._conv_stem.weight.float(), stem, atol=1e-2)  # frozen, fp16-stored
    with torch.no_grad():
        out = model.network.float()(torch.zeros(1, 1, 32, 32))
    assert out.shape == (1, 3, 32, 32)


def test_no_pretrained_encoder_needs_no_weights_and_dual_mode_trains_g_ba(kaggle_dir, tmp_path):
    settings = tiny(kaggle_dir, arch="unet-efficientnet", pretrained=False, decoder_channels=(4, 4, 4, 4, 4),
                    max_steps=1)
    task = prepare_sar_task(settings, tmp_path / "run")
    task.setup(setup_runtime("cpu"))
    assert set(task.nets) == {"G_AB", "G_BA", "D_Y", "D_X"}
    assert task.nets["G_BA"].encoder.in_channels == 3


def test_without_adversarial_loss_no_discriminator_is_built_or_stepped(kaggle_dir, tmp_path):
    settings = tiny(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, max_steps=2)
    task = prepare_sar_task(settings, tmp_path / "run")
    task.setup(setup_runtime("cpu"))
    assert set(task.nets) == {"G_AB"} and set(task.optimizers) == {"G"}
    result = train_sar(settings, tmp_path / "run2")
    losses = load_model(result.model_path).card.training["losses"]
    assert losses["lambda_adv"] == 0.0 and losses["dual"] is False


def test_structure_loss_term_is_weighted_and_steps_the_generator(kaggle_dir):
    torch.manual_seed(0)
    task = _task(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, lambda_l1=2.0, lambda_grad=5.0, lambda_ssim=3.0)
    task.train_mode(False)
    A, B = _batch(task)
    total, terms, _ = task.generator_losses(A, B, task.nets)
    assert set(terms) == {"l1", "grad", "ssim"}
    assert torch.allclose(total, 2 * terms["l1"] + 5 * terms["grad"] + 3 * terms["ssim"])
    assert float(terms["grad"].detach()) > 0
    with torch.no_grad():
        fake = task.nets["G_AB"](A)
    expected = 1 - metrics.ssim((fake + 1) / 2, (B + 1) / 2).mean()
    assert float(terms["ssim"].detach()) == pytest.approx(float(expected), abs=1e-4)


def test_sharpness_floor_term_is_weighted_and_recorded_in_the_card(kaggle_dir, tmp_path):
    task = _task(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, lambda_l1=2.0, lambda_sharp=7.0,
                 sharp_floor=5.0)
    task.train_mode(False)
    A, B = _batch(task)
    total, terms, _ = task.generator_losses(A, B, task.nets)
    # a floor of 5x the real images' edge energy: always short of it
    assert set(terms) == {"l1", "sharp"} and float(terms["sharp"].detach()) > 0
    assert torch.allclose(total, 2 * terms["l1"] + 7 * terms["sharp"])
    with pytest.raises(ConfigError, match="sharp_floor"):
        tiny(kaggle_dir, sharp_floor=0.0).validate()
    settings = tiny(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, lambda_sharp=7.0, sharp_floor=0.9,
                    max_steps=1)
    losses = load_model(train_sar(settings, tmp_path / "run").model_path).card.training["losses"]
    assert (losses["lambda_sharp"], losses["sharp_floor"]) == (7, 0.9)


def test_shift_consistency_term_is_weighted_recorded_and_needs_a_crop_that_fits(kaggle_dir, tmp_path):
    task = _task(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, lambda_l1=2.0, lambda_shift=11.0, img_size=128,
                 levels=5)
    task.train_mode(False)
    A, B = _batch(task)
    torch.manual_seed(3)
    total, terms, _ = task.generator_losses(A, B, task.nets)
    assert set(terms) == {"l1", "shift"} and float(terms["shift"].detach()) > 0
    assert torch.allclose(total, 2 * terms["l1"] + 11 * terms["shift"])
    torch.manual_seed(3)  # the shift is drawn from the global (checkpointed) generator: replayable
    assert torch.equal(task.generator_losses(A, B, task.nets)[1]["shift"], terms["shift"])
    with pytest.raises(ConfigError, match="--lambda-shift"):
        tiny(kaggle_dir, lambda_shift=1.0, img_size=64).validate()
    settings = tiny(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, lambda_shift=11.0, img_size=128, levels=5,
                    max_steps=1)
    assert load_model(train_sar(settings, tmp_path / "run").model_path).card.training["losses"]["lambda_shift"] == 11


def test_init_from_starts_the_generator_from_a_model_file(kaggle_dir, tmp_path):
    base = dict(arch="unet-efficientnet", pretrained=False, decoder_channels=(4, 4, 4, 4, 4), lambda_adv=0.0,
                lambda_cycle=0.0, max_steps=1)
    first = train_sar(tiny(kaggle_dir, **base), tmp_path / "a")
    task = prepare_sar_task(tiny(kaggle_dir, **base, init_from=str(first.model_path), seed=7), tmp_path / "b")
    task.setup(setup_runtime("cpu"))
    start = load_model(first.model_path).network.state_dict()
    assert all(torch.equal(v, start[k]) for k, v in task.nets["G_AB"].state_dict().items())
    card = load_model(train_sar(task.settings, tmp_path / "c").model_path).card
    assert card.training["losses"]["init_from"] == first.model_path.name


def test_init_from_another_architecture_is_one_clear_line(kaggle_dir, tmp_path):
    first = train_sar(tiny(kaggle_dir, lambda_cycle=0.0, lambda_adv=0.0, max_steps=1), tmp_path / "a")
    result = CliRunner().invoke(main, ["train", "sar", str(kaggle_dir), "-o", str(tmp_path / "b"),
                                       "--arch", "unet-efficientnet", "--no-pretrained",
                                       "--lambda-content", "0", "--init-from", str(first.model_path),
                                       "--max-steps", "1"])
    assert result.exit_code == 2, result.output
    assert "--init-from needs a model of this run's architecture" in result.output
    assert str(first.model_path) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()
    # 'sar' names the packaged model here too (it was "sar: model file not found")
    result = CliRunner().invoke(main, ["train", "sar", str(kaggle_dir), "-o", str(tmp_path / "b"),
                                       "--arch", "unet", "--init-from", "sar",
                                       "--lambda-content", "0", "--max-steps", "1"])
    assert result.exit_code == 2 and "sar: --init-from needs" in result.output, result.output
    assert "--init-from needs a model of this run's architecture" in result.output


def test_grad_scales_reach_the_loss_and_bad_ones_are_refused(kaggle_dir, tmp_path):
    task = _task(kaggle_dir, lambda_adv=0.0, lambda_cycle=0.0, lambda_grad=1.0, grad_scales=(2, 4))
    assert task.grad_loss.scales == (2, 4)
    with pytest.raises(ConfigError, match="grad_scales"):
        tiny(kaggle_dir, grad_scales=(0,)).validate()
    result = CliRunner().invoke(main, ["train", "sar", str(kaggle_dir), "-o", str(tmp_path / "r"), *TINY,
                                       "--grad-scales", "2,x", "--max-steps", "1"])
    assert result.exit_code == 2 and "--grad-scales" in result.output
    assert not (tmp_path / "r").exists()


def test_bilinear_decoder_fine_tunes_a_nearest_model_and_is_recorded(kaggle_dir, tmp_path):
    base = dict(arch="unet-efficientnet", pretrained=False, decoder_channels=(4, 4, 4, 4, 4), lambda_adv=0.0,
                lambda_cycle=0.0, max_steps=1)
    first = train_sar(tiny(kaggle_dir, **base), tmp_path / "a")
    assert "upsample" not in load_model(first.model_path).card.arch_args  # older cards stay readable
    settings = tiny(kaggle_dir, **base, init_from=str(first.model_path), decoder_upsample="bilinear")
    task = prepare_sar_task(settings, tmp_path / "b")
    task.setup(setup_runtime("cpu"))
    start = load_model(first.model_path).network
    net = task.nets["G_AB"]
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in net.state_dict().items())
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():  # same weights, other up-sampling: another (smoother) output
        assert not torch.allclose(net.eval()(x), start.eval()(x))
    model = load_model(train_sar(settings, tmp_path / "c").model_path)
    assert model.card.arch_args["upsample"] == "bilinear"
    assert model.network.decoder.blocks[0].upsample == "bilinear"
    with pytest.raises(ConfigError, match="decoder_upsample"):
        tiny(kaggle_dir, decoder_upsample="bicubic").validate()


def test_a_lee_filter_fine_tunes_a_model_without_one(kaggle_dir, tmp_path):
    base = dict(arch="unet-efficientnet", pretrained=False, decoder_channels=(4, 4, 4, 4, 4), lambda_adv=0.0,
                lambda_cycle=0.0, max_steps=1)
    first = train_sar(tiny(kaggle_dir, **base), tmp_path / "a")
    settings = tiny(kaggle_dir, **base, init_from=str(first.model_path), speckle_filter="lee")
    task = prepare_sar_task(settings, tmp_path / "b")
    task.setup(setup_runtime("cpu"))
    start = load_model(first.model_path).network
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in task.nets["G_AB"].state_dict().items())
    model = load_model(train_sar(settings, tmp_path / "c").model_path)
    assert model.card.arch_args["speckle_filter"] == "lee"
    assert type(model.network.speckle).__name__ == "LeeFilter"  # inference filters too
    narrower = tiny(kaggle_dir, **{**base, "decoder_channels": (4, 4, 4, 4, 8)}, init_from=str(first.model_path))
    with pytest.raises(ConfigError, match="--init-from needs a model of this run's architecture"):
        prepare_sar_task(narrower, tmp_path / "d")
