"""A planted long tail, generated: no files, and the memorized examples are known by construction.

Typical examples are noisy copies of a few prototypes per class; each atypical example is a singleton
sub-population around its own prototype; mislabeled examples are typical images given another class's label.
Only a model that saw an atypical or mislabeled example can get it right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from memcurv.data.datasets._common import Raw, Source

TITLE = "synthetic"
NORMALIZATION = None  # fitted on the training split
DOWNLOADS = False
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = False


def read(source: Source, *, n_train: int = 1000, n_test: int = 500, num_classes: int = 5,
         image_shape: tuple[int, int, int] | list[int] = (1, 8, 8), prototypes_per_class: int = 3,
         atypical_fraction: float = 0.03, mislabeled_fraction: float = 0.03, noise: float = 0.15) -> Raw:
    """The set drawn by `source.seed`; ground truth: the atypical and the mislabeled training ids."""
    if num_classes < 2 or prototypes_per_class < 1 or n_train < num_classes or n_test < 1:
        raise ValueError("synthetic needs num_classes >= 2, prototypes_per_class >= 1, n_train >= num_classes")
    n_atyp, n_mis = round(atypical_fraction * n_train), round(mislabeled_fraction * n_train)
    if n_atyp + n_mis >= n_train:
        raise ValueError("synthetic atypical_fraction + mislabeled_fraction must leave typical examples")
    rng = np.random.default_rng(source.seed)
    c, h, w = image_shape
    protos = rng.random((num_classes, prototypes_per_class, h, w, c))

    def typical(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, num_classes, n)
        which = rng.integers(0, prototypes_per_class, n)
        return protos[labels, which] + noise * rng.standard_normal((n, h, w, c)), labels

    x_tr, y_tr = typical(n_train)
    order = rng.permutation(n_train)
    atypical, mislabeled = np.sort(order[:n_atyp]), np.sort(order[n_atyp:n_atyp + n_mis])
    x_tr[atypical] = rng.random((n_atyp, h, w, c)) + noise * rng.standard_normal((n_atyp, h, w, c))
    y_tr[mislabeled] = (y_tr[mislabeled] + rng.integers(1, num_classes, n_mis)) % num_classes
    x_te, y_te = typical(n_test)
    return Raw(np.clip(x_tr, 0, 1), y_tr, np.clip(x_te, 0, 1), y_te, tuple(f"class {i}" for i in range(num_classes)),
               ground_truth={"atypical": atypical, "mislabeled": mislabeled})


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    c, h, w = options.get("image_shape", (1, 8, 8))
    return (c, h, w), options.get("num_classes", 5)


def train_size(options: Mapping[str, Any]) -> int | None:
    """Generated, so counted by generating it (its options are checked on the way)."""
    return len(read(Source(), **options).y_train)
