"""CPU inference memory: freed batches are reused, not faulted back in; default batch sizes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from colorize_fakes import db_scene, save_tiny_sar_model, write_raster

from geocolor.infer import heap
from geocolor.infer.sarmodel import DEFAULT_BATCH_SIZE, default_batch_size
from geocolor.infer.scene import colorize_scene

ROOT = Path(__file__).resolve().parents[2]

# Allocates and frees 64 MB (one large activation of a batch) twelve times, with torch
# (whose CPU allocator, unlike numpy's, asks for no huge pages), and prints the page
# faults of the last three: the steady state of a long run. (glibc reuses the block
# once its per-size cache of the small remainders that aligned allocations leave is
# full, after ~7 rounds.)
REUSE_PROBE = """
import json, resource, torch
from geocolor.infer.heap import keep_freed_memory
kept = keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
last = []
for _ in range(12):
    f0 = faults()
    a = torch.ones(64 << 20, dtype=torch.uint8); del a
    last = (last + [faults() - f0])[-3:]
print(json.dumps({"kept": kept, "faults": last}))
"""


def _probe(env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GEOCOLOR_MALLOC_TUNING", None)
    env.update(env_extra, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", REUSE_PROBE], env=env, capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(heap._libc() is None, reason="glibc only")
def test_a_freed_batch_is_reused_instead_of_faulted_back_in() -> None:
    tuned = _probe({})
    assert tuned["kept"] is True
    assert max(tuned["faults"]) < 1000  # 64 MB of fresh pages would be 16384 faults
    untouched = _probe({"GEOCOLOR_MALLOC_TUNING": "0"})
    assert untouched["kept"] is False
    assert min(untouched["faults"]) > 10000  # glibc's default: a fresh mapping every time


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append((-99, pad))  # -99: a trim
        return 1


@pytest.fixture
def fake_libc(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLibc]:
    fake = FakeLibc()
    monkeypatch.setattr(heap, "_libc", lambda: fake)
    for name in list(os.environ):
        if name.startswith("MALLOC_") or name == "GEOCOLOR_MALLOC_TUNING":
            monkeypatch.delenv(name)
    heap.keep_freed_memory.cache_clear()
    yield fake
    heap.keep_freed_memory.cache_clear()  # later callers see the real setting again


def test_settings_are_applied_once_per_process(fake_libc: FakeLibc) -> None:
    assert heap.keep_freed_memory() is True
    assert heap.keep_freed_memory() is True
    assert fake_libc.calls == [(heap.M_MMAP_MAX, 0), (heap.M_TRIM_THRESHOLD, heap.TRIM_THRESHOLD)]


@pytest.mark.parametrize("name, value", [("GEOCOLOR_MALLOC_TUNING", "0"), ("MALLOC_ARENA_MAX", "2"),
                                         ("MALLOC_MMAP_THRESHOLD_", "131072")])
def test_a_user_choice_of_allocator_settings_is_kept(
    fake_libc: FakeLibc, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert heap.keep_freed_memory() is False
    assert fake_libc.calls == []


def test_default_batch_size_on_the_cpu_is_one_large_tile_or_a_pixel_budget() -> None:
    assert default_batch_size(512, "cpu") == 1
    assert default_batch_size(2048, "cpu") == 1
    assert default_batch_size(384, "cpu") == 3
    assert default_batch_size(256, "cpu") == 8
    assert default_batch_size(128, "cpu") == 32
    assert default_batch_size(64, "cpu") == 32  # capped
    assert default_batch_size(512, "cuda") == DEFAULT_BATCH_SIZE


def test_scene_reports_the_batch_size_it_used(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "in.tif", db_scene(96, 96, bands=1))
    model = save_tiny_sar_model(tmp_path / "m.model", tile_size=32)
    result = colorize_scene(src, tmp_path / "o.tif", model, device="cpu")
    assert result.details["batch_size"] == default_batch_size(32, "cpu") == 32
    result = colorize_scene(src, tmp_path / "p.tif", model, device="cpu", batch_size=3)
    assert result.details["batch_size"] == 3


def test_a_batch_never_trims_the_heap_and_a_scene_alone_does_after_it(
    fake_libc: FakeLibc, tmp_path: Path
) -> None:
    """Trimming after each input made a batch of 256-px chips 17 % slower (the next input
    faults the memory back in), and the CLI's process exits after its last input; an API
    call or the GUI still gives the memory back after a scene."""
    from click.testing import CliRunner

    from geocolor.cli import main

    model = save_tiny_sar_model(tmp_path / "tiny.model")
    (tmp_path / "in").mkdir()
    scenes = [write_raster(tmp_path / "in" / f"s{i}.tif", db_scene(40, 50, seed=i),
                           descriptions=("VV", "VH")) for i in range(3)]
    r = CliRunner().invoke(main, ["-q", "colorize", str(tmp_path / "in"), "-o",
                                  str(tmp_path / "out"), "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert sum(call[0] == -99 for call in fake_libc.calls) == 0
    with heap.deferred_release():  # an API user's batch: one trim, at its end
        for scene in scenes:
            colorize_scene(scene, tmp_path / f"api_{scene.name}", model, device="cpu")
    assert sum(call[0] == -99 for call in fake_libc.calls) == 1
    fake_libc.calls.clear()
    colorize_scene(scenes[0], tmp_path / "one.tif", model, device="cpu")
    assert sum(call[0] == -99 for call in fake_libc.calls) == 1
