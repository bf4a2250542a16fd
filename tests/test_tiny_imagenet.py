"""Tiny ImageNet-200 (150 per class): a real slice of the archive through load_dataset, checked against the
archive's own listing and a plain PIL decode, and the one-line errors of a missing, damaged or cut archive."""

import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shared_data import archive_or_skip

from memcurv import cli
from memcurv.data.datasets import tiny_imagenet
from memcurv.data.datasets.tiny_imagenet import ARCHIVE, TOP
from memcurv.data.loading import load_dataset

# Ten classes, listed out of order; n02788148's training image _2 and n01698640's val_1234 are greyscale JPEGs.
CLASSES = ["n02788148", "n01443537", "n01698640", "n02124075", "n12267677", "n01629819", "n03404251", "n07747607",
           "n04562935", "n02814533"]
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def archive() -> Path:
    return archive_or_skip(ARCHIVE)


@pytest.fixture(scope="module")
def listing(archive) -> dict[str, list[str]]:
    """The archive's own member names by folder (train/<wnid>, test/<wnid>), words.txt's lines, and the bytes of
    every file of the chosen classes, all read in one pass."""
    folders: dict[str, list[str]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 4:
                folders.setdefault(f"{parts[1]}/{parts[2]}", []).append(member.name)
                if parts[2] in CLASSES:
                    BYTES[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
            elif parts[1:] == ("words.txt",):
                folders["words"] = tar.extractfile(member).read().decode().splitlines()  # type: ignore[union-attr]
    return folders


BYTES: dict[str, bytes] = {}  # filled by the listing fixture


def _numeric(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: int(re.findall(r"(\d+)\.JPEG$", n)[0]))


def _pil(name: str, resolution: int = 64) -> np.ndarray:
    """A plain PIL decode of one file of the archive, in [0, 1]."""
    img = Image.open(io.BytesIO(BYTES[name])).convert("RGB")
    if resolution != 64:
        img = img.resize((resolution, resolution), Image.Resampling.BOX)
    return np.asarray(img) / 255.0


@pytest.fixture(scope="module")
def slice64(archive):
    return load_dataset("tiny_imagenet", root=archive.parent, classes=CLASSES, train_per_class=5, test_per_class=3)


def test_a_real_slice_has_labels_shapes_names_and_normalisation(slice64, listing):
    ds, chosen = slice64, sorted(CLASSES)
    assert ds.x_train.shape == (50, 3, 64, 64) and ds.x_test.shape == (30, 3, 64, 64) and ds.num_classes == 10
    assert ds.y_train.tolist() == np.repeat(np.arange(10), 5).tolist()  # class-major, in sorted-wnid order
    assert ds.y_test.tolist() == np.repeat(np.arange(10), 3).tolist()
    words = {line.split("\t")[0]: line.split("\t")[1].split(",")[0].strip() for line in listing["words"]}
    assert ds.classes == tuple(words[w] for w in chosen) and ds.classes[0] == "goldfish"
    assert (ds.mean, ds.std) == IMAGENET
    assert tiny_imagenet.TITLE == "Tiny ImageNet-200"


def test_ids_follow_numeric_file_order_and_undo_to_a_pil_decode(slice64, listing):
    ds = slice64
    for c, wnid in enumerate(sorted(CLASSES)):
        train = _numeric(listing[f"train/{wnid}"])[:5]
        assert train == [f"{TOP}/train/{wnid}/{wnid}_{n}.JPEG" for n in range(5)]
        for k, name in enumerate(train[:2] if c else train):  # every image of one class, two of the others
            np.testing.assert_allclose(ds.images([5 * c + k])[0], _pil(name), atol=1e-6)
    test = _numeric(listing["test/n01443537"])[:3]
    assert sorted(test) != test  # text order would differ: val_1230 < val_1267 < ... < val_38 ...
    x = ds.x_test[:3] * torch.tensor(IMAGENET[1]).view(1, 3, 1, 1) + torch.tensor(IMAGENET[0]).view(1, 3, 1, 1)
    expected = np.stack([_pil(name) for name in test]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)


def test_greyscale_jpegs_become_rgb(slice64, listing):
    grey = sorted(CLASSES).index("n02788148") * 5 + 2  # n02788148_2.JPEG
    img = slice64.images([grey])[0]
    assert img.shape == (64, 64, 3)
    np.testing.assert_allclose(img[..., 0], img[..., 1], atol=1e-6)  # grey: three equal channels
    np.testing.assert_allclose(img, _pil(f"{TOP}/train/n02788148/n02788148_2.JPEG"), atol=1e-6)


def test_32_pixels_are_a_box_downsample_and_classes_can_be_a_number(archive, listing):
    ds = load_dataset("tiny_imagenet", root=archive.parent, classes=3, train_per_class=2, test_per_class=1,
                      resolution=32)
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.classes == ("goldfish", "European fire salamander", "bullfrog")  # the first 3 sorted wnids
    np.testing.assert_allclose(ds.images([3])[0], _pil(f"{TOP}/train/n01629819/n01629819_1.JPEG", 32),
                               atol=1e-6)


def test_the_decoded_cache_gives_the_same_images(archive, tmp_path):
    options = {"classes": ["n12267677", "n01443537"], "train_per_class": 4, "test_per_class": 2, "resolution": 32}
    direct = tiny_imagenet.load_arrays(archive.parent, **options)
    first = tiny_imagenet.load_arrays(archive.parent, cache_dir=tmp_path, **options)
    assert [p.name for p in tmp_path.glob("*.npz")] == [f"tiny-imagenet-200-sub-{tiny_imagenet.MD5}-32px-box.npz"]
    again = tiny_imagenet.load_arrays(archive.parent, cache_dir=tmp_path, **options)
    for a, b, c in zip(direct, first, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_bad_options_are_one_line_errors_naming_the_option(archive):
    for options, message in (({"classes": ["n01443537", "n99999999"]}, r"classes: unknown WordNet id\(s\) "
                                                                        r"\['n99999999'\]"),
                             ({"classes": 201}, r"classes must lie in \[1, 200\]"),
                             ({"train_per_class": 151}, r"train_per_class must lie in \[1, 150\]"),
                             ({"test_per_class": 0}, r"test_per_class must lie in \[1, 50\]"),
                             ({"resolution": 48}, r"resolution must be one of \[64, 32\]")):
        with pytest.raises(ValueError, match=message):
            load_dataset("tiny_imagenet", root=archive.parent, **options)


def _one_line_error(capsys, tmp_path: Path, root: Path, verify: bool) -> str:
    """The error a job prints: exit status 2, one line, no traceback."""
    config = tmp_path / "study.yaml"
    config.write_text(f"dataset: {{name: tiny_imagenet, root: '{root}', verify_checksums: {str(verify).lower()}, "
                      "options: {classes: 2, train_per_class: 2, test_per_class: 1}}\n"
                      "memorization: {train: {batch_size: 4}}\nmem_vs_epsilon: {top_k: 2}\ntrain: {batch_size: 4}\n")
    assert cli.main(["masks", "--config", str(config), "--out", str(tmp_path / "masks.npz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("memcurv masks: error:")
    return lines[-1]


def test_a_missing_archive_is_a_one_line_error_naming_the_file_and_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the job's cache folder is relative
    line = _one_line_error(capsys, tmp_path, tmp_path / "nowhere", True)
    assert str(tmp_path / "nowhere" / ARCHIVE) in line and "dataset.root" in line


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_damaged_archive_is_a_one_line_error_with_or_without_the_md5_check(archive, tmp_path, capsys, monkeypatch,
                                                                              damage):
    monkeypatch.chdir(tmp_path)
    data = bytearray(archive.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0xFF  # one byte, in the middle of the compressed stream
    else:
        data = data[: len(data) // 2]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ARCHIVE).write_bytes(data)
    damaged = tmp_path / "data" / ARCHIVE
    checked = _one_line_error(capsys, tmp_path, damaged.parent, True)
    assert str(damaged) in checked and "md5" in checked and "intact copy" in checked
    unchecked = _one_line_error(capsys, tmp_path, damaged.parent, False)  # the gzip stream's CRC or its end tells
    assert str(damaged) in unchecked and "is damaged" in unchecked and "intact copy" in unchecked
    assert not (tmp_path / "resources" / "cache").exists() or not any((tmp_path / "resources" / "cache").iterdir())


def test_an_archive_out_of_the_layout_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="JPEG")
    with tarfile.open(tmp_path / ARCHIVE, "w:gz") as tar:
        for name, data in ((f"{TOP}/wnids.txt", b"n01443537\nn01629819\n"),
                           (f"{TOP}/train/n01443537/n01443537_0.JPEG", buf.getvalue())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"wnids.txt should list 200 distinct WordNet ids, found 2"):
        tiny_imagenet.load_arrays(tmp_path, verify_checksums=False)
