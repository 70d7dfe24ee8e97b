"""Inference backends: BatchNorm folding, torch vs ONNX Runtime, ONNX export, CUDA paths.

Tolerances: the float outputs of a folded / exported network agree with the plain
network within 1e-4 on [-1, 1] (float32 rounding; measured ~1e-6); the uint8
scenes agree within 1 DN (a float difference that straddles a rounding boundary
flips one DN).
"""

from __future__ import annotations

import builtins
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from colorize_fakes import DB_VV, db_scene, write_raster
from cuda_marks import requires_cuda

from geocolor.cli import main
from geocolor.infer.backend import (
    BACKENDS,
    OnnxRunner,
    TorchRunner,
    fold_batchnorm,
    make_runner,
    prepare_network,
)
from geocolor.infer.scene import colorize_scene
from geocolor.io.modelfile import ModelCard, load_model, save_model
from geocolor.models.unet import UNetGenerator

BN_ARGS = {
    "in_channels": 1,
    "out_channels": 3,
    "ngf": 4,
    "levels": 4,
    "norm": "batch",
    "dropout": 0.5,
}


def _bn_unet(seed: int = 0) -> UNetGenerator:
    """A tiny batch-norm U-Net with non-trivial running statistics, in eval mode."""
    torch.manual_seed(seed)
    net = UNetGenerator(**BN_ARGS)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 1, 64, 64) * 2 - 1)  # fills running_mean / running_var
    return net.eval()


@pytest.fixture(scope="module")
def bn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    card = ModelCard(
        kind="sar",
        arch="unet",
        arch_args=dict(BN_ARGS),
        input={"sar_scaling": dict(DB_VV), "tile_size": 64},
    )
    return save_model(tmp_path_factory.mktemp("m") / "bn.model", _bn_unet(), card)


def _needs_onnx() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")


def test_batchnorm_folding_keeps_the_output_and_the_callers_network() -> None:
    net = _bn_unet()
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    with torch.inference_mode():
        expected = net(x)
    prepared = prepare_network(net, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 2 + 3  # untouched
    with torch.inference_mode():
        got = prepared(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())


@pytest.mark.parametrize("antialias", [False, True])
def test_every_batchnorm_of_the_efficientnet_unet_is_folded(antialias: bool) -> None:
    """The packaged SAR model's architecture keeps its encoder's layers as attributes, not in
    an nn.Sequential: its blocks declare their conv -> BatchNorm pairs (48 of its 59)."""
    from geocolor.models.effunet import EffUNetGenerator

    torch.manual_seed(0)
    net = EffUNetGenerator(decoder_channels=(8, 8, 8, 8, 4), antialias=antialias)
    for m in net.modules():  # statistics a trained network would have, not the init's 0 / 1
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.inference_mode():
        expected = net(x)
    prepared = prepare_network(net, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())
    with torch.inference_mode():
        got = prepared(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())


def test_folding_leaves_other_layouts_alone() -> None:
    bn_first = torch.nn.Sequential(torch.nn.BatchNorm2d(2), torch.nn.Conv2d(2, 2, 3)).eval()
    training = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))  # train mode
    assert fold_batchnorm(bn_first) == 0
    assert fold_batchnorm(training.eval()) == 1
    assert isinstance(training[1], torch.nn.Identity)


def test_result_does_not_depend_on_batch_size_with_batchnorm(
    tmp_path: Path, bn_model: Path
) -> None:
    src = write_raster(tmp_path / "s.tif", db_scene(150, 190), descriptions=("VV", "VH"))
    outputs = []
    for batch in (1, 5):
        colorize_scene(src, tmp_path / f"o{batch}.tif", bn_model, batch_size=batch, device="cpu")
        with rasterio.open(tmp_path / f"o{batch}.tif") as ds:
            outputs.append(ds.read().astype(int))
    assert np.abs(outputs[0] - outputs[1]).max() <= 1
    assert (outputs[0] == outputs[1]).mean() > 0.999


def test_onnxruntime_backend_matches_torch_within_1_dn(tmp_path: Path, bn_model: Path) -> None:
    _needs_onnx()
    src = write_raster(tmp_path / "s.tif", db_scene(150, 190), descriptions=("VV", "VH"))
    outputs = {}
    for backend, batch in (("torch", 4), ("onnxruntime", 3)):
        out = tmp_path / f"{backend}.tif"
        r = CliRunner().invoke(
            main,
            [
                "-q",
                "colorize",
                str(src),
                "-o",
                str(out),
                "-m",
                str(bn_model),
                "--backend",
                backend,
                "--batch-size",
                str(batch),
                "--json",
            ],
        )
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["status"] == "ok"
        with rasterio.open(out) as ds:
            outputs[backend] = ds.read().astype(int)
    diff = np.abs(outputs["torch"] - outputs["onnxruntime"])
    assert diff.max() <= 1, diff.max()
    assert (diff == 0).mean() > 0.99


def test_export_writes_the_card_and_runs_like_torch(tmp_path: Path, bn_model: Path) -> None:
    _needs_onnx()
    import onnx

    out = tmp_path / "sub" / "bn.onnx"
    r = CliRunner().invoke(main, ["export", str(bn_model), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    card = json.loads(meta["geocolor_model_card"])
    assert (
        card["kind"] == "sar" and card["arch_args"] == BN_ARGS and card["input"]["tile_size"] == 64
    )

    loaded = load_model(bn_model)
    x = (torch.rand(5, 1, 64, 64) * 2 - 1).numpy()  # batch 5: the batch dimension is dynamic
    expected = TorchRunner(loaded.network, torch.device("cpu"))(x)
    got = OnnxRunner(str(out))(x)
    assert got.shape == (5, 3, 64, 64)
    assert np.abs(got - expected).max() < 1e-4

    again = CliRunner().invoke(main, ["export", str(bn_model), "-o", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    bad = CliRunner().invoke(main, ["export", str(bn_model), "-o", str(tmp_path / "x.tif")])
    assert bad.exit_code == 1 and ".onnx" in bad.stderr
    # an opset the installed onnx does not know: a usage error before any work (it wrote a
    # file at another opset, with a traceback and the exporter's graph dump on stdout)
    high = onnx.defs.onnx_opset_version() + 1
    bad = CliRunner().invoke(main, ["export", str(bn_model), "-o", str(tmp_path / "o.onnx"),
                                    "--opset", str(high)])
    assert bad.exit_code == 2 and f"--opset {high}: the installed onnx" in bad.stderr
    assert bad.stdout == "" and not (tmp_path / "o.onnx").exists()


def test_missing_onnxruntime_is_one_line_that_says_how_to_install(
    tmp_path: Path, bn_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_onnxruntime(name: str, *args, **kwargs):  # noqa: ANN002, ANN003 - builtins.__import__
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    src = write_raster(tmp_path / "s.tif", db_scene(40, 40), descriptions=("VV", "VH"))
    r = CliRunner().invoke(
        main,
        [
            "colorize",
            str(src),
            "-o",
            str(tmp_path / "o.tif"),
            "-m",
            str(bn_model),
            "--backend",
            "onnxruntime",
        ],
    )
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "pip install geocolor[onnx]" in errors[0], errors
    assert not (tmp_path / "o.tif").exists()


def test_cli_backend_choices_match_the_engine() -> None:
    from geocolor.cli import colorize

    assert colorize.BACKENDS == BACKENDS


def test_runners_are_made_once_per_network(bn_model: Path) -> None:
    net = load_model(bn_model).network
    cpu = torch.device("cpu")
    assert make_runner(net, "torch", cpu) is make_runner(net, "torch", cpu)


def _colorize_cli(src: Path, out: Path, model: Path, *extra: str):
    return CliRunner().invoke(main, ["colorize", str(src), "-o", str(out), "-m", str(model), "--device", "cpu",
                                     "--json", *extra])


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_runs_bfloat16_where_native_and_float32_elsewhere(
    tmp_path: Path, bn_model: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    # Whether this CPU has AMX is not up to the test: pretend both ways (torch emulates
    # bf16 on any CPU, so the bf16 path runs everywhere, only slower).
    import geocolor.infer.backend as backend

    monkeypatch.setattr(backend, "cpu_has_native_bf16", lambda: native)
    backend._warn_no_native_bf16.cache_clear()  # a fresh process: the warning not yet given
    src = write_raster(tmp_path / "s.tif", db_scene(150, 190), descriptions=("VV", "VH"))
    outputs, stderr = {}, ""
    for name, extra in (("fp32", ()), ("bf16", ("--cpu-bf16",))):
        r = _colorize_cli(src, tmp_path / f"{name}.tif", bn_model, *extra)
        assert r.exit_code == 0, r.output
        stderr += r.stderr
        with rasterio.open(tmp_path / f"{name}.tif") as ds:
            outputs[name] = ds.read().astype(int)
    diff = np.abs(outputs["fp32"] - outputs["bf16"])
    if native:
        assert diff.max() > 0  # bf16 did run
        assert diff.mean() < 1.0, diff.mean()  # and stays close to float32
        assert "no native bf16" not in stderr
    else:
        assert diff.max() == 0  # float32, and the user is told why
        assert "--cpu-bf16: this CPU has no native bf16" in stderr


def test_cpu_bf16_with_onnxruntime_is_bad_usage(tmp_path: Path, bn_model: Path) -> None:
    _needs_onnx()
    src = write_raster(tmp_path / "s.tif", db_scene(64, 64), descriptions=("VV", "VH"))
    r = _colorize_cli(src, tmp_path / "o.tif", bn_model, "--backend", "onnxruntime", "--cpu-bf16")
    assert r.exit_code == 2
    assert "--cpu-bf16 applies to the torch backend" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o.tif").exists()


def test_native_bf16_is_read_from_cpuinfo_where_torch_cannot_tell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geocolor.device import cpu_has_native_bf16

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):  # as in older torch
        monkeypatch.delattr(torch.cpu, probe, raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_tile amx_bf16\n")
    assert cpu_has_native_bf16(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(str(info))
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


cuda = requires_cuda


@cuda
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_matches_cpu(tmp_path: Path, bn_model: Path, amp: bool) -> None:
    """CUDA (pinned batches, channels_last, bf16/fp16 autocast with --amp) vs the CPU output."""
    src = write_raster(tmp_path / "s.tif", db_scene(150, 190), descriptions=("VV", "VH"))
    outputs = {}
    for device in ("cpu", "cuda"):
        colorize_scene(src, tmp_path / f"{device}.tif", bn_model, device=device, amp=amp)
        with rasterio.open(tmp_path / f"{device}.tif") as ds:
            outputs[device] = ds.read().astype(int)
    diff = np.abs(outputs["cpu"] - outputs["cuda"])
    # fp32 (TF32 off by default for convolutions? cuDNN may use it): a few DN at most;
    # bf16 autocast keeps ~3 significant digits: a few DN, rarely more
    assert np.percentile(diff, 99) <= (4 if amp else 1) and diff.max() <= (16 if amp else 2)


@cuda
def test_cuda_runner_takes_pinned_batches(bn_model: Path) -> None:
    runner = make_runner(load_model(bn_model).network, "torch", torch.device("cuda"))
    assert runner.pin_memory
    x = (torch.rand(2, 1, 64, 64) * 2 - 1).pin_memory()
    assert runner(x).shape == (2, 3, 64, 64)


def test_an_ensemble_exports_and_runs_like_torch(tmp_path: Path, bn_model: Path) -> None:
    """``geocolor average --of outputs`` files go through export and ONNX Runtime too."""
    _needs_onnx()
    from geocolor.train.average import ensemble_models

    card = load_model(bn_model).card
    other = save_model(tmp_path / "bn1.model", _bn_unet(seed=1), card)
    ensemble = ensemble_models([bn_model, other], tmp_path / "ens.model")
    r = CliRunner().invoke(main, ["export", str(ensemble), "-o", str(tmp_path / "ens.onnx")])
    assert r.exit_code == 0, r.output
    x = (torch.rand(3, 1, 64, 64) * 2 - 1).numpy()
    expected = TorchRunner(load_model(ensemble).network, torch.device("cpu"))(x)
    single = TorchRunner(load_model(bn_model).network, torch.device("cpu"))(x)
    assert np.abs(OnnxRunner(str(tmp_path / "ens.onnx"))(x) - expected).max() < 1e-4
    assert np.abs(expected - single).max() > 1e-3  # both members count
