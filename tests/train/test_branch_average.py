"""Branching a run from a checkpoint with a new seed, and averaging model weights (a model soup)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from geocolor.cli import main
from geocolor.errors import ModelFileError
from geocolor.io.modelfile import ModelCard, load_model, read_card, save_model
from geocolor.models.segcolor import SegColorUNet
from geocolor.train.average import average_models

TINY = ["--arch", "unet", "--base", "4", "--img-size", "32", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--sample-every", "0", "--val-fraction", "0"]


def _photos(root: Path, n: int = 4) -> Path:
    (root / "raw").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = (rng.random((40, 44, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / "raw" / f"p{i}.png")
    return root


def _batch_steps(run: Path) -> list[int]:
    rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r["step"] for r in rows if r["type"] == "batch"]


def _weights(path: Path) -> torch.Tensor:
    net = load_model(path).network
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.fixture(scope="module")
def parent_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny semantic run of 3 epochs (2 steps each) with a checkpoint after every epoch."""
    root = tmp_path_factory.mktemp("branch")
    data = _photos(root / "data")
    run = root / "parent"
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(run), *TINY,
                                    "--epochs", "3", "--checkpoint-every", "1", "--seed", "1"])
    assert res.exit_code == 0, res.output + str(res.exception)
    return run


def test_a_branch_continues_the_checkpoint_with_its_own_seed(parent_run: Path, tmp_path: Path) -> None:
    branch = tmp_path / "b"
    res = CliRunner().invoke(main, ["train", "semantic", "--branch",
                                    str(parent_run / "checkpoints" / "epoch-0001.ckpt"),
                                    "-o", str(branch), "--seed", "7"])
    assert res.exit_code == 0, res.output + str(res.exception)
    assert Path(res.stdout.strip().splitlines()[-1]) == branch / "model.model"
    assert "resuming" in res.stderr and "epoch 2, step 2" in res.stderr
    # the same run from the checkpoint on: steps 3-6 after the parent's 1-2, same split
    assert _batch_steps(branch) == _batch_steps(parent_run) == [1, 2, 3, 4, 5, 6]
    assert (branch / "split.json").read_text() == (parent_run / "split.json").read_text()
    card, parent_card = read_card(branch / "model.model"), read_card(parent_run / "model.model")
    assert card.training["settings"]["seed"] == 7 and parent_card.training["settings"]["seed"] == 1
    assert card.training["steps"] == parent_card.training["steps"] == 6
    assert card.arch_args == parent_card.arch_args
    assert "--branch" in card.training["command"] and "--seed 7" in card.training["command"]
    assert "seed = 7" in (branch / "config.toml").read_text()
    # another data order from epoch 2 on: other weights, but the branch can be resumed as usual
    assert not torch.equal(_weights(branch / "model.model"), _weights(parent_run / "model.model"))
    res = CliRunner().invoke(main, ["train", "semantic", "--resume", str(branch), "--epochs", "4"])
    assert res.exit_code == 0, res.output + str(res.exception)
    assert _batch_steps(branch) == [1, 2, 3, 4, 5, 6, 7, 8]


def test_branch_refuses_what_would_not_be_a_branch(parent_run: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = str(parent_run / "checkpoints" / "epoch-0001.ckpt")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(main, ["train", "semantic", *args])
        return res.exit_code, res.stderr

    code, err = run("--branch", ckpt, "-o", str(tmp_path / "b"))
    assert code == 2 and "give a --seed other than the run's (1)" in err
    code, err = run("--branch", ckpt, "-o", str(tmp_path / "b"), "--seed", "1")
    assert code == 2 and "--seed other than" in err
    code, err = run("--branch", ckpt, "-o", str(tmp_path / "b"), "--seed", "2", "--lr", "0.1")
    assert code == 2 and "cannot change lr" in err
    code, err = run("--branch", ckpt, "--seed", "2")
    assert code == 2 and "--branch needs -o RUN_DIR" in err
    code, err = run("--branch", ckpt, "--resume", str(parent_run), "--seed", "2")
    assert code == 2 and "not --resume" in err
    code, err = run("--branch", ckpt, "-o", str(parent_run), "--seed", "2")
    assert code == 2 and "already holds a training run" in err
    stray = tmp_path / "stray.ckpt"
    stray.write_bytes((parent_run / "checkpoints" / "epoch-0001.ckpt").read_bytes())
    code, err = run("--branch", str(stray), "-o", str(tmp_path / "b"), "--seed", "2")
    assert code == 1 and "not a checkpoint inside a run directory" in err
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, err = run("--branch", ckpt, "-o", str(tmp_path / "b"), "--seed", "2")
    assert code == 2 and "without torchrun" in err
    assert not (tmp_path / "b").exists()


def _tiny_model(path: Path, fill: float | None, base: int = 4, half: bool = False) -> Path:
    torch.manual_seed(0)
    net = SegColorUNet(n_classes=2, base=base)
    if fill is not None:
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(fill)
    card = ModelCard(kind="semantic", arch="segcolor-unet", arch_args={"n_classes": 2, "base": base},
                     input={"image_size": 32}, training={"settings": {"seed": int(fill or 0)}, "steps": 5},
                     metrics={"psnr": 30.0})
    return save_model(path, net, card, half=half)


def test_average_is_the_mean_of_the_weights(tmp_path: Path) -> None:
    paths = [_tiny_model(tmp_path / f"m{i}.model", fill, half=True) for i, fill in enumerate((1.0, 2.0, 6.0))]
    out = average_models(paths, tmp_path / "soup.model")
    soup = load_model(out)
    for p in soup.network.parameters():
        assert torch.allclose(p, torch.full_like(p, 3.0))
    # BatchNorm running statistics are averaged too (all members start from the same here)
    first = load_model(paths[0]).network.state_dict()
    for key, value in soup.network.state_dict().items():
        if "running_" in key:
            assert torch.allclose(value, first[key])
    assert soup.card.weights_dtype == "float16"
    assert soup.card.metrics == {}  # the members' figures do not describe the average
    members = soup.card.training["averaged_from"]
    assert [m["file"] for m in members] == [str(p) for p in paths]
    assert [m["seed"] for m in members] == [1, 2, 6]


def test_average_refuses_other_architectures_and_single_models(tmp_path: Path) -> None:
    a = _tiny_model(tmp_path / "a.model", 1.0)
    b = _tiny_model(tmp_path / "b.model", 2.0, base=8)
    with pytest.raises(ModelFileError, match=r"b\.model: its arch_args differs"):
        average_models([a, b], tmp_path / "soup.model")
    runner = CliRunner()
    res = runner.invoke(main, ["average", str(a), "-o", str(tmp_path / "soup.model")])
    assert res.exit_code == 2 and "two or more model files" in res.stderr
    res = runner.invoke(main, ["average", str(a), str(b), "-o", str(tmp_path / "soup.model")])
    assert res.exit_code == 1 and "arch_args differs" in res.stderr
    assert not (tmp_path / "soup.model").exists()
    c = _tiny_model(tmp_path / "c.model", 3.0)
    res = runner.invoke(main, ["average", str(a), str(c), "-o", str(tmp_path / "out" / "soup.model")])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(tmp_path / "out" / "soup.model")
    res = runner.invoke(main, ["average", str(a), str(c), "-o", str(tmp_path / "out" / "soup.model")])
    assert res.exit_code == 1 and "exists; pass --overwrite" in res.stderr
    assert "--skip-existing" not in res.stderr  # not an option of this command
    res = runner.invoke(main, ["average", str(a), str(c), "-o", str(c), "--overwrite"])
    assert res.exit_code == 1 and "output is the input file" in res.stderr
    res = runner.invoke(main, ["average", str(a), str(tmp_path / "." / "a.model"), "-o",
                               str(tmp_path / "x.model")])
    assert res.exit_code == 2 and "the same model as" in res.stderr
    # a photo model and the packaged SAR model: told apart by their kind
    res = runner.invoke(main, ["average", str(a), "sar", "-o", str(tmp_path / "x.model")])
    assert res.exit_code == 1 and "is a sar model" in res.stderr
    assert "only models of one kind can be averaged" in res.stderr


def test_an_ensemble_averages_its_members_outputs(tmp_path: Path) -> None:
    """--of outputs: one file holding every member; its colours are the mean of theirs."""
    paths = []
    for i in range(3):
        torch.manual_seed(i)  # independent members: weights that could not be averaged
        net = SegColorUNet(n_classes=2, base=4)
        card = ModelCard(kind="semantic", arch="segcolor-unet", arch_args={"n_classes": 2, "base": 4},
                         input={"image_size": 32}, classes=["bg", "fg"], training={"steps": i})
        paths.append(save_model(tmp_path / f"s{i}.model", net, card, half=True))
    res = CliRunner().invoke(main, ["average", *map(str, paths), "--of", "outputs",
                                    "-o", str(tmp_path / "ens.model")])
    assert res.exit_code == 0, res.output
    ensemble = load_model(tmp_path / "ens.model")
    assert ensemble.card.arch == "ensemble" and ensemble.card.kind == "semantic"
    assert ensemble.card.arch_args == {"member_arch": "segcolor-unet",
                                       "member_args": {"n_classes": 2, "base": 4}, "members": 3}
    assert ensemble.card.training["averaged"] == "outputs"
    assert ensemble.card.training["averaged_by"].startswith(f"geocolor average {' '.join(map(str, paths))} ")
    assert "--of outputs" in ensemble.card.training["averaged_by"]
    assert [m["steps"] for m in ensemble.card.training["averaged_from"]] == [0, 1, 2]
    assert ensemble.card.weights_dtype == "float16" and ensemble.card.classes == ["bg", "fg"]
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    members = [load_model(p).network for p in paths]
    with torch.no_grad():
        logits, ab = ensemble.network(x)
        outs = [m(x) for m in members]
    assert torch.allclose(ab, torch.stack([o[1] for o in outs]).mean(0), atol=1e-6)
    assert torch.allclose(logits, torch.stack([o[0] for o in outs]).mean(0), atol=1e-5)
    assert not torch.allclose(ab, outs[0][1], atol=1e-3)
    # it colorizes a photo like any semantic model
    from geocolor.infer.image import colorize_image

    photo = _photos(tmp_path / "data", n=1) / "raw" / "p0.png"
    info = colorize_image(photo, tmp_path / "out.png", ensemble)
    assert (info["width"], info["height"]) == (44, 40)
    # an ensemble is not a member
    res = CliRunner().invoke(main, ["average", str(tmp_path / "ens.model"), str(paths[0]),
                                    "--of", "outputs", "-o", str(tmp_path / "ens2.model")])
    assert res.exit_code == 1 and "is an ensemble already" in res.stderr


def test_a_sar_ensemble_colorizes_a_scene(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from geocolor.infer.scene import colorize_scene
    from geocolor.models.unet import UNetGenerator

    args = {"in_channels": 1, "out_channels": 3, "ngf": 4, "levels": 5}
    db_vv = {"scheme": "db_clip", "polarisation": "VV", "db_min": -25.0, "db_max": 0.0}
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        card = ModelCard(kind="sar", arch="unet", arch_args=args,
                         input={"tile_size": 64, "sar_scaling": db_vv})
        paths.append(save_model(tmp_path / f"g{i}.model", UNetGenerator(**args), card))
    from geocolor.train.average import ensemble_models

    ensemble = load_model(ensemble_models(paths, tmp_path / "ens.model"), kind="sar")
    scene = tmp_path / "scene.tif"
    with rasterio.open(scene, "w", driver="GTiff", width=100, height=90, count=1, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(np.random.default_rng(0).normal(-15, 4, (1, 90, 100)).astype(np.float32))
    colorize_scene(scene, tmp_path / "out.tif", ensemble)
    with rasterio.open(tmp_path / "out.tif") as out:
        assert (out.count, out.width, out.height) == (3, 100, 90) and out.crs.to_epsg() == 32633
