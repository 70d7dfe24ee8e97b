"""Sampling for exact resume: per-item seeds and the epoch sampler.

Every training item of every epoch gets its own seed from (seed, epoch,
position) (:func:`item_seed`), independent of DataLoader workers and DDP ranks;
:class:`SeededItems` seeds python, numpy and torch with it around the dataset's
``__getitem__``, so random crops and flips are reproducible, and
:class:`EpochSampler` yields the epoch's (index, seed) keys in a permutation that
depends only on (seed, epoch), from any position (a resumed epoch).
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def item_seed(seed: int, epoch: int, position: int, stream: int = 0) -> int:
    """A 63-bit seed for one item of one epoch (independent of workers and ranks).

    ``stream`` separates uses: 0 items, 1 the epoch permutation, 2 loader
    generators, 3 re-seeding of other ranks on resume.
    """
    entropy = [seed % 2**63, epoch % 2**63, stream, position % 2**63]
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint64)[0] >> np.uint64(1))


class EpochSampler(Sampler):
    """Shuffled (or ordered) keys ``(index, item_seed)`` for one epoch of one rank.

    The permutation depends only on (seed, epoch); under DDP it is padded to a
    multiple of ``world_size`` and sharded like ``DistributedSampler``. With
    ``drop_last`` each shard is cut to whole batches. ``start`` skips the first
    keys (resuming in the middle of an epoch).
    """

    def __init__(self, n: int, seed: int, epoch: int, *, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1, batch_size: int = 1, drop_last: bool = False, start: int = 0):
        if n == 0:
            self.keys: list[tuple[int, int]] = []
            return
        if shuffle:
            g = torch.Generator().manual_seed(item_seed(seed, epoch, 0, stream=1) % 2**62)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        total = math.ceil(n / world_size) * world_size
        order = (order * math.ceil(total / n))[:total]
        positions = list(range(rank, total, world_size))
        if drop_last and len(positions) >= batch_size:
            positions = positions[: len(positions) // batch_size * batch_size]
        self.keys = [(order[p], item_seed(seed, epoch, p)) for p in positions][start:]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class SeededItems(Dataset):
    """Wraps a dataset so ``dataset[(index, seed)]`` runs with python/numpy/torch seeded.

    The global RNG states of the calling process are restored afterwards, so
    loading in the training process (``workers=0``) does not disturb training.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


