"""Paper Fig. 6: mean memorization of the top-k most memorized examples under DP models at each epsilon, with the
bound of Thm 5.4 that holds for the subsets' design drawn (not fitted: 1 - e^-eps for Poisson subsets, 1 - e^-2eps
for fixed-size ones), the DP models' accuracy on the top-k when trained with them (P_in, which memorization cannot
exceed: at an epsilon whose bound lies above its interval the check cannot fail, hollow markers) and, where the study
trained it, the same top-k's memorization without privacy. A linear y axis, so that a mean at or below 0 is drawn
where it is, with its interval. One panel per reading of the table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import claims, theory
from memcurv.figures.style import BELOW_AXES, CI_LABEL, PALETTE, epsilon_axis, interval_errorbar, side_by_side
from memcurv.tables import MEM_VS_EPSILON_MODELS

TABLES = (MEM_VS_EPSILON_MODELS.name,)  # what plot() reads


def _control(ax: Any, per: pd.DataFrame, grid: np.ndarray) -> None:
    """The non-private models' mean top-k memorization and its interval, as a band across the epsilon axis."""
    row = per.iloc[0]
    ax.axhline(row["nonprivate_mean"], color=PALETTE[2], lw=1)
    ax.fill_between(grid, row["nonprivate_mean_ci_low"], row["nonprivate_mean_ci_high"], color=PALETTE[2], alpha=0.2,
                    label=f"same top-k without privacy\n(mean, 95% CI, {int(row['models'])} models)")


BOUND_LABEL = {"poisson": "bound $1 - e^{-\\varepsilon}$\n(Poisson subsets)",
               "fixed": "bound $1 - e^{-2\\varepsilon}$\n(fixed-size subsets)"}


def _panel(ax: Any, models_file: Path, reading: dict[str, str], options: dict[str, Any]) -> pd.DataFrame:
    estimator, score = reading["mem_estimator"], reading["topk_score"]
    delta = options.get("delta", claims.Judging.delta)
    per = claims.topk_memorization_intervals(models_file, estimator, score, delta=delta)
    k, models, design = int(per["n"].max()), int(per["models"].max()), str(per["design"].iloc[0])
    grid = np.geomspace(per["epsilon"].min(), per["epsilon"].max(), 200)
    ax.plot(grid, theory.design_mem_bound(grid, delta, design), color=PALETTE[3], ls="--",
            label=BOUND_LABEL[design])
    if "nonprivate_mean" in per:
        _control(ax, per, grid)
    p_in = per.assign(mean=per["p_in"], ci_low=per["p_in_ci_low"], ci_high=per["p_in_ci_high"])
    interval_errorbar(ax, p_in, fmt=":", color=PALETTE[4],
                      label="$P_{in}$: accuracy on it when trained\nwith it (memorization's ceiling)")
    interval_errorbar(ax, per, fmt="-", color=PALETTE[0], label=f"top-{k} under DP ({models} models per ε):\n{CI_LABEL}"
                      " (models, examples)")
    can_fail = per["can_fail"].to_numpy(bool)
    ax.plot(per.loc[can_fail, "epsilon"], per.loc[can_fail, "mean"], "o", color=PALETTE[0], ms=4)
    if (~can_fail).any():
        ax.plot(per.loc[~can_fail, "epsilon"], per.loc[~can_fail, "mean"], "o", mfc="white", color=PALETTE[0], ms=4,
                label="hollow: bound above $P_{in}$'s CI\n(the check cannot fail)")
    ax.axhline(0, color="grey", lw=0.5)
    epsilon_axis(ax)
    scored = "true-label probability" if score == "probability" else "correctness"
    ax.set_ylabel("memorization score\n(" + ("|unconditional|, " if estimator == "faithful" else "") + f"{scored})",
                  fontsize=7)
    ax.legend(fontsize=5.5, ncols=2, **BELOW_AXES)
    return per.assign(estimator=estimator, score=score)


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    return side_by_side("Memorization vs privacy budget", study, options,
                        lambda ax, reading: _panel(ax, tables[MEM_VS_EPSILON_MODELS.name], reading, options),
                        height=3.4)  # the legend's three rows below the axes
