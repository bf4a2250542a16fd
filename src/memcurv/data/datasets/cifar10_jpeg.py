"""CIFAR-10 (JPEG re-encoded): all 60,000 CIFAR-10 images as 32x32 JPEG files, read straight from
`cifar10-jpeg.tar.gz` in dataset.root, for machines that cannot download the official batches.

Not bit-identical to CIFAR-10 (JPEG is lossy), so results name it by its title.  Within each class, the file
number is the image's rank among that class's images in CIFAR-10's official training order, so training ids
(class-major, then sorted file name) follow that order within each class.
"""

from __future__ import annotations

import io as bytes_io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.data.datasets._common import (Arrays, Raw, Source, archive_md5, archive_path, per_class_option,
                                           tar_members)
from memcurv.io import atomic_path

TITLE = "CIFAR-10 (JPEG re-encoded)"
NORMALIZATION = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))  # CIFAR-10's own, not re-fitted
DOWNLOADS = False
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = True
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ARCHIVE = "cifar10-jpeg.tar.gz"
MD5 = "67664af876dd64ad10750410502e5f72"
PER_CLASS = {"train": 5000, "test": 1000}


def _members(archive: Path) -> dict[tuple[str, str, str], bytes]:
    """The archive's JPEG files by (split, class, file name): cifar10-jpeg/<split>/<class>/NNNN.jpg."""
    files = tar_members(archive, lambda parts: len(parts) == 4 and parts[3].lower().endswith(".jpg"),
                        lambda cause: f"{TITLE} archive {archive} is damaged ({cause}); replace it with an intact "
                                      f"copy (md5 {MD5})")
    return {(p[1], p[2], p[3]): data for p, data in files.items()}


def _check_layout(archive: Path, files: dict[tuple[str, str, str], bytes]) -> None:
    """Every split holds CIFAR-10's ten classes with the official number of images each."""
    for split, want in PER_CLASS.items():
        counts = {c: 0 for c in CLASSES}
        for s, c, _ in files:
            if s == split:
                counts[c] = counts.get(c, 0) + 1
        wrong = {c: k for c, k in counts.items() if k != want}
        if wrong:
            raise ValueError(f"{TITLE} archive {archive}: {split}/ should hold {want} images in "
                             f"each of the classes {list(CLASSES)}, found {wrong}")


def _decode_split(files: dict[tuple[str, str, str], bytes], split: str,
                  per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` images of each class in sorted file order (all by default), labels in CIFAR-10's
    class order; ids follow this order."""
    from PIL import Image

    images, labels = [], []
    for label, c in enumerate(CLASSES):
        names = sorted(name for s, cls, name in files if s == split and cls == c)[:per_class]
        for name in names:
            with Image.open(bytes_io.BytesIO(files[split, c, name])) as img:
                images.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
        labels += [label] * len(names)
    return np.stack(images), np.array(labels, dtype=np.int64)


def _first_per_class(x: np.ndarray, y: np.ndarray, per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(len(CLASSES))])
    return x[keep], y[keep]


def _checked_archive(root: Path, verify_checksums: bool, per_class: dict[str, int | None]) -> tuple[Path, str]:
    """The archive and its md5, the options checked on the way, or a one-line error naming the file (or the
    option) and the fix."""
    archive = archive_path(root, ARCHIVE, TITLE, MD5)
    for split, value in per_class.items():
        per_class_option(f"{split}_per_class", value, PER_CLASS[split])
    return archive, archive_md5(archive, TITLE, MD5, verify_checksums)


def load_arrays(root: Path, *, verify_checksums: bool = True, cache_dir: Path | None = None,
                train_per_class: int | None = None, test_per_class: int | None = None) -> Arrays:
    """The images as uint8 (N, 32, 32, 3): CIFAR-10's class order, training ids in (class, sorted file name)
    order; optionally only the first images of each class.

    The archive's md5, class names and per-class counts are checked.  With `cache_dir`, the decoded set is
    kept there as one .npz named by the archive's md5, so later loads skip the JPEG decoding."""
    archive, digest = _checked_archive(root, verify_checksums, {"train": train_per_class, "test": test_per_class})
    cache = Path(cache_dir) / f"cifar10-jpeg-{digest}.npz" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            x_tr, y_tr, x_te, y_te = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    else:
        files = _members(archive)
        _check_layout(archive, files)
        if cache is None:  # decode only the images asked for
            return (*_decode_split(files, "train", train_per_class),
                    *_decode_split(files, "test", test_per_class), CLASSES)
        x_tr, y_tr = _decode_split(files, "train", None)
        x_te, y_te = _decode_split(files, "test", None)
        with atomic_path(cache) as tmp, tmp.open("wb") as f:
            np.savez(f, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return (*_first_per_class(x_tr, y_tr, train_per_class), *_first_per_class(x_te, y_te, test_per_class), CLASSES)


def read(source: Source, *, train_per_class: int | None = None, test_per_class: int | None = None) -> Raw:
    return Raw.from_uint8(load_arrays(source.folder, verify_checksums=source.verify_checksums,
                                      cache_dir=source.cache_dir, train_per_class=train_per_class,
                                      test_per_class=test_per_class))


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    return (3, 32, 32), 10


def train_size(options: Mapping[str, Any]) -> int | None:
    return len(CLASSES) * (options.get("train_per_class") or PER_CLASS["train"])
