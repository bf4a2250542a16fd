"""scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), offline: the default study's dataset, small
enough to train hundreds of models on a CPU.  A seeded, stratified train/test split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memcurv.data.datasets._common import Raw, Source

TITLE = "digits"  # the config name says it; reports and figures of the default study keep their wording
NORMALIZATION = None  # fitted on the training split
DOWNLOADS = False
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = False
CLASSES = tuple(str(i) for i in range(10))


def read(source: Source, *, test_fraction: float = 0.2) -> Raw:
    """The split drawn by `source.seed`: `test_fraction` of each class held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"dataset option test_fraction must lie in (0, 1), got {test_fraction}")
    d = load_digits()
    x = (d.images / 16.0)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=test_fraction, random_state=source.seed,
                                              stratify=d.target)
    return Raw(x_tr, y_tr, x_te, y_te, CLASSES)


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    return (1, 8, 8), 10


def train_size(options: Mapping[str, Any]) -> int | None:
    """Counted from the split itself (a second): sklearn decides how a fraction rounds."""
    return len(read(Source(), **options).y_train)

