"""Split-half reliability of per-example estimates that average over models (an example's curvature over the subset
models that left it out, its memorization over all of them): how well the run's models pin each example's value down.

The models are split at random into two halves; each half gives every example its own estimate; the Spearman
correlation of the two halves' estimates over the examples, averaged over several random splits, is the reliability
of an estimate from half the models, and the Spearman-Brown formula 2r / (1 + r) steps it up to all of them. A
reading whose reliability is near 0 cannot correlate with anything: its correlation with memorization says nothing.
"""

from __future__ import annotations

import numpy as np

from memcurv.analysis.bootstrap import spearman
from memcurv.estimators.memorization import resampled_membership

SPLITS = 20
SEED = 0  # the splits are a function of the tables: one report per set of tables


def spearman_brown(r: float) -> float:
    """Reliability of an estimate from twice the models, from the correlation r of two halves' estimates."""
    return 2 * r / (1 + r) if np.isfinite(r) and r > -1 else float("nan")


def half_weights(models: int, splits: int = SPLITS) -> np.ndarray:
    """(2 * splits, models) 0/1 weights: rows 2s and 2s + 1 are the two halves of random split s."""
    generator = np.random.default_rng(SEED)
    rows = []
    for _ in range(splits):
        first = np.zeros(models)
        first[generator.permutation(models)[: models // 2]] = 1.0
        rows += [first, 1.0 - first]
    return np.array(rows)


def split_half(masks: np.ndarray, values: np.ndarray, aggregation: str, splits: int = SPLITS) -> float:
    """Spearman-Brown corrected split-half reliability of the per-example `aggregation` (memcurv.estimators.memorization
    .resampled_membership: in_mean, out_mean, in_max, or in_minus_out, the memorization of a per-model score) of a
    K x N per-model quantity; NaN with fewer than 2 models."""
    masks = np.asarray(masks, dtype=bool)
    if len(masks) < 2:
        return float("nan")
    halves = resampled_membership(masks, values, half_weights(len(masks), splits))[aggregation]
    r = np.nanmean([spearman(halves[2 * s], halves[2 * s + 1]) for s in range(splits)])
    return spearman_brown(float(r))
