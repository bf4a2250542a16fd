"""Paper Fig. 3: mean input curvature of the training examples in each memorization bin, with a straight
line and the eq. 15 subpopulation-bound fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv import theory
from memcurv.figures.style import PALETTE, new_figure, title


def plot(tables: Path, study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    examples = pd.read_csv(tables / "examples.csv")
    bins = theory.bin_memorization(examples["mem"], examples["curvature"])
    fig, ax = new_figure()
    ax.scatter(bins["mem"], bins["curvature"], s=8 + 30 * np.sqrt(bins["count"] / bins["count"].max()),
               color=PALETTE[0], label="bin mean (size ~ examples)", zorder=3)
    data = bins.assign(linear_fit=np.nan, subpopulation_fit=np.nan)
    order = np.argsort(bins["mem"].to_numpy())
    fits = (("linear_fit", lambda: theory.fit_mem_vs_curvature_linear(bins["mem"], bins["curvature"]),
             lambda f: f.predict(bins["mem"]), "linear fit", PALETTE[1]),
            ("subpopulation_fit",
             lambda: theory.fit_subpopulation_bound(bins["mem"], bins["count"], bins["curvature"]),
             lambda f: f.predict(bins["mem"], bins["count"]), "eq. 15 fit", PALETTE[2]))
    for column, fit_fn, predict, label, color in fits:
        try:
            fit = fit_fn()
        except (RuntimeError, ValueError):
            continue  # too few bins or no convergence: the points are still drawn, the CSV says NaN
        data[column] = predict(fit)
        ax.plot(bins["mem"].to_numpy()[order], data[column].to_numpy()[order], color=color,
                label=f"{label} ($R^2$={fit.r2:.2f})")
    ax.set_xlabel("memorization score (bin mean)")
    ax.set_ylabel(f"mean input curvature\n({examples['curvature_column'].iloc[0]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    title(ax, "Curvature vs memorization", study, options)
    return fig, data
