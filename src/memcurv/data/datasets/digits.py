"""scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), offline: the default study's dataset, small
enough to train hundreds of models on a CPU.  A seeded, stratified train/test split."""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.data.datasets._common import Raw, Source
from memcurv.io import atomic_path

TITLE = "digits"  # the config name says it; reports and figures of the default study keep their wording
NORMALIZATION = None  # fitted on the training split
DOWNLOADS = False
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = False
CLASSES = tuple(str(i) for i in range(10))
SIZE = 1797  # images in scikit-learn's digits


def read(source: Source, *, test_fraction: float = 0.2) -> Raw:
    """The split drawn by `source.seed`: `test_fraction` of each class held out.  Kept in `source.cache_dir` once
    drawn: importing scikit-learn takes longer than a default-study job's work."""
    _check(test_fraction)
    cache = None
    if source.cache_dir is not None:
        name = f"digits-seed{source.seed}-test{test_fraction!r}-sklearn{version('scikit-learn')}.npz"
        cache = Path(source.cache_dir) / name
        if cache.is_file():
            with np.load(cache) as z:
                return Raw(z["x_train"], z["y_train"], z["x_test"], z["y_test"], CLASSES)
    raw = _split(source.seed, test_fraction)
    if cache is not None:
        with atomic_path(cache) as tmp, tmp.open("wb") as f:
            np.savez(f, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test, y_test=raw.y_test)
    return raw


def _split(seed: int, test_fraction: float) -> Raw:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=test_fraction, random_state=seed,
                                              stratify=d.target)
    return Raw(x_tr, y_tr, x_te, y_te, CLASSES)


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    return (1, 8, 8), 10


def train_size(options: Mapping[str, Any]) -> int | None:
    """What sklearn's split keeps for training: it rounds the test set up (tested against the split itself)."""
    test_fraction = options.get("test_fraction", 0.2)
    _check(test_fraction)
    return SIZE - math.ceil(test_fraction * SIZE)


def _check(test_fraction: float) -> None:
    if not 0 < test_fraction < 1:
        raise ValueError(f"dataset option test_fraction must lie in (0, 1), got {test_fraction}")
