"""Training augmentation: pairs stay aligned, SAR radiometry jitters, epochs replay exactly."""
from __future__ import annotations

import numpy as np

from geocolor.data.augment import PairAugment, jitter_sar, rotate_pair, rotation_source_side
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
    ds = PairedDataset(pairs, 32, train=True, augment=PairAugment(gain=0.3, gamma=0.2, scale=0.2, rotate=45))
    np.random.seed(5)
    first = ds[1]
    np.random.seed(5)
    again = ds[1]
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(first, again))
    val = PairedDataset(pairs, 32, train=False, augment=PairAugment(gain=0.3))
    assert val.augment is None  # validation crops are never augmented


def test_rotation_turns_a_street_grid_and_leaves_no_empty_corner() -> None:
    """A horizontal line through the centre comes out at the drawn angle; both images alike."""
    n = rotation_source_side(64, 30)
    sar = np.full((n, n), 40, np.uint8)
    sar[n // 2 - 1:n // 2 + 1, :] = 250  # one bright east-west street
    opt = np.repeat(sar[..., None], 3, axis=2)
    a, b = rotate_pair(sar, opt, 30)
    assert a.shape[0] >= 64 and a.shape == b.shape[:2]
    assert a.min() >= 35  # every output pixel came from inside the source: no black corners
    assert np.abs(a.astype(int) - b[..., 0]).max() == 0
    ys, xs = np.nonzero(a > 150)
    slope = np.polyfit(xs - a.shape[1] / 2, ys - a.shape[0] / 2, 1)[0]
    assert abs(np.degrees(np.arctan(-slope)) - 30) < 3  # counter-clockwise, image rows down


def test_rotated_training_crops_come_at_many_angles_and_stay_aligned(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for sub in ("sar", "opt"):
        (tmp_path / sub).mkdir()
    sar = rng.integers(1, 256, (96, 96), dtype=np.uint8)
    Image.fromarray(sar).save(tmp_path / "sar" / "0.png")
    Image.fromarray(np.repeat(sar[..., None], 3, axis=2)).save(tmp_path / "opt" / "0.png")
    aug = PairAugment(dihedral=False, rotate=45)
    ds = PairedDataset(find_pairs(tmp_path).pairs, 32, train=True, crops_per_image=1, augment=aug)
    angles = set()
    for seed in range(12):
        np.random.seed(seed)
        angles.add(round(aug.angle(), 3))
        np.random.seed(seed)
        a, b = ds[0]
        assert a.shape == (1, 32, 32) and b.shape == (3, 32, 32)
        assert float((a[0] - b[0]).abs().max()) < 1e-6
        assert float(a.min()) > -1.0  # no zero-filled corner (the source has no 0)
    assert len(angles) == 12 and max(abs(x) for x in angles) <= 45


def test_no_rotation_draws_nothing_so_older_runs_replay() -> None:
    np.random.seed(7)
    assert PairAugment(rotate=0).angle() == 0.0
    after = np.random.random()
    np.random.seed(7)
    assert np.random.random() == after


def test_rotation_of_a_chip_no_larger_than_the_crop_still_fills_the_crop(tmp_path) -> None:
    from PIL import Image

    for sub in ("sar", "opt"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(tmp_path / "sar" / "0.png")
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "opt" / "0.png")
    aug = PairAugment(dihedral=False, rotate=45)
    ds = PairedDataset(find_pairs(tmp_path).pairs, 32, train=True, crops_per_image=1, augment=aug)
    for seed in range(6):
        np.random.seed(seed)
        a, b = ds[0]
        assert a.shape == (1, 32, 32) and b.shape == (3, 32, 32)
        assert float(a.min()) > -0.35 and float(b.min()) > -0.35  # 90 -> -0.29; an empty corner is -1
