"""C-scores (Jiang et al., ICML 2021) mapped to the project's example ids: the md5, the labels, the within-class
rank mapping, and one-line errors for a missing or wrong file."""

from pathlib import Path

import numpy as np
import pytest
from shared_data import archive_or_skip

from memcurv import cli
from memcurv.analysis import cscores


def _fabricated(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A file in the official format: labels interleaved as CIFAR-10's are, 5,000 of each class."""
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(10), 5000))
    scores = rng.random(50_000)
    np.savez(path, labels=labels, scores=scores)
    return labels, scores


def test_class_major_ids_map_to_the_official_order_by_within_class_rank(tmp_path):
    labels, scores = _fabricated(tmp_path / "c.npz")
    ours = np.repeat(np.arange(10), 3)  # class-major, the first 3 of each class (cifar10_jpeg's order)
    got = cscores.load_cscores(tmp_path / "c.npz", ours, verify_checksum=False)
    want = np.concatenate([scores[np.flatnonzero(labels == c)[:3]] for c in range(10)])
    np.testing.assert_array_equal(got, want)
    # a dataset in the official order itself maps to the file as it is
    np.testing.assert_array_equal(cscores.load_cscores(tmp_path / "c.npz", labels, verify_checksum=False), scores)


@pytest.mark.parametrize("problem, message", [
    ("missing", "not found"), ("md5", "damaged or another file"), ("counts", "5000 labels of each"),
    ("range", "outside"), ("garbage", "cannot be read"), ("labels", "CIFAR-10's 10 classes")])
def test_a_missing_or_wrong_file_stops_with_one_line_naming_it(tmp_path, problem, message):
    path = tmp_path / "c.npz"
    labels, scores = _fabricated(path)
    ours, verify = np.repeat(np.arange(10), 2), False
    if problem == "missing":
        path = tmp_path / "absent.npz"
    elif problem == "md5":
        verify = True
    elif problem == "counts":
        np.savez(path, labels=labels[:-1], scores=scores[:-1])
    elif problem == "range":
        np.savez(path, labels=labels, scores=scores * 2)
    elif problem == "garbage":
        path.write_bytes(b"not an npz")
    else:
        ours = np.arange(20)  # 20 classes
    with pytest.raises((ValueError, FileNotFoundError), match=message) as err:
        cscores.load_cscores(path, ours, verify_checksum=verify)
    assert "\n" not in str(err.value) and str(path) in str(err.value) or problem == "labels"


def test_the_real_file_has_its_md5_and_cifar10s_labels():
    path = archive_or_skip(cscores.FILE)
    ours = np.repeat(np.arange(10), 500)  # cifar10_cpu's first 500 images of each class
    got = cscores.load_cscores(path, ours)
    assert got.shape == (5000,) and ((got >= 0) & (got <= 1)).all() and 0.5 < got.mean() < 1


def test_cscores_on_a_dataset_in_another_order_is_a_config_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("dataset: {name: digits}\nmemorization: {cscores: x.npz}\n")
    assert cli.main(["validate", "--config", str(config)]) == cli.BAD_INPUT
