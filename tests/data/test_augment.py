"""Training augmentation: pairs stay aligned, SAR radiometry jitters, epochs replay exactly."""
from __future__ import annotations

import numpy as np

from geocolor.data.augment import PairAugment, jitter_sar
from geocolor.data.paired import PairedDataset, find_pairs


def _pair(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    sar = rng.integers(0, 256, (size, size), dtype=np.uint8)
    return sar, np.repeat(sar[..., None], 3, axis=2)


def test_geometry_moves_sar_and_optical_together() -> None:
    sar, opt = _pair()
    seen = set()
    for seed in range(40):
        np.random.seed(seed)
        a, b = PairAugment(dihedral=True, scale=0.3)(sar, opt, 16)
        assert a.shape == (16, 16) and b.shape == (16, 16, 3)
        assert np.array_equal(a, b[..., 0]) and np.array_equal(b[..., 0], b[..., 2])
        seen.add(a.tobytes())
    assert len(seen) >= 8  # the eight dihedral transforms (and more with rescaling) all occur


def test_sar_jitter_changes_only_the_sar_and_keeps_its_order() -> None:
    sar, opt = _pair()
    np.random.seed(1)
    a, b = PairAugment(dihedral=False, gain=0.5, gamma=0.5)(sar, opt, 16)
    assert np.array_equal(b, opt) and not np.array_equal(a, sar)
    order = np.argsort(sar, axis=None, kind="stable")
    assert np.all(np.diff(a.ravel()[order].astype(int)) >= 0)  # monotone: structure kept
    assert np.array_equal(jitter_sar(sar, 1.0, 1.0), sar)
    assert jitter_sar(np.array([[100]], np.uint8), 2.0, 1.0)[0, 0] == 200
    assert jitter_sar(np.array([[200]], np.uint8), 2.0, 1.0)[0, 0] == 255


def test_augmented_training_items_replay_under_the_same_seed(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(2)
    for sub in ("sar", "opt"):
        (tmp_path / sub).mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(tmp_path / "sar" / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "opt" / f"{i}.png")
    pairs = find_pairs(tmp_path).pairs
    ds = PairedDataset(pairs, 32, train=True, augment=PairAugment(gain=0.3, gamma=0.2, scale=0.2))
    np.random.seed(5)
    first = ds[1]
    np.random.seed(5)
    again = ds[1]
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(first, again))
    val = PairedDataset(pairs, 32, train=False, augment=PairAugment(gain=0.3))
    assert val.augment is None  # validation crops are never augmented
