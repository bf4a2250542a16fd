"""Privacy accounting and noise calibration for DP-SGD with Poisson sampling.

Epsilons come from Opacus's own accountants, so the number a calibration promises is the number
training records for the same (noise, sample rate, steps, delta). Calibration maps a target epsilon
to the smallest noise multiplier that stays within it; the workflow runs it once per epsilon and
reuses the noise for every seed.

The PRV accountant discretises the privacy loss on a grid whose length grows as (epsilon + 3) /
eps_error. With Opacus's fixed eps_error of 0.01 that is millions of points (seconds per evaluation)
at epsilon 20-100 on CIFAR-sized runs; here eps_error grows with epsilon (``prv_eps_error``), so the
grid stays a few hundred thousand points and the bound's added slack stays under 0.4% of epsilon; below
epsilon 1 the error is 1% of epsilon, so a small budget is not spent on slack. Where
PRV raises or cannot reach the target, calibration falls back to RDP and says so in the log and in
``Calibration.warnings``.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

from opacus.accountants import PRVAccountant, RDPAccountant

log = logging.getLogger(__name__)

ACCOUNTANTS = ("rdp", "prv")
PRV_EPS_ERROR = 0.01  # Opacus's default eps_error; its get_epsilon returns estimate + eps_error
# Above epsilon ~4 the PRV's eps_error is this fraction of the (coarse RDP) epsilon: under 0.4% of the PRV
# epsilon itself, well inside calibration's 1% tolerance, and a grid short enough for 1 s per calibration.
PRV_REL_ERROR = 0.0025
MIN_NOISE, MAX_NOISE = 1e-2, 1e6
_MAX_STEP = math.log(4.0)  # widest move in log noise while the root is not yet bracketed
_MAX_EVALS = 60
_ROUGH_TOL = 0.1  # RDP tolerance when it only seeds the PRV search
# RDP orders: Opacus's defaults (up to 63) and larger ones. Converting RDP at order a to (eps, delta)-DP adds
# log(1 / delta) / (a - 1), which at delta 1e-5 is 0.19 at a = 63: no noise reaches a budget below that without
# larger orders (memorization vs epsilon asks for 0.1). Where the best order is within Opacus's range, the epsilon
# is Opacus's own.
ORDERS = (*RDPAccountant.DEFAULT_ALPHAS, *(round(64 * 2 ** (k / 2)) for k in range(1, 15)))
# A quarter of them: 4x cheaper, epsilon a little above the full one; seeds and sizes PRV only.
_COARSE_ORDERS = ORDERS[::4]
_NEAR = 0.95  # relative noise of the second RDP point that gives PRV its slope
_ORDER_WARNING = "Optimal order is the (smallest|largest) alpha"


def _check_common(delta: float, sample_rate: float, steps: int, accountant: str) -> None:
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must lie in (0, 1], got {sample_rate}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant {accountant!r}; choose one of {ACCOUNTANTS}")


@functools.cache
def epsilon_spent(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                  accountant: str = "rdp") -> float:
    """Epsilon of `steps` Poisson-subsampled Gaussian steps.

    Kept per process (a pure function of numbers, half a second at PRV's grid): the seeds of one epsilon share
    noise, sample rate and steps, so a job of 16 DP models pays for one.

    Uses Opacus's RDPAccountant (over ORDERS: its defaults and larger ones) or PRVAccountant (returning its upper
    bound, estimate + eps_error, with eps_error from ``prv_eps_error``): what an Opacus PrivacyEngine reports, to
    0.4% (RDP: where the best order is one of Opacus's).
    """
    _check_common(delta, sample_rate, steps, accountant)
    if not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
        raise ValueError(
            f"noise_multiplier must be finite and > 0, got {noise_multiplier}: privacy with zero noise "
            "is not private; use a non-private run instead"
        )
    if accountant == "rdp":
        return _rdp_epsilon(noise_multiplier, sample_rate, steps, delta)
    prv = PRVAccountant()
    prv.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    eps_error = prv_eps_error(_rdp_epsilon(noise_multiplier, sample_rate, steps, delta, _COARSE_ORDERS))
    with warnings.catch_warnings():
        # Opacus sizes PRV's grid from RDP and warns where the optimal order is an end of its range:
        # the grid is still safe, so the warning says nothing about the PRV result.
        warnings.filterwarnings("ignore", _ORDER_WARNING, UserWarning)
        return float(prv.get_epsilon(delta=delta, eps_error=eps_error))


def _rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                 orders: list[float] | None = None) -> float:
    """Opacus's RDP epsilon, over ORDERS or over `orders` (fewer orders: cheaper, looser)."""
    acc = RDPAccountant()
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with warnings.catch_warnings():
        if orders is not None:  # a coarse, sizing-only value: an end-of-range order is expected
            warnings.filterwarnings("ignore", _ORDER_WARNING, UserWarning)
        return float(acc.get_epsilon(delta=delta, alphas=list(orders or ORDERS)))


def prv_eps_error(rdp_epsilon: float) -> float:
    """The PRV accountant's additive error: Opacus's 0.01 between epsilon 1 and 4, PRV_REL_ERROR of epsilon
    above, and 1% of epsilon below 1 (Opacus's fixed 0.01 would leave 3% of a 0.3 budget unused).

    Scaled by an RDP epsilon over coarse orders (an upper bound on PRV's, cheap, at most 1.5x it at
    epsilon 100), so that the grid length, proportional to (epsilon + 3) / eps_error, stops growing
    at large epsilon and grows at most 1 / epsilon-fold at small epsilon.
    """
    if not math.isfinite(rdp_epsilon):
        return PRV_EPS_ERROR
    return max(PRV_EPS_ERROR * min(rdp_epsilon, 1.0), PRV_REL_ERROR * rdp_epsilon)


@dataclass(frozen=True)
class Calibration:
    """A calibrated noise multiplier and how it was obtained."""

    target_epsilon: float
    delta: float
    sample_rate: float
    steps: int
    accountant: str  # the accountant actually used (after any fallback)
    requested_accountant: str
    noise_multiplier: float
    epsilon: float  # spent by noise_multiplier under `accountant`; never > target_epsilon
    seconds: float
    warnings: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready fields (warnings as a list)."""
        return {**asdict(self), "warnings": list(self.warnings)}


@dataclass(frozen=True)
class _Solution:
    noise: float
    epsilon: float
    slope: float  # d log(eps) / d log(noise) near the solution: a warm start for another accountant


class _Unusable(RuntimeError):
    """The PRV accountant cannot serve this calibration; RDP takes over."""


def _solve(eps_of: Callable[[float], float], target: float, rel_tol: float, noise0: float,
           slope0: float) -> _Solution:
    """Noise whose epsilon lies in [target (1 - rel_tol), target].

    Root of g(x) = log eps(e^x) - log(target (1 - rel_tol / 2)), nearly linear in x = log noise:
    Newton steps with a secant slope until the root is bracketed, then Illinois regula falsi,
    bisecting where g is infinite. Typically 3-5 evaluations.
    """
    goal = math.log(target) + math.log1p(-rel_tol / 2)
    floor = target * (1 - rel_tol)
    lo_x, hi_x = math.log(MIN_NOISE), math.log(MAX_NOISE)
    above: tuple[float, float] | None = None  # (x, g > 0): too little noise
    below: tuple[float, float] | None = None  # (x, g <= 0): enough noise
    last: tuple[float, float] | None = None
    side = 0  # which end of the bracket the previous point replaced, for Illinois
    x, slope = math.log(noise0), slope0
    for _ in range(_MAX_EVALS):
        eps = eps_of(math.exp(x))
        if floor <= eps <= target:
            return _Solution(math.exp(x), eps, slope)
        if not eps < math.inf:  # inf or nan: no usable bound, as good as no privacy
            g = math.inf
        else:
            g = math.log(eps) - goal if eps > 0 else -math.inf
        if last is not None and math.isfinite(g) and math.isfinite(last[1]) and x != last[0]:
            s = (g - last[1]) / (x - last[0])
            slope = s if s < 0 else slope
        last = (x, g)
        if g > 0:
            if above is not None and below is not None and side == 1:
                below = (below[0], below[1] / 2)
            above, side = (x, g), 1
        else:
            if above is not None and below is not None and side == -1:
                above = (above[0], above[1] / 2)
            below, side = (x, g), -1
        if above is not None and below is not None:
            (xa, ga), (xb, gb) = above, below
            if xa >= xb:
                raise _Unusable(f"epsilon is not decreasing in the noise near noise {math.exp(x):.4g}")
            x = xa - ga * (xb - xa) / (gb - ga) if math.isfinite(ga) and math.isfinite(gb) else math.nan
            if not xa < x < xb:
                x = (xa + xb) / 2
        else:
            step = -g / slope if math.isfinite(g) else math.copysign(_MAX_STEP, g)
            new = min(max(x + max(-_MAX_STEP, min(_MAX_STEP, step)), lo_x), hi_x)
            if new == x:
                bound = "above" if g > 0 else "below"
                raise ValueError(
                    f"target_epsilon {target} cannot be reached with a noise multiplier in "
                    f"[{MIN_NOISE}, {MAX_NOISE}] (epsilon {eps:.4g} at the {bound} bound)"
                )
            x = new
    raise _Unusable(f"no noise within rel_tol {rel_tol} of target {target} after {_MAX_EVALS} evaluations")


def _initial_noise(target: float, delta: float, sample_rate: float, steps: int) -> float:
    """Moments-accountant scale q sqrt(2 T log(1/delta)) / eps: right to a small factor for small eps."""
    guess = sample_rate * math.sqrt(2 * steps * math.log(1 / delta)) / target
    return min(max(guess, 0.3), MAX_NOISE)


def calibrate_noise(target_epsilon: float, delta: float, sample_rate: float, steps: int,
                    accountant: str = "rdp", *, rel_tol: float = 0.01) -> Calibration:
    """Smallest noise multiplier (to within rel_tol in epsilon) whose spent epsilon is <= target_epsilon.

    A PRV request first solves RDP roughly (cheap), then refines under PRV from the RDP noise and slope
    (about two PRV evaluations); if PRV raises or cannot converge, it finishes under RDP.
    """
    start = time.perf_counter()
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise ValueError(f"target_epsilon must be finite and > 0, got {target_epsilon}")
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must lie in (0, 1), got {rel_tol}")
    _check_common(delta, sample_rate, steps, accountant)

    def spent(acc: str) -> Callable[[float], float]:
        return lambda noise: epsilon_spent(noise, sample_rate, steps, delta, acc)

    def coarse_rdp(noise: float) -> float:
        return _rdp_epsilon(noise, sample_rate, steps, delta, _COARSE_ORDERS)

    notes: list[str] = []
    noise0 = _initial_noise(target_epsilon, delta, sample_rate, steps)
    with warnings.catch_warnings():
        # Opacus warns at every probe whose optimal RDP order is an end of its default range.
        warnings.filterwarnings("ignore", _ORDER_WARNING, UserWarning)
        if accountant == "rdp":
            sol, used = _solve(spent("rdp"), target_epsilon, rel_tol, noise0, -1.0), "rdp"
        else:
            # A rough RDP solution (RDP is a bit looser than PRV) gives PRV its start and slope.
            rough = _solve(coarse_rdp, target_epsilon, max(rel_tol, _ROUGH_TOL), noise0, -1.0)
            try:
                # Local RDP slope (PRV's is nearly the same) so that PRV lands in about two evaluations.
                slope = math.log(coarse_rdp(rough.noise * _NEAR) / rough.epsilon) / math.log(_NEAR)
                sol, used = _solve(spent("prv"), target_epsilon, rel_tol, rough.noise, slope), "prv"
            except (ArithmeticError, RuntimeError, ValueError, MemoryError) as err:
                notes.append(
                    f"PRV accountant unusable for target epsilon {target_epsilon} (sample_rate "
                    f"{sample_rate:.6g}, steps {steps}, delta {delta:g}; {err}); fell back to RDP"
                )
                log.warning(notes[-1])
                sol, used = _solve(spent("rdp"), target_epsilon, rel_tol, rough.noise, rough.slope), "rdp"
    return Calibration(
        target_epsilon=float(target_epsilon), delta=float(delta), sample_rate=float(sample_rate),
        steps=int(steps), accountant=used, requested_accountant=accountant,
        noise_multiplier=sol.noise, epsilon=sol.epsilon, seconds=time.perf_counter() - start,
        warnings=tuple(notes),
    )
