"""Paper Fig. 5: mean training-set input curvature of the DP models against epsilon, with the eq. 16 fit;
one panel per reading of the table (the run's fidelity and, side by side, the other). The fit's legend gives its
lack-of-fit test's p-value (memcurv.analysis.claims: a small one says eq. 16 misses the data's shape)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import claims, theory
from memcurv.analysis.readings import describe, read_dp_models
from memcurv.figures.style import BELOW_AXES, CI_LABEL, PALETTE, epsilon_axis, interval_errorbar, seeds, side_by_side
from memcurv.tables import DP_MODELS

TABLES = (DP_MODELS.name,)  # what plot() reads


def _panel(ax: Any, dp: pd.DataFrame, seed_average: str) -> pd.DataFrame:
    """Per-epsilon means and the eq. 16 fit under one reading (`curvature` column picked, seed average)."""
    curv = theory.curvature_per_epsilon(dp, seed_average, intervals=True)
    interval_errorbar(ax, curv, fmt="o", color=PALETTE[0],
                      label=f"DP models ({CI_LABEL}\nover {seeds(curv['n'])} per ε)")
    data = curv.assign(fit=np.nan)
    try:
        fit = theory.fit_eq16(dp, seed_average)
        grid = np.geomspace(curv["epsilon"].min(), curv["epsilon"].max(), 200)
        test = claims.eq16_lack_of_fit(dp, seed_average)
        ax.plot(grid, fit.predict(grid), color=PALETTE[1], label=f"eq. 16 fit (lack of fit $p$={test.p_value:.2g})")
        data["fit"] = fit.predict(curv["epsilon"])
    except (RuntimeError, ValueError) as e:
        ax.text(0.5, 0.05, textwrap.fill(f"eq. 16 fit failed: {e}", 50), transform=ax.transAxes, ha="center",
                va="bottom", fontsize=5, clip_on=True)  # wrapped inside the panel, off the axis labels
    epsilon_axis(ax)
    column = dp["curvature_column"].iloc[0]
    faithful = "\nseeds summed, divided by the number of ε (released)" if seed_average == "faithful" else ""
    ax.set_ylabel("mean input curvature\n" + describe(column).replace(", ", ",\n", 1) + faithful, fontsize=7)
    ax.legend(fontsize=6, **BELOW_AXES)  # inside, it hid intervals
    return data.assign(curvature_column=column)


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    def draw(ax: Any, reading: dict[str, str]) -> pd.DataFrame:
        return _panel(ax, read_dp_models(tables[DP_MODELS.name], reading), reading["seed_average"])

    return side_by_side("Curvature vs privacy budget", study, options, draw, height=3.3)
