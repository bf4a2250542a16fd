"""Bootstrap intervals over what changes when a study is run again: the models (their seeds, their random
subsets) and, for statistics over examples, the examples.

A rerun on another machine trains other models: DP training amplifies floating-point differences, so two
runs of one config differ model by model. Resampling the models a statistic was computed from (with
replacement, within each epsilon where models are grouped by epsilon) estimates that spread; percentile
intervals of the replicates, centred on the run's value, are what the verdicts are judged on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
REPLICATES = 400
# ranges of a statistic: any number, a Spearman correlation, a fit's R^2
UNBOUNDED, CORRELATION, R2 = (-np.inf, np.inf), (-1.0, 1.0), (-np.inf, 1.0)
SEED = 0  # the replicates are a function of the tables: one report per set of tables


@dataclass(frozen=True)
class Interval:
    """A statistic's value on the run and its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    replicates: int  # replicates with a finite value

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def percentile_interval(estimate: float, replicates: np.ndarray, confidence: float = CONFIDENCE,
                        limits: tuple[float, float] = UNBOUNDED) -> Interval:
    """The central `confidence` interval of the finite replicates, moved so that their median is the run's value.

    Resampling K models with replacement keeps about 63% distinct ones, so a statistic that averages over models
    (an example's curvature over the models that left it out) is noisier on a resample than on a rerun, which
    trains K distinct models: its replicates sit below the run's value. Their spread is what a rerun changes;
    their centre is not. NaN bounds when fewer than half the replicates are finite (a statistic that cannot be
    computed on most resamples has no interval worth reading). `limits` are the statistic's own range
    (a correlation's [-1, 1]), which the moved interval is kept within."""
    values = np.asarray(replicates, dtype=float)
    finite = values[np.isfinite(values)]
    if len(finite) < max(1, len(values) / 2) or not np.isfinite(estimate):
        return Interval(float(estimate), float("nan"), float("nan"), confidence, len(finite))
    tail = 100 * (1 - confidence) / 2
    low, high = np.clip(np.percentile(finite, [tail, 100 - tail]) + (estimate - np.median(finite)), *limits)
    return Interval(float(estimate), float(low), float(high), confidence, len(finite))


def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def stratified_indices(groups: np.ndarray, replicates: int, generator: np.random.Generator) -> np.ndarray:
    """(replicates, n) row indices: within each group (an epsilon), as many rows drawn with replacement as it has."""
    groups = np.asarray(groups)
    out = np.empty((replicates, len(groups)), dtype=np.int64)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        out[:, rows] = generator.choice(rows, size=(replicates, len(rows)), replace=True)
    return out


def model_weights(models: int, replicates: int, generator: np.random.Generator) -> np.ndarray:
    """(replicates, models) bootstrap counts: how often each model is drawn when `models` are drawn with
    replacement. Weighting a per-model sum by them is resampling the models."""
    return generator.multinomial(models, np.full(models, 1.0 / models), size=replicates).astype(np.float64)


def rows_statistic(statistic: Callable[[np.ndarray], np.ndarray], n: int, groups: np.ndarray | None = None,
                   replicates: int = REPLICATES) -> np.ndarray:
    """(replicates, m) values of `statistic(indices)` (m numbers) on rows resampled with replacement, within
    `groups` (an epsilon's models) if given."""
    generator = rng()
    idx = (stratified_indices(groups, replicates, generator) if groups is not None
           else generator.integers(0, n, size=(replicates, n)))
    return np.array([np.atleast_1d(statistic(row)) for row in idx], dtype=float)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho over the pairs where both are finite (NaN with fewer than 3 such pairs or no spread)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(stats.spearmanr(x[ok], y[ok]).statistic)
