"""Paper Fig. 4: test loss of the DP models against epsilon, with the fit a + b e^(-c eps) and its lack-of-fit test's
p-value (memcurv.analysis.claims: a small one says the curve misses the data's shape)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import claims, theory
from memcurv.figures.style import CI_LABEL, PALETTE, epsilon_axis, interval_errorbar, new_figure, seeds, title
from memcurv.tables import DP_MODELS

TABLES = (DP_MODELS.name,)  # what plot() reads


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    dp = pd.read_csv(tables[DP_MODELS.name])
    loss = theory.per_epsilon(dp, "test_loss", intervals=True)
    fig, ax = new_figure()
    interval_errorbar(ax, loss, fmt="o", color=PALETTE[0],
                      label=f"DP models ({CI_LABEL}\nover {seeds(loss['n'])} per ε)")
    data = loss.assign(fit=np.nan)
    try:
        fit = theory.fit_loss_vs_epsilon(loss["epsilon"], loss["mean"])
        grid = np.geomspace(loss["epsilon"].min(), loss["epsilon"].max(), 200)
        a, b, c = fit.params.values()
        ax.plot(grid, fit.predict(grid), color=PALETTE[1],
                label=rf"${a:.2f} + {b:.2f}\,e^{{-{c:.2f}\varepsilon}}$ (lack of fit "
                      rf"$p$={claims.loss_lack_of_fit(dp).p_value:.2g})")
        data["fit"] = fit.predict(loss["epsilon"])
    except (RuntimeError, ValueError) as e:
        ax.text(0.5, 0.05, textwrap.fill(f"fit failed: {e}", 50), transform=ax.transAxes, ha="center", va="bottom",
                fontsize=5, clip_on=True)
    epsilon_axis(ax)
    ax.set_ylabel("test cross-entropy loss")
    ax.legend(fontsize=6)
    title(ax, "Test loss vs privacy budget", study, options)
    return fig, data
