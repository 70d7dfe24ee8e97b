"""Settings: defaults < TOML file < command line; unknown keys rejected; saved and reloaded."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from geocolor.config import resolve_settings, save_settings
from geocolor.errors import ConfigError


@dataclass(frozen=True)
class Demo:
    epochs: int = 10
    lr: float = 2e-4
    terrains: tuple[str, ...] = ()
    device: str = "auto"
    weights: str | None = None
    amp: bool = True


def test_defaults_file_and_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('epochs = 3\nlr = 1\nterrains = ["urban", "barren"]\n')
    s = resolve_settings(Demo, cfg, {"epochs": 5, "device": None})
    assert s == Demo(epochs=5, lr=1.0, terrains=("urban", "barren"))
    assert isinstance(s.lr, float)


def test_dashes_and_sections(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nepochs = 2\n")
    assert resolve_settings(Demo, cfg, section="train").epochs == 2


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("epoch = 3\n")
    with pytest.raises(ConfigError, match=r"c.toml: unknown setting 'epoch'; known settings: .*epochs"):
        resolve_settings(Demo, cfg)


def test_wrong_type_and_bad_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match="'epochs' = 'many' has the wrong type"):
        resolve_settings(Demo, cfg)
    cfg.write_text("epochs = \n")
    with pytest.raises(ConfigError, match="c.toml: not valid TOML"):
        resolve_settings(Demo, cfg)
    with pytest.raises(ConfigError, match="none.toml: config file not found"):
        resolve_settings(Demo, tmp_path / "none.toml")


def test_saved_settings_reload_identically(tmp_path: Path) -> None:
    s = Demo(epochs=7, lr=0.5, terrains=("a",), weights="w.pth", amp=False)
    save_settings(s, tmp_path / "config.toml")
    assert resolve_settings(Demo, tmp_path / "config.toml") == s
    save_settings(Demo(), tmp_path / "default.toml")  # None values are left out
    assert resolve_settings(Demo, tmp_path / "default.toml") == Demo()
