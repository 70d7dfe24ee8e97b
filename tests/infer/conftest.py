"""Fixtures of the inference tests: tiny model files saved once per session."""
from __future__ import annotations

from pathlib import Path

import pytest
from colorize_fakes import AMP_VH, save_tiny_sar_model, save_tiny_semantic_model


@pytest.fixture(scope="session")
def sar_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained tiny SAR model: VV, dB clipped to [-25, 0], 64-px tiles."""
    return save_tiny_sar_model(tmp_path_factory.mktemp("models") / "tiny_vv_db.model")


@pytest.fixture(scope="session")
def sar_model_vh_amplitude(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained tiny SAR model: VH amplitude / scene p99."""
    return save_tiny_sar_model(tmp_path_factory.mktemp("models") / "tiny_vh_amp.model", AMP_VH)


@pytest.fixture(scope="session")
def semantic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_semantic_model(tmp_path_factory.mktemp("models") / "tiny_semantic.model")
