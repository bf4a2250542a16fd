"""Paper Fig. 6: mean memorization of the top-k most memorized examples under DP models at each epsilon,
log scale, with the bound 1 - e^-eps of Thm 5.4 drawn (not fitted); one panel per reading of the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv import theory
from memcurv.figures.style import PALETTE, epsilon_axis, side_by_side


def _panel(ax: Any, table: pd.DataFrame, estimator: str) -> pd.DataFrame:
    per = theory.topk_memorization_per_epsilon(table, estimator)
    k = table.groupby("epsilon")["id"].nunique().max()
    grid = np.geomspace(min(per["epsilon"].min(), 0.5), per["epsilon"].max(), 200)
    ax.plot(grid, theory.mem_bound(grid), color=PALETTE[3], ls="--", label=r"bound $1 - e^{-\varepsilon}$")
    positive = per["mean"] > 0
    ax.plot(per.loc[positive, "epsilon"], per.loc[positive, "mean"], "o-", color=PALETTE[0],
            label=f"mean memorization of top-{k}")
    if (~positive).any():  # a log axis cannot show them; mark them on the floor instead of dropping them
        floor = 0.5 * per.loc[positive, "mean"].min() if positive.any() else 1e-3
        ax.plot(per.loc[~positive, "epsilon"], np.full((~positive).sum(), floor), "v", color=PALETTE[0],
                label="mean ≤ 0 (drawn at floor)")
    ax.set_yscale("log")
    epsilon_axis(ax)
    ax.set_ylabel("memorization score" + (" (|unconditional|)" if estimator == "faithful" else ""))
    ax.legend(fontsize=6)
    return per.assign(estimator=estimator)


def plot(tables: Path, study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    table = pd.read_csv(tables / "mem_vs_epsilon.csv")
    return side_by_side("Memorization vs privacy budget", study, options,
                        lambda ax, reading: _panel(ax, table, reading["mem_estimator"]))
