"""CIFAR-10 (JPEG re-encoded): a real slice of the archive through the dataset, and the errors a user meets
when the archive is missing or damaged."""

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shared_data import archive_or_skip

from memcurv import cli
from memcurv.data.datasets import catalogue, cifar10_jpeg
from memcurv.data.datasets.cifar10_jpeg import ARCHIVE as CIFAR10_JPEG_ARCHIVE
from memcurv.data.datasets.cifar10_jpeg import CLASSES as CIFAR10_CLASSES
from memcurv.data.loading import load_dataset


@pytest.fixture(scope="module")
def archive() -> Path:
    return archive_or_skip(CIFAR10_JPEG_ARCHIVE)


def _raw(archive: Path, name: str) -> np.ndarray:
    with tarfile.open(archive, "r:gz") as tar:
        data = tar.extractfile(f"cifar10-jpeg/{name}").read()  # type: ignore[union-attr]
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_a_real_slice_has_cifar10_labels_shapes_ids_and_normalisation(archive):
    ds = load_dataset("cifar10_jpeg", root=archive.parent, train_per_class=20, test_per_class=5)
    assert ds.classes == CIFAR10_CLASSES and ds.num_classes == 10
    assert ds.x_train.shape == (200, 3, 32, 32) and ds.x_test.shape == (50, 3, 32, 32)
    assert ds.y_train.tolist() == np.repeat(np.arange(10), 20).tolist()  # class order, then sorted file order
    assert ds.y_test.tolist() == np.repeat(np.arange(10), 5).tolist()
    assert ds.ids.tolist() == list(range(200))
    mean, std = catalogue()["cifar10"].normalization  # CIFAR-10's own constants, not refitted to the JPEG images
    assert (ds.mean, ds.std) == (mean, std)
    for i, name in ((0, "train/airplane/0000.jpg"), (21, "train/automobile/0001.jpg"), (199, "train/truck/0019.jpg")):
        np.testing.assert_allclose(ds.images([i])[0], _raw(archive, name) / 255.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train[0, :, 0, 0], (torch.tensor(_raw(archive, "train/airplane/0000.jpg")[0, 0])
                                                        / 255.0 - torch.tensor(mean)) / torch.tensor(std), atol=1e-5)


def test_the_decoded_cache_gives_the_same_images(archive, tmp_path):
    direct = cifar10_jpeg.load_arrays(archive.parent, train_per_class=3, test_per_class=2)
    first = cifar10_jpeg.load_arrays(archive.parent, cache_dir=tmp_path, train_per_class=3, test_per_class=2)
    assert len(list(tmp_path.glob("cifar10-jpeg-*.npz"))) == 1
    again = cifar10_jpeg.load_arrays(archive.parent, cache_dir=tmp_path, train_per_class=3, test_per_class=2)
    for a, b, c in zip(direct, first, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def _one_line_error(capsys, config: Path, tmp_path: Path) -> str:
    """The error a job prints: exit status 2, one line, no traceback."""
    assert cli.main(["masks", "--config", str(config), "--out", str(tmp_path / "masks.npz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _config(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(f"dataset: {{name: cifar10_jpeg, root: '{root}', options: {{train_per_class: 2}}}}\n"
                    "memorization: {train: {batch_size: 4}}\nmem_vs_epsilon: {top_k: 2}\ntrain: {batch_size: 4}\n")
    return path


def test_a_missing_archive_is_a_one_line_error_naming_the_file_and_the_fix(tmp_path, capsys):
    line = _one_line_error(capsys, _config(tmp_path, tmp_path / "nowhere"), tmp_path)
    assert line.startswith("memcurv masks: error:")
    assert str(tmp_path / "nowhere" / CIFAR10_JPEG_ARCHIVE) in line and "dataset.root" in line


def test_a_damaged_archive_is_a_one_line_error(archive, tmp_path, capsys):
    damaged = tmp_path / "data"
    damaged.mkdir()
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (damaged / CIFAR10_JPEG_ARCHIVE).write_bytes(data)
    line = _one_line_error(capsys, _config(tmp_path, damaged), tmp_path)
    assert str(damaged / CIFAR10_JPEG_ARCHIVE) in line and "md5" in line and "intact copy" in line
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / CIFAR10_JPEG_ARCHIVE).write_bytes(archive.read_bytes()[: 1 << 20])
    with pytest.raises(ValueError, match="damaged"):  # without the md5 check, tar reports it
        cifar10_jpeg.load_arrays(truncated, verify_checksums=False)


def test_an_archive_with_missing_images_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="JPEG")
    with tarfile.open(tmp_path / CIFAR10_JPEG_ARCHIVE, "w:gz") as tar:
        for c in CIFAR10_CLASSES:
            info = tarfile.TarInfo(f"cifar10-jpeg/train/{c}/0000.jpg")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    with pytest.raises(ValueError, match="should hold 5000 images"):
        cifar10_jpeg.load_arrays(tmp_path, verify_checksums=False)
    with pytest.raises(ValueError, match="train_per_class must lie in"):
        cifar10_jpeg.load_arrays(tmp_path, verify_checksums=False, train_per_class=6000)
