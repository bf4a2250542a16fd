"""The empirical lower bound on epsilon of a canary audit (Steinke, Nasr and Jagielski 2023, "Privacy auditing with
one (1) training run", Thm 3.1 and App. D), and the attack that reaches it.

A slot is a (canary, model) pair whose inclusion bit is an i.i.d. fair coin.  The attacker ranks the slots by a
score, guesses IN for the k+ highest, OUT for the k- lowest, and abstains on the rest.  Under (eps, delta)-DP the
number v of correct guesses among r is stochastically dominated by Binomial(r, e^eps / (1 + e^eps)), up to a delta
term; the lower bound is the largest eps that this rejects at the chosen confidence.  The direction of the score and
(k+, k-) are chosen on the first models, the bound is computed on the others (memcurv.jobs.audit runs the audit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from memcurv.settings import AuditConfig

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
