"""Simulated reruns of the committed studies, for measuring how often the claims' intervals cover what a rerun
gives on average (tests/test_coverage.py, benchmarks/interval_coverage.py).

Each design draws many runs shaped like a study (its epsilons, seeds, models, examples; curvature and loss at the
scale of paper/digits.json and paper/cifar10_cpu.json at a2f6c85), computes the statistic with the replicates
the claims would draw, and the truth as the statistic's average over many more runs. The statistics of link 2
and the loss are vectorised over replicates (the claims fit each replicate with scipy, too slow for thousands of
runs); `test_coverage` checks that they agree with memcurv.analysis.claims.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from memcurv.analysis import bootstrap
from memcurv.analysis.bootstrap import CORRELATION, R2, UNBOUNDED, Interval
from memcurv.estimators.memorization import resampled_membership


def old_interval(estimate: float, replicates: np.ndarray, limits: tuple[float, float] = UNBOUNDED) -> Interval:
    """The interval the claims used before (percentile_interval): the central 95% of the replicates, moved so
    that their median is the run's value."""
    finite = replicates[np.isfinite(replicates)]
    low, high = np.clip(np.percentile(finite, [2.5, 97.5]) + (estimate - np.median(finite)), *limits)
    return Interval(float(estimate), float(low), float(high), 0.95, len(finite))


def coverage(intervals: list[Interval], truth: float) -> float:
    return float(np.mean([i.low <= truth <= i.high for i in intervals]))


def mean_width(intervals: list[Interval]) -> float:
    return float(np.nanmean([i.high - i.low for i in intervals]))


# --- Link 2 and the loss: DP models, seeds within epsilons ----------------------------------------------------

LINK2 = ("Spearman(eps, curvature)", "eq. 16 d", "eq. 16 R²", "eq. 16 rise", "Spearman(eps, test loss)",
         "loss fit R²")
LINK2_LIMITS = (CORRELATION, UNBOUNDED, R2, UNBOUNDED, CORRELATION, R2)


@dataclass(frozen=True)
class Study:
    """The DP models of a committed study: epsilons, seeds per epsilon, its fitted curves and seed noise."""

    name: str
    epsilons: np.ndarray
    seeds: int
    loss_fit: tuple[float, float, float]  # a, b, c of a + b e^(-c eps)
    eq16_fit: tuple[float, float]  # d, e
    curvature_sd: np.ndarray  # per epsilon, over seeds
    loss_sd: np.ndarray
    curvature_mean: np.ndarray  # per epsilon, the table's
    loss_mean: np.ndarray

    def means(self, shape: str) -> tuple[np.ndarray, np.ndarray]:
        """Curvature and loss per epsilon: the study's fitted curves ("theory") or its table's means ("table")."""
        if shape == "table":
            return self.curvature_mean, self.loss_mean
        a, b, c = self.loss_fit
        loss = a + b * np.exp(-c * self.epsilons)
        return loss * self.eq16_fit[0] * (1 - np.exp(-self.epsilons)) + self.eq16_fit[1], loss

    def noise(self, spread: str) -> tuple[np.ndarray, np.ndarray]:
        """Seed noise per epsilon: the table's ("per-epsilon") or their root mean square at every one ("pooled")."""
        if spread == "per-epsilon":
            return self.curvature_sd, self.loss_sd
        return (np.full(len(self.epsilons), np.sqrt(np.mean(self.curvature_sd ** 2))),
                np.full(len(self.epsilons), np.sqrt(np.mean(self.loss_sd ** 2))))


CIFAR = Study("CIFAR-10 (6 epsilons x 3 seeds)", np.array([0.5, 1, 2, 5, 10, 100.0]), 3, (1.6079, 0.6103, 0.7444),
              (2.5946, -1.0355), np.array([0.890, 0.606, 1.535, 1.459, 2.074, 1.917]),
              np.array([0.0243, 0.0229, 0.0192, 0.0041, 0.0095, 0.0444]),
              np.array([1.338, 1.675, 2.031, 2.468, 2.784, 5.116]),
              np.array([2.0378, 1.8813, 1.7492, 1.6470, 1.6142, 1.5811]))
DIGITS = Study("digits (8 epsilons x 5 seeds)", np.array([0.5, 1, 2, 5, 10, 20, 50, 100.0]), 5,
               (0.14932, 5.9486, 2.3403), (16.332, 0.2627),
               np.array([35.81, 9.574, 4.290, 1.684, 1.734, 0.578, 0.802, 0.790]),
               np.array([0.3059, 0.0912, 0.01215, 0.02422, 0.02038, 0.01758, 0.01772, 0.01856]),
               np.array([13.387, 6.965, 4.546, 1.703, 3.110, 3.182, 2.241, 2.310]),
               np.array([2.0001, 0.6991, 0.2845, 0.1642, 0.1412, 0.1307, 0.1252, 0.1237]))

_C_GRID = np.geomspace(1e-6, 60.0, 600)


def _ranks(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, axis=-1)


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a - a.mean(-1, keepdims=True), b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row (last axis), the least-squares slope and intercept of y on x and the fit's R²."""
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    sxy, sxx, syy = (xc * yc).sum(-1), (xc * xc).sum(-1), (yc * yc).sum(-1)
    slope = sxy / sxx
    return slope, y.mean(-1) - slope * x.mean(-1), sxy * slope / syy


def _loss_fit(eps: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """theory.fit_loss_vs_epsilon per row of `loss` (R, G): c on a fine grid, refined by a parabola through the
    best three, a and b by least squares at each c. Returns the fitted curve (R, G) and R² (R,)."""
    x = np.exp(-np.outer(_C_GRID, eps))
    xc, yc = x - x.mean(1, keepdims=True), loss - loss.mean(1, keepdims=True)
    sse = (yc * yc).sum(1)[:, None] - (yc @ xc.T) ** 2 / (xc * xc).sum(1)
    j = np.clip(sse.argmin(1), 1, len(_C_GRID) - 2)
    r = np.arange(len(loss))
    s0, s1, s2 = sse[r, j - 1], sse[r, j], sse[r, j + 1]
    bend = s0 - 2 * s1 + s2
    step = np.where(bend > 0, 0.5 * (s0 - s2) / np.where(bend > 0, bend, 1.0), 0.0)
    c = np.exp(np.log(_C_GRID[j]) + np.clip(step, -1, 1) * np.log(_C_GRID[1] / _C_GRID[0]))
    e = np.exp(-c[:, None] * eps)
    b, a, r2 = _line_fit(e, loss)
    return a[:, None] + b[:, None] * e, r2


def link2_statistics(epsilon_rows: np.ndarray, curvature: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """(R, 6) `LINK2` statistics of each row of (R, M) tables of DP models: claims._eq16_statistics and
    claims._loss_statistics vectorised, and the eq. 16 curve's rise (largest epsilon's prediction minus the
    smallest's). `epsilon_rows` is (M,) or (R, M)."""
    epsilon_rows = np.broadcast_to(epsilon_rows, curvature.shape)
    eps = np.unique(epsilon_rows)
    onehot = (epsilon_rows[..., None] == eps).astype(float)
    count = onehot.sum(1)
    curv_mean = np.einsum("rm,rmg->rg", curvature, onehot) / count
    loss_mean = np.einsum("rm,rmg->rg", loss, onehot) / count
    eps_ranks = _ranks(epsilon_rows)
    fitted_loss, loss_r2 = _loss_fit(eps, loss_mean)
    u = fitted_loss * (1 - np.exp(-eps))
    d, _, r2 = _line_fit(u, curv_mean)
    return np.column_stack([_correlation(eps_ranks, _ranks(curvature)), d, r2, d * (u[:, -1] - u[:, 0]),
                            _correlation(eps_ranks, _ranks(loss)), loss_r2])


def _lack_of_fit_p(epsilon_rows: np.ndarray, y: np.ndarray, fitted: np.ndarray, params: int) -> np.ndarray:
    """(R,) p-values of theory.lack_of_fit for (R, M) values `y` and (R, G) curves `fitted` at the sorted epsilons."""
    eps, index = np.unique(epsilon_rows, return_inverse=True)
    onehot = (index[:, None] == np.arange(len(eps))).astype(float)
    count = onehot.sum(0)
    means = y @ onehot / count
    lack = ((means - fitted) ** 2 * count).sum(1)
    pure = ((y - means[:, index]) ** 2).sum(1)
    df_lack, df_pure = len(eps) - params, len(y[0]) - len(eps)
    return stats.f.sf((lack / df_lack) / (pure / df_pure), df_lack, df_pure)


def lack_of_fit(epsilon_rows: np.ndarray, curvature: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """(R, 2) p-values of the lack-of-fit tests of eq. 16 (claims.eq16_lack_of_fit) and of the loss curve
    (claims.loss_lack_of_fit) for each row of (R, M) tables of DP models, fitted as `link2_statistics` fits them."""
    eps = np.unique(epsilon_rows)
    onehot = (epsilon_rows[:, None] == eps).astype(float)
    count = onehot.sum(0)
    fitted_loss, _ = _loss_fit(eps, loss @ onehot / count)
    u = fitted_loss * (1 - np.exp(-eps))
    d, e, _ = _line_fit(u, curvature @ onehot / count)
    curve = d[:, None] * u + e[:, None]
    return np.column_stack([_lack_of_fit_p(epsilon_rows, curvature, curve, 2),
                            _lack_of_fit_p(epsilon_rows, loss, fitted_loss, 3)])


LACK_OF_FIT = ("eq. 16 lack of fit", "loss curve's lack of fit")


def draw_dp_models(study: Study, shape: str, spread: str, runs: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epsilon per model (M,) and `runs` tables of curvature and loss (runs, M): normal seed noise around the
    study's per-epsilon values, epsilon-major."""
    (curv, loss), (curv_sd, loss_sd) = study.means(shape), study.noise(spread)
    size = (runs, len(study.epsilons), study.seeds)
    draw = [(m[:, None] + sd[:, None] * rng.standard_normal(size)).reshape(runs, -1)
            for m, sd in ((curv, curv_sd), (loss, loss_sd))]
    return np.repeat(study.epsilons, study.seeds), draw[0], draw[1]


def link2_intervals(epsilon_rows: np.ndarray, curvature: np.ndarray, loss: np.ndarray, replicates: int
                    ) -> tuple[np.ndarray, list[Interval], list[Interval]]:
    """One table's `LINK2` statistics with their old and new intervals, from the replicates the claims draw
    (claims._seed_intervals: seeds resampled within epsilons; the jackknife for the new interval's df)."""
    n = len(epsilon_rows)
    estimate = link2_statistics(epsilon_rows, curvature[None], loss[None])[0]
    idx = bootstrap.stratified_indices(epsilon_rows, replicates, bootstrap.rng())
    reps = link2_statistics(epsilon_rows, curvature[idx], loss[idx])
    left_out = ~np.eye(n, dtype=bool)
    jack = link2_statistics(*(np.broadcast_to(v, (n, n))[left_out].reshape(n, n - 1)
                              for v in (epsilon_rows, curvature, loss)))
    old = [old_interval(estimate[j], reps[:, j], lim) for j, lim in enumerate(LINK2_LIMITS)]
    new = [bootstrap.seed_interval(estimate[j], reps[:, j], jack[:, j], epsilon_rows, lim)
           for j, lim in enumerate(LINK2_LIMITS)]
    return estimate, old, new


def link2_runs(study: Study, shape: str, spread: str, runs: int, replicates: int, seed: int = 0
               ) -> dict[str, object]:
    """Simulated runs of link 2 and the loss: per statistic, the truth (the average over 20,000 runs), each run's
    estimate and its old and new intervals (lists per statistic)."""
    rng = np.random.default_rng(seed)
    truth = np.nanmean(link2_statistics(*draw_dp_models(study, shape, spread, 20_000, rng)), 0)
    epsilon_rows, curv, loss = draw_dp_models(study, shape, spread, runs, rng)
    estimates, old, new = zip(*[link2_intervals(epsilon_rows, curv[r], loss[r], replicates) for r in range(runs)])
    return {"truth": truth, "estimates": np.array(estimates), "old": list(zip(*old)), "new": list(zip(*new))}


# --- A per-epsilon mean over seeds (theory.per_epsilon, the figures' error bars) -------------------------------

def mean_runs(seeds: int, runs: int, replicates: int, seed: int = 0) -> tuple[list[Interval], list[Interval]]:
    """Old and new intervals of the mean of `seeds` standard normal values (truth 0), over `runs` runs."""
    rng, groups = np.random.default_rng(seed), np.zeros(seeds)
    old, new = [], []
    for values in rng.standard_normal((runs, seeds)):
        reps = bootstrap.rows_statistic(lambda idx, v=values: v[idx].mean(), seeds, groups, replicates)[:, 0]
        old.append(old_interval(values.mean(), reps))
        jack = bootstrap.jackknife(lambda idx, v=values: v[idx].mean(), seeds)[:, 0]
        new.append(bootstrap.seed_interval(values.mean(), reps, jack, groups))
    return old, new


# --- Link 3: top-k memorization per epsilon, DP subset models and examples resampled ---------------------------

def draw_topk(rng: np.random.Generator, models: int, k: int, mem: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks (each model trains on a random half of the top-k) and 0/1 correctness of `models` DP models on k
    examples: excluded models get example i right with probability q_i, including ones with q_i + m_i, m_i
    around `mem`, plus a per-model shift (DP models differ in accuracy)."""
    masks = np.zeros((models, k), dtype=bool)
    for row in masks:
        row[rng.choice(k, k // 2, replace=False)] = True
    q = rng.uniform(0.1, 0.6, k)
    m = np.clip(rng.normal(mem, 0.15, k), 0.0, 1.0 - q)
    p = np.clip(q + m * masks + rng.normal(0.0, 0.1, (models, 1)), 0.0, 1.0)
    return masks, (rng.random((models, k)) < p).astype(np.float32)


def topk_replicates(masks: np.ndarray, score: np.ndarray, replicates: int) -> tuple[float, np.ndarray]:
    """claims.topk_memorization_intervals' estimate and replicates at one epsilon (the corrected estimator)."""
    generator = bootstrap.rng()
    w = np.vstack([np.ones(len(masks)), bootstrap.model_weights(len(masks), replicates, generator)])
    mem = resampled_membership(masks, score, w)["in_minus_out"]
    idx = np.vstack([np.arange(mem.shape[1]), generator.integers(0, mem.shape[1], (replicates, mem.shape[1]))])
    means = np.nanmean(mem[np.arange(replicates + 1)[:, None], idx], axis=1)
    return float(means[0]), means[1:]


def topk_truth(models: int, k: int, mem: float, runs: int = 4000, seed: int = 1) -> float:
    """The average of the mean top-k memorization over `runs` simulated runs."""
    rng = np.random.default_rng(seed)
    return float(np.mean([topk_replicates(*draw_topk(rng, models, k, mem), 0)[0] for _ in range(runs)]))


# --- Link 1: Spearman(memorization, curvature) over examples, subset models and examples resampled -------------

def draw_subset_models(rng: np.random.Generator, examples: int, models: int, scored: int, slope: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (70% subsets), 0/1 correctness and the scored models' curvature: example i has propensity p_i
    (excluded models get it wrong with probability p_i), its curvature grows with p_i by `slope` on a log scale
    with per-model noise."""
    masks = rng.random((models, examples)) < 0.7
    p = rng.beta(0.5, 3.0, examples)
    noise = rng.random((models, examples))
    correct = np.where(masks, noise > 0.1 * p, noise > p).astype(np.float32)
    curv = np.exp(slope * p + rng.standard_normal((scored, examples)) + 0.3 * rng.standard_normal((scored, 1)))
    return masks, correct, curv


def _means_by_membership(w: np.ndarray, masks: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """resampled_membership's in_mean and out_mean, the same arithmetic without its in_max."""
    inside = masks.astype(np.float64)
    values = np.asarray(values, dtype=np.float64)
    n_in, n_out = w @ inside, w @ (1.0 - inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(n_in > 0, (w @ (inside * values)) / n_in, np.nan),
                np.where(n_out > 0, (w @ ((1.0 - inside) * values)) / n_out, np.nan))


def link1_estimate(masks: np.ndarray, correct: np.ndarray, curv: np.ndarray) -> float:
    i, o = _means_by_membership(np.ones((1, len(masks))), masks, correct)
    return bootstrap.spearman(i[0] - o[0], _means_by_membership(np.ones((1, len(curv))), masks[:len(curv)], curv)[1][0])


def link1_replicates(masks: np.ndarray, correct: np.ndarray, curv: np.ndarray, replicates: int) -> np.ndarray:
    """claims.link1_replicates for the corrected reading (curvature averaged over the scored models that left an
    example out; the scored models are the first ones), drawing the same numbers."""
    generator = bootstrap.rng()
    i, o = _means_by_membership(bootstrap.model_weights(len(masks), replicates, generator), masks, correct)
    scored_weights = bootstrap.model_weights(len(curv), replicates, generator)
    rows = np.arange(replicates)[:, None]
    idx = generator.integers(0, masks.shape[1], size=(replicates, masks.shape[1]))
    mem = (i - o)[rows, idx]
    out = _means_by_membership(scored_weights, masks[:len(curv)], curv)[1][rows, idx]
    return np.array([bootstrap.spearman(mem[b], out[b]) for b in range(replicates)])
