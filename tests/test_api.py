"""The public Python API: one family with one set of conventions (issue 9)."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "infer"))
from colorize_fakes import db_scene, save_tiny_sar_model, save_tiny_semantic_model, write_raster  # noqa: E402

import geocolor  # noqa: E402
from geocolor.errors import OutputError  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"sar": save_tiny_sar_model(root / "sar.model"),
            "semantic": save_tiny_semantic_model(root / "semantic.model")}


def _photo(path: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 56), dtype=np.uint8)).save(path)
    return path


def test_exports() -> None:
    for name in ("load_model", "colorize_scene", "colorize_image", "ColorizeResult", "evaluate",
                 "train_sar", "train_semantic", "SarSettings", "SemanticSettings"):
        assert name in geocolor.__all__ and callable(getattr(geocolor, name)), name
    import importlib

    importlib.import_module("geocolor.evaluate")  # the submodule of that name does not hide the function
    assert callable(geocolor.evaluate)


def test_colorize_functions_share_their_conventions() -> None:
    scene = inspect.signature(geocolor.colorize_scene).parameters
    image = inspect.signature(geocolor.colorize_image).parameters
    assert list(scene)[:3] == list(image)[:3] == ["src", "dst", "model"]
    for name, default in (("model", None), ("device", "auto"), ("overwrite", False), ("progress", None),
                          ("preview", None)):
        assert scene[name].default == image[name].default == default, name
    assert inspect.signature(geocolor.colorize_scene).return_annotation in ("ColorizeResult",
                                                                             geocolor.ColorizeResult)
    assert inspect.signature(geocolor.colorize_image).return_annotation in ("ColorizeResult",
                                                                             geocolor.ColorizeResult)


@pytest.mark.parametrize("kind", ["sar", "semantic"])
def test_same_result_progress_and_overwrite_rule(tmp_path: Path, models: dict[str, Path], kind: str) -> None:
    if kind == "sar":
        src = write_raster(tmp_path / "s.tif", db_scene(70, 90), descriptions=("VV", "VH"))
        colorize, dst = geocolor.colorize_scene, tmp_path / "o.tif"
    else:
        src = _photo(tmp_path / "p.png")
        colorize, dst = geocolor.colorize_image, tmp_path / "o.png"
    calls: list[tuple[int, int]] = []
    result = colorize(src, dst, geocolor.load_model(models[kind]), device="cpu",
                      progress=lambda done, total: calls.append((done, total)))
    assert isinstance(result, geocolor.ColorizeResult)
    assert (result.kind, result.input, result.output) == (kind, str(src), str(dst))
    assert result.model == str(models[kind])
    assert (result.width, result.height) == ((90, 70) if kind == "sar" else (56, 40))
    assert result["output"] == str(dst) and result.to_dict()["kind"] == kind  # also a mapping
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] > 0
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    before = dst.stat().st_mtime_ns
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        colorize(src, dst, models[kind], device="cpu")  # a model file path works too
    assert dst.stat().st_mtime_ns == before
    assert colorize(src, dst, models[kind], device="cpu", overwrite=True).output == str(dst)


def test_model_none_and_names_mean_the_packaged_models(tmp_path: Path, models: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import geocolor.io.modelfile as modelfile

    monkeypatch.setattr(modelfile, "packaged_model_path", lambda kind: models[kind])
    photo = _photo(tmp_path / "p.png")
    assert geocolor.colorize_image(photo, tmp_path / "a.png").model == str(models["semantic"])
    assert geocolor.colorize_image(photo, tmp_path / "b.png", "semantic").kind == "semantic"
    assert geocolor.load_model("sar").card.kind == "sar"
    src = write_raster(tmp_path / "s.tif", db_scene(40, 40), descriptions=("VV", "VH"))
    assert geocolor.colorize_scene(src, tmp_path / "s_out.tif", device="cpu").model == str(models["sar"])


def test_old_colorize_image_order_still_works_with_a_warning(tmp_path: Path, models: dict[str, Path]) -> None:
    model = geocolor.load_model(models["semantic"])
    photo = _photo(tmp_path / "p.png")
    with pytest.warns(DeprecationWarning, match="colorize_image\\(src, dst, model\\)"):
        result = geocolor.colorize_image(model, photo, tmp_path / "o.png")
    assert result.output == str(tmp_path / "o.png")
