"""Paper Fig. 3: mean input curvature of the training examples in each memorization bin, with a straight
line and the eq. 15 subpopulation-bound fit (not drawn where degenerate: theory.Fit.degenerate); against
Feldman-Zhang's published scores too when given.
One panel per reading of the table (the run's fidelity and, side by side, the other)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import claims, theory
from memcurv.analysis.readings import describe, read_examples
from memcurv.figures.style import BELOW_AXES, PALETTE, side_by_side
from memcurv.tables import EXAMPLES, SUBSET_SCORES

TABLES = (EXAMPLES.name, SUBSET_SCORES.name)  # what plot() reads

SOURCES = {"mem": "this run's scores", "mem_published": "published FZ scores"}
BINNED_HEIGHT = 3.6  # a binned_panel figure's height: room for its legend below the axes


def _binned(examples: pd.DataFrame, column: str, label: str, eq15: str) -> pd.DataFrame:
    """Bins of one x column with both fits evaluated at the bins (NaN where a fit fails); eq. 15 in the `eq15`
    form (defect 8)."""
    bins = theory.bin_memorization(examples[column], examples["curvature"])
    data = bins.assign(source=label, linear_fit=np.nan, subpopulation_fit=np.nan,
                       linear_r2=np.nan, subpopulation_r2=np.nan)
    inputs = {"linear": (bins["mem"],), "subpopulation": (bins["mem"], bins["count"])}
    for name, fit in theory.fit_binned(bins, eq15).items():
        if isinstance(fit, theory.Fit) and not fit.degenerate():  # a failed or degenerate fit leaves NaN in the CSV
            data[f"{name}_fit"], data[f"{name}_r2"] = fit.predict(*inputs[name]), fit.r2
    return data.sort_values("mem")


def spearman_with_interval(examples: pd.DataFrame, scores_file: Path, reading: dict[str, str],
                           target: str = "mem") -> dict[str, float]:
    """This run's Spearman of the reading's curvature with memorization (`target` mem) or with 1 - C-score
    (`cscore`), with its bootstrap interval (memcurv.analysis.claims, link 1)."""
    column = examples["curvature_column"].iloc[0]
    cscore = examples["cscore"].to_numpy() if target == "cscore" else None
    replicates = claims.link1_replicates(scores_file, reading["loss_reduction"], cscore,
                                         scores=(reading["curvature_score"],))
    x = examples["mem"] if target == "mem" else 1 - examples["cscore"]
    ci = claims.correlation_interval(x, examples["curvature"], replicates[target, column])
    return {"spearman_rho": ci.estimate, "spearman_ci_low": ci.low, "spearman_ci_high": ci.high}


def binned_panel(ax: Any, examples: pd.DataFrame, sources: dict[str, str], xlabel: str,
                 rho: dict[str, float], eq15: str) -> pd.DataFrame:
    """Binned mean curvature against each x column of `sources` (column: label) present in `examples`, with the
    linear and eq. 15 fits (`eq15`: its form), and the Spearman with its interval in the legend's title."""
    columns = [c for c in sources if c in examples and examples[c].notna().any()]
    frames = [_binned(examples, c, sources[c], eq15) for c in columns]
    for i, data in enumerate(frames):
        color = PALETTE[2 * i]
        source = f" ({data['source'].iloc[0]})" if len(frames) > 1 else ""
        ax.scatter(data["mem"], data["curvature"], s=8 + 30 * np.sqrt(data["count"] / data["count"].max()),
                   color=color, label=f"bin mean, size ~ examples{source}", zorder=3)
        # eq. 15 depends on each bin's size as well as its memorization: its fit is a value per bin, not a curve
        for name, style in (("linear", "-"), ("subpopulation", "x")):
            if data[f"{name}_fit"].notna().any():
                label = "linear fit" if name == "linear" else f"eq. 15 fit ({eq15}'s form), per bin"
                ax.plot(data["mem"], data[f"{name}_fit"], style, color=PALETTE[2 * i + 1],
                        label=f"{label} ($R^2$={data[f'{name}_r2'].iloc[0]:.2f}){source}")
            else:  # said, not silently left out: the report gives why (theory.Fit.degenerate, or the fit's error)
                ax.plot([], [], style, color=PALETTE[2 * i + 1],
                        label=f"{'linear' if name == 'linear' else 'eq. 15'} fit: degenerate, not drawn{source}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean input curvature\n" + describe(examples["curvature_column"].iloc[0]).replace(", ", ",\n", 1),
                  fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, title_fontsize=6, title=f"Spearman ρ = {rho['spearman_rho']:.2f}, 95% CI "
              f"[{rho['spearman_ci_low']:.2f}, {rho['spearman_ci_high']:.2f}]\n(all examples, "
              f"{sources[columns[0]] if columns else ''})",
              **BELOW_AXES)  # inside, it hid bins
    return pd.concat(frames, ignore_index=True).assign(curvature_column=examples["curvature_column"].iloc[0], **rho)


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    def draw(ax: Any, reading: dict[str, str]) -> pd.DataFrame:
        examples = read_examples(tables[EXAMPLES.name], reading)
        rho = spearman_with_interval(examples, tables[SUBSET_SCORES.name], reading)
        return binned_panel(ax, examples, SOURCES, "memorization score (bin mean)", rho, reading["eq15_fit"])

    return side_by_side("Curvature vs memorization", study, options, draw, height=BINNED_HEIGHT)
