"""The paper's bounds and fitted forms (PAPER.md) and the per-epsilon summaries the figures draw: pure
functions of numbers and tables. Figures and claims (memcurv.analysis.claims) both call them, so a number in the
report is the number drawn."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from memcurv.analysis import bootstrap

BIN_WIDTH = 0.02  # memorization bins of the paper's Fig. 3: 50 bins on [0, 1)


def mem_bound(eps: np.ndarray | float) -> np.ndarray:
    """Thm 5.4: an (eps, delta)-DP learner memorizes at most 1 - e^-eps (with probability 1 - delta)."""
    return 1.0 - np.exp(-np.asarray(eps, dtype=float))


# How the memorization-vs-epsilon subsets are drawn, and how many add/remove steps separate a training set that holds
# an example from one that does not: Poisson (Bernoulli) subsets differ by adding it (Opacus's add/remove epsilon
# applies once), fixed-size subsets by swapping it for another example (group privacy: twice).
SUBSET_DESIGNS = {"poisson": 1, "fixed": 2}


def adjacent_privacy(eps: np.ndarray | float, delta: float, design: str) -> tuple[np.ndarray, np.ndarray]:
    """The (epsilon, delta) that hold between models trained with and without an example under a subset `design`:
    (eps, delta) for Poisson subsets; for fixed-size ones, group privacy over the swap's two steps,
    (2 eps, (1 + e^eps) delta)."""
    eps = np.asarray(eps, dtype=float)
    if SUBSET_DESIGNS[design] == 1:
        return eps, np.full_like(eps, delta)
    return 2 * eps, (1 + np.exp(eps)) * delta


def design_mem_bound(eps: np.ndarray | float, delta: float, design: str) -> np.ndarray:
    """Thm 5.4 for what the estimator compares: P_in <= e^e' P_out + d' gives mem = P_in - P_out
    <= 1 - e^-e' (1 - d') with (e', d') = adjacent_privacy(eps, delta, design); 1 - e^-eps up to delta for Poisson
    subsets, 1 - e^-2eps for fixed-size ones."""
    e, d = adjacent_privacy(eps, delta, design)
    return 1.0 - np.exp(-e) * (1.0 - d)


@dataclass(frozen=True)
class Fit:
    """A least-squares fit: parameters with standard errors, R^2 on the fitted points, and the model."""

    formula: str
    params: dict[str, float]
    stderr: dict[str, float]
    r2: float
    n: int
    model: Callable[..., np.ndarray] = field(repr=False, compare=False)

    def predict(self, *x: np.ndarray) -> np.ndarray:
        return self.model(*[np.asarray(v, dtype=float) for v in x], *self.params.values())

    def degenerate(self) -> str | None:
        """Why the fit is no result, or None: an R² below 0 (worse than a flat line at the data's mean), or a
        parameter the data leave undetermined (not finite, or a standard error above UNDETERMINED times its value:
        the fit ran off to a limit of its parameter space)."""
        if self.r2 < 0:
            return f"R² = {self.r2:.3g} < 0: worse than a flat line at the mean"
        for name, value in self.params.items():
            err = self.stderr[name]
            if not np.isfinite(value) or (np.isfinite(err) and err > UNDETERMINED * abs(value)):
                return f"{name} = {value:.3g} ± {err:.3g}: not determined by the data"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"formula": self.formula, "params": self.params, "stderr": self.stderr, "r2": self.r2, "n": self.n,
                "degenerate": self.degenerate()}


UNDETERMINED = 1e3  # a parameter whose standard error is this many times its value is not a result


def _r2(y: np.ndarray, fitted: np.ndarray) -> float:
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _curve_fit(formula: str, model: Callable[..., np.ndarray], names: tuple[str, ...], xs: tuple[np.ndarray, ...],
               y: np.ndarray, p0: list[float], bounds: tuple[list[float], list[float]] | None = None) -> Fit:
    y = np.asarray(y, dtype=float)
    if len(y) <= len(names):
        raise ValueError(f"fitting {formula} needs more than {len(names)} points, got {len(y)}")

    def f(_: Any, *p: float) -> np.ndarray:
        return model(*xs, *p)

    kwargs: dict[str, Any] = {"p0": p0, "maxfev": 2_000}
    if bounds is not None:
        kwargs["bounds"] = bounds
    popt, pcov = optimize.curve_fit(f, np.zeros_like(y), y, **kwargs)
    err = np.sqrt(np.clip(np.diag(pcov), 0, None))
    return Fit(formula, dict(zip(names, map(float, popt))), dict(zip(names, map(float, err))),
               _r2(y, f(None, *popt)), len(y), model)


def _exp_decay(eps: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a + b * np.exp(-c * eps)


def _exp_decay_start(eps: np.ndarray, loss: np.ndarray) -> list[float]:
    """Starting point for a + b e^(-c eps): for each c on a grid, a and b are a linear least-squares fit; the
    best c starts the search, which then converges in a few steps (bootstrap replicates fit it hundreds of times)."""
    best = (np.inf, [float(loss.min()), float(loss.max() - loss.min()), 1.0 / float(np.median(eps))])
    for c in np.geomspace(1e-3 / eps.max(), 20.0 / max(eps.min(), 1e-9), 60):
        design = np.column_stack([np.ones_like(eps), np.exp(-c * eps)])
        (a, b), *_ = np.linalg.lstsq(design, loss, rcond=None)
        sse = float(np.sum((design @ [a, b] - loss) ** 2))
        best = min(best, (sse, [float(a), float(b), float(c)]), key=lambda t: t[0])
    return best[1]


def fit_loss_vs_epsilon(eps: np.ndarray, loss: np.ndarray) -> Fit:
    """Test loss against epsilon as a + b e^(-c eps) (the paper's Fig. 4), with c >= 0.

    Kept by value: the bootstrap replicates of link 2 (whose eq. 16 needs this fit) and of the loss claim, under
    both readings of a report, resample the same seeds, so most fits repeat one already made."""
    return _fit_loss(np.asarray(eps, float).tobytes(), np.asarray(loss, float).tobytes())


@functools.lru_cache(maxsize=4096)
def _fit_loss(eps_bytes: bytes, loss_bytes: bytes) -> Fit:
    eps, loss = np.frombuffer(eps_bytes), np.frombuffer(loss_bytes)
    p0 = _exp_decay_start(eps, loss)
    return _curve_fit("a + b exp(-c eps)", _exp_decay, ("a", "b", "c"), (eps,), loss, p0,
                      ([-np.inf, -np.inf, 0.0], [np.inf, np.inf, np.inf]))


def fit_curvature_vs_epsilon(eps: np.ndarray, curv: np.ndarray, loss_fit: Fit) -> Fit:
    """Eq. 16: Curv(eps) = L(eps) d (1 - e^-eps) + e, with L(eps) the fitted test-loss curve."""
    a, b, c = loss_fit.params.values()

    def eq16(e: np.ndarray, d: float, off: float) -> np.ndarray:
        return _exp_decay(e, a, b, c) * d * mem_bound(e) + off

    curv = np.asarray(curv, float)
    return _curve_fit("(a + b exp(-c eps)) d (1 - exp(-eps)) + e", eq16, ("d", "e"), (np.asarray(eps, float),),
                      curv, [float(curv.max() - curv.min()) or 1.0, float(curv.min())])


def fit_eq16(dp_models: pd.DataFrame, seed_average: str = "mean") -> Fit:
    """Eq. 16 through the DP models' per-epsilon mean curvature, with L(eps) fitted to their test loss."""
    curv = curvature_per_epsilon(dp_models, seed_average)
    loss = per_epsilon(dp_models, "test_loss")
    return fit_curvature_vs_epsilon(curv["epsilon"], curv["mean"], fit_loss_vs_epsilon(loss["epsilon"], loss["mean"]))


@dataclass(frozen=True)
class LackOfFit:
    """The lack-of-fit F test of a curve fitted to per-group means (an epsilon's seeds): the spread of the group means
    around the curve against the spread of the seeds around their group's mean (pure error). A small p-value says the
    curve misses the data's shape by more than the seeds' noise explains, whatever its R²."""

    f: float
    p_value: float
    df_lack_of_fit: int
    df_pure_error: int

    def to_dict(self) -> dict[str, float]:
        return {"f": self.f, "p_value": self.p_value, "df_lack_of_fit": self.df_lack_of_fit,
                "df_pure_error": self.df_pure_error}


def lack_of_fit(groups: np.ndarray, y: np.ndarray, curve: Callable[[np.ndarray], np.ndarray], params: int
                ) -> LackOfFit:
    """F = (sum_g n_g (mean_g - curve(g))^2 / (G - params)) / (sum (y - mean_g)^2 / (N - G)) over G groups of N values
    `y` (`groups` gives each value's group, a number the curve takes); NaN where either df is not positive."""
    groups, y = np.asarray(groups, float), np.asarray(y, float)
    levels, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    means = np.bincount(index, weights=y) / counts
    lack = float(np.sum(counts * (means - np.asarray(curve(levels), float)) ** 2))
    pure = float(np.sum((y - means[index]) ** 2))
    df_lack, df_pure = len(levels) - params, len(y) - len(levels)
    if df_lack < 1 or df_pure < 1:
        return LackOfFit(float("nan"), float("nan"), df_lack, df_pure)
    f = (lack / df_lack) / (pure / df_pure) if pure > 0 else float("inf")
    return LackOfFit(float(f), float(stats.f.sf(f, df_lack, df_pure)), df_lack, df_pure)


def bin_memorization(mem: np.ndarray, curv: np.ndarray, width: float = BIN_WIDTH) -> pd.DataFrame:
    """The paper's Fig. 3 binning: examples grouped by memorization score in bins of `width` on [0, 1),
    dropping scores below 0 or at 1 (and any NaN); per bin the mean memorization, the mean and standard
    deviation of curvature, and the number of examples."""
    mem, curv = np.asarray(mem, float), np.asarray(curv, float)
    keep = np.isfinite(mem) & np.isfinite(curv) & (mem >= 0) & (mem < 1)
    table = pd.DataFrame({"mem": mem[keep], "curv": curv[keep],
                          "bin": np.floor(mem[keep] / width).astype(int)})
    grouped = table.groupby("bin")
    out = pd.DataFrame({"bin_low": grouped.size().index * width, "mem": grouped["mem"].mean(),
                        "curvature": grouped["curv"].mean(), "curvature_std": grouped["curv"].std(ddof=0),
                        "count": grouped.size()})
    return out.reset_index(drop=True)


def binned_slope(x: np.ndarray, curv: np.ndarray, width: float = BIN_WIDTH) -> float:
    """The slope of `fit_mem_vs_curvature_linear` through `bin_memorization`'s bins, by numpy alone: the bootstrap of
    link 1 asks for it in every replicate. NaN with fewer than 3 bins."""
    x, curv = np.asarray(x, float), np.asarray(curv, float)
    keep = np.isfinite(x) & np.isfinite(curv) & (x >= 0) & (x < 1)
    index = np.floor(x[keep] / width).astype(int)
    counts = np.bincount(index)
    filled = counts > 0
    if filled.sum() < 3:
        return float("nan")
    bx = np.bincount(index, weights=x[keep])[filled] / counts[filled]
    by = np.bincount(index, weights=curv[keep])[filled] / counts[filled]
    bx = bx - bx.mean()
    return float(np.dot(bx, by - by.mean()) / np.dot(bx, bx))


def fit_mem_vs_curvature_linear(mem: np.ndarray, curv: np.ndarray) -> Fit:
    """Straight line through the binned points, curvature = slope * mem + intercept (np.polyfit in the paper)."""

    def line(m: np.ndarray, slope: float, intercept: float) -> np.ndarray:
        return slope * m + intercept

    if len(mem) < 3:
        raise ValueError(f"a line through binned memorization needs at least 3 bins, got {len(mem)}")
    res = stats.linregress(np.asarray(mem, float), np.asarray(curv, float))
    fitted = line(np.asarray(mem, float), res.slope, res.intercept)
    return Fit("slope mem + intercept", {"slope": float(res.slope), "intercept": float(res.intercept)},
               {"slope": float(res.stderr), "intercept": float(res.intercept_stderr)},
               _r2(np.asarray(curv, float), fitted), len(mem), line)


def fit_subpopulation_bound(mem: np.ndarray, count: np.ndarray, curv: np.ndarray) -> Fit:
    """Eq. 15 at equality, solved for curvature: Curv = (mem - c1) / (p1 sqrt(m_sub)), m_sub the bin count."""

    def eq15(m: np.ndarray, cnt: np.ndarray, p1: float, c1: float) -> np.ndarray:
        return (m - c1) / (p1 * np.sqrt(cnt))

    mem, count, curv = (np.asarray(v, float) for v in (mem, count, curv))
    guess = np.polyfit(mem, curv * np.sqrt(count), 1)  # curv sqrt(m) = mem / p1 - c1 / p1
    p1 = 1.0 / guess[0] if guess[0] != 0 else 1.0
    return _curve_fit("(mem - c1) / (p1 sqrt(m_sub))", eq15, ("p1", "c1"), (mem, count), curv,
                      [p1, -guess[1] * p1])


def fit_subpopulation_released(mem: np.ndarray, count: np.ndarray, curv: np.ndarray) -> Fit:
    """Eq. 15 as the released notebooks fit it (analyze_cifar100_curv_fz.ipynb and the ImageNet one): curvature as
    w mem sqrt(m_sub) + w' m_sub with w, w' >= 0 (non-negative least squares, no intercept), m_sub the bin count.
    Standard errors: NaN (non-negative least squares gives none)."""

    def released(m: np.ndarray, cnt: np.ndarray, w: float, w_count: float) -> np.ndarray:
        return w * m * np.sqrt(cnt) + w_count * cnt

    mem, count, curv = (np.asarray(v, float) for v in (mem, count, curv))
    if len(curv) < 3:
        raise ValueError(f"the released eq. 15 fit needs at least 3 bins, got {len(curv)}")
    (w, w_count), _ = optimize.nnls(np.column_stack([mem * np.sqrt(count), count]), curv)
    return Fit("w mem sqrt(m_sub) + w' m_sub, w, w' >= 0", {"w": float(w), "w_count": float(w_count)},
               {"w": float("nan"), "w_count": float("nan")}, _r2(curv, released(mem, count, w, w_count)), len(curv),
               released)


EQ15_FORMS = {"paper": fit_subpopulation_bound, "released": fit_subpopulation_released}


def fit_binned(bins: pd.DataFrame, eq15: str = "paper") -> dict[str, Fit | str]:
    """The linear and eq. 15 fits through binned memorization (`bin_memorization`), eq. 15 in the paper's form or
    the released notebooks' (`eq15`, defect switch eq15_fit); a fit that cannot be made (too few bins, no
    convergence) is its error message, so it is reported rather than hidden."""
    fits: dict[str, Fit | str] = {}
    eq15_fit = EQ15_FORMS[eq15]
    for name, fit in (("linear", lambda: fit_mem_vs_curvature_linear(bins["mem"], bins["curvature"])),
                      ("subpopulation", lambda: eq15_fit(bins["mem"], bins["count"], bins["curvature"]))):
        try:
            fits[name] = fit()
        except (RuntimeError, ValueError) as e:
            fits[name] = str(e)
    return fits


# --- Per-epsilon summaries of the tables ---------------------------------------------------------

def per_epsilon(table: pd.DataFrame, column: str, intervals: bool = False) -> pd.DataFrame:
    """Mean, standard deviation and count of a per-model column at each epsilon; with `intervals`, also the
    bootstrap interval of the mean over the epsilon's models (ci_low, ci_high; bootstrap.seed_intervals: about
    the t interval over seeds)."""
    g = table.groupby("epsilon")[column]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.size()}).reset_index()
    if intervals:
        bounds = []
        for _, values in g:
            v = values.to_numpy(float)
            (ci,) = bootstrap.seed_intervals(lambda idx, v=v: v[idx].mean(), np.zeros(len(v)), (bootstrap.UNBOUNDED,))
            bounds.append((ci.low, ci.high))
        out["ci_low"], out["ci_high"] = zip(*bounds) if bounds else ((), ())
    return out


def curvature_per_epsilon(dp_models: pd.DataFrame, seed_average: str = "mean", intervals: bool = False
                          ) -> pd.DataFrame:
    """Mean training-set curvature per epsilon over seeds.  `faithful` reproduces defect 5: the sum over
    seeds divided by the number of epsilon values rather than the number of seeds."""
    out = per_epsilon(dp_models, "curvature", intervals)
    if seed_average == "faithful":
        scale = out["n"] / dp_models["epsilon"].nunique()
        for key in ["mean", "std", *(["ci_low", "ci_high"] if intervals else [])]:
            out[key] = out[key] * scale
    return out
