"""``geocolor train``: user errors are one clean line (issue 9 items 8 and the wandb extra)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from geocolor.cli import main

SMOKE = ["--max-steps", "1", "--ngf", "4", "--ndf", "4", "--img-size", "32", "--batch-size", "2",
         "--workers", "0", "--device", "cpu"]


class _Evil:
    """Unpickling this runs code: what a crafted .pth does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _one_line(r, code: int) -> str:
    assert r.exit_code == code, (r.exit_code, r.output)
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_crafted_pickle_as_vgg_weights_is_refused_in_one_line(kaggle_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "vgg16-evil.pth"
    torch.save({"features.0.weight": _Evil(marker)}, evil)
    r = CliRunner().invoke(main, ["-q", "train", "sar", str(kaggle_dir), "-o", str(tmp_path / "run"),
                                  "--vgg-weights", str(evil), *SMOKE])
    line = _one_line(r, 1)
    assert str(evil) in line and "refused to load" in line and "could run code" in line
    assert "weights_only" not in line
    assert not marker.exists()


def test_wandb_without_the_package_says_how_to_install(kaggle_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    r = CliRunner().invoke(main, ["-q", "train", "sar", str(kaggle_dir), "-o", str(tmp_path / "run"),
                                  "--lambda-content", "0", "--wandb", *SMOKE])
    line = _one_line(r, 1)
    assert "pip install 'geocolor[wandb]'" in line
    assert not (tmp_path / "run" / "model.model").exists()
