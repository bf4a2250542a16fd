"""Readers of the real datasets' on-disk formats, returning raw uint8 images (N, H, W, 3).

CIFAR is read from the official python-pickle archives; file names and md5 sums come from
torchvision's dataset classes so there is one source of truth for them.  CIFAR-10 (JPEG re-encoded)
is read straight from its tar.gz (all 60,000 images as 32x32 JPEG files, one folder per class), for
machines that cannot download the official batches.  ImageNet (or any ImageFolder tree) is decoded
with PIL at a reduced resolution so the whole set fits in memory.
"""

from __future__ import annotations

import hashlib
import io as bytes_io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.io import atomic_path

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _torchvision_class(name: str) -> Any:
    """torchvision's CIFAR class: it knows the folder, file names, md5 sums and how to download."""
    from torchvision import datasets

    classes = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}
    if name not in classes:
        raise ValueError(f"unknown CIFAR dataset {name!r}; choose cifar10 or cifar100")
    return classes[name]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unpickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle with str keys; the official files are Python 2 pickles (bytes keys)."""
    with path.open("rb") as f:
        entry = pickle.load(f, encoding="bytes")
    return {_text(k): v for k, v in entry.items()}


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
    x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64)


def load_cifar(name: str, root: Path, *, download: bool = False, verify_checksums: bool = True) -> Arrays:
    """CIFAR-10/100 from `root`/<torchvision base folder>; training ids follow the batch order."""
    cls = _torchvision_class(name)
    folder = Path(root) / cls.base_folder
    files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]

    def missing() -> list[str]:
        return [f for f, _ in files if not (folder / f).is_file()]

    def not_found(absent: list[str]) -> FileNotFoundError:
        return FileNotFoundError(
            f"{name} files {absent} not found in {folder}. Set dataset.download: true on a machine with "
            f"internet, or extract the python version archive from https://www.cs.toronto.edu/~kriz/cifar.html "
            f"into {root}.")

    if missing() and download:
        try:
            cls(str(root), train=True, download=True)
        except Exception as err:  # network or extraction failure: report it with the same advice
            raise not_found(missing()) from err
    if missing():
        raise not_found(missing())
    if verify_checksums:
        for f, md5 in files:
            if _md5(folder / f) != md5:
                raise ValueError(f"checksum mismatch for {folder / f}: not the official {name} file "
                                 f"(set dataset.verify_checksums: false for fabricated or test files)")

    def split(entries: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*(_batch(folder / f) for f, _ in entries))
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = split(cls.train_list)
    x_test, y_test = split(cls.test_list)
    classes = tuple(_text(c) for c in _unpickle(folder / cls.meta["filename"])[cls.meta["key"]])
    return x_train, y_train, x_test, y_test, classes


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
CIFAR10_JPEG_MD5 = "67664af876dd64ad10750410502e5f72"
_JPEG_PER_CLASS = {"train": 5000, "test": 1000}


def _jpeg_members(archive: Path) -> dict[tuple[str, str, str], bytes]:
    """The archive's JPEG files by (split, class, file name): cifar10-jpeg/<split>/<class>/NNNN.jpg."""
    files = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if member.isfile() and len(parts) == 4 and parts[3].lower().endswith(".jpg"):
                    files[parts[1], parts[2], parts[3]] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValueError(f"CIFAR-10 (JPEG re-encoded) archive {archive} is damaged ({err}); replace it with an "
                         f"intact copy (md5 {CIFAR10_JPEG_MD5})") from None
    return files


def _check_jpeg_layout(archive: Path, files: dict[tuple[str, str, str], bytes]) -> None:
    """Every split holds CIFAR-10's ten classes with the official number of images each."""
    for split, want in _JPEG_PER_CLASS.items():
        counts = {c: 0 for c in CIFAR10_CLASSES}
        for s, c, _ in files:
            if s == split:
                counts[c] = counts.get(c, 0) + 1
        wrong = {c: k for c, k in counts.items() if k != want}
        if wrong:
            raise ValueError(f"CIFAR-10 (JPEG re-encoded) archive {archive}: {split}/ should hold {want} images in "
                             f"each of the classes {list(CIFAR10_CLASSES)}, found {wrong}")


def _decode_jpeg_split(files: dict[tuple[str, str, str], bytes], split: str,
                       per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` images of each class in sorted file order (all by default), labels in CIFAR-10's
    class order; ids follow this order."""
    from PIL import Image

    images, labels = [], []
    for label, c in enumerate(CIFAR10_CLASSES):
        names = sorted(name for s, cls, name in files if s == split and cls == c)[:per_class]
        for name in names:
            with Image.open(bytes_io.BytesIO(files[split, c, name])) as img:
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        labels += [label] * len(names)
    return np.stack(images), np.array(labels, dtype=np.int64)


def _first_per_class(x: np.ndarray, y: np.ndarray, per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(len(CIFAR10_CLASSES))])
    return x[keep], y[keep]


def load_cifar10_jpeg(root: Path, *, verify_checksums: bool = True, cache_dir: Path | None = None,
                      train_per_class: int | None = None, test_per_class: int | None = None) -> Arrays:
    """CIFAR-10 (JPEG re-encoded) from `root`/cifar10-jpeg.tar.gz: native 32x32, CIFAR-10's class order,
    training ids in (class, sorted file name) order; optionally only the first images of each class.

    The archive's md5, class names and per-class counts are checked.  With `cache_dir`, the decoded set is
    kept there as one .npz named by the archive's md5, so later loads skip the JPEG decoding."""
    archive = Path(root) / CIFAR10_JPEG_ARCHIVE
    if not archive.is_file():
        raise FileNotFoundError(f"CIFAR-10 (JPEG re-encoded) archive {archive} not found; copy "
                                f"{CIFAR10_JPEG_ARCHIVE} (md5 {CIFAR10_JPEG_MD5}) there or point dataset.root at "
                                f"its folder")
    for split, value in (("train", train_per_class), ("test", test_per_class)):
        if value is not None and not 1 <= value <= _JPEG_PER_CLASS[split]:
            raise ValueError(f"dataset option {split}_per_class must lie in [1, {_JPEG_PER_CLASS[split]}], got {value}")
    md5 = _md5(archive)
    if verify_checksums and md5 != CIFAR10_JPEG_MD5:
        raise ValueError(f"CIFAR-10 (JPEG re-encoded) archive {archive} is damaged or another file (md5 {md5}, "
                         f"expected {CIFAR10_JPEG_MD5}); replace it with an intact copy, or set "
                         f"dataset.verify_checksums: false for an archive you built yourself")
    cache = Path(cache_dir) / f"cifar10-jpeg-{md5}.npz" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            x_tr, y_tr, x_te, y_te = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    else:
        files = _jpeg_members(archive)
        _check_jpeg_layout(archive, files)
        if cache is None:  # decode only the images asked for
            return (*_decode_jpeg_split(files, "train", train_per_class),
                    *_decode_jpeg_split(files, "test", test_per_class), CIFAR10_CLASSES)
        x_tr, y_tr = _decode_jpeg_split(files, "train", None)
        x_te, y_te = _decode_jpeg_split(files, "test", None)
        with atomic_path(cache) as tmp, tmp.open("wb") as f:
            np.savez(f, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return (*_first_per_class(x_tr, y_tr, train_per_class), *_first_per_class(x_te, y_te, test_per_class),
            CIFAR10_CLASSES)


def _image_files(folder: Path, max_per_class: int | None) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    return files[:max_per_class]


def _load_image(path: Path, resolution: int) -> np.ndarray:
    """Shorter side resized to `resolution`, then a centre crop: the usual ImageNet evaluation view."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = resolution / min(w, h)
        nw, nh = max(resolution, round(w * scale)), max(resolution, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = (nw - resolution) // 2, (nh - resolution) // 2
        return np.asarray(img.crop((left, top, left + resolution, top + resolution)), dtype=np.uint8)


def load_image_folder(root: Path, resolution: int = 64, classes: list[str] | None = None,
                      max_per_class: int | None = None) -> Arrays:
    """An ImageFolder tree `root`/{train,val}/<class>/*.{JPEG,jpg,png} as uint8 (N, res, res, 3).

    Images get their shorter side resized to `resolution`, then a centre crop.  Classes are the
    sorted folder names of train/ (or the given subset); val uses the same label mapping.
    `max_per_class` keeps the first files per class, in sorted name order, in both splits.
    """
    from tqdm import tqdm

    root = Path(root)
    for split in ("train", "val"):
        if not (root / split).is_dir() or not any((root / split).iterdir()):
            raise FileNotFoundError(f"image folder split {root / split} is missing or empty; expected "
                                    f"{root}/train/<class>/*.JPEG and {root}/val/<class>/*.JPEG")
    available = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if classes is not None:
        unknown = sorted(set(classes) - set(available))
        if unknown:
            raise ValueError(f"unknown class(es) {unknown}: no such folder in {root / 'train'}")
    chosen = tuple(c for c in available if classes is None or c in classes)

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        items = [(p, label) for label, c in enumerate(chosen) for p in _image_files(root / name / c, max_per_class)]
        if not items:
            raise FileNotFoundError(f"no images of classes {list(chosen)} in {root / name}")
        images = [_load_image(p, resolution) for p, _ in tqdm(items, desc=f"loading {name}", disable=None)]
        return np.stack(images), np.array([label for _, label in items], dtype=np.int64)

    x_train, y_train = split("train")
    x_test, y_test = split("val")
    return x_train, y_train, x_test, y_test, chosen
