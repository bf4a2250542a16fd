"""Bootstrap intervals over what changes when a study is run again: the models (their seeds, their random
subsets) and, for statistics over examples, the examples.

A rerun on another machine trains other models: DP training amplifies floating-point differences, so two
runs of one config differ model by model. Resampling the models a statistic was computed from (with
replacement, within each epsilon where models are grouped by epsilon) estimates that spread. The intervals
the verdicts are judged on are the run's value plus or minus a t quantile times the replicates' standard
deviation (`interval`). Where only a few seeds per epsilon are resampled, an n/(n-1) variance correction and
the t quantile's degrees of freedom make up for how little a few seeds say about their spread
(`seed_intervals`): the percentile interval used before covered the mean of 3 seeds 76% of the time.
benchmarks/interval_coverage.py measures the coverage of every claim's interval on simulated reruns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
REPLICATES = 400
# ranges of a statistic: any number, a Spearman correlation, the R^2 of a least-squares fit with an intercept
UNBOUNDED, CORRELATION, R2 = (-np.inf, np.inf), (-1.0, 1.0), (0.0, 1.0)
SEED = 0  # the replicates are a function of the tables: one report per set of tables


@dataclass(frozen=True)
class Interval:
    """A statistic's value on the run and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    replicates: int  # replicates with a finite value

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


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


def rank(a: np.ndarray) -> np.ndarray:
    """Ranks from 1 with ties given their average (scipy.stats.rankdata's default): every rank is a whole or half
    number, exact in float64, so this equals scipy's to the bit, at a tenth of its cost on the bootstrap's arrays."""
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
        return np.full(len(a), np.nan)  # as scipy's: a NaN leaves no order
    order = np.argsort(a, kind="mergesort")
    sorted_ = a[order]
    starts = np.flatnonzero(np.r_[True, sorted_[1:] != sorted_[:-1], True])  # where each run of ties starts; then n
    average = (starts[:-1] + starts[1:] + 1) / 2.0  # positions starts[g] .. starts[g + 1] - 1, ranked from 1
    out = np.empty(len(a))
    out[order] = np.repeat(average, np.diff(starts))
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho over the pairs where both are finite (NaN with fewer than 3 such pairs or no spread)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    # scipy.stats.spearmanr's own arithmetic (rank, then np.corrcoef over the stacked ranks), bit for bit, without
    # its checks and p-value, which cost 10x the correlation: bootstrap replicates ask for it tens of thousands of times
    ranks = np.column_stack((rank(x[ok]), rank(y[ok])))
    return float(np.corrcoef(ranks, rowvar=False)[1, 0])


def _to_line(x: np.ndarray | float, limits: tuple[float, float]) -> np.ndarray:
    """The scale an interval is formed on: a bounded statistic (a correlation, an R^2) rescaled to (-1, 1) and
    through atanh, so that its interval cannot leave its range and is asymmetric near a bound; others as they are."""
    low, high = limits
    if np.isinf(low) and np.isinf(high):
        return np.asarray(x, dtype=float)
    if np.isinf(low) or np.isinf(high):
        raise ValueError(f"limits must both be finite or both infinite, got {limits}")
    edge = 1.0 - 1e-12  # a value at a bound (a Spearman of 1) stays finite on the line
    return np.arctanh(np.clip((2.0 * np.asarray(x, dtype=float) - low - high) / (high - low), -edge, edge))


def _from_line(u: np.ndarray | float, limits: tuple[float, float]) -> np.ndarray:
    low, high = limits
    if np.isinf(low) and np.isinf(high):
        return np.asarray(u, dtype=float)
    return low + (high - low) * (np.tanh(u) + 1.0) / 2.0


def interval(estimate: float, replicates: np.ndarray, df: float = np.inf, inflation: float = 1.0,
             confidence: float = CONFIDENCE, limits: tuple[float, float] = UNBOUNDED) -> Interval:
    """The run's value ± the t quantile with `df` degrees of freedom times `inflation` times the standard deviation
    of the finite replicates, formed on `_to_line`'s scale for a statistic with finite `limits` (a correlation's
    [-1, 1], an R^2's [0, 1]) and mapped back into them.

    Centred on the run's value: resampling K models with replacement keeps about 63% distinct ones, so a
    statistic that averages over models is noisier on a resample than on a rerun, which trains K distinct models,
    and its replicates sit below the run's value. Their spread is what a rerun changes; their centre is not.
    The defaults (a normal quantile, no inflation) are for statistics over examples whose models are resampled
    too (links 1 and 3): an example's score already carries its models' noise, which resampling the examples
    counts once and resampling the models once more, so these intervals are wide enough without small-sample
    terms (97% to 100% coverage of simulated reruns at 8 to 256 models). `seed_intervals` passes the small-sample
    ones. Where a replicate reaches a finite limit (an AUROC of exactly 0), its place on the atanh line is only a
    clipped ±14, which would swamp the standard deviation: the ends are then the replicates' quantiles about their
    median, widened as the t quantile widens the normal one. NaN bounds when fewer than half the replicates are
    finite (a statistic that cannot be computed on most resamples has no interval worth reading) or `df` is not
    positive (one seed per epsilon)."""
    values = np.asarray(replicates, dtype=float)
    finite = values[np.isfinite(values)]
    if len(finite) < max(2, len(values) / 2) or not np.isfinite(estimate) or not df > 0:
        return Interval(float(estimate), float("nan"), float("nan"), confidence, len(finite))
    line, centre = _to_line(finite, limits), _to_line(estimate, limits)
    quantile = stats.t.ppf(0.5 + confidence / 2, df) * inflation
    if _at_a_limit(finite, limits):
        low_q, mid, high_q = np.quantile(line, [0.5 - confidence / 2, 0.5, 0.5 + confidence / 2])
        widen = quantile / stats.norm.ppf(0.5 + confidence / 2)
        ends = centre + widen * np.array([low_q - mid, high_q - mid])
    else:
        half = quantile * np.std(line, ddof=1)
        ends = np.array([centre - half, centre + half])
    low, high = np.clip(_from_line(ends, limits), *limits)
    return Interval(float(estimate), float(low), float(high), confidence, len(finite))


def _at_a_limit(values: np.ndarray, limits: tuple[float, float]) -> bool:
    """Whether any value lies at (or beyond) a finite limit of its statistic."""
    low, high = limits
    return bool(np.isfinite(low) and ((values <= low) | (values >= high)).any())


def jackknife(statistic: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """(n, m) values of `statistic(indices)` with each of the n rows left out in turn."""
    rows = np.arange(n)
    return np.array([np.atleast_1d(statistic(np.delete(rows, i))) for i in range(n)], dtype=float)


def satterthwaite_df(jackknife_values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(m,) Welch-Satterthwaite degrees of freedom of each statistic's variance, from its delete-one jackknife
    (`jackknife`) within `groups`: the sum over groups (epsilons) of n_g - 1 when every group weighs alike, down
    to one group's n_g - 1 when the statistic's spread comes from one group (an eq. 16 fit dominated by the
    noisy curvature of the most private models). NaN where the jackknife cannot tell."""
    values, groups = np.asarray(jackknife_values, dtype=float), np.asarray(groups)
    parts, dfs = [], []
    for g in np.unique(groups):
        rows = values[groups == g]
        if len(rows) > 1:
            parts.append((len(rows) - 1) / len(rows) * ((rows - rows.mean(0)) ** 2).sum(0))
            dfs.append(len(rows) - 1)
    if not parts:
        return np.full(values.shape[1], np.nan)
    variance, dfs = np.array(parts), np.array(dfs, dtype=float)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return variance.sum(0) ** 2 / (variance ** 2 / dfs).sum(0)


def seed_interval(estimate: float, replicates: np.ndarray, jackknife_values: np.ndarray | None, groups: np.ndarray,
                  limits: tuple[float, float] = UNBOUNDED) -> Interval:
    """The interval of one statistic over N models resampled within G groups (seeds within epsilons).

    Resampling n values with replacement has (n - 1)/n of their variance, which `interval` undoes with an
    inflation of sqrt(N / (N - G)); and the spread is itself estimated from few seeds, hence a t quantile. Its
    degrees of freedom: for a bounded statistic (a correlation, an R^2), whose atanh scale stabilises its
    variance, the N - G of the seeds' spread around their epsilons' means; for an unbounded one, whose spread is
    the seeds' noise at the epsilons it depends on, the Welch-Satterthwaite df of its jackknife
    (`satterthwaite_df`), N - G where that cannot be computed. For the mean of one epsilon's n seeds both are
    n - 1: about the t interval. (With N - G for the eq. 16 fit's d, which the default study's noisy curvature
    at epsilon 0.5 and 1 dominates, coverage was 92%; with Welch-Satterthwaite, 97%.)"""
    groups = np.asarray(groups)
    n, g = len(groups), len(np.unique(groups))
    df = float(n - g)
    if jackknife_values is not None and np.isinf(limits).all():
        satterthwaite = float(satterthwaite_df(np.reshape(jackknife_values, (n, 1)), groups)[0])
        df = satterthwaite if np.isfinite(satterthwaite) and satterthwaite > 0 else df
    inflation = np.sqrt(n / (n - g)) if n > g else np.nan
    return interval(estimate, replicates, df, inflation, limits=limits)


def seed_intervals(statistic: Callable[[np.ndarray], np.ndarray], groups: np.ndarray,
                   limits: tuple[tuple[float, float], ...], replicates: int = REPLICATES) -> list[Interval]:
    """Each number `statistic(indices)` returns on all rows, with its `seed_interval` (rows resampled within
    `groups`; the jackknife only where a statistic is unbounded), kept within that number's `limits`."""
    groups = np.asarray(groups)
    estimate = np.atleast_1d(statistic(np.arange(len(groups))))
    reps = rows_statistic(statistic, len(groups), groups, replicates)
    unbounded = any(np.isinf(lim).all() for lim in limits)
    jack = jackknife(statistic, len(groups)) if unbounded else None
    return [seed_interval(e, reps[:, j], None if jack is None else jack[:, j], groups, lim)
            for j, (e, lim) in enumerate(zip(estimate, limits))]
