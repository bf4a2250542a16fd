"""Label noise as a study setting: a seeded fraction of the training labels flipped to another class.

Mislabeled examples are the textbook case of memorization (Feldman and Zhang): a model can only fit them by
memorizing them. The flipped ids are kept (`Dataset.ground_truth["flipped"]`, the examples table's `planted`
column), so a report can ask how well memorization and each curvature reading find them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from memcurv.data.loading import Dataset
from memcurv.seeds import stream


def flip_labels(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """`ds` with round(fraction * N) training labels, drawn by `seed`, each moved to a uniformly drawn other
    class; the test split is untouched. A fraction of 0 returns `ds` itself."""
    if not 0 <= fraction < 1:
        raise ValueError(f"label_noise.fraction must lie in [0, 1), got {fraction}")
    n = len(ds.y_train)
    count = round(fraction * n)
    if count == 0:
        return ds
    rng = stream(seed, n)
    ids = np.sort(rng.choice(n, size=count, replace=False))
    y = ds.y_train.clone()
    shift = torch.from_numpy(rng.integers(1, ds.num_classes, size=count))
    y[ids] = (y[ids] + shift) % ds.num_classes
    return dataclasses.replace(ds, y_train=y, ground_truth={**ds.ground_truth, "flipped": ids})
