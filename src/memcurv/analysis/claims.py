"""Each claim of the paper judged on a run's tables: its statistics, their bootstrap intervals over the models
(memcurv.analysis.bootstrap), and a three-way verdict. A claim holds when every interval clears its criterion, does
not hold when an interval lies wholly on the wrong side, and is inconclusive otherwise: the run cannot tell.

Link 1 and link 3 resample the models behind each example's scores, which the tables keep (memcurv.tables:
SUBSET_SCORES and MEM_VS_EPSILON_MODELS); link 2 and the loss resample seeds within each epsilon.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import bootstrap, reliability, theory
from memcurv.analysis.bootstrap import CORRELATION, R2, UNBOUNDED, Interval, interval, spearman
from memcurv.analysis.readings import AGGREGATION_NAMES, CORRECTED, read_dp_models, read_examples, read_table
from memcurv.estimators.score_reduction import SCORES, reduce_scores
from memcurv.estimators.memorization import resampled_membership
from memcurv.tables import DP_MODELS, EXAMPLES, MEM_VS_EPSILON_MODELS, SUBSET_SCORES, curvature_column

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
LINK1_REPLICATES = 200  # each replicate re-aggregates every example over the resampled models
MIN_EPSILONS = 4


@dataclass
class Claim:
    """One claim of the paper, the criterion it is judged by, the run's numbers and the verdict."""

    key: str
    title: str
    statement: str
    criterion: str
    verdict: str = NOT_RUN
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """A statistic's interval must lie above (`>`) or below (`<`) a threshold for its claim to hold."""

    name: str
    interval: Interval
    side: str
    threshold: float

    def passes(self) -> bool:
        i = self.interval
        return i.low > self.threshold if self.side == ">" else i.high < self.threshold

    def fails(self) -> bool:
        i = self.interval
        return i.high <= self.threshold if self.side == ">" else i.low >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "side": self.side, "threshold": self.threshold, "passes": self.passes(),
                **self.interval.to_dict()}


def judge(conditions: list[Condition]) -> str:
    """Holds if every interval clears its threshold, does not hold if one lies wholly on the wrong side."""
    if all(c.passes() for c in conditions):
        return HOLDS
    return FAILS if any(c.fails() for c in conditions) else INCONCLUSIVE


def _conclude(claim: Claim, conditions: list[Condition]) -> Claim:
    claim.numbers["conditions"] = [c.to_dict() for c in conditions]
    claim.verdict = judge(conditions)
    return claim


def _fit_or_error(make: Any) -> theory.Fit | str:
    try:
        return make()
    except (RuntimeError, ValueError) as e:
        return str(e)


def _fit_dict(fit: theory.Fit | str) -> dict[str, Any]:
    return fit.to_dict() if isinstance(fit, theory.Fit) else {"error": fit}


# --- Link 1: curvature bounds memorization ------------------------------------------------------------

def _link1_inputs(scores_file: Path, reduction: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(masks, per-model memorization scores, which models scored curvature, each score's per-model curvature of the
    scored models under the loss `reduction`) from a study's subset-model scores (memcurv.tables.SUBSET_SCORES)."""
    with np.load(scores_file) as z:
        masks, score, scored = z["masks"], z["score"], z["scored"]
        curv = {s: z[curvature_column(s)] for s in SCORES}
        batch = int(z["released_batch_size"])
    return masks, score, scored, reduce_scores(curv, reduction, batch)


def link1_replicates(scores_file: Path, reduction: str, cscore: np.ndarray | None = None,
                     flipped: np.ndarray | None = None, scores: tuple[str, ...] = SCORES,
                     replicates: int = LINK1_REPLICATES) -> dict[tuple[str, str], np.ndarray]:
    """Bootstrap replicates of link 1's statistics under one loss `reduction`, keyed (reference, column): the
    Spearman correlation of memorization ("mem") with every score x aggregation (an examples-table column); with
    C-scores, of 1 - C-score ("cscore") with each and with memorization ("mem" column); with flipped labels
    (`flipped`, per example), each one's AUROC for finding them ("flipped"). Each replicate draws the subset models
    (memorization from all of them, curvature from as many of the scored ones as were scored) and the examples; the
    C-scores, from thousands of models elsewhere, and the flips are fixed. `scores` limits the curvature scores."""
    masks, score, scored, curv = _link1_inputs(scores_file, reduction)
    generator = bootstrap.rng()
    mem = resampled_membership(masks, score, bootstrap.model_weights(len(masks), replicates, generator))["in_minus_out"]
    scored_weights = bootstrap.model_weights(int(scored.sum()), replicates, generator)  # a rerun scores as many
    rows = np.arange(replicates)[:, None]
    idx = generator.integers(0, masks.shape[1], size=(replicates, masks.shape[1]))
    mem = mem[rows, idx]
    references = {"mem": (mem, spearman)}
    if cscore is not None:
        references["cscore"] = ((1.0 - np.asarray(cscore, float))[idx], spearman)
    if flipped is not None:
        references["flipped"] = (np.asarray(flipped, bool)[idx], auroc)
    out = {(name, "mem"): np.array([statistic(x[b], mem[b]) for b in range(replicates)])
           for name, (x, statistic) in references.items() if name != "mem"}
    for s in scores:
        aggregates = resampled_membership(masks[scored], curv[s], scored_weights)
        for agg in AGGREGATION_NAMES:
            c = aggregates[agg][rows, idx]
            for name, (x, statistic) in references.items():
                column = curvature_column(s, reduction, agg)
                out[name, column] = np.array([statistic(x[b], c[b]) for b in range(replicates)])
    return out


def link1_reliability(scores_file: Path, reduction: str) -> dict[str, float]:
    """Split-half reliability (memcurv.analysis.reliability) of every score x aggregation under one loss
    `reduction`, keyed by examples-table column, over the scored subset models; and of memorization ("mem") over all
    of them."""
    masks, score, scored, curv = _link1_inputs(scores_file, reduction)
    out = {"mem": reliability.split_half(masks, score, "in_minus_out")}
    for s, values in curv.items():
        for agg in AGGREGATION_NAMES:
            out[curvature_column(s, reduction, agg)] = reliability.split_half(masks[scored], values, agg)
    return out


def correlation_interval(x: pd.Series, y: pd.Series, replicates: np.ndarray) -> Interval:
    """A Spearman correlation of two examples-table columns with its interval from its bootstrap replicates."""
    return interval(spearman(x, y), replicates, limits=CORRELATION)


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of `score` for finding the `positive` examples, by ranks (ties averaged), over the
    finite scores; NaN unless both kinds are among them."""
    positive, score = np.asarray(positive, bool), np.asarray(score, float)
    ok = np.isfinite(score)
    found, n = positive[ok], int(ok.sum())
    k = int(found.sum())
    if k == 0 or k == n:
        return float("nan")
    return float((bootstrap.rank(score[ok])[found].sum() - k * (k + 1) / 2) / (k * (n - k)))


AUROC = (0.0, 1.0)  # its range, for its interval


def readings_of_link1(examples: pd.DataFrame, replicates: dict[tuple[str, str], np.ndarray],
                      reliabilities: dict[str, float], reduction: str) -> list[dict[str, Any]]:
    """For every curvature score x aggregation: its Spearman with memorization (and with 1 - C-score where the
    study has C-scores), each with its interval, and its split-half reliability; with flipped labels in the study,
    each reading's AUROC for finding them (and memorization's)."""
    flipped = (examples["planted"] == "flipped").to_numpy() if "planted" in examples else np.zeros(0, bool)
    rows = []
    for s in SCORES:
        for agg in AGGREGATION_NAMES:
            column = curvature_column(s, reduction, agg)
            rho = correlation_interval(examples["mem"], examples[column], replicates["mem", column])
            row = {"score": s, "aggregation": agg, "column": column, "reliability": reliabilities[column],
                   "spearman": rho.to_dict()}
            if "cscore" in examples:
                row["spearman_cscore"] = correlation_interval(1 - examples["cscore"], examples[column],
                                                      replicates["cscore", column]).to_dict()
            if flipped.any():
                row["auroc_flipped"] = interval(auroc(flipped, examples[column]), replicates["flipped", column],
                                                limits=AUROC).to_dict()
            rows.append(row)
    if flipped.any():
        rows.append({"score": "memorization", "aggregation": "-", "column": "mem",
                     "auroc_flipped": interval(auroc(flipped, examples["mem"]), replicates["flipped", "mem"],
                                               limits=AUROC).to_dict()})
    return rows


def _binned_numbers(x: pd.Series, examples: pd.DataFrame, eq15: str) -> dict[str, Any]:
    """The binned means of the paper's Fig. 3 (x: memorization, or 1 - C-score) and the fits through them (eq. 15 in
    the `eq15` form, defect 8)."""
    bins = theory.bin_memorization(x, examples["curvature"])
    ok = np.isfinite(x) & np.isfinite(examples["curvature"])
    return {"examples": int(ok.sum()), "bins": len(bins), "curvature_column": str(examples["curvature_column"].iloc[0]),
            **{f"{k}_fit": _fit_dict(f) for k, f in theory.fit_binned(bins, eq15).items()}}


def claim_curvature_bounds_memorization(examples: pd.DataFrame | None, scores_file: Path, reading: dict[str, str],
                                        replicates: dict[tuple[str, str], np.ndarray] | None) -> Claim:
    claim = Claim("curvature_memorization", "Curvature bounds memorization",
                  "Input loss curvature bounds memorization: curvature rises with memorization (Thm 5.1, Fig. 3).",
                  "The 95% bootstrap interval (subset models and examples resampled) of the Spearman correlation "
                  "of per-example curvature with memorization lies above 0. (The fits through the binned means "
                  "are reported, not judged: a few sparse high-memorization bins decide their slope.)")
    if examples is None or replicates is None:
        return claim
    column = str(examples["curvature_column"].iloc[0])
    rho = correlation_interval(examples["mem"], examples["curvature"], replicates["mem", column])
    reduction = reading["loss_reduction"]
    reliabilities = link1_reliability(scores_file, reduction)
    claim.numbers = {"spearman_rho": rho.estimate, **_binned_numbers(examples["mem"], examples, reading["eq15_fit"]),
                     "reliability": reliabilities[column], "mem_reliability": reliabilities["mem"],
                     "readings": readings_of_link1(examples, replicates, reliabilities, reduction)}
    claim = _conclude(claim, [Condition("Spearman ρ(memorization, curvature)", rho, ">", 0.0)])
    if claim.verdict == INCONCLUSIVE:
        claim.numbers["examples_to_decide"] = examples_to_decide(rho, claim.numbers["examples"])
    return claim


def examples_to_decide(rho: Interval, examples: int) -> float:
    """How many examples an interval of this width around this estimate would need to exclude 0: the width shrinks
    like 1 / sqrt(examples), so it takes examples * (half-width / |estimate|)^2 (the models held as they are; a
    reading that is noise, reliability near 0, has an estimate near 0 and needs more than any study has)."""
    half = (rho.high - rho.low) / 2
    return float(examples * (half / abs(rho.estimate)) ** 2) if rho.estimate else float("inf")


def claim_curvature_tracks_cscore(examples: pd.DataFrame | None, reading: dict[str, str],
                                  replicates: dict[tuple[str, str], np.ndarray] | None) -> Claim:
    claim = Claim("curvature_cscore", "Curvature bounds memorization, C-score axis",
                  "Link 1 read the way the paper's Fig. 3 reads published scores: curvature rises with 1 - C-score, "
                  "Jiang et al.'s held-out accuracy from thousands of models (the held-out half of memorization).",
                  "The 95% bootstrap interval (subset models and examples resampled; the C-scores fixed) of the "
                  "Spearman correlation of per-example curvature with 1 - C-score lies above 0.")
    if examples is None or replicates is None or "cscore" not in examples:
        return claim
    column = str(examples["curvature_column"].iloc[0])
    x = 1 - examples["cscore"]
    rho = correlation_interval(x, examples["curvature"], replicates["cscore", column])
    agreement = correlation_interval(x, examples["mem"], replicates["cscore", "mem"])
    claim.numbers = {"spearman_rho": rho.estimate, **_binned_numbers(x, examples, reading["eq15_fit"]),
                     "memorization_vs_cscore": agreement.to_dict()}
    return _conclude(claim, [Condition("Spearman ρ(1 - C-score, curvature)", rho, ">", 0.0)])


# --- Link 2 and the loss: statistics over DP models, seeds resampled within each epsilon ---------------

def _eq16_statistics(dp: pd.DataFrame, seed_average: str) -> np.ndarray:
    """Spearman(epsilon, curvature), and the eq. 16 fit's d, R² and rise: its value at the largest epsilon minus
    its value at the smallest (d > 0 and a high R² are met by a falling fit too; the claim is a rise)."""
    fit = _fit_or_error(lambda: theory.fit_eq16(dp, seed_average))
    if isinstance(fit, theory.Fit):
        eps = dp["epsilon"].to_numpy(float)
        d, r2, rise = fit.params["d"], fit.r2, float(np.diff(fit.predict(np.array([eps.min(), eps.max()])))[0])
    else:
        d, r2, rise = np.nan, np.nan, np.nan
    return np.array([spearman(dp["epsilon"], dp["curvature"]), d, r2, rise])


def _loss_statistics(dp: pd.DataFrame) -> np.ndarray:
    loss = theory.per_epsilon(dp, "test_loss")
    fit = _fit_or_error(lambda: theory.fit_loss_vs_epsilon(loss["epsilon"], loss["mean"]))
    return np.array([spearman(dp["epsilon"], dp["test_loss"]), fit.r2 if isinstance(fit, theory.Fit) else np.nan])


def _enough_epsilons(dp: pd.DataFrame | None) -> bool:
    """A trend with epsilon needs a table and at least MIN_EPSILONS epsilons."""
    return dp is not None and dp["epsilon"].nunique() >= MIN_EPSILONS


def _seed_intervals(dp: pd.DataFrame, statistic: Any, limits: tuple[tuple[float, float], ...]) -> list[Interval]:
    """Each number `statistic(dp)` returns, with its interval over seeds resampled within each epsilon (kept within
    that number's `limits`; bootstrap.seed_intervals)."""
    dp = dp.reset_index(drop=True).copy()  # one block per dtype: each replicate's rows are taken in a few copies
    return bootstrap.seed_intervals(lambda idx: statistic(dp.iloc[idx]), dp["epsilon"].to_numpy(), limits)


def readings_of_link2(dp: pd.DataFrame, reduction: str) -> list[dict[str, Any]]:
    """Spearman(epsilon, mean curvature) over the DP models for every curvature score, with its interval."""
    rows = []
    for s in SCORES:
        column = curvature_column(s, reduction)
        (rho,) = _seed_intervals(dp, lambda t, c=column: np.array([spearman(t["epsilon"], t[c])]), (CORRELATION,))
        rows.append({"score": s, "column": column, "spearman": rho.to_dict()})
    return rows


def claim_epsilon_bounds_curvature(dp: pd.DataFrame | None, reading: dict[str, str]) -> Claim:
    claim = Claim("epsilon_curvature", "Privacy bounds curvature",
                  "Privacy bounds curvature: mean training-set curvature rises with epsilon and saturates like "
                  "(1 - e^-eps) (Thm 5.3, eq. 16, Fig. 5).",
                  "The 95% bootstrap intervals (seeds resampled within each epsilon) of the Spearman correlation "
                  "of the DP models' mean curvature with epsilon, of the eq. 16 fit's d and of the fitted curve's "
                  "rise (its value at the largest epsilon minus at the smallest) lie above 0, and that of the fit's "
                  "R² above 0.5.")
    if not _enough_epsilons(dp):
        return claim
    seed_average = reading["seed_average"]
    rho, d, r2, rise = _seed_intervals(dp, lambda t: _eq16_statistics(t, seed_average),
                                       (CORRELATION, UNBOUNDED, R2, UNBOUNDED))
    claim.numbers = {"spearman_rho": rho.estimate, "models": len(dp), "epsilons": int(dp["epsilon"].nunique()),
                     "per_epsilon": theory.curvature_per_epsilon(dp, seed_average, intervals=True).to_dict("records"),
                     "eq16_fit": _fit_dict(_fit_or_error(lambda: theory.fit_eq16(dp, seed_average))),
                     "readings": readings_of_link2(dp, reading["loss_reduction"])}
    return _conclude(claim, [Condition("Spearman ρ(ε, curvature)", rho, ">", 0.0),
                             Condition("eq. 16 d", d, ">", 0.0), Condition("eq. 16 R²", r2, ">", 0.5),
                             Condition("eq. 16 fit's rise, largest ε minus smallest", rise, ">", 0.0)])


def claim_loss_falls(dp: pd.DataFrame | None) -> Claim:
    claim = Claim("loss_epsilon", "Test loss falls with epsilon",
                  "Test loss falls with epsilon like a + b e^(-c eps) (Fig. 4).",
                  "The 95% bootstrap interval (seeds resampled within each epsilon) of the Spearman correlation "
                  "of the DP models' test loss with epsilon lies below 0, and that of the a + b e^(-c eps) fit's "
                  "R² above 0.5.")
    if not _enough_epsilons(dp):
        return claim
    rho, r2 = _seed_intervals(dp, _loss_statistics, (CORRELATION, R2))
    loss = theory.per_epsilon(dp, "test_loss", intervals=True)
    claim.numbers = {"spearman_rho": rho.estimate, "models": len(dp), "per_epsilon_loss": loss.to_dict("records"),
                     "per_epsilon_accuracy": theory.per_epsilon(dp, "test_acc").to_dict("records"),
                     "fit": _fit_dict(_fit_or_error(lambda: theory.fit_loss_vs_epsilon(loss["epsilon"],
                                                                                          loss["mean"])))}
    return _conclude(claim, [Condition("Spearman ρ(ε, test loss)", rho, "<", 0.0),
                             Condition("loss fit R²", r2, ">", 0.5)])


# --- Link 3: privacy bounds memorization ----------------------------------------------------------------

TOPK_SCORES = {"correctness": "correct", "probability": "prob"}  # defect 9's reading -> the models file's array


def _topk_memorization(masks: np.ndarray, score: np.ndarray, estimator: str, replicates: int
                       ) -> tuple[Interval, np.ndarray, np.ndarray]:
    """The mean top-k memorization of one set of models with its interval (models and examples resampled), and each
    example's memorization with its replicates (models resampled). `faithful` is defect 4: |unconditional|."""
    generator = bootstrap.rng()
    w = np.vstack([np.ones(len(masks)), bootstrap.model_weights(len(masks), replicates, generator)])
    if estimator == "faithful":
        inside = masks.astype(float)
        mem = np.abs(w @ (inside * score) - w @ ((1 - inside) * score)) / len(masks)
    else:
        mem = resampled_membership(masks, score, w)["in_minus_out"]
    idx = np.vstack([np.arange(mem.shape[1]), generator.integers(0, mem.shape[1], (replicates, mem.shape[1]))])
    with warnings.catch_warnings():  # a resample whose every example lacks models with or without it: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(mem[np.arange(replicates + 1)[:, None], idx], axis=1)
    return interval(means[0], means[1:]), mem[0], mem[1:]  # no small-sample terms: see bootstrap.interval


def _share_above(per_example: np.ndarray, replicates: np.ndarray, bound: float) -> float:
    """The share of examples whose own memorization interval (their models resampled) lies above `bound`."""
    lows = np.array([interval(e, replicates[:, j]).low for j, e in enumerate(per_example)])
    return float(np.mean(lows > bound))


def topk_memorization_intervals(models_file: Path, estimator: str, score: str = "correctness",
                                replicates: int = bootstrap.REPLICATES) -> pd.DataFrame:
    """Per epsilon: the mean top-k memorization with its interval (the epsilon's DP subset models and the top-k
    examples resampled), the bound 1 - e^-eps, and the share of the top-k whose own interval lies above it; beside
    it, where the study trained them, the same top-k's memorization under non-private models with their interval,
    and whether the check can fail there: whether those models' interval lies above the bound, so that a run
    without privacy would fail it. `score` is defect 9 (correctness or probability)."""
    key, rows = TOPK_SCORES[score], []
    with np.load(models_file) as z:
        control = None
        if "control_masks" in z.files:
            control, _, _ = _topk_memorization(z["control_masks"], z[f"control_{key}"], estimator, replicates)
        for j, eps in enumerate(z["epsilons"]):
            masks = z["masks"][j]
            ci, per_example, reps = _topk_memorization(masks, z[key][j], estimator, replicates)
            bound = float(theory.mem_bound(eps))
            row = {"epsilon": float(eps), "mean": ci.estimate, "ci_low": ci.low, "ci_high": ci.high,
                   "n": len(per_example), "models": len(masks), "bound": bound,
                   "share_above_bound": _share_above(per_example, reps, bound)}
            if control is not None:
                row.update(nonprivate_mean=control.estimate, nonprivate_ci_low=control.low,
                           nonprivate_ci_high=control.high, can_fail=bool(control.low > bound))
            rows.append(row)
    return pd.DataFrame(rows)


def claim_epsilon_bounds_memorization(models_file: Path, estimator: str, score: str) -> Claim:
    claim = Claim("epsilon_memorization", "Privacy bounds memorization",
                  "Privacy bounds memorization: the mean memorization of the most memorized examples stays below "
                  "1 - e^-eps (Thm 5.4, Fig. 6).",
                  "At every epsilon, the 95% bootstrap interval (DP models and top-k examples resampled) of the "
                  "mean top-k memorization lies below 1 - e^-eps. The check can fail only at an epsilon whose bound "
                  "lies below what models without privacy memorize of the same top-k (reported per epsilon).")
    if not models_file.exists():
        return claim
    per = topk_memorization_intervals(models_file, estimator, score)
    per["below_bound"] = per["mean"] <= per["bound"]
    claim.numbers = {"fraction_below_bound": float(per["below_bound"].mean()), "epsilons": len(per),
                     "per_epsilon": per.to_dict("records")}
    if "can_fail" in per:
        claim.numbers["epsilons_that_can_fail"] = per.loc[per["can_fail"], "epsilon"].tolist()
    conditions = [Condition(f"mean top-k memorization at ε = {r.epsilon:g}",
                            Interval(r.mean, r.ci_low, r.ci_high, bootstrap.CONFIDENCE, bootstrap.REPLICATES),
                            "<", r.bound) for r in per.itertuples()]
    return _conclude(claim, conditions)


def check_claims(tables: Path, defects: dict[str, str] | None = None) -> list[Claim]:
    """Every claim checked against the tables in `tables`; a claim whose table is absent is `not run`; link 1 on the
    C-score axis where the examples table has C-scores.

    `defects` is the reading (memcurv.analysis.readings.READABLE: curvature score, loss reduction, aggregation over
    subset models, memorization estimator, seed average; the default is all corrected), so one run's tables
    can be judged both ways."""
    d = {**CORRECTED, **(defects or {})}
    dp_models = read_dp_models(tables / DP_MODELS.name, d)
    examples, scores_file = read_examples(tables / EXAMPLES.name, d), tables / SUBSET_SCORES.name
    replicates = None
    if examples is not None and scores_file.exists():
        cscore = examples["cscore"].to_numpy() if "cscore" in examples else None
        flipped = (examples["planted"] == "flipped").to_numpy()
        replicates = link1_replicates(scores_file, d["loss_reduction"], cscore, flipped if flipped.any() else None)
    has_cscores = examples is not None and "cscore" in examples
    with_cscores = [claim_curvature_tracks_cscore(examples, d, replicates)] if has_cscores else []
    return [
        claim_curvature_bounds_memorization(examples, scores_file, d, replicates),
        *with_cscores,
        claim_epsilon_bounds_curvature(dp_models, d),
        claim_epsilon_bounds_memorization(tables / MEM_VS_EPSILON_MODELS.name, d["mem_estimator"], d["topk_score"]),
        claim_loss_falls(read_table(tables / DP_MODELS.name)),
    ]



# --- Link 2 explained: what the DP models' curvature follows ---------------------------------------------

def _rank_residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Ranks of y with their linear dependence on the ranks of x removed."""
    ry, rx = bootstrap.rank(y), bootstrap.rank(x)
    slope, intercept = np.polyfit(rx, ry, 1)
    return ry - (slope * rx + intercept)


def _explain_statistics(dp: pd.DataFrame, train: str, test: str) -> np.ndarray:
    """Spearman of epsilon with training-set and with test-set curvature, of training-set curvature with the
    training loss, and of epsilon with training-set curvature at matched training loss (partial Spearman)."""
    partial = spearman(_rank_residual(dp["epsilon"], dp["train_loss"]), _rank_residual(dp[train], dp["train_loss"]))
    return np.array([spearman(dp["epsilon"], dp[train]), spearman(dp["epsilon"], dp[test]),
                     spearman(dp[train], dp["train_loss"]), partial])


EXPLANATIONS = ("ε vs training-set curvature", "ε vs test-set curvature", "training loss vs training-set curvature",
                "ε vs training-set curvature at matched training loss (partial)")


def explain_link2(tables: Path) -> list[dict[str, Any]]:
    """For every curvature score (sum-reduced), the Spearman correlations that tell apart explanations of how
    the DP models' curvature moves with epsilon, each with its interval over seeds resampled within epsilon."""
    dp = read_table(tables / DP_MODELS.name)
    if not _enough_epsilons(dp) or curvature_column("trace", "sum", test=True) not in dp:
        return []
    rows = []
    for s in SCORES:
        train, test = curvature_column(s, "sum"), curvature_column(s, "sum", test=True)
        intervals = _seed_intervals(dp, lambda t, train=train, test=test: _explain_statistics(t, train, test),
                                    (CORRELATION,) * len(EXPLANATIONS))
        rows.append({"score": s, **{name: i.to_dict() for name, i in zip(EXPLANATIONS, intervals)}})
    return rows
