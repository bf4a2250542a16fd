"""The curvature scores' names, and what the released code's batch-mean loss (defect 2) makes of them: numpy only,
so that the tables, figures and report read scores without importing torch (over a second a job)."""

from __future__ import annotations

import numpy as np

SCORES = ("trace", "gauss_newton", "hutchinson", "sqnorm", "gradnorm")  # memcurv.estimators.curvature's scores
REDUCTIONS = ("sum", "mean")
# Power of the batch size each score scales with under a batch-mean loss (gradients scale with 1/B).
_MEAN_POWER = {"trace": 1, "gauss_newton": 1, "hutchinson": 1, "sqnorm": 2, "gradnorm": 1}


def batch_sizes(n: int, batch_size: int) -> np.ndarray:
    """Size of the batch each of n examples falls in when scored in order, `batch_size` at a time."""
    sizes = np.full(n, batch_size, dtype=np.int64)
    sizes[n - n % batch_size:] = n % batch_size or batch_size
    return sizes


def reduce_scores(scores: dict[str, np.ndarray], reduction: str, batch_size: int) -> dict[str, np.ndarray]:
    """Per-example scores (last axis: examples) under a loss `reduction`.  ``sum`` returns them as they are;
    ``mean`` gives what a batch-mean loss over batches of `batch_size` in example order would have (defect 2):
    each score divided by its batch's size (squared for ``sqnorm``), the last, smaller batch inflated as in
    the released code."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown loss_reduction {reduction!r}; choose one of {REDUCTIONS}")
    if reduction == "sum":
        return dict(scores)
    sizes = batch_sizes(np.shape(next(iter(scores.values())))[-1], batch_size).astype(np.float64)
    return {name: np.asarray(v) / sizes ** _MEAN_POWER[name] for name, v in scores.items()}
