"""ImageNet, or any ImageFolder tree `root`/{train,val}/<class>/*.{JPEG,jpg,png}, decoded with PIL at a reduced
resolution so that the whole set fits in memory (optionally a class subset and the first files per class).
Decoding a large tree is slow: the workflow submits its light jobs instead of running them where it runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.data.datasets._common import Arrays, Raw, Source

TITLE = "ImageNet"
NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # ImageNet's usual constants
DOWNLOADS = False
SLOW_TO_DECODE = True
FOLLOWS_CIFAR10_ORDER = False
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


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


def load_arrays(root: Path, resolution: int = 64, classes: list[str] | None = None,
                max_per_class: int | None = None) -> Arrays:
    """The tree as uint8 (N, res, res, 3).

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


def read(source: Source, *, resolution: int = 64, classes: list[str] | None = None,
         max_per_class: int | None = None) -> Raw:
    if source.root is None:
        raise ValueError("dataset imagenet needs dataset.root: a folder with train/ and val/ class folders")
    return Raw.from_uint8(load_arrays(source.root, resolution, classes, max_per_class))


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    r = options.get("resolution", 64)
    return (3, r, r), len(options["classes"]) if options.get("classes") else 1000


def train_size(options: Mapping[str, Any]) -> int | None:
    return None  # known only by listing the folders
