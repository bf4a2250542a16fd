"""Paper Fig. 3: mean input curvature of the training examples in each memorization bin, with a straight
line and the eq. 15 subpopulation-bound fit; against Feldman-Zhang's published scores too when given.
One panel per reading of the table (the run's fidelity and, side by side, the other)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv import claims, theory
from memcurv.bootstrap import CORRELATION, interval, spearman
from memcurv.figures.style import PALETTE, side_by_side
from memcurv.readings import read_examples

TABLES = ("examples.csv", "subset_scores.npz")  # what plot() reads

SOURCES = {"mem": "this run's scores", "mem_published": "published FZ scores"}


def _binned(examples: pd.DataFrame, column: str) -> pd.DataFrame:
    """Bins of one memorization column with both fits evaluated at the bins (NaN where a fit fails)."""
    bins = theory.bin_memorization(examples[column], examples["curvature"])
    data = bins.assign(source=SOURCES[column], linear_fit=np.nan, subpopulation_fit=np.nan,
                       linear_r2=np.nan, subpopulation_r2=np.nan)
    inputs = {"linear": (bins["mem"],), "subpopulation": (bins["mem"], bins["count"])}
    for name, fit in theory.fit_binned(bins).items():
        if isinstance(fit, theory.Fit):  # a failed fit leaves NaN in the CSV; the points are still drawn
            data[f"{name}_fit"], data[f"{name}_r2"] = fit.predict(*inputs[name]), fit.r2
    return data.sort_values("mem")


def _spearman(examples: pd.DataFrame, scores_file: Path, reduction: str) -> dict[str, float]:
    """This run's Spearman(memorization, curvature) with its bootstrap interval (memcurv.claims, link 1)."""
    column = examples["curvature_column"].iloc[0]
    ci = interval(spearman(examples["mem"], examples["curvature"]),
                  claims.link1_replicates(scores_file, reduction)[column], limits=CORRELATION)
    return {"spearman_rho": ci.estimate, "spearman_ci_low": ci.low, "spearman_ci_high": ci.high}


def _panel(ax: Any, examples: pd.DataFrame, rho: dict[str, float]) -> pd.DataFrame:
    columns = [c for c in SOURCES if c in examples and examples[c].notna().any()]
    frames = [_binned(examples, c) for c in columns]
    for i, data in enumerate(frames):
        color = PALETTE[2 * i]
        source = f" ({data['source'].iloc[0]})" if len(frames) > 1 else ""
        ax.scatter(data["mem"], data["curvature"], s=8 + 30 * np.sqrt(data["count"] / data["count"].max()),
                   color=color, label=f"bin mean, size ~ examples{source}", zorder=3)
        # eq. 15 depends on each bin's size as well as its memorization: its fit is a value per bin, not a curve
        for name, style in (("linear", "-"), ("subpopulation", "x")):
            if data[f"{name}_fit"].notna().any():
                label = "linear fit" if name == "linear" else "eq. 15 fit, per bin"
                ax.plot(data["mem"], data[f"{name}_fit"], style, color=PALETTE[2 * i + 1],
                        label=f"{label} ($R^2$={data[f'{name}_r2'].iloc[0]:.2f}){source}")
    ax.set_xlabel("memorization score (bin mean)")
    ax.set_ylabel(f"mean input curvature\n({examples['curvature_column'].iloc[0]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, title_fontsize=6, title=f"Spearman ρ = {rho['spearman_rho']:.2f}, 95% CI "
              f"[{rho['spearman_ci_low']:.2f}, {rho['spearman_ci_high']:.2f}]\n(all examples, this run's scores)")
    return pd.concat(frames, ignore_index=True).assign(curvature_column=examples["curvature_column"].iloc[0], **rho)


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    def draw(ax: Any, reading: dict[str, str]) -> pd.DataFrame:
        examples = read_examples(tables["examples.csv"], reading)
        return _panel(ax, examples, _spearman(examples, tables["subset_scores.npz"], reading["loss_reduction"]))

    return side_by_side("Curvature vs memorization", study, options, draw)
