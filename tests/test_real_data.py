"""Real-dataset readers on tiny files written in the real on-disk formats (no network)."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memcurv.data.datasets import cifar10, cifar100, imagenet
from memcurv.data.loading import load_dataset

PER_BATCH = 4


def _dump(path: Path, entry: dict) -> None:
    with path.open("wb") as f:
        pickle.dump(entry, f)


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _rows(x: np.ndarray) -> np.ndarray:
    """NHWC images as CIFAR's (N, 3072) rows: channel planes, each row-major."""
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def write_cifar10(root: Path, per_batch: int = PER_BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Five training batches and a test batch of `per_batch` random images each, in CIFAR-10's format."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x_tr, x_te = _images(rng, 5 * per_batch), _images(rng, per_batch)
    y_tr, y_te = np.arange(5 * per_batch) % 10, (9 - np.arange(per_batch)) % 10
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        _dump(folder / f"data_batch_{b + 1}", {b"batch_label": b"training batch", b"data": _rows(x_tr[part]),
                                               b"labels": y_tr[part].tolist()})
    _dump(folder / "test_batch", {b"data": _rows(x_te), b"labels": y_te.tolist()})
    _dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return x_tr, y_tr, x_te, y_te


def write_cifar100(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    x_tr, x_te = _images(rng, 6), _images(rng, 3)
    y_tr, y_te = np.array([0, 99, 5, 42, 7, 1]), np.array([3, 2, 1])
    _dump(folder / "train", {b"data": _rows(x_tr), b"fine_labels": y_tr.tolist(), b"coarse_labels": [0] * 6})
    _dump(folder / "test", {b"data": _rows(x_te), b"fine_labels": y_te.tolist(), b"coarse_labels": [0] * 3})
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}" for i in range(100)], b"coarse_label_names": []})
    return x_tr, y_tr, x_te, y_te


def test_cifar10_reads_batches_in_order_and_round_trips_normalisation(tmp_path):
    x_tr, y_tr, x_te, y_te = write_cifar10(tmp_path)
    xa, ya, xb, yb, classes = cifar10.load_arrays(tmp_path, verify_checksums=False)
    assert xa.shape == (20, 32, 32, 3) and xa.dtype == np.uint8 and ya.dtype == np.int64
    np.testing.assert_array_equal(xa, x_tr)  # ids follow data_batch_1..5
    np.testing.assert_array_equal(ya, y_tr)
    np.testing.assert_array_equal(xb, x_te)
    np.testing.assert_array_equal(yb, y_te)
    assert classes == tuple(f"c{i}" for i in range(10))

    ds = load_dataset("cifar10", root=tmp_path, verify_checksums=False)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32) and ds.num_classes == 10
    assert ds.y_train.tolist() == y_tr.tolist() and ds.classes == classes
    ids = np.array([0, 7, 19])
    np.testing.assert_allclose(ds.images(ids), x_tr[ids] / 255.0, atol=1e-5)


def test_cifar100_reads_fine_labels_and_names(tmp_path):
    x_tr, y_tr, x_te, y_te = write_cifar100(tmp_path)
    ds = load_dataset("cifar100", root=tmp_path, verify_checksums=False)
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.num_classes == 100 and ds.classes[99] == "f99"
    assert ds.y_train.tolist() == y_tr.tolist() and ds.y_test.tolist() == y_te.tolist()
    np.testing.assert_allclose(ds.images(np.arange(6)), x_tr / 255.0, atol=1e-5)
    np.testing.assert_array_equal(cifar100.load_arrays(tmp_path, verify_checksums=False)[2], x_te)


def test_missing_cifar_files_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py") as err:
        load_dataset("cifar10", root=tmp_path)
    assert "dataset.download" in str(err.value)
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(FileNotFoundError, match=r"\['test'\].*cifar-100-python"):
        cifar100.load_arrays(tmp_path, verify_checksums=False)


def test_checksums_reject_fabricated_files(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match="data_batch_1.*verify_checksums: false"):
        load_dataset("cifar10", root=tmp_path, verify_checksums=True)


def write_image_folder(root: Path) -> None:
    """Three classes; train images of varying sizes, colour encodes (class, index)."""
    for split, n in (("train", 3), ("val", 2)):
        for c, name in enumerate(["cat", "ant", "dog"]):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                size = (40 + 10 * i, 24) if split == "train" else (16, 16)
                Image.new("RGB", size, (80 * c, 50 * i, 200)).save(root / split / name / f"img{i}.png")
    (root / "train" / "ant" / "notes.txt").write_text("not an image")


def test_image_folder_layout_resolution_and_labels(tmp_path):
    write_image_folder(tmp_path)
    x_tr, y_tr, x_te, y_te, classes = imagenet.load_arrays(tmp_path, resolution=8)
    assert classes == ("ant", "cat", "dog")  # sorted folder names
    assert x_tr.shape == (9, 8, 8, 3) and x_tr.dtype == np.uint8 and x_te.shape == (6, 8, 8, 3)
    assert y_tr.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and y_te.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(x_tr[4], np.full((8, 8, 3), (0, 50, 200)))  # cat/img1.png

    ds = load_dataset("imagenet", root=tmp_path, resolution=12, classes=["dog", "ant"], max_per_class=2)
    assert ds.classes == ("ant", "dog") and ds.x_train.shape == (4, 3, 12, 12) and ds.x_test.shape == (4, 3, 12, 12)
    assert ds.y_train.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(ds.images([3]), np.full((1, 12, 12, 3), (160, 50, 200)) / 255.0, atol=1e-5)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        imagenet.load_arrays(tmp_path)
    write_image_folder(tmp_path)
    with pytest.raises(ValueError, match="zebra"):
        load_dataset("imagenet", root=tmp_path, classes=["cat", "zebra"])
    for p in (tmp_path / "val").rglob("*.png"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match="val"):
        imagenet.load_arrays(tmp_path)
