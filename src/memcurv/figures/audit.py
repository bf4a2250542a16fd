"""Empirical DP audit (beyond the paper): left, each attack score's empirical epsilon lower bound against the
accountant's epsilon (a bound above the diagonal would mean the training or its accounting is broken) and the
non-private negative control's; right, each canary's memorization under the DP models against 1 - e^-eps (Thm 5.4)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import theory
from memcurv.figures.style import COLUMN_WIDTH, PALETTE, epsilon_axis, new_figure, title
from memcurv.settings import StudyConfig
from memcurv.tables import AUDIT, AUDIT_CANARIES

TABLES = (AUDIT.name, AUDIT_CANARIES.name)  # what plot() reads


def drawn(cfg: StudyConfig) -> bool:
    """Only studies that run the audit (workflow/rules/audit.smk) draw it."""
    return cfg.audit.enabled


MARKERS = {"loss": "o", "memorization": "s", "curvature": "^"}
LEGEND = {"fontsize": 5.5, "loc": "upper center", "bbox_to_anchor": (0.5, -0.22), "ncols": 2}


def _epsilons(ax: Any, eps: pd.Series) -> np.ndarray:
    """Log epsilon axis with room around the audited budgets (a decade at least, even for one budget)."""
    lo, hi = eps.min() / 2, max(eps.max() * 2, eps.min() * 5)
    epsilon_axis(ax)
    ax.set_xlim(lo, hi)
    ticks = np.unique(eps)
    ax.set_xticks(ticks, [f"{e:g}" for e in ticks])
    ax.set_xticks([], minor=True)
    return np.geomspace(lo, hi, 200)


def _bounds(ax: Any, bounds: pd.DataFrame) -> pd.DataFrame:
    private, control = bounds[bounds["private"]], bounds[~bounds["private"]]
    grid = _epsilons(ax, private["epsilon"])
    ax.plot(grid, grid, color=PALETTE[3], ls="--", label=r"accountant's $\varepsilon$")
    for i, (score, rows) in enumerate(private.groupby("score", sort=False)):
        ax.plot(rows["epsilon"], rows["eps_lb"], MARKERS.get(score, "o") + "-", color=PALETTE[i], ms=4,
                label=f"lower bound: {score}")
        best = control.loc[control["score"] == score, "eps_lb"]
        if len(best):
            ax.axhline(best.iloc[0], color=PALETTE[i], ls=":", lw=1)
    ax.plot([], [], color="0.3", ls=":", lw=1, label="non-private control (colour: score)")
    ax.axhline(bounds["eps_lb_max"].max(), color="0.5", lw=0.8)
    ax.plot([], [], color="0.5", lw=0.8, label="largest bound the audit can certify")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylabel(f"empirical $\\varepsilon$ lower bound ({bounds['confidence'].iloc[0]:.0%} confidence)\n"
                  "(symlog axis: linear below 1)")
    ax.legend(**LEGEND)
    return bounds.assign(panel="bounds")[["panel", "arm", "epsilon", "score", "eps_lb", "guesses", "correct"]]


def _memorization(ax: Any, canaries: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    private = canaries[np.isfinite(canaries["epsilon"])].dropna(subset=["mem"])
    jitter = np.exp(np.random.default_rng(seed).uniform(-0.08, 0.08, len(private)))
    ax.scatter(private["epsilon"] * jitter, private["mem"], s=4, alpha=0.35, color=PALETTE[0], lw=0,
               label="memorization of one canary")
    means = private.groupby("epsilon")["mem"].mean().reset_index()
    ax.plot(means["epsilon"], means["mem"], "o-", color="k", ms=4, label="mean over canaries")
    grid = _epsilons(ax, means["epsilon"])
    ax.plot(grid, theory.mem_bound(grid), color=PALETTE[3], ls="--", label=r"bound $1 - e^{-\varepsilon}$")
    control = canaries.loc[~np.isfinite(canaries["epsilon"]), "mem"].mean()
    ax.axhline(control, color=PALETTE[2], ls=":", label=f"non-private control: mean {control:.2f}")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("canary memorization\nP[correct | IN] - P[correct | OUT]")
    ax.legend(**LEGEND)
    return pd.concat([means.assign(panel="memorization_mean", arm="dp"),
                      pd.DataFrame({"panel": ["memorization_mean"], "arm": ["nonprivate"], "mem": [control]})])


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    bounds = pd.read_csv(tables[AUDIT.name])
    canaries = pd.read_csv(tables[AUDIT_CANARIES.name])
    fig, (left, right) = new_figure(width=2 * COLUMN_WIDTH, height=3.4, ncols=2)
    title(left, "Empirical DP audit: epsilon lower bounds", study, options)
    title(right, "Canary memorization vs privacy budget", study, options)
    data = pd.concat([_bounds(left, bounds), _memorization(right, canaries)], ignore_index=True)
    return fig, data
