"""The generic driver with a toy (non-SAR) task: outputs, best, Ctrl-C, exact resume."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from geocolor.errors import UsageError
from geocolor.train.checkpoint import load_checkpoint
from geocolor.train.loop import TrainSettings, TrainTask, load_run_settings, run_training
from geocolor.train.tracking import MetricsLog


class Points(Dataset):
    def __init__(self, n: int, augment: bool) -> None:
        g = torch.Generator().manual_seed(n)
        self.x = torch.randn(n, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
        self.augment = augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i]
        if self.augment:  # uses numpy's global RNG: seeded per item by the driver
            x = x + float(np.random.normal(0, 0.01))
        return x, self.y[i]


class ToyTask(TrainTask):
    name = "toy"
    best_metric = "mse"
    best_mode = "min"
    plot_series = ("loss",)
    n_samples = 2

    def setup(self, runtime):
        self.nets = {"net": nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1)).to(runtime.device)}
        self.optimizers = {"net": torch.optim.Adam(self.nets["net"].parameters(), lr=0.05, betas=(0.5, 0.999))}

    def datasets(self):
        return Points(24, augment=True), Points(8, augment=False)

    def train_step(self, batch, ctx):
        x, y = (t.to(ctx.device) for t in batch)
        with ctx.autocast():
            loss = nn.functional.mse_loss(ctx.nets["net"](x).squeeze(1), y)
        opt = self.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.step(opt)
        return {"loss": loss.item()}

    def validate(self, loader, ctx):
        errs = [nn.functional.mse_loss(self.nets["net"](x).squeeze(1), y, reduction="sum") for x, y in loader]
        return {"mse": float(sum(errs)) / 8}

    def sample(self, batch, ctx):
        return np.zeros((8, 16, 3), np.uint8)

    def export(self, path, summary):
        torch.save({"state": self.nets["net"].state_dict(), "summary": json.dumps(summary)}, path)
        return path


SETTINGS = TrainSettings(data="toy", epochs=4, batch_size=4, workers=0, deterministic=True,
                         checkpoint_every=2, device="cpu")


def test_outputs_of_a_run(tmp_path):
    events = []
    result = run_training(ToyTask(), SETTINGS, tmp_path / "run", callback=lambda e, i: events.append(e),
                          command="toy")
    run = tmp_path / "run"
    assert result.steps == 4 * 6 and result.epochs == 4 and result.model_path == run / "model.model"
    names = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert {"config.toml", "metrics.jsonl", "loss_plot.png", "model.model", "samples/epoch-0001.png",
            "samples/epoch-0004.png", "checkpoints/latest.ckpt", "checkpoints/best.ckpt",
            "checkpoints/epoch-0002.ckpt", "checkpoints/epoch-0004.ckpt"} <= names
    records = MetricsLog.read(run / "metrics.jsonl")
    batches = [r for r in records if r["type"] == "batch"]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["step"] for r in batches] == list(range(1, 25)) and len(epochs) == 4
    assert epochs[-1]["val"]["mse"] < epochs[0]["val"]["mse"]
    assert epochs[-1]["best"]["value"] == min(e["val"]["mse"] for e in epochs)
    assert epochs[0]["train"]["loss"] == pytest.approx(np.mean([b["loss"] for b in batches[:6]]))
    assert epochs[-1]["lr"]["net"] == pytest.approx(0.0)  # linear decay to 0 at the end
    assert Image.open(run / "loss_plot.png").size == (800, 480)
    assert events[0] == "start" and events[-1] == "end" and events.count("epoch") == 4
    summary = json.loads(torch.load(run / "model.model", weights_only=True)["summary"])
    assert summary["steps"] == 24 and summary["command"] == "toy" and "mse" in summary["metrics"]
    ckpt = torch.load(run / "checkpoints/latest.ckpt", weights_only=True)
    assert set(ckpt) >= {"networks", "optimizers", "schedulers", "scaler", "rng", "counters"}


def test_refuses_to_overwrite_a_run(tmp_path):
    run_training(ToyTask(), dataclasses.replace(SETTINGS, epochs=1), tmp_path / "run")
    with pytest.raises(UsageError, match="already holds a training run; resume it"):
        run_training(ToyTask(), SETTINGS, tmp_path / "run")


@pytest.mark.parametrize("stop_after", [3, 6, 13])  # mid-epoch, at an epoch end, later mid-epoch
def test_ctrl_c_then_resume_equals_uninterrupted(tmp_path, stop_after):
    full = run_training(ToyTask(), SETTINGS, tmp_path / "full")

    def interrupt(event, info):
        if event == "batch" and info["step"] == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(ToyTask(), SETTINGS, tmp_path / "part", callback=interrupt)
    assert load_checkpoint(tmp_path / "part/checkpoints/latest.ckpt")["counters"]["step"] == stop_after
    resumed = run_training(ToyTask(), SETTINGS, tmp_path / "part", resume=True)
    assert resumed.steps == full.steps == 24
    a = load_checkpoint(tmp_path / "full/checkpoints/latest.ckpt")
    b = load_checkpoint(tmp_path / "part/checkpoints/latest.ckpt")
    for k, v in a["networks"]["net"].items():
        assert torch.equal(v, b["networks"]["net"][k]), k
    assert a["optimizers"]["net"]["state"][0]["exp_avg"].equal(b["optimizers"]["net"]["state"][0]["exp_avg"])
    # the log reads as one run: every step once
    steps = [r["step"] for r in MetricsLog.read(tmp_path / "part/metrics.jsonl") if r["type"] == "batch"]
    assert steps == list(range(1, 25))


def test_max_steps_then_resume_with_more(tmp_path):
    part = run_training(ToyTask(), dataclasses.replace(SETTINGS, max_steps=5), tmp_path / "run")
    assert part.steps == 5 and part.model_path is not None
    settings = load_run_settings(TrainSettings, tmp_path / "run", {"max_steps": 0})
    assert run_training(ToyTask(), settings, tmp_path / "run", resume=True).steps == 24


def test_resume_refuses_changes_that_break_exactness(tmp_path):
    run_training(ToyTask(), dataclasses.replace(SETTINGS, epochs=1), tmp_path / "run")
    with pytest.raises(UsageError, match="cannot change batch_size, seed"):
        load_run_settings(TrainSettings, tmp_path / "run", {"batch_size": 2, "seed": 5, "epochs": 9})
    assert load_run_settings(TrainSettings, tmp_path / "run", {"epochs": 9}).epochs == 9


def test_final_weights_best_exports_the_best_checkpoint(tmp_path):
    result = run_training(ToyTask(), dataclasses.replace(SETTINGS, final_weights="best"), tmp_path / "run")
    best = load_checkpoint(tmp_path / "run/checkpoints/best.ckpt")
    exported = torch.load(result.model_path, weights_only=True)["state"]
    assert all(torch.equal(v, best["networks"]["net"][k]) for k, v in exported.items())
    assert result.metrics == best["best"]["metrics"]


def test_clip_grad_norm_helper():
    from geocolor.train.loop import StepContext
    from geocolor.train.runtime import setup_runtime

    net = nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    (net(torch.ones(4, 3)) * 100).sum().backward()
    ctx = StepContext(setup_runtime("cpu"), {"net": net})
    before = ctx.clip_grad_norm(opt, 1.0)
    after = torch.norm(torch.stack([p.grad.norm() for p in net.parameters()]))
    assert before > 1.0 and after == pytest.approx(1.0, rel=1e-4)
