"""Tables of a study written from planted per-model data, so that claims and figures can be checked against a
known answer: memorization comes from a planted per-example propensity, curvature follows it (or not), and the
DP models' curvature and loss follow given curves of epsilon."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from memcurv import config, io
from memcurv.estimators.score_reduction import SCORES
from memcurv.jobs import subset_models

EPS = [0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0]


def _cfg(n: int, models: int) -> dict:
    synthetic = {"name": "synthetic", "options": {"n_train": n, "n_test": 10}}
    return config.validate({"study": "unit", "dataset": synthetic, "train": {"batch_size": 8},
                            "memorization": {"num_models": models, "models_per_job": models,
                                             "train": {"batch_size": 8}},
                            "mem_vs_epsilon": {"top_k": 4}})


def write_dp_models(out: Path, curvature: Callable, loss: Callable, seeds: int = 4, noise: float = 0.05,
                    loss_noise: float = 0.01) -> None:
    """DP models whose curvature is curvature(eps) times 1 + `noise` x a normal draw, and test loss loss(eps) plus
    `loss_noise` x a normal draw, `seeds` per epsilon of EPS."""
    rng = np.random.default_rng(0)
    rows = []
    for e in EPS:
        for s in range(seeds):
            c = curvature(e) * (1 + noise * rng.standard_normal())
            row = {"epsilon": e, "seed": s, "train_loss": loss(e) * 0.9, "train_acc": 0.9, "test_acc": 0.8,
                   "test_loss": loss(e) + loss_noise * rng.standard_normal()}
            row.update({f"curv_{sc}_{r}": c * (1 if r == "sum" else 1 / 128) for sc in SCORES for r in ("sum", "mean")})
            row.update({f"test_curv_{sc}_sum": c for sc in SCORES})
            rows.append(row)
    pd.DataFrame(rows).to_csv(out / "dp_models.csv", index=False)


def write_examples(out: Path, slope: float, n: int = 400, models: int = 32, flipped: int = 0,
                   curve: Callable | None = None, noise: float = 1.0) -> np.ndarray:
    """Examples of planted memorization propensity p (excluded models get them right with probability 1 - p) and
    per-model curvature slope * p (or `curve(p)`) + normal noise of sd `noise`; the first `flipped` examples are
    planted as flipped labels with p = 1. Returns p."""
    rng = np.random.default_rng(1)
    p = rng.random(n)
    p[:flipped] = 1.0
    masks = rng.random((models, n)) < 0.7
    correct = masks | (rng.random((models, n)) > p)
    mean = slope * p if curve is None else curve(p)
    curv = {s: (mean + noise * rng.standard_normal((models, n))).astype(np.float32) for s in SCORES}
    shard = out / "shard0.npz"
    io.write_npz(shard, models=np.arange(models), masks=masks, correct=correct, prob=correct.astype(np.float32),
                 test_acc=np.full(models, 0.5), **{f"curv_{s}": v for s, v in curv.items()})
    subset_models.examples_table(_cfg(n, models), [shard], out / "examples.csv", out / "subset_models.csv",
                            out / "subset_scores.npz")
    shard.unlink()
    if flipped:
        table = pd.read_csv(out / "examples.csv")
        table.loc[:flipped - 1, "planted"] = "flipped"
        table.to_csv(out / "examples.csv", index=False)
    return p


def write_mem_vs_epsilon(out: Path, mem: Callable, k: int = 20, models: int = 16, control: float | None = None,
                         eps: list[float] = EPS, p_in: float = 1.0, subsets: str | None = None) -> None:
    """DP subset models that get each top-k example right with probability `p_in` when trained with it and
    p_in - mem(eps) without it, with a true-label probability 0.8 where right and 0.2 where wrong; with `control`,
    non-private models at memorization `control`, right wherever trained with it; `subsets` records the subsets'
    design (absent: the files written before it was recorded)."""
    rng = np.random.default_rng(2)
    masks = rng.random((len(eps) + 1, models, k)) < 0.5
    p = np.array([*(mem(e) for e in eps), control or 0.0])[:, None, None]
    inside = np.array([p_in] * len(eps) + [1.0])[:, None, None]  # the control gets what it trained on right
    correct = np.where(masks, True, rng.random(masks.shape) > p + 1.0 - inside)
    correct &= ~masks | (rng.random(masks.shape) < inside)
    prob = np.where(correct, 0.8, 0.2).astype(np.float32)
    arrays = {"control_masks": masks[-1], "control_correct": correct[-1], "control_prob": prob[-1]}
    design = {} if subsets is None else {"subsets": np.array(subsets)}
    io.write_npz(out / "mem_vs_epsilon_models.npz", epsilons=np.array(eps), masks=masks[:-1], correct=correct[:-1],
                 prob=prob[:-1], **design, **(arrays if control is not None else {}))
