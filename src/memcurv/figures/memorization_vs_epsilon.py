"""Paper Fig. 6: mean memorization of the top-k most memorized examples under DP models at each epsilon, with the
bound 1 - e^-eps of Thm 5.4 drawn (not fitted) and, where the study trained it, the same top-k's memorization
without privacy: at an epsilon whose bound lies above that, the check cannot fail (hollow markers). A linear y
axis, so that a mean at or below 0 is drawn where it is, with its interval. One panel per reading of the table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import claims, theory
from memcurv.figures.style import CI_LABEL, PALETTE, epsilon_axis, interval_errorbar, side_by_side
from memcurv.tables import MEM_VS_EPSILON_MODELS

TABLES = (MEM_VS_EPSILON_MODELS.name,)  # what plot() reads


def _control(ax: Any, per: pd.DataFrame, grid: np.ndarray) -> None:
    """The non-private models' mean top-k memorization and its interval, as a band across the epsilon axis."""
    row = per.iloc[0]
    ax.axhline(row["nonprivate_mean"], color=PALETTE[2], lw=1)
    ax.fill_between(grid, row["nonprivate_ci_low"], row["nonprivate_ci_high"], color=PALETTE[2], alpha=0.2,
                    label=f"same top-k without privacy\n(mean, 95% CI, {int(row['models'])} models)")


def _panel(ax: Any, models_file: Path, reading: dict[str, str]) -> pd.DataFrame:
    estimator, score = reading["mem_estimator"], reading["topk_score"]
    per = claims.topk_memorization_intervals(models_file, estimator, score)
    k, models = int(per["n"].max()), int(per["models"].max())
    grid = np.geomspace(per["epsilon"].min(), per["epsilon"].max(), 200)
    ax.plot(grid, theory.mem_bound(grid), color=PALETTE[3], ls="--", label=r"bound $1 - e^{-\varepsilon}$")
    if "nonprivate_mean" in per:
        _control(ax, per, grid)
    interval_errorbar(ax, per, fmt="-", color=PALETTE[0], label=f"top-{k} under DP ({models} models per ε):\n{CI_LABEL}"
                      " (models, examples)")
    can_fail = per["can_fail"].to_numpy(bool) if "can_fail" in per else np.ones(len(per), bool)
    ax.plot(per.loc[can_fail, "epsilon"], per.loc[can_fail, "mean"], "o", color=PALETTE[0], ms=4)
    if (~can_fail).any():
        ax.plot(per.loc[~can_fail, "epsilon"], per.loc[~can_fail, "mean"], "o", mfc="white", color=PALETTE[0], ms=4,
                label="hollow: the bound lies above the\nmemorization without privacy (cannot fail)")
    ax.axhline(0, color="grey", lw=0.5)
    epsilon_axis(ax)
    scored = "true-label probability" if score == "probability" else "correctness"
    ax.set_ylabel("memorization score\n(" + ("|unconditional|, " if estimator == "faithful" else "") + f"{scored})",
                  fontsize=7)
    ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=2)
    return per.assign(estimator=estimator, score=score)


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    return side_by_side("Memorization vs privacy budget", study, options,
                        lambda ax, reading: _panel(ax, tables[MEM_VS_EPSILON_MODELS.name], reading))
