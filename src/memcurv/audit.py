"""Empirical DP audit with canaries: a lower bound on the epsilon a training run spent, set against the accountant's.

Design (Steinke, Nasr and Jagielski 2023, "Privacy auditing with one (1) training run", Thm 3.1 and App. D):

- m canaries are training images given another class's label (a flipped label is what a model must memorize to get
  it right); their originals are left out of every model.  Each of R models (per epsilon, and R non-private models
  of the negative control) draws each canary in independently with probability 1/2.  A slot is a (canary, model)
  pair: its inclusion bits are i.i.d. uniform, and flipping one changes one model's training set by one example and
  no other model, so the R models together are (eps, delta)-DP in each slot whenever each model is.  That is the
  hypothesis of the theorem, which lets many canaries per model (dependent trials in the classic analysis of
  Jagielski et al. 2020) count towards one bound.  Private models train with a Poisson rate and step count fixed
  from the nominal training-set size (memcurv.train, ``schedule``), so the data never changes them.
- The attacker ranks the slots of a model set by a score (the canary's loss, its per-model memorization score, its
  input curvature), guesses IN for the k+ highest, OUT for the k- lowest, and abstains on the rest.  Under
  (eps, delta)-DP the number v of correct guesses among r is stochastically dominated by Binomial(r, e^eps /
  (1 + e^eps)), up to a delta term; the lower bound is the largest eps that this rejects at the chosen confidence.
- The direction of each score and (k+, k-) are chosen on the first models (selection), and the bound is computed on
  the others only: they are independent of the choice, so trying many attacks does not inflate the bound.

The per-canary Feldman-Zhang memorization over the R models (P[correct | IN] - P[correct | OUT], the advantage of the
correctness attack) is what Thm 5.4 bounds by 1 - e^-eps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from memcurv import io, memorization, pipeline, theory
from memcurv.config import format_epsilon
from memcurv.seeds import model_seed, stream
from memcurv.settings import AuditConfig, StudyConfig
from memcurv.train import dp_schedule, evaluate, train

log = logging.getLogger("memcurv.audit")

CONTROL = "nonprivate"
ATTACK_SCORES = ("loss", "memorization", "curvature")
TABLES = ("audit.csv", "audit_canaries.csv")  # what audit_tables writes: the bounds, the canaries' memorization
_EPS_MAX = 50.0  # the bisection's ceiling: no audit of this size certifies more
_BISECTIONS = 60


# --- The bound ------------------------------------------------------------------------------------

def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a success probability from `successes` of `trials`."""
    if successes == 0:
        return 0.0
    return float(stats.beta.ppf(alpha, successes, trials - successes + 1))


def p_value(eps: float, guesses: int, correct: int, slots: int, delta: float) -> float:
    """P[at least `correct` of `guesses` right] under (eps, delta)-DP in each of `slots` randomized slots: the
    Binomial(guesses, e^eps / (1 + e^eps)) tail plus Steinke et al.'s delta term, 2 slots delta max_i P[correct - i
    <= Bin < correct] / i (App. D)."""
    if not 0 <= correct <= guesses <= slots:
        raise ValueError(f"need 0 <= correct {correct} <= guesses {guesses} <= slots {slots}")
    q = 1.0 / (1.0 + math.exp(-eps))
    tail = float(stats.binom.sf(correct - 1, guesses, q))
    if delta == 0 or correct == 0:
        return min(tail, 1.0)
    below = np.cumsum(stats.binom.pmf(np.arange(correct - 1, -1, -1), guesses, q))  # P[v - i <= Bin < v], i = 1..v
    return min(tail + 2 * slots * delta * float(np.max(below / np.arange(1, correct + 1))), 1.0)


def epsilon_lower_bound(guesses: int, correct: int, slots: int, delta: float, confidence: float) -> float:
    """Largest eps the audit's guesses reject at `confidence`: with probability at least `confidence`, a run that is
    (eps, delta)-DP in every slot gives a bound below eps.  Without delta, the logit of the Clopper-Pearson lower
    bound on the guesses' accuracy; with it, bisection on the p-value (increasing in eps)."""
    alpha = 1.0 - confidence
    if guesses == 0:
        return 0.0
    if delta == 0:
        accuracy = clopper_pearson_lower(correct, guesses, alpha)
        return max(0.0, math.log(accuracy / (1 - accuracy))) if accuracy < 1 else _EPS_MAX
    if p_value(0.0, guesses, correct, slots, delta) >= alpha:
        return 0.0
    lo, hi = 0.0, _EPS_MAX
    if p_value(hi, guesses, correct, slots, delta) < alpha:
        return hi
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_value(mid, guesses, correct, slots, delta) < alpha else (lo, mid)
    return lo


# --- Guessing ---------------------------------------------------------------------------------------

def guess(score: np.ndarray, tiebreak: np.ndarray, k_in: int, k_out: int) -> np.ndarray:
    """+1 (IN) for the k_in highest scores, -1 (OUT) for the k_out lowest, 0 (abstain) elsewhere; equal scores
    ordered by `tiebreak`, drawn without looking at the inclusions."""
    if k_in + k_out > score.size:
        raise ValueError(f"{k_in} + {k_out} guesses exceed the {score.size} slots")
    order = np.lexsort((tiebreak, score))  # ascending
    out = np.zeros(score.size, dtype=np.int8)
    out[order[score.size - k_in:]] = 1
    out[order[:k_out]] = -1
    return out


def _tally(score: np.ndarray, included: np.ndarray, tiebreak: np.ndarray, k_in: int, k_out: int) -> tuple[int, int]:
    """(guesses, correct guesses) of the attack on these slots."""
    g = guess(score, tiebreak, k_in, k_out)
    truth = np.where(included, 1, -1)
    return k_in + k_out, int(((g == truth) & (g != 0)).sum())


def select_attack(score: np.ndarray, included: np.ndarray, tiebreak: np.ndarray, fractions: Sequence[float],
                  delta: float, confidence: float) -> dict[str, Any]:
    """The direction (+1: higher score means IN) and guess fractions that give the largest bound on these slots."""
    best: dict[str, Any] = {"eps": -1.0}
    for direction in (1, -1):
        for f_in in (0.0, *fractions):
            for f_out in (0.0, *fractions):
                k_in, k_out = int(f_in * score.size), int(f_out * score.size)
                if k_in + k_out == 0:
                    continue
                r, v = _tally(direction * score, included, tiebreak, k_in, k_out)
                eps = epsilon_lower_bound(r, v, score.size, delta, confidence)
                if eps > best["eps"]:
                    best = {"eps": eps, "direction": direction, "f_in": f_in, "f_out": f_out}
    return best


def audit_score(score: np.ndarray, included: np.ndarray, tiebreak: np.ndarray, n_select: int,
                settings: AuditConfig, delta: float) -> dict[str, Any]:
    """Choose the attack on the first `n_select` models (rows), bound epsilon on the others."""
    conf = settings.confidence
    chosen = select_attack(score[:n_select].ravel(), included[:n_select].ravel(), tiebreak[:n_select].ravel(),
                           settings.guess_fractions, delta, conf)
    s = chosen["direction"] * score[n_select:].ravel()
    inc, tb = included[n_select:].ravel(), tiebreak[n_select:].ravel()
    k_in, k_out = int(chosen["f_in"] * s.size), int(chosen["f_out"] * s.size)
    r, v = _tally(s, inc, tb, k_in, k_out)
    return {"direction": "higher is IN" if chosen["direction"] > 0 else "lower is IN", "guess_in": k_in,
            "guess_out": k_out, "guesses": r, "correct": v, "precision": v / r, "slots": s.size,
            "models_selection": n_select, "models_evaluation": score.shape[0] - n_select,
            "eps_lb_selection": chosen["eps"], "eps_lb": epsilon_lower_bound(r, v, s.size, delta, conf),
            "eps_lb_max": largest_certifiable(s.size, delta, conf)}


def largest_certifiable(slots: int, delta: float, confidence: float) -> float:
    """The largest bound an audit of `slots` slots can certify: every slot guessed, every guess right. At an epsilon
    above it, "consistent with the accountant" holds whatever the training did: the audit has no power there."""
    return epsilon_lower_bound(slots, slots, slots, delta, confidence)


# --- Jobs: canaries, models, tables ------------------------------------------------------------------

def arms(cfg: StudyConfig) -> list[str]:
    """The audit's model sets: one per epsilon (eps<epsilon>) and the non-private negative control."""
    return [f"eps{format_epsilon(e)}" for e in cfg.audit.epsilons] + [CONTROL]


def arm_epsilon(arm: str) -> float | None:
    """The target epsilon of an arm; None for the non-private control."""
    if arm == CONTROL:
        return None
    if not arm.startswith("eps"):
        raise ValueError(f"unknown audit arm {arm!r}: eps<epsilon> or {CONTROL}")
    return float(arm.removeprefix("eps"))


def write_canaries(cfg: StudyConfig, out: Path) -> None:
    """The canaries (ids, original and flipped labels) and every model's inclusion bits, i.i.d. fair coins."""
    a, ds = cfg.audit, pipeline.dataset(cfg)
    n, m = len(ds.y_train), a.canaries
    if m >= n:
        raise ValueError(f"config key audit.canaries = {m} must be below the {n} training examples")
    rng = stream(a.seed, 0)
    ids = np.sort(rng.choice(n, size=m, replace=False))
    labels = ds.y_train.numpy()[ids]
    flipped = (labels + rng.integers(1, ds.num_classes, m)) % ds.num_classes
    masks = np.stack([stream(a.seed, 1, k).random(m) < 0.5 for k in range(a.num_models)])
    io.write_npz(out, ids=ids, labels=labels, canary_labels=flipped, masks=masks)


def train_audit_shard(cfg: StudyConfig, arm: str, canaries: Path, noise: Path | None, shard: int,
                      out: Path, resume: Path | None = None) -> None:
    """Train one shard of an arm's models on the base set plus their canaries; keep each canary's scores."""
    a, ds, device = cfg.audit, pipeline.dataset(cfg), pipeline.device_of(cfg)
    eps = arm_epsilon(arm)
    with np.load(canaries) as z:
        ids, flipped, masks = z["ids"], torch.from_numpy(z["canary_labels"]), z["masks"]
    base = torch.from_numpy(np.setdiff1d(np.arange(len(ds.y_train)), ids))
    x_can = ds.x_train[torch.from_numpy(ids)]
    models = pipeline.shard_range(a.num_models, a.models_per_job, shard)
    if eps is None:
        settings, private = a.control_train, {}
    else:
        calibration = pipeline.noise_for(noise, eps)
        n_nominal = pipeline.experiment_train_size(cfg, "audit", len(ds.y_train))
        settings = cfg.train
        private = {"privacy_settings": pipeline.privacy_settings(cfg, calibration),
                   "schedule": dp_schedule(n_nominal, settings.batch_size, settings.epochs)}

    def run(k: int, ckpt: Path | None) -> dict[str, np.ndarray]:
        seed = model_seed(a.seed, k)
        drawn = torch.from_numpy(masks[k])
        x = torch.cat([ds.x_train[base], x_can[drawn]])
        y = torch.cat([ds.y_train[base], flipped[drawn]])
        model, metrics = train(pipeline.fresh_model(cfg, ds, seed), x, y, settings, seed=seed, device=device,
                               checkpoint_path=ckpt, desc=f"audit {arm} model {k}", **private)
        if eps is not None:
            pipeline.check_spent(metrics["epsilon"], eps)
        return {**_canary_scores(cfg, model, x_can, flipped, ids, device),
                "test_acc": np.array(evaluate(model, ds.x_test, ds.y_test, device=device)["acc"]),
                "epsilon_spent": np.array(metrics.get("epsilon", np.nan))}

    resume = pipeline.open_resume(resume, cfg)
    rows = [pipeline.resumable(resume, k, partial(run, k)) for k in models]
    io.write_npz(out, arm=np.array(arm), models=np.array(list(models)), masks=masks[models.start:models.stop],
                 **{key: np.stack([r[key] for r in rows]) for key in rows[0]})
    pipeline.close_resume(resume)


def _canary_scores(cfg: StudyConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: np.ndarray,
                   device: torch.device) -> dict[str, np.ndarray]:
    """What the attacker sees of each canary under one model: correctness and probability of its (flipped)
    training label, its loss, and its input curvature (the study's curvature score)."""
    ev = evaluate(model, x, y, device=device)
    curv = pipeline.score_curvature(cfg, model, x, y, torch.from_numpy(ids), device)
    loss = -np.log(np.maximum(ev["prob"].astype(np.float64), np.finfo(np.float64).tiny))
    return {"correct": ev["correct"], "prob": ev["prob"], "loss": loss,
            "curvature": curv[cfg.resolved_defects["curvature_score"]]}


def _load_arms(shard_files: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """Every arm's models, in model order, from its shards."""
    by_arm: dict[str, list[Path]] = {}
    for f in shard_files:
        with np.load(f) as z:
            by_arm.setdefault(str(z["arm"]), []).append(f)
    keys = ("models", "masks", "correct", "prob", "loss", "curvature", "test_acc", "epsilon_spent")
    loaded = {arm: pipeline.load_shards(files, keys) for arm, files in by_arm.items()}
    for z in loaded.values():
        order = np.argsort(z["models"])
        z.update({k: v[order] for k, v in z.items()})
    return loaded


def attack_scores(cfg: StudyConfig, z: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per (model, canary) score of each attack: the loss, the per-model score the memorization estimator averages
    (memorization.score), the input curvature."""
    return {"loss": z["loss"], "memorization": pipeline.model_scores(cfg, z).astype(np.float64),
            "curvature": z["curvature"].astype(np.float64)}


def audit_tables(cfg: StudyConfig, canaries: Path, shards: list[Path], out: Path,
                 canaries_out: Path) -> None:
    """One row per arm and attack score (the bound and how it was reached) and one per arm and canary (its
    memorization, against 1 - e^-eps)."""
    a, delta = cfg.audit, cfg.privacy.delta
    with np.load(canaries) as c:
        ids, labels, flipped = c["ids"], c["labels"], c["canary_labels"]
    rows, canary_frames = [], []
    for arm, z in sorted(_load_arms(shards).items(), key=lambda kv: arm_epsilon(kv[0]) or math.inf):
        eps = arm_epsilon(arm)
        n_models = z["masks"].shape[0]
        n_select = min(max(1, round(a.selection_fraction * n_models)), n_models - 1)
        tiebreak = stream(a.seed, 2).random(z["masks"].shape)
        common = {"arm": arm, "private": eps is not None, "epsilon": eps if eps is not None else math.nan,
                  "epsilon_spent": float(np.max(z["epsilon_spent"])), "delta": delta, "confidence": a.confidence,
                  "canaries": len(ids), "models": n_models, "test_acc": float(np.mean(z["test_acc"]))}
        for name, score in attack_scores(cfg, z).items():
            rows.append({**common, "score": name, **audit_score(score, z["masks"], tiebreak, n_select, a, delta)})
        mem = memorization.memorization(z["masks"], pipeline.model_scores(cfg, z))
        canary_frames.append(pd.DataFrame({
            "arm": arm, "epsilon": common["epsilon"], "id": ids, "label": labels, "canary_label": flipped,
            "mem": mem.mem, "n_in": mem.n_in, "n_out": mem.n_out,
            "bound": theory.mem_bound(eps) if eps is not None else math.nan}))
    pipeline.write_table(pd.DataFrame(rows), out, cfg)
    pipeline.write_table(pd.concat(canary_frames, ignore_index=True), canaries_out, cfg)


# --- Report ----------------------------------------------------------------------------------------

CONSISTENT = "audit consistent with the accountant"
INCONSISTENT = "audit NOT consistent with the accountant"
CONTROL_DETECTED = "negative control detected"
CONTROL_MISSED = "negative control NOT detected (the audit is too weak to tell a broken DP training)"


def verdicts(bounds: pd.DataFrame, canaries: pd.DataFrame, control_epsilon: float) -> dict[str, Any]:
    """The audit's verdict (every DP bound at or below the accountant's epsilon, what the model spent) and the
    negative control's (its best bound above control_epsilon), with the numbers behind them."""
    private, control = bounds[bounds["private"]], bounds[~bounds["private"]]
    over = private[private["eps_lb"] > private["epsilon_spent"]]
    powerless = sorted(set(private.loc[private["epsilon_spent"] >= private["eps_lb_max"], "epsilon"].tolist()))
    dp = canaries[np.isfinite(canaries["epsilon"])].dropna(subset=["mem"])
    per_epsilon = (dp.assign(above=dp["mem"] > dp["bound"]).groupby("epsilon")
                   .agg(mean_mem=("mem", "mean"), sd_mem=("mem", "std"), bound=("bound", "first"),
                        fraction_above_bound=("above", "mean")))
    best_control = float(control["eps_lb"].max()) if len(control) else math.nan
    return {"verdict": INCONSISTENT if len(over) else CONSISTENT,
            "violations": over[["epsilon", "score", "eps_lb", "epsilon_spent"]].to_dict("records"),
            "max_ratio_lb_to_accountant": float((private["eps_lb"] / private["epsilon_spent"]).max()),
            "largest_certifiable": float(bounds["eps_lb_max"].max()), "epsilons_without_power": powerless,
            "control_verdict": CONTROL_DETECTED if best_control > control_epsilon else CONTROL_MISSED,
            "control_epsilon": control_epsilon, "control_best_eps_lb": best_control,
            "control_mean_mem": float(canaries.loc[~np.isfinite(canaries["epsilon"]), "mem"].mean()),
            "bounds": bounds.to_dict("records"),
            "memorization_per_epsilon": per_epsilon.reset_index().to_dict("records")}


def _listed(epsilons: list[float]) -> str:
    return "no audited ε" if not epsilons else "ε = " + ", ".join(f"{e:g}" for e in epsilons)


def report_section(tables: Path, figure: Path, control_epsilon: float) -> tuple[list[str], dict[str, Any] | None]:
    """The report's audit section (Markdown lines) and its numbers; nothing when the audit did not run."""
    if not (tables / "audit.csv").exists():
        return [], None
    bounds = pd.read_csv(tables / "audit.csv")
    v = verdicts(bounds, pd.read_csv(tables / "audit_canaries.csv"), control_epsilon)
    first = bounds.iloc[0]
    rows = [f"| {f'{r.epsilon:g}' if r.private else 'non-private'} | "
            f"{f'{r.epsilon_spent:.3f}' if r.private else '-'} | {r.score} | {r.direction}, "
            f"{r.guess_in} IN + {r.guess_out} OUT | {r.correct}/{r.guesses} | **{r.eps_lb:.3f}** | {r.eps_lb_max:.2f} |"
            for r in bounds.itertuples()]
    mem_rows = [f"| {m['epsilon']:g} | {m['mean_mem']:.3f} ± {m['sd_mem']:.3f} | {m['bound']:.3f} | "
                f"{m['fraction_above_bound']:.2f} |" for m in v["memorization_per_epsilon"]]
    lines = [
        "", "### Empirical DP audit (beyond the paper)", "",
        f"{first['canaries']} canaries (training images given another class's label, their originals left out), each "
        f"drawn into each of {first['models']} models per epsilon with probability 1/2; the attack's direction and "
        f"guess counts are chosen on {first['models_selection']} models, the bound computed on the other "
        f"{first['models_evaluation']} ({first['slots']} canary-model slots) at {first['confidence']:.0%} confidence "
        f"(Steinke, Nasr and Jagielski 2023, delta = {first['delta']:g}). Accountant's epsilon: what the models spent.",
        "", f"![audit]({figure.as_posix()})", "",
        "*Criterion:* every empirical lower bound stays at or below the accountant's epsilon; the non-private "
        f"negative control's best bound exceeds {control_epsilon:g}.", "",
        f"*Verdict:* **{v['verdict']}** (largest bound / accountant's epsilon: {v['max_ratio_lb_to_accountant']:.3f}); "
        f"**{v['control_verdict']}** (best bound {v['control_best_eps_lb']:.3f}).", "",
        f"Where the audit has power: with {first['slots']} slots it can certify at most "
        f"{v['largest_certifiable']:.2f} even with every guess right, so at "
        f"{_listed(v['epsilons_without_power'])} \"consistent with the accountant\" holds whatever the training did.",
        "", "| ε | accountant's ε | score | attack | correct | ε lower bound | largest certifiable |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Canary memorization (Feldman-Zhang over all {first['models']} models) against Thm 5.4's bound; non-private "
        f"control: mean {v['control_mean_mem']:.3f}.", "",
        "| ε | mean memorization ± sd | bound 1 - e^-ε | fraction of canaries above it |", "|---|---|---|---|",
        *mem_rows,
    ]
    return lines, v
