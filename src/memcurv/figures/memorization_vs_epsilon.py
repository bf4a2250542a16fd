"""Paper Fig. 6: mean memorization of the top-k most memorized examples under DP models at each epsilon,
log scale, with the bound 1 - e^-eps of Thm 5.4 drawn (not fitted); one panel per reading of the table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv import claims, theory
from memcurv.figures.style import CI_LABEL, PALETTE, epsilon_axis, interval_errorbar, side_by_side

TABLES = ("mem_vs_epsilon_models.npz",)  # what plot() reads


def _panel(ax: Any, models_file: Path, estimator: str) -> pd.DataFrame:
    per = claims.topk_memorization_intervals(models_file, estimator)
    k = int(per["n"].max())
    grid = np.geomspace(min(per["epsilon"].min(), 0.5), per["epsilon"].max(), 200)
    ax.plot(grid, theory.mem_bound(grid), color=PALETTE[3], ls="--", label=r"bound $1 - e^{-\varepsilon}$")
    positive = per["mean"] > 0
    interval_errorbar(ax, per[positive].assign(ci_low=per["ci_low"].clip(lower=1e-4)), fmt="o-", color=PALETTE[0],
                      label=f"memorization of top-{k}:\n{CI_LABEL} (models, examples)")
    if (~positive).any():  # a log axis cannot show them; mark them on the floor instead of dropping them
        floor = 0.5 * per.loc[positive, "mean"].min() if positive.any() else 1e-3
        ax.plot(per.loc[~positive, "epsilon"], np.full((~positive).sum(), floor), "v", color=PALETTE[0],
                label="mean ≤ 0 (drawn at floor)")
    ax.set_yscale("log")
    epsilon_axis(ax)
    ax.set_ylabel("memorization score" + (" (|unconditional|)" if estimator == "faithful" else ""))
    ax.legend(fontsize=6)
    return per.assign(estimator=estimator)


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    return side_by_side("Memorization vs privacy budget", study, options,
                        lambda ax, reading: _panel(ax, tables["mem_vs_epsilon_models.npz"], reading["mem_estimator"]))
