"""Model files: self-describing, exact round trip, safe to load, clear errors."""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from geocolor.errors import ModelFileError
from geocolor.io.modelfile import ModelCard, is_model_file, load_model, read_card, save_model
from geocolor.models.unet import UNetGenerator

ARGS = {"in_channels": 1, "out_channels": 3, "ngf": 4, "levels": 5}


def _card(**kw: object) -> ModelCard:
    base = dict(
        kind="sar",
        arch="unet",
        arch_args=ARGS,
        input={"sar_scaling": {"scheme": "db_clip", "polarisation": "VV"}, "tile_size": 64},
        training={"data": "tiny"},
        metrics={"psnr": 20.5},
    )
    base.update(kw)
    return ModelCard(**base)  # type: ignore[arg-type]


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = UNetGenerator(**ARGS)
    # Non-trivial BatchNorm statistics, so the round trip covers buffers too.
    net.train()
    net(torch.randn(2, 1, 64, 64))
    return save_model(tmp_path / "m.model", net, _card())


def test_round_trip_gives_identical_outputs(model_path: Path) -> None:
    torch.manual_seed(0)
    original = UNetGenerator(**ARGS)
    original.train()
    original(torch.randn(2, 1, 64, 64))
    original.eval()
    loaded = load_model(model_path)
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(original(x), loaded.network(x))
    assert not loaded.network.training
    assert loaded.card.input["tile_size"] == 64
    assert loaded.card.metrics == {"psnr": 20.5}
    assert loaded.card.created  # stamped on save
    assert read_card(model_path) == loaded.card


def test_half_precision_file_is_smaller_and_close(tmp_path: Path, model_path: Path) -> None:
    net = load_model(model_path).network
    half = save_model(tmp_path / "half.model", net, _card(), half=True)
    assert half.stat().st_size < 0.7 * model_path.stat().st_size
    loaded = load_model(half)
    assert loaded.card.weights_dtype == "float16"
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net(x), loaded.network(x), atol=2e-2)


def test_no_temporary_file_left_after_save(tmp_path: Path, model_path: Path) -> None:
    assert sorted(os.listdir(tmp_path)) == ["m.model"]


def test_failed_save_keeps_previous_file(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = model_path.read_bytes()

    def broken_save(obj: object, f: object) -> None:
        Path(f).write_bytes(b"half-written")  # type: ignore[arg-type]
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_model(model_path, UNetGenerator(**ARGS), _card())
    assert model_path.read_bytes() == before
    assert sorted(os.listdir(model_path.parent)) == ["m.model"]


class _RunsCode:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch PWNED",))


def test_file_crafted_to_run_code_is_refused_and_code_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.model"
    torch.save({"format": "geocolor-model", "format_version": 1, "card": "{}", "x": _RunsCode()}, evil)
    with pytest.raises(ModelFileError, match="evil.model: refused to load"):
        load_model(evil)
    assert not (tmp_path / "PWNED").exists()


def test_truncated_file(tmp_path: Path, model_path: Path) -> None:
    cut = tmp_path / "cut.model"
    cut.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="cut.model: .*(truncated|corrupt)"):
        load_model(cut)


def test_foreign_files(tmp_path: Path) -> None:
    bare = tmp_path / "bare.pt"
    torch.save(UNetGenerator(**ARGS).state_dict(), bare)
    with pytest.raises(ModelFileError, match="bare.pt: not a geocolor model file"):
        load_model(bare)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="notes.txt: not a geocolor model file"):
        load_model(text)
    with pytest.raises(ModelFileError, match="missing.model: model file not found"):
        load_model(tmp_path / "missing.model")
    pickled = tmp_path / "plain.pkl"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    assert not is_model_file(pickled)


def test_wrong_kind_is_refused(model_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a sar model, but a semantic model is needed"):
        load_model(model_path, kind="semantic")
    assert load_model(model_path, kind="sar").card.kind == "sar"


def test_weights_that_do_not_fit_the_card(tmp_path: Path) -> None:
    path = save_model(tmp_path / "x.model", UNetGenerator(**ARGS), _card(arch_args={**ARGS, "ngf": 8}))
    with pytest.raises(ModelFileError, match="x.model: weights do not fit architecture 'unet'") as err:
        load_model(path)
    assert "of another shape, e.g. " in str(err.value) and "in the file" in str(err.value)
    assert "damaged, or was written by another version" in str(err.value)


def test_weights_with_nan_or_infinity_are_refused(tmp_path: Path) -> None:
    """A damaged file (bytes overwritten) or a diverged run would colorize black, silently."""
    network = UNetGenerator(**ARGS)
    with torch.no_grad():
        next(network.parameters())[0].fill_(float("nan"))
    path = save_model(tmp_path / "nan.model", network, _card(), half=True)
    with pytest.raises(ModelFileError, match="nan.model: 1 weight tensor holds NaN or infinite") as err:
        load_model(path)
    assert "use another model file" in str(err.value)


def test_file_is_a_plain_torch_zip(model_path: Path) -> None:
    assert is_model_file(model_path)
    with zipfile.ZipFile(model_path) as zf:
        assert any(n.endswith("data.pkl") for n in zf.namelist())
