"""Runtime pieces: devices, RNG states, the epoch sampler, seeded items, checkpoints."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from geocolor.errors import ModelFileError, UsageError
from geocolor.train.checkpoint import find_resume_checkpoint, load_checkpoint, save_checkpoint
from geocolor.train.loop import EpochSampler, SeededItems, linear_decay
from geocolor.train.runtime import resolve_device, rng_state, set_rng_state


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(UsageError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    path = save_checkpoint(tmp_path / "c.ckpt", {"rng": state})
    loaded = torch.load(path, weights_only=True)  # no pickled objects in there
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ModelFileError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a geocolor checkpoint"):
        load_checkpoint(bad)
    torch.save({"a": torch.zeros(1)}, tmp_path / "foreign.ckpt")
    with pytest.raises(ModelFileError, match="not a geocolor checkpoint"):
        load_checkpoint(tmp_path / "foreign.ckpt")
    with pytest.raises(ModelFileError, match="nothing to resume"):
        find_resume_checkpoint(tmp_path)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "latest.ckpt", {"x": torch.ones(2)})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, {"x": torch.zeros(2)})
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.ckpt"]


def test_epoch_sampler_shards_like_distributed_sampler_and_resumes():
    full = EpochSampler(10, seed=0, epoch=3)
    assert sorted(i for i, _ in full) == list(range(10))
    assert [i for i, _ in full] != [i for i, _ in EpochSampler(10, seed=0, epoch=4)]
    r0 = EpochSampler(10, 0, 3, rank=0, world_size=3)
    r1 = EpochSampler(10, 0, 3, rank=1, world_size=3)
    r2 = EpochSampler(10, 0, 3, rank=2, world_size=3)
    assert len(r0) == len(r1) == len(r2) == 4
    assert {i for s in (r0, r1, r2) for i, _ in s} == set(range(10))
    tail = EpochSampler(10, 0, 3, start=4)
    assert list(tail) == list(full)[4:]
    assert len(EpochSampler(10, 0, 3, batch_size=4, drop_last=True)) == 8


def test_seeded_items_are_reproducible_and_restore_the_callers_rng():
    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return (np.random.rand(), random.random(), torch.rand(1).item())

    ds = SeededItems(Noise())
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = ds[(1, 1234)]
    assert torch.equal(torch.get_rng_state(), before)
    assert ds[(1, 1234)] == a and ds[(1, 99)] != a


def test_linear_decay():
    f = linear_decay(total_steps=10, decay_start_step=6)
    assert [f(s) for s in (0, 6, 8, 10, 12)] == [1.0, 1.0, 0.5, 0.0, 0.0]
