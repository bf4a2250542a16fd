"""The paper's bounds and fitted forms (PAPER.md), the per-epsilon summaries the figures draw, and the
check of each claim against a run's tables.

Figures and the report both call these functions, so a number in the report is the number drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from memcurv.config import DEFECTS, READABLE

BIN_WIDTH = 0.02  # memorization bins of the paper's Fig. 3: 50 bins on [0, 1)


def mem_bound(eps: np.ndarray | float) -> np.ndarray:
    """Thm 5.4: an (eps, delta)-DP learner memorizes at most 1 - e^-eps (with probability 1 - delta)."""
    return 1.0 - np.exp(-np.asarray(eps, dtype=float))


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

    def to_dict(self) -> dict[str, Any]:
        return {"formula": self.formula, "params": self.params, "stderr": self.stderr, "r2": self.r2, "n": self.n}


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

    kwargs: dict[str, Any] = {"p0": p0, "maxfev": 20_000}
    if bounds is not None:
        kwargs["bounds"] = bounds
    popt, pcov = optimize.curve_fit(f, np.zeros_like(y), y, **kwargs)
    err = np.sqrt(np.clip(np.diag(pcov), 0, None))
    return Fit(formula, dict(zip(names, map(float, popt))), dict(zip(names, map(float, err))),
               _r2(y, f(None, *popt)), len(y), model)


def _exp_decay(eps: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a + b * np.exp(-c * eps)


def fit_loss_vs_epsilon(eps: np.ndarray, loss: np.ndarray) -> Fit:
    """Test loss against epsilon as a + b e^(-c eps) (the paper's Fig. 4), with c >= 0."""
    eps, loss = np.asarray(eps, float), np.asarray(loss, float)
    p0 = [float(loss.min()), float(loss.max() - loss.min()), 1.0 / float(np.median(eps))]
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


def fit_binned(bins: pd.DataFrame) -> dict[str, Fit | str]:
    """The linear and eq. 15 fits through binned memorization (`bin_memorization`); a fit that cannot be
    made (too few bins, no convergence) is its error message, so it is reported rather than hidden."""
    fits: dict[str, Fit | str] = {}
    for name, fit in (("linear", lambda: fit_mem_vs_curvature_linear(bins["mem"], bins["curvature"])),
                      ("subpopulation", lambda: fit_subpopulation_bound(bins["mem"], bins["count"],
                                                                        bins["curvature"]))):
        try:
            fits[name] = fit()
        except (RuntimeError, ValueError) as e:
            fits[name] = str(e)
    return fits


# --- Per-epsilon summaries of the tables ---------------------------------------------------------

def per_epsilon(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, standard deviation and count of a per-model column at each epsilon."""
    g = table.groupby("epsilon")[column]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.size()}).reset_index()


def curvature_per_epsilon(dp_models: pd.DataFrame, seed_average: str = "mean") -> pd.DataFrame:
    """Mean training-set curvature per epsilon over seeds.  `faithful` reproduces defect 5: the sum over
    seeds divided by the number of epsilon values rather than the number of seeds."""
    out = per_epsilon(dp_models, "curvature")
    if seed_average == "faithful":
        scale = out["n"] / dp_models["epsilon"].nunique()
        out["mean"], out["std"] = out["mean"] * scale, out["std"] * scale
    return out


def topk_memorization_per_epsilon(mem_table: pd.DataFrame, estimator: str = "conditional") -> pd.DataFrame:
    """Mean memorization of the top-k examples at each epsilon and the bound 1 - e^-eps.  `faithful`
    reproduces defect 4: unconditional means, absolute value taken before averaging."""
    scores = mem_table.assign(score=mem_table["mem_unconditional"].abs() if estimator == "faithful"
                              else mem_table["mem"])
    out = per_epsilon(scores.dropna(subset=["score"]), "score")
    out["bound"] = mem_bound(out["epsilon"])
    out["below_bound"] = out["mean"] <= out["bound"]
    return out


# --- Claims ----------------------------------------------------------------------------------------

HOLDS, FAILS, NOT_RUN = "holds", "does not hold", "not run"


@dataclass
class Claim:
    """One claim of the paper, the criterion it is judged by, the run's numbers and the verdict."""

    key: str
    title: str
    statement: str
    criterion: str
    verdict: str = NOT_RUN
    numbers: dict[str, Any] = field(default_factory=dict)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def claim_curvature_bounds_memorization(examples: pd.DataFrame | None) -> Claim:
    claim = Claim("curvature_memorization", "Curvature bounds memorization",
                  "Input loss curvature bounds memorization: curvature rises with "
                  "memorization (Thm 5.1, Fig. 3).",
                  "Spearman correlation of per-example curvature with memorization > 0 at p < 0.01, and the "
                  "straight line through the binned means has a positive slope.")
    if examples is None:
        return claim
    ok = np.isfinite(examples["mem"]) & np.isfinite(examples["curvature"])
    rho, p = _spearman(examples.loc[ok, "mem"], examples.loc[ok, "curvature"])
    bins = bin_memorization(examples["mem"], examples["curvature"])
    claim.numbers = {"spearman_rho": rho, "spearman_p": p, "examples": int(ok.sum()), "bins": len(bins),
                     "curvature_column": str(examples["curvature_column"].iloc[0])}
    fits = fit_binned(bins)
    for name, fit in fits.items():
        claim.numbers[f"{name}_fit"] = fit.to_dict() if isinstance(fit, Fit) else {"error": fit}
    line = fits["linear"]
    slope = line.params["slope"] if isinstance(line, Fit) else float("nan")
    claim.verdict = HOLDS if rho > 0 and p < 0.01 and slope > 0 else FAILS
    return claim


def claim_epsilon_bounds_curvature(dp_models: pd.DataFrame | None, seed_average: str = "mean") -> Claim:
    claim = Claim("epsilon_curvature", "Privacy bounds curvature",
                  "Privacy bounds curvature: mean training-set curvature rises with epsilon "
                  "and saturates like (1 - e^-eps) (Thm 5.3, eq. 16, Fig. 5).",
                  "Spearman correlation of the DP models' mean curvature with epsilon (one point per model) "
                  "> 0 at p < 0.05, and the eq. 16 fit to the per-epsilon means has d > 0 and R^2 >= 0.5.")
    if dp_models is None or dp_models["epsilon"].nunique() < 4:
        return claim
    curv = curvature_per_epsilon(dp_models, seed_average)
    rho, p = _spearman(dp_models["epsilon"], dp_models["curvature"])
    claim.numbers = {"spearman_rho": rho, "spearman_p": p, "models": len(dp_models), "epsilons": len(curv),
                     "per_epsilon": curv.to_dict("records")}
    try:
        fit = fit_eq16(dp_models, seed_average)
        claim.numbers["eq16_fit"] = fit.to_dict()
        fit_ok = fit.params["d"] > 0 and fit.r2 >= 0.5
    except (RuntimeError, ValueError) as e:
        claim.numbers["eq16_fit"] = {"error": str(e)}
        fit_ok = False
    claim.verdict = HOLDS if rho > 0 and p < 0.05 and fit_ok else FAILS
    return claim


def claim_epsilon_bounds_memorization(mem_table: pd.DataFrame | None, estimator: str = "conditional") -> Claim:
    claim = Claim("epsilon_memorization", "Privacy bounds memorization",
                  "Privacy bounds memorization: the mean memorization of the most "
                  "memorized examples stays below 1 - e^-eps (Thm 5.4, Fig. 6).",
                  "At every epsilon, the mean top-k memorization is at most 1 - e^-eps.")
    if mem_table is None or mem_table.empty:
        return claim
    per = topk_memorization_per_epsilon(mem_table, estimator)
    claim.numbers = {"fraction_below_bound": float(per["below_bound"].mean()), "epsilons": len(per),
                     "per_epsilon": per.to_dict("records")}
    claim.verdict = HOLDS if bool(per["below_bound"].all()) else FAILS
    return claim


def claim_loss_falls(dp_models: pd.DataFrame | None) -> Claim:
    claim = Claim("loss_epsilon", "Test loss falls with epsilon",
                  "Test loss falls with epsilon like a + b e^(-c eps) (Fig. 4).",
                  "Spearman correlation of the DP models' test loss with epsilon (one point per model) < 0 at "
                  "p < 0.05, and the a + b e^(-c eps) fit to the per-epsilon means has R^2 >= 0.5.")
    if dp_models is None or dp_models["epsilon"].nunique() < 4:
        return claim
    loss = per_epsilon(dp_models, "test_loss")
    acc = per_epsilon(dp_models, "test_acc")
    rho, p = _spearman(dp_models["epsilon"], dp_models["test_loss"])
    claim.numbers = {"spearman_rho": rho, "spearman_p": p, "models": len(dp_models),
                     "per_epsilon_loss": loss.to_dict("records"),
                     "per_epsilon_accuracy": acc.to_dict("records")}
    try:
        fit = fit_loss_vs_epsilon(loss["epsilon"], loss["mean"])
        claim.numbers["fit"] = fit.to_dict()
        r2 = fit.r2
    except (RuntimeError, ValueError) as e:
        claim.numbers["fit"] = {"error": str(e)}
        r2 = float("nan")
    claim.verdict = HOLDS if rho < 0 and p < 0.05 and r2 >= 0.5 else FAILS
    return claim


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


CORRECTED = {k: DEFECTS[k][0] for k in READABLE}  # the corrected reading of a run's tables


def model_curvature_column(defects: dict[str, str]) -> str:
    """Column of the DP models' table holding a model's mean curvature under a reading (score, loss reduction)."""
    d = {**CORRECTED, **defects}
    return f"curv_{d['curvature_score']}_{d['loss_reduction']}"


def example_curvature_column(defects: dict[str, str]) -> str:
    """Column of the examples table holding an example's curvature under a reading: score, loss reduction and
    aggregation over the subset models."""
    d = {**CORRECTED, **defects}
    return f"{model_curvature_column(d)}_{d['curvature_aggregation']}"


def _read_curvature(path: Path, column: str) -> pd.DataFrame | None:
    table = _read(path)
    return None if table is None else table.assign(curvature=table[column], curvature_column=column)


def read_dp_models(path: Path, defects: dict[str, str]) -> pd.DataFrame | None:
    """The DP models' table with `curvature` and `curvature_column` as the reading picks them."""
    return _read_curvature(path, model_curvature_column(defects))


def read_examples(path: Path, defects: dict[str, str]) -> pd.DataFrame | None:
    """The examples table with `curvature` and `curvature_column` as the reading picks them."""
    return _read_curvature(path, example_curvature_column(defects))


def check_claims(tables: Path, defects: dict[str, str] | None = None) -> list[Claim]:
    """Every claim checked against the tables in `tables`; a claim whose table is absent is `not run`.

    `defects` is the reading (memcurv.config.READABLE: curvature score, loss reduction, aggregation over
    subset models, memorization estimator, seed average; the default is all corrected), so one run's tables
    can be judged both ways."""
    d = {**CORRECTED, **(defects or {})}
    dp_models = read_dp_models(tables / "dp_models.csv", d)
    return [
        claim_curvature_bounds_memorization(read_examples(tables / "examples.csv", d)),
        claim_epsilon_bounds_curvature(dp_models, d["seed_average"]),
        claim_epsilon_bounds_memorization(_read(tables / "mem_vs_epsilon.csv"), d["mem_estimator"]),
        claim_loss_falls(dp_models),
    ]
