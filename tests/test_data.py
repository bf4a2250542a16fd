"""Built-in datasets: shapes, determinism, normalisation, planted ground truth, errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from memcurv.data.loading import load_dataset


def test_digits_split_is_stratified_deterministic_and_normalised():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.x_train.shape == (1437, 1, 8, 8) and a.x_test.shape == (360, 1, 8, 8) and a.num_classes == 10
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_train, load_dataset("digits", seed=1).y_train)
    assert abs(a.x_train.mean().item()) < 1e-4 and abs(a.x_train.std().item() - 1) < 1e-3
    share = np.bincount(a.y_train.numpy()) / 1437
    np.testing.assert_allclose(share, np.bincount(a.y_test.numpy()) / 360, atol=0.01)
    img = a.images([0, 5])
    assert img.shape == (2, 8, 8, 1) and img.min() >= 0 and img.max() <= 1


def test_synthetic_plants_atypical_and_mislabeled_examples():
    ds = load_dataset("synthetic", seed=3, n_train=500, num_classes=4, atypical_fraction=0.04,
                      mislabeled_fraction=0.02)
    assert torch.equal(ds.x_train, load_dataset("synthetic", seed=3, n_train=500, num_classes=4,
                                                atypical_fraction=0.04, mislabeled_fraction=0.02).x_train)
    atyp, mis = ds.ground_truth["atypical"], ds.ground_truth["mislabeled"]
    assert len(atyp) == 20 and len(mis) == 10 and not set(atyp) & set(mis)
    # a mislabeled image sits next to typical images of another class: its nearest typical neighbour disagrees
    typical = np.setdiff1d(np.arange(500), np.concatenate([atyp, mis]))
    flat = ds.x_train.flatten(1)
    nearest = typical[torch.cdist(flat[mis], flat[typical]).argmin(1).numpy()]
    assert (ds.y_train[nearest] != ds.y_train[mis]).all()
    # an atypical image is far from every typical one
    d_atyp = torch.cdist(flat[atyp], flat[typical]).min(1).values
    d_typ = torch.cdist(flat[typical[:50]], flat[typical[50:]]).min(1).values
    assert d_atyp.min() > d_typ.median()


def test_unknown_dataset_and_option_errors_name_them():
    with pytest.raises(ValueError, match="mnist"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="bogus"):
        load_dataset("digits", bogus=1)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.5)


@pytest.mark.parametrize("fraction", [0.2, 0.05, 0.25, 1 / 3, 0.5, 0.77])
def test_digits_train_size_is_what_the_split_keeps(fraction):
    from memcurv.data.datasets import digits

    assert digits.train_size({"test_fraction": fraction}) == len(digits._split(0, fraction).y_train)


def test_digits_split_read_from_its_cache_is_the_split_and_skips_sklearn(tmp_path):
    fresh = load_dataset("digits", seed=3)
    cached = load_dataset("digits", seed=3, cache_dir=tmp_path)  # drawn, and kept
    assert len(list(tmp_path.glob("digits-seed3-*.npz"))) == 1
    script = ("import sys; from memcurv.data.loading import load_dataset; "
              f"ds = load_dataset('digits', seed=3, cache_dir={str(tmp_path)!r}); "
              "import torch; torch.save((ds.x_train, ds.y_train, ds.x_test, ds.y_test), sys.argv[1]); "
              "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "read.pt")], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
    for ds in (cached, torch.load(tmp_path / "read.pt", weights_only=True)):
        tensors = ds if isinstance(ds, tuple) else (ds.x_train, ds.y_train, ds.x_test, ds.y_test)
        for a, b in zip(tensors, (fresh.x_train, fresh.y_train, fresh.x_test, fresh.y_test), strict=True):
            assert torch.equal(a, b)
