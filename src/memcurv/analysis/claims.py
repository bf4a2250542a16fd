"""Each claim of the paper judged on a run's tables as a referee would: its statistics, their bootstrap intervals over
the models (memcurv.analysis.bootstrap), and a three-way verdict. A claim holds when every condition of its criterion
passes, does not hold when one fails, and is inconclusive otherwise: the run cannot tell.

A correlation must clear the smallest effect of interest (Judging.min_effect, config key claims.min_effect), not
merely 0: with thousands of examples a negligible correlation excludes 0. A fitted curve must match the data's shape
(a lack-of-fit F test against the seeds' spread), not merely reach an R². A bound must be the one that holds for what
the estimator compares (the subsets' design), and is tested only where it can fail.

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

from memcurv import io
from memcurv.analysis import bootstrap, reliability, theory
from memcurv.analysis.bootstrap import CORRELATION, R2, UNBOUNDED, Interval, interval, spearman
from memcurv.analysis.readings import (AGGREGATION_NAMES, CORRECTED, describe, read_dp_models, read_examples,
                                      read_table)
from memcurv.estimators.score_reduction import SCORES, reduce_scores
from memcurv.estimators.memorization import resampled_membership
from memcurv.settings import MIN_TREND_EPSILONS
from memcurv.tables import DP_MODELS, EXAMPLES, MEM_VS_EPSILON_MODELS, SUBSET_SCORES, curvature_column

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
LINK1_REPLICATES = 200  # each replicate re-aggregates every example over the resampled models
CLEARS, NOT_AGAINST = "clears", "not against"  # Condition.rule


@dataclass(frozen=True)
class Judging:
    """What the verdicts are judged against: the smallest correlation that counts as an effect (config key
    claims.min_effect), the level of the lack-of-fit tests (claims.alpha), and the DP models' delta (privacy.delta),
    which the bound of link 3 carries."""

    min_effect: float = 0.3
    alpha: float = 0.05
    delta: float = 1e-5


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
    """A statistic's interval against a threshold on one `side` (`>`: above, `<`: below). Under the rule `clears` the
    claim needs the interval wholly on that side (and fails when it lies wholly on the other); under `not against`
    the condition can only fail a claim, when the interval lies wholly on the wrong side (a binned slope
    significantly negative), and passes otherwise."""

    name: str
    interval: Interval
    side: str
    threshold: float
    rule: str = CLEARS

    def fails(self) -> bool:
        i = self.interval
        return bool(i.high <= self.threshold if self.side == ">" else i.low >= self.threshold)

    def passes(self) -> bool:
        i = self.interval
        if self.rule == NOT_AGAINST:
            return bool(np.isfinite(i.low) and np.isfinite(i.high) and not self.fails())
        return bool(i.low > self.threshold if self.side == ">" else i.high < self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "interval", "name": self.name, "side": self.side, "threshold": self.threshold,
                "rule": self.rule, "passes": self.passes(), "fails": self.fails(), **self.interval.to_dict()}


@dataclass(frozen=True)
class FitTest:
    """A fitted curve's lack-of-fit test (theory.lack_of_fit): the curve passes when its p-value is at least `alpha`
    and fails below it; a test that cannot be run (one seed per epsilon) neither passes nor fails."""

    name: str
    test: theory.LackOfFit
    alpha: float

    def fails(self) -> bool:
        return bool(self.test.p_value < self.alpha)

    def passes(self) -> bool:
        return bool(self.test.p_value >= self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "test", "name": self.name, "alpha": self.alpha, "passes": self.passes(), "fails": self.fails(),
                **self.test.to_dict()}


Criterion = Condition | FitTest


def judge(conditions: list[Criterion]) -> str:
    """Holds if every condition passes, does not hold if one fails, inconclusive otherwise: the run cannot tell."""
    if conditions and all(c.passes() for c in conditions):
        return HOLDS
    return FAILS if any(c.fails() for c in conditions) else INCONCLUSIVE


def deciding(conditions: list[dict[str, Any]], verdict: str) -> dict[str, Any] | None:
    """The condition that decided a verdict: the first that failed (does not hold), the first that did not pass
    (inconclusive), or the first of the criterion (holds: every one passed)."""
    if not conditions:
        return None
    if verdict == FAILS:
        return next(c for c in conditions if c["fails"])
    if verdict == INCONCLUSIVE:
        return next(c for c in conditions if not c["passes"])
    return conditions[0]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def describe_condition(c: dict[str, Any]) -> str:
    """A condition in words with its numbers: "name estimate [low, high] (holds when the CI lies > t)" for an interval,
    "name: F = f, p = p (holds when p >= alpha)" for a test, its text for a note."""
    if c["kind"] == "note":
        return c["text"]
    if c["kind"] == "test":
        return f"{c['name']}: F = {_fmt(c['f'])}, p = {_fmt(c['p_value'])} (holds when p ≥ {c['alpha']:g})"
    where = "is not wholly" if c["rule"] == NOT_AGAINST else "lies"
    side = {">": "above", "<": "below"}[c["side"]] if c["rule"] == CLEARS else {">": "below", "<": "above"}[c["side"]]
    return (f"{c['name']} {_fmt(c['estimate'])} [{_fmt(c['low'])}, {_fmt(c['high'])}] (holds when the CI {where} "
            f"{side} {_fmt(c['threshold'])})")


def _conclude(claim: Claim, conditions: list[Criterion]) -> Claim:
    claim.numbers["conditions"] = [c.to_dict() for c in conditions]
    claim.verdict = judge(conditions)
    claim.numbers["deciding"] = deciding(claim.numbers["conditions"], claim.verdict)
    return claim


def _fit_or_error(make: Any) -> theory.Fit | str:
    try:
        return make()
    except (RuntimeError, ValueError) as e:
        return str(e)


def _fit_dict(fit: theory.Fit | str) -> dict[str, Any]:
    return fit.to_dict() if isinstance(fit, theory.Fit) else {"error": fit}


# --- Link 1: curvature tracks memorization -----------------------------------------------------------

def _link1_inputs(scores_file: Path, reduction: str
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(masks, per-model memorization scores, which models scored curvature, each score's per-model curvature of the
    scored models under the loss `reduction`) from a study's subset-model scores (memcurv.tables.SUBSET_SCORES)."""
    z = io.read_npz(scores_file)
    masks, score, scored = z["masks"], z["score"], z["scored"]
    curv = {s: z[curvature_column(s)] for s in SCORES}
    batch = int(z["released_batch_size"])
    return masks, score, scored, reduce_scores(curv, reduction, batch)


SLOPE = " slope"  # link1_replicates' key of a reference's binned slope: ("mem slope", column)


def link1_replicates(scores_file: Path, reduction: str, cscore: np.ndarray | None = None,
                     flipped: np.ndarray | None = None, scores: tuple[str, ...] = SCORES,
                     replicates: int = LINK1_REPLICATES) -> dict[tuple[str, str], np.ndarray]:
    """Bootstrap replicates of link 1's statistics under one loss `reduction`, keyed (reference, column): the
    Spearman correlation of memorization ("mem") with every score x aggregation (an examples-table column), and the
    slope of the line through the binned means of the paper's Fig. 3 ("mem slope"); with C-scores, the same against
    1 - C-score ("cscore", "cscore slope") and its Spearman with memorization ("mem" column); with flipped labels
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
            column = curvature_column(s, reduction, agg)
            for name, (x, statistic) in references.items():
                out[name, column] = np.array([statistic(x[b], c[b]) for b in range(replicates)])
                if name != "flipped":
                    out[name + SLOPE, column] = np.array([theory.binned_slope(x[b], c[b]) for b in range(replicates)])
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


def disattenuated(rho: Interval, *reliabilities: float) -> dict[str, float]:
    """A correlation (and its interval's ends) divided by the square root of the product of the two measures'
    reliabilities (Spearman's correction for attenuation): what it would be if both were measured without noise.
    Beside a weak correlation it tells noise (a low reliability, a corrected value well above the raw one) from
    absence (a reliable measure that still does not correlate). NaN where a reliability is not positive."""
    product = float(np.prod(reliabilities))
    if not product > 0:
        return {"estimate": float("nan"), "low": float("nan"), "high": float("nan")}
    scale = 1.0 / np.sqrt(product)
    return {k: float(np.clip(getattr(rho, k) * scale, -1.0, 1.0)) for k in ("estimate", "low", "high")}


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
AXES = {"mem": "memorization", "cscore": "1 - C-score"}  # link 1's references and their names


def link1_conditions(x: pd.Series, curvature: pd.Series, replicates: dict[tuple[str, str], np.ndarray],
                     reference: str, column: str, judging: Judging) -> list[Condition]:
    """Link 1's criterion for one reading against one reference (memorization, or 1 - C-score): the Spearman
    correlation's interval above the smallest effect of interest, and the binned means' linear slope not
    significantly negative."""
    axis = AXES[reference]
    rho = correlation_interval(x, curvature, replicates[reference, column])
    slope = interval(theory.binned_slope(x, curvature), replicates[reference + SLOPE, column])
    return [Condition(f"Spearman ρ({axis}, curvature)", rho, ">", judging.min_effect),
            Condition(f"slope of the line through the binned means ({axis})", slope, ">", 0.0, NOT_AGAINST)]


def _reading_verdict(conditions: list[Condition], reliabilities: tuple[float, ...]) -> dict[str, Any]:
    rho, slope = conditions
    return {"spearman": rho.interval.to_dict(), "slope": slope.interval.to_dict(),
            "corrected_for_reliability": disattenuated(rho.interval, *reliabilities), "verdict": judge(conditions)}


def readings_of_link1(examples: pd.DataFrame, replicates: dict[tuple[str, str], np.ndarray],
                      reliabilities: dict[str, float], reduction: str, judging: Judging) -> list[dict[str, Any]]:
    """For every curvature score x aggregation: its split-half reliability and, against memorization (and 1 - C-score
    where the study has C-scores, taken as reliable: Jiang et al. average thousands of models), link 1's criterion
    (`link1_conditions`) with its verdict and the correlation corrected for both reliabilities; with flipped labels
    in the study, each reading's AUROC for finding them (and memorization's)."""
    flipped = (examples["planted"] == "flipped").to_numpy() if "planted" in examples else np.zeros(0, bool)
    rows = []
    for s in SCORES:
        for agg in AGGREGATION_NAMES:
            column = curvature_column(s, reduction, agg)
            rel = reliabilities[column]
            row = {"score": s, "aggregation": agg, "column": column, "reliability": rel,
                   **_reading_verdict(link1_conditions(examples["mem"], examples[column], replicates, "mem", column,
                                                       judging), (rel, reliabilities["mem"]))}
            if "cscore" in examples:
                against = _reading_verdict(link1_conditions(1 - examples["cscore"], examples[column], replicates,
                                                            "cscore", column, judging), (rel,))
                row["cscore"] = against
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
    the `eq15` form, defect 8), each flagged where it is degenerate."""
    bins = theory.bin_memorization(x, examples["curvature"])
    ok = np.isfinite(x) & np.isfinite(examples["curvature"])
    return {"examples": int(ok.sum()), "bins": len(bins), "curvature_column": str(examples["curvature_column"].iloc[0]),
            "reading": describe(str(examples["curvature_column"].iloc[0])),
            **{f"{k}_fit": _fit_dict(f) for k, f in theory.fit_binned(bins, eq15).items()}}


LINK1_CRITERION = (
    "The 95% bootstrap interval (subset models and examples resampled) of the Spearman correlation of per-example "
    "curvature with {axis} lies above the smallest effect of interest, ρ = {min_effect:g} (claims.min_effect); it "
    "does not hold when the interval lies below it, and is inconclusive when it straddles it. The slope of the "
    "straight line through the binned means (the paper's Fig. 3) must not be significantly negative (its interval "
    "wholly below 0). Judged on the configured reading; every reading's own verdict is in the table below.")


def _link1_claim(claim: Claim, x: pd.Series, examples: pd.DataFrame, reference: str,
                 replicates: dict[tuple[str, str], np.ndarray], reliabilities: tuple[float, ...], eq15: str,
                 judging: Judging) -> Claim:
    """Link 1 against one reference on the configured reading's column: its criterion, numbers and verdict."""
    column = str(examples["curvature_column"].iloc[0])
    conditions = link1_conditions(x, examples["curvature"], replicates, reference, column, judging)
    claim.numbers = {"spearman_rho": conditions[0].interval.estimate, **_binned_numbers(x, examples, eq15),
                     "corrected_for_reliability": disattenuated(conditions[0].interval, *reliabilities)}
    claim = _conclude(claim, conditions)
    if claim.verdict == INCONCLUSIVE:
        claim.numbers["examples_to_decide"] = examples_to_decide(conditions[0].interval, claim.numbers["examples"],
                                                                 judging.min_effect)
    return claim


def claim_curvature_tracks_memorization(examples: pd.DataFrame | None, scores_file: Path, reading: dict[str, str],
                                        replicates: dict[tuple[str, str], np.ndarray] | None,
                                        reliabilities: dict[str, float] | None, judging: Judging) -> Claim:
    claim = Claim("curvature_memorization", "Curvature tracks memorization",
                  "Input loss curvature bounds memorization, so curvature rises with memorization (Thm 5.1, Fig. 3).",
                  LINK1_CRITERION.format(axis="memorization", min_effect=judging.min_effect))
    if examples is None or replicates is None or reliabilities is None:
        return claim
    column = str(examples["curvature_column"].iloc[0])
    claim = _link1_claim(claim, examples["mem"], examples, "mem", replicates,
                         (reliabilities[column], reliabilities["mem"]), reading["eq15_fit"], judging)
    claim.numbers.update(reliability=reliabilities[column], mem_reliability=reliabilities["mem"],
                         readings=readings_of_link1(examples, replicates, reliabilities, reading["loss_reduction"],
                                                    judging))
    return claim


def examples_to_decide(rho: Interval, examples: int, min_effect: float) -> float:
    """How many examples an interval of this width around this estimate would need to clear `min_effect` (to lie
    wholly above or below it): the width shrinks like 1 / sqrt(examples), so it takes examples * (half-width /
    |estimate - min_effect|)^2 (the models held as they are; an estimate at the threshold needs more than any
    study has)."""
    half, gap = (rho.high - rho.low) / 2, abs(rho.estimate - min_effect)
    return float(examples * (half / gap) ** 2) if gap else float("inf")


def claim_curvature_tracks_cscore(examples: pd.DataFrame | None, reading: dict[str, str],
                                  replicates: dict[tuple[str, str], np.ndarray] | None,
                                  reliabilities: dict[str, float] | None, judging: Judging) -> Claim:
    claim = Claim("curvature_cscore", "Curvature tracks 1 - C-score",
                  "Link 1 read the way the paper's Fig. 3 reads published scores: curvature rises with 1 - C-score, "
                  "Jiang et al.'s held-out accuracy from thousands of models (the held-out half of memorization).",
                  LINK1_CRITERION.format(axis="1 - C-score (the C-scores fixed, taken as reliable)",
                                         min_effect=judging.min_effect))
    if examples is None or replicates is None or reliabilities is None or "cscore" not in examples:
        return claim
    column = str(examples["curvature_column"].iloc[0])
    x = 1 - examples["cscore"]
    claim = _link1_claim(claim, x, examples, "cscore", replicates, (reliabilities[column],), reading["eq15_fit"],
                         judging)
    claim.numbers["memorization_vs_cscore"] = correlation_interval(x, examples["mem"],
                                                                   replicates["cscore", "mem"]).to_dict()
    return claim


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


NO_TEST = theory.LackOfFit(float("nan"), float("nan"), 0, 0)  # a fit that could not be made cannot be tested


def eq16_lack_of_fit(dp: pd.DataFrame, seed_average: str) -> theory.LackOfFit:
    """Eq. 16's lack-of-fit test over the DP models: its curve against each epsilon's seeds (two parameters, d and e,
    fitted to the curvature; L(eps) is fitted to the test loss). Under the released seed average (defect 5) each
    model's curvature is scaled as its epsilon's mean is."""
    fit = _fit_or_error(lambda: theory.fit_eq16(dp, seed_average))
    if not isinstance(fit, theory.Fit):
        return NO_TEST
    y = dp["curvature"].to_numpy(float)
    if seed_average == "faithful":
        y = y * dp.groupby("epsilon")["curvature"].transform("size").to_numpy(float) / dp["epsilon"].nunique()
    return theory.lack_of_fit(dp["epsilon"], y, fit.predict, params=2)


def loss_lack_of_fit(dp: pd.DataFrame) -> theory.LackOfFit:
    """The a + b e^(-c eps) loss curve's lack-of-fit test against each epsilon's seeds (three parameters)."""
    loss = theory.per_epsilon(dp, "test_loss")
    fit = _fit_or_error(lambda: theory.fit_loss_vs_epsilon(loss["epsilon"], loss["mean"]))
    if not isinstance(fit, theory.Fit):
        return NO_TEST
    return theory.lack_of_fit(dp["epsilon"], dp["test_loss"], fit.predict, params=3)


def _enough_epsilons(dp: pd.DataFrame | None) -> bool:
    """A trend with epsilon needs a table and at least MIN_TREND_EPSILONS epsilons."""
    return dp is not None and dp["epsilon"].nunique() >= MIN_TREND_EPSILONS


def _seed_intervals(dp: pd.DataFrame, statistic: Any, limits: tuple[tuple[float, float], ...]) -> list[Interval]:
    """Each number `statistic(dp)` returns, with its interval over seeds resampled within each epsilon (kept within
    that number's `limits`; bootstrap.seed_intervals)."""
    dp = dp.reset_index(drop=True).copy()  # one block per dtype: each replicate's rows are taken in a few copies
    return bootstrap.seed_intervals(lambda idx: statistic(dp.iloc[idx]), dp["epsilon"].to_numpy(), limits)


def link2_conditions(dp: pd.DataFrame, seed_average: str, judging: Judging
                     ) -> tuple[list[Criterion], dict[str, Interval]]:
    """Link 2's criterion on the table's `curvature` column: the Spearman correlation with epsilon above the smallest
    effect of interest, the eq. 16 curve's rise above 0, and no significant lack of fit; and the intervals of the
    fit's d and R², reported beside it, not judged."""
    rho, d, r2, rise = _seed_intervals(dp, lambda t: _eq16_statistics(t, seed_average),
                                       (CORRELATION, UNBOUNDED, R2, UNBOUNDED))
    return ([Condition("Spearman ρ(ε, curvature)", rho, ">", judging.min_effect),
             Condition("eq. 16 fit's rise, largest ε minus smallest", rise, ">", 0.0),
             FitTest("eq. 16 lack of fit against the seeds' spread", eq16_lack_of_fit(dp, seed_average),
                     judging.alpha)],
            {"eq. 16 d": d, "eq. 16 R²": r2})


def readings_of_link2(dp: pd.DataFrame, reading: dict[str, str], judging: Judging) -> list[dict[str, Any]]:
    """Link 2's criterion and verdict for every curvature score over the DP models."""
    rows = []
    for s in SCORES:
        column = curvature_column(s, reading["loss_reduction"])
        conditions, _ = link2_conditions(dp.assign(curvature=dp[column]), reading["seed_average"], judging)
        rows.append({"score": s, "column": column, "conditions": [c.to_dict() for c in conditions],
                     "verdict": judge(conditions)})
    return rows


def claim_epsilon_bounds_curvature(dp: pd.DataFrame | None, reading: dict[str, str], judging: Judging) -> Claim:
    claim = Claim("epsilon_curvature", "Curvature rises with ε and saturates (eq. 16)",
                  "Privacy bounds curvature: mean training-set curvature rises with epsilon and saturates like "
                  "(1 - e^-eps) (Thm 5.3, eq. 16, Fig. 5).",
                  f"Over the DP models (95% bootstrap intervals, seeds resampled within each epsilon): the Spearman "
                  f"correlation of mean curvature with epsilon lies above the smallest effect of interest "
                  f"({judging.min_effect:g}), the eq. 16 curve rises (its value at the largest epsilon minus at the "
                  f"smallest lies above 0), and eq. 16 fits the data's shape: its lack-of-fit F test (the per-epsilon "
                  f"means' distance from the curve against the seeds' spread around them) gives p ≥ {judging.alpha:g}. "
                  f"The fit's d and R² are reported, not judged: an R² is reached by curves of the wrong shape.")
    if not _enough_epsilons(dp):
        return claim
    seed_average = reading["seed_average"]
    conditions, reported = link2_conditions(dp, seed_average, judging)
    claim.numbers = {"spearman_rho": conditions[0].interval.estimate, "models": len(dp),
                     "epsilons": int(dp["epsilon"].nunique()),
                     "per_epsilon": theory.curvature_per_epsilon(dp, seed_average, intervals=True).to_dict("records"),
                     "eq16_fit": _fit_dict(_fit_or_error(lambda: theory.fit_eq16(dp, seed_average))),
                     "reported": {k: i.to_dict() for k, i in reported.items()},
                     "readings": readings_of_link2(dp, reading, judging)}
    return _conclude(claim, conditions)


def claim_loss_falls(dp: pd.DataFrame | None, judging: Judging) -> Claim:
    claim = Claim("loss_epsilon", "Test loss falls with ε like a + b e^(-cε)",
                  "Test loss falls with epsilon like a + b e^(-c eps) (Fig. 4).",
                  f"Over the DP models (95% bootstrap intervals, seeds resampled within each epsilon): the Spearman "
                  f"correlation of test loss with epsilon lies below -{judging.min_effect:g} (the smallest effect of "
                  f"interest), and the a + b e^(-c eps) curve fits the data's shape: its lack-of-fit F test gives "
                  f"p ≥ {judging.alpha:g}. The fit's R² is reported, not judged.")
    if not _enough_epsilons(dp):
        return claim
    rho, r2 = _seed_intervals(dp, _loss_statistics, (CORRELATION, R2))
    loss = theory.per_epsilon(dp, "test_loss", intervals=True)
    claim.numbers = {"spearman_rho": rho.estimate, "models": len(dp), "per_epsilon_loss": loss.to_dict("records"),
                     "per_epsilon_accuracy": theory.per_epsilon(dp, "test_acc").to_dict("records"),
                     "fit": _fit_dict(_fit_or_error(lambda: theory.fit_loss_vs_epsilon(loss["epsilon"],
                                                                                          loss["mean"]))),
                     "reported": {"loss fit R²": r2.to_dict()}}
    return _conclude(claim, [Condition("Spearman ρ(ε, test loss)", rho, "<", -judging.min_effect),
                             FitTest("loss curve's lack of fit against the seeds' spread", loss_lack_of_fit(dp),
                                     judging.alpha)])


# --- Link 3: privacy bounds memorization ----------------------------------------------------------------

TOPK_SCORES = {"correctness": "correct", "probability": "prob"}  # defect 9's reading -> the models file's array
LEGACY_DESIGN = "fixed"  # models files written before the design was recorded: topk_subset_masks drew fixed sizes


@dataclass(frozen=True)
class TopK:
    """One set of models' statistics over the top-k, each with its interval (models and examples resampled):
    memorization, and the mean score of the models trained with (P_in) and without (P_out) each example; and each
    example's memorization with its replicates (models resampled)."""

    mem: Interval
    p_in: Interval
    p_out: Interval
    per_example: np.ndarray
    per_example_replicates: np.ndarray
    means: dict[str, np.ndarray]  # (replicates + 1,) per statistic, the run's value first


def _topk_memorization(masks: np.ndarray, score: np.ndarray, estimator: str, replicates: int) -> TopK:
    """`TopK` of one set of models. `faithful` is defect 4: |unconditional| memorization (P_in and P_out are the
    conditional means either way)."""
    generator = bootstrap.rng()
    w = np.vstack([np.ones(len(masks)), bootstrap.model_weights(len(masks), replicates, generator)])
    by_membership = resampled_membership(masks, score, w)
    if estimator == "faithful":
        inside = masks.astype(float)
        mem = np.abs(w @ (inside * score) - w @ ((1 - inside) * score)) / len(masks)
    else:
        mem = by_membership["in_minus_out"]
    idx = np.vstack([np.arange(mem.shape[1]), generator.integers(0, mem.shape[1], (replicates, mem.shape[1]))])
    rows = np.arange(replicates + 1)[:, None]
    with warnings.catch_warnings():  # a resample whose every example lacks models with or without it: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = {name: np.nanmean(values[rows, idx], axis=1) for name, values in
                 (("mem", mem), ("p_in", by_membership["in_mean"]), ("p_out", by_membership["out_mean"]))}
    # no small-sample terms: see bootstrap.interval
    mem_ci, p_in, p_out = (interval(m[0], m[1:]) for m in means.values())
    return TopK(mem_ci, p_in, p_out, mem[0], mem[1:], means)


def _share_above(per_example: np.ndarray, replicates: np.ndarray, bound: float) -> float:
    """The share of examples whose own memorization interval (their models resampled) lies above `bound`."""
    lows = np.array([interval(e, replicates[:, j]).low for j, e in enumerate(per_example)])
    return float(np.mean(lows > bound))


def subset_design(models_file: Path) -> str:
    """How a memorization-vs-epsilon models file's subsets were drawn (theory.SUBSET_DESIGNS)."""
    z = io.read_npz(models_file)
    return str(z["subsets"]) if "subsets" in z else LEGACY_DESIGN


def _ci_columns(prefix: str, ci: Interval) -> dict[str, float]:
    return {prefix: ci.estimate, f"{prefix}_ci_low": ci.low, f"{prefix}_ci_high": ci.high}


def topk_memorization_intervals(models_file: Path, estimator: str, score: str = "correctness",
                                replicates: int = bootstrap.REPLICATES, delta: float = Judging.delta) -> pd.DataFrame:
    """Per epsilon: the mean top-k memorization with its interval (the epsilon's DP subset models and the top-k
    examples resampled); the bound that holds for the subsets' design (theory.design_mem_bound) and the share of the
    top-k whose own interval lies above it; P_in and P_out (the models' mean score on the top-k when trained with
    and without each example) and whether the check can fail there: whether P_in, an upper limit of memorization,
    can exceed the bound (its interval's upper end above it); the direct test that DP implies, P_in - e^e' P_out - d'
    (at most 0 under (e', d')-DP between the two); and, where the study trained them, the same top-k's memorization
    under non-private models. `score` is defect 9 (correctness or probability)."""
    key, rows, design = TOPK_SCORES[score], [], subset_design(models_file)
    z = io.read_npz(models_file)
    control = None
    if "control_masks" in z:
        control = _topk_memorization(z["control_masks"], z[f"control_{key}"], estimator, replicates).mem
    for j, eps in enumerate(z["epsilons"]):
        masks = z["masks"][j]
        top = _topk_memorization(masks, z[key][j], estimator, replicates)
        bound = float(theory.design_mem_bound(eps, delta, design))
        e, d = (float(v) for v in theory.adjacent_privacy(eps, delta, design))
        with np.errstate(over="ignore", invalid="ignore"):  # e^e' beyond floats: the test is vacuous there
            gap = top.means["p_in"] - np.exp(e) * top.means["p_out"] - d
        row = {"epsilon": float(eps), "mean": top.mem.estimate, "ci_low": top.mem.low, "ci_high": top.mem.high,
               "n": len(top.per_example), "models": len(masks), "design": design, "bound": bound,
               "share_above_bound": _share_above(top.per_example, top.per_example_replicates, bound),
               **_ci_columns("p_in", top.p_in), **_ci_columns("p_out", top.p_out),
               "can_fail": bool(top.p_in.high > bound), **_ci_columns("dp_gap", interval(gap[0], gap[1:]))}
        if control is not None:
            row.update(_ci_columns("nonprivate_mean", control))
        rows.append(row)
    return pd.DataFrame(rows)


BOUND_OF_DESIGN = {"poisson": "1 - e^-ε (Poisson subsets: with and without an example differ by adding it)",
                   "fixed": "1 - e^-2ε (fixed-size subsets: with and without an example differ by a swap, two "
                            "add/remove steps)"}
CANNOT_FAIL = {"kind": "note", "name": "where the check can fail",
               "text": "no ε where the DP models' accuracy on the top-k when trained with an example (P_in, an upper "
                       "limit of memorization) could exceed the bound: this run cannot test the claim"}


def claim_epsilon_bounds_memorization(models_file: Path, estimator: str, score: str, judging: Judging) -> Claim:
    claim = Claim("epsilon_memorization", "Memorization stays below the DP bound",
                  "Privacy bounds memorization: the mean memorization of the most memorized examples stays below "
                  "1 - e^-eps (Thm 5.4, Fig. 6).",
                  "At every ε where the check can fail, the 95% bootstrap interval (DP subset models and top-k "
                  "examples resampled) of the mean top-k memorization lies below the bound that holds for what the "
                  "estimator compares, models trained with an example against models trained without it: "
                  f"{BOUND_OF_DESIGN['poisson']}; {BOUND_OF_DESIGN['fixed']}; each up to δ. The check can fail only "
                  "at an ε where the DP models' own mean accuracy on the top-k when trained with an example (P_in, "
                  "which memorization cannot exceed) has its interval reach above the bound; with no such ε the "
                  "claim is inconclusive: the run cannot test it.")
    if not models_file.exists():
        return claim
    per = topk_memorization_intervals(models_file, estimator, score, delta=judging.delta)
    per["below_bound"] = per["mean"] <= per["bound"]
    design = str(per["design"].iloc[0])
    claim.numbers = {"fraction_below_bound": float(per["below_bound"].mean()), "epsilons": len(per),
                     "design": design, "bound": BOUND_OF_DESIGN[design], "per_epsilon": per.to_dict("records"),
                     "epsilons_that_can_fail": per.loc[per["can_fail"], "epsilon"].tolist()}
    conditions = [Condition(f"mean top-k memorization at ε = {r.epsilon:g}",
                            Interval(r.mean, r.ci_low, r.ci_high, bootstrap.CONFIDENCE, bootstrap.REPLICATES),
                            "<", r.bound) for r in per.itertuples() if r.can_fail]
    if conditions:
        claim = _conclude(claim, conditions)
        if claim.verdict == INCONCLUSIVE:
            claim.numbers["models_to_decide"] = {
                f"{r.epsilon:g}": models_to_decide(c.interval, int(r.models), c.threshold)
                for c, r in zip(conditions, per[per["can_fail"]].itertuples()) if not (c.passes() or c.fails())}
        return claim
    claim.numbers.update(conditions=[], deciding=CANNOT_FAIL)
    claim.verdict = INCONCLUSIVE
    return claim


def models_to_decide(mem: Interval, models: int, bound: float) -> float:
    """How many DP subset models an epsilon would need for the interval of its mean top-k memorization to clear the
    bound: the interval narrows like 1 / sqrt(models) (the examples held as they are), so models * (half-width /
    |estimate - bound|)^2; an estimate at the bound needs more than any study has."""
    half, gap = (mem.high - mem.low) / 2, abs(mem.estimate - bound)
    return float(models * (half / gap) ** 2) if gap else float("inf")


def check_claims(tables: Path, defects: dict[str, str] | None = None, judging: Judging = Judging()) -> list[Claim]:
    """Every claim checked against the tables in `tables`; a claim whose table is absent is `not run`; link 1 on the
    C-score axis where the examples table has C-scores.

    `defects` is the reading (memcurv.analysis.readings.READABLE: curvature score, loss reduction, aggregation over
    subset models, memorization estimator, seed average; the default is all corrected), so one run's tables
    can be judged both ways; `judging` what the verdicts are judged against."""
    d = {**CORRECTED, **(defects or {})}
    dp_models = read_dp_models(tables / DP_MODELS.name, d)
    examples, scores_file = read_examples(tables / EXAMPLES.name, d), tables / SUBSET_SCORES.name
    replicates = reliabilities = None
    if examples is not None and scores_file.exists():
        cscore = examples["cscore"].to_numpy() if "cscore" in examples else None
        flipped = (examples["planted"] == "flipped").to_numpy()
        replicates = link1_replicates(scores_file, d["loss_reduction"], cscore, flipped if flipped.any() else None)
        reliabilities = link1_reliability(scores_file, d["loss_reduction"])
    has_cscores = examples is not None and "cscore" in examples
    with_cscores = ([claim_curvature_tracks_cscore(examples, d, replicates, reliabilities, judging)]
                    if has_cscores else [])
    return [
        claim_curvature_tracks_memorization(examples, scores_file, d, replicates, reliabilities, judging),
        *with_cscores,
        claim_epsilon_bounds_curvature(dp_models, d, judging),
        claim_epsilon_bounds_memorization(tables / MEM_VS_EPSILON_MODELS.name, d["mem_estimator"], d["topk_score"],
                                          judging),
        claim_loss_falls(read_table(tables / DP_MODELS.name), judging),
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
