"""Paper Fig. 5: mean training-set input curvature of the DP models against epsilon, with the eq. 16 fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv import theory
from memcurv.figures.style import PALETTE, epsilon_axis, new_figure, title


def plot(tables: Path, study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    dp = pd.read_csv(tables / "dp_models.csv")
    seed_average = options.get("seed_average", "mean")
    curv = theory.curvature_per_epsilon(dp, seed_average)
    fig, ax = new_figure()
    ax.errorbar(curv["epsilon"], curv["mean"], yerr=curv["std"], fmt="o", color=PALETTE[0], capsize=2,
                label=f"DP models (mean ± sd, {int(curv['n'].min())}+ seeds)")
    data = curv.assign(fit=np.nan)
    try:
        fit = theory.fit_eq16(dp, seed_average)
        grid = np.geomspace(curv["epsilon"].min(), curv["epsilon"].max(), 200)
        ax.plot(grid, fit.predict(grid), color=PALETTE[1], label=f"eq. 16 fit ($R^2$={fit.r2:.2f})")
        data["fit"] = fit.predict(curv["epsilon"])
    except (RuntimeError, ValueError) as e:
        ax.text(0.5, 0.05, f"eq. 16 fit failed: {e}", transform=ax.transAxes, ha="center", fontsize=6)
    epsilon_axis(ax)
    score = dp["curvature_score"].iloc[0]
    ax.set_ylabel(f"mean input curvature ({score})")
    ax.legend(fontsize=6)
    title(ax, "Curvature vs privacy budget", study, options)
    return fig, data
