"""Feldman-Zhang memorization by subsampling.

mem_i = mean over models whose subset contains i of score_k(i)
      - mean over models whose subset excludes i of score_k(i),
with score the 0/1 correctness or the softmax probability of the true label.

Every model's subset is drawn from its own seed (base seed, model index), so adding models never
changes the subsets of the earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memcurv.seeds import stream

ESTIMATORS = ("conditional", "unconditional")


def _check_ratio(ratio: float) -> None:
    if not 0 < ratio < 1:
        raise ValueError(f"subset ratio must lie in (0, 1), got {ratio}")


def subset_masks(n: int, models: range | list[int], ratio: float, seed: int | None) -> np.ndarray:
    """Membership masks (len(models), n): model k holds exactly round(ratio * n) random examples."""
    _check_ratio(ratio)
    size = round(ratio * n)
    masks = np.zeros((len(models), n), dtype=bool)
    for row, k in enumerate(models):
        masks[row, stream(seed, k).choice(n, size=size, replace=False)] = True
    return masks


SUBSET_DESIGNS = ("poisson", "fixed")


def topk_subset_masks(n: int, topk_ids: np.ndarray, models: range | list[int], ratio: float, seed: int | None,
                      design: str = "fixed") -> np.ndarray:
    """Masks of the memorization-vs-epsilon experiment, drawn afresh for every model: a fraction ``ratio`` of the
    examples outside the top-k plus a random half of the top-k. ``fixed``: exactly round(ratio * others) and k // 2
    of them (the released code's design; a subset with an example and one without it differ by a swap);
    ``poisson``: each example drawn in independently, with probability ``ratio`` or 1/2 (they differ by adding it,
    the adjacency Opacus's epsilon is for)."""
    _check_ratio(ratio)
    if design not in SUBSET_DESIGNS:
        raise ValueError(f"unknown subset design {design!r}; choose one of {SUBSET_DESIGNS}")
    topk_ids = np.asarray(topk_ids)
    others = np.setdiff1d(np.arange(n), topk_ids)
    masks = np.zeros((len(models), n), dtype=bool)
    for row, k in enumerate(models):
        rng = stream(seed, k)
        if design == "poisson":
            masks[row, others] = rng.random(len(others)) < ratio
            masks[row, topk_ids] = rng.random(len(topk_ids)) < 0.5
        else:
            masks[row, rng.choice(others, size=round(ratio * len(others)), replace=False)] = True
            masks[row, rng.choice(topk_ids, size=len(topk_ids) // 2, replace=False)] = True
    return masks


@dataclass(frozen=True)
class Memorization:
    mem: np.ndarray  # (N,), NaN where an example was never included or never excluded
    n_in: np.ndarray  # (N,) models whose subset included the example
    n_out: np.ndarray  # (N,) models whose subset excluded it


def memorization(masks: np.ndarray, scores: np.ndarray, estimator: str = "conditional") -> Memorization:
    """Memorization from a K x N membership mask and K x N per-model scores.

    ``conditional`` is Feldman-Zhang's estimate (means over including and over excluding models).
    ``unconditional`` is the released code's mean(s * mask) - mean(s * (1 - mask)) over all K models
    (defect 4): about half the true score when r = 0.5.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown memorization estimator {estimator!r}; choose one of {ESTIMATORS}")
    masks = np.asarray(masks, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if masks.shape != scores.shape or masks.ndim != 2:
        raise ValueError(f"masks {masks.shape} and scores {scores.shape} must both be K x N")
    n_in = masks.sum(0)
    n_out = masks.shape[0] - n_in
    sum_in = (scores * masks).sum(0)
    sum_out = (scores * ~masks).sum(0)
    if estimator == "unconditional":
        mem = (sum_in - sum_out) / masks.shape[0]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            mem = np.where((n_in > 0) & (n_out > 0), sum_in / n_in - sum_out / n_out, np.nan)
    return Memorization(mem=mem, n_in=n_in, n_out=n_out)


def top_k(mem: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k most memorized examples (NaN scores never chosen; ties broken by lower id)."""
    finite = np.flatnonzero(np.isfinite(mem))
    if k > len(finite):
        raise ValueError(f"top_k = {k} exceeds the {len(finite)} examples with a memorization score")
    order = np.lexsort((finite, -mem[finite]))
    return finite[order[:k]]


def aggregate_by_membership(masks: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example mean over including models, mean over excluding models, and max over including
    models (the released code's choice, defect 3) of a K x N per-model quantity such as curvature."""
    masks = np.asarray(masks, dtype=bool)
    values = np.asarray(values, dtype=np.float64)
    n_in, n_out = masks.sum(0), (~masks).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "in_mean": np.where(n_in > 0, (values * masks).sum(0) / n_in, np.nan),
            "out_mean": np.where(n_out > 0, (values * ~masks).sum(0) / n_out, np.nan),
            "in_max": np.where(n_in > 0, np.where(masks, values, -np.inf).max(0), np.nan),
        }


def resampled_membership(masks: np.ndarray, values: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """`aggregate_by_membership`, and the difference of its two means (memorization, for a per-model score),
    for B resamples of the K models at once: model k counts weights[b, k] times in resample b (bootstrap
    counts). Returns (B, N) arrays; NaN where a resample holds no model with (or without) the example."""
    masks = np.asarray(masks, dtype=bool)
    inside = masks.astype(np.float64)
    values = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    n_in, n_out = w @ inside, w @ (1.0 - inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        in_mean = np.where(n_in > 0, (w @ (inside * values)) / n_in, np.nan)
        out_mean = np.where(n_out > 0, (w @ ((1.0 - inside) * values)) / n_out, np.nan)
    inside_values = np.where(masks, values, -np.inf)
    in_max = np.stack([inside_values[row > 0].max(0, initial=-np.inf) for row in w])
    return {"in_mean": in_mean, "out_mean": out_mean, "in_max": np.where(np.isfinite(in_max), in_max, np.nan),
            "in_minus_out": in_mean - out_mean}
