"""Shared look: a paper's column width, seaborn's paper context, the study named in every title."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from memcurv.analysis.readings import CORRECTED

COLUMN_WIDTH = 3.4  # inches, one column of a two-column paper
PALETTE = sns.color_palette("colorblind")


def new_figure(width: float = COLUMN_WIDTH, height: float = 2.6, **subplots: Any) -> tuple[plt.Figure, Any]:
    sns.set_theme(context="paper", style="ticks", palette=PALETTE, font_scale=0.9)
    fig, ax = plt.subplots(figsize=(width, height), constrained_layout=True, **subplots)
    return fig, ax


def title(ax: Any, text: str, study: str, options: dict[str, Any], reading: str | None = None) -> None:
    """Figure title naming the dataset, the study and the reading of its tables (default: the run's fidelity);
    the reading on a line of its own, so that side-by-side panels' titles stay within their panels."""
    ax.set_title(f"{text}\n{source(study, options)}\n{reading or options.get('fidelity', 'corrected')}", fontsize=8)


def source(study: str, options: dict[str, Any]) -> str:
    """Where a figure's numbers come from: the study, and its dataset where the study's name does not say it."""
    dataset = options.get("dataset")
    return f"study {study}" if dataset in (None, study) else f"{dataset}, study {study}"


def panel_readings(options: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The readings of the tables to draw side by side (memcurv.analysis.readings.study_readings), each with every
    switch filled in; without any, the corrected one."""
    return {name: {**CORRECTED, **d} for name, d in (options.get("readings") or {"corrected": {}}).items()}


# A panel's legend below its axes, where it hides no data (side_by_side's `height` leaves it room)
BELOW_AXES = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.3)}


def side_by_side(text: str, study: str, options: dict[str, Any],
                 draw: Callable[[Any, dict[str, str]], pd.DataFrame],
                 height: float = 2.6) -> tuple[plt.Figure, pd.DataFrame]:
    """One column-wide panel per reading of the tables, each drawn by `draw(ax, reading)`, which returns the
    data it drew; the data of every panel comes back together, with a `reading` column naming the panel."""
    views = panel_readings(options)
    fig, axes = new_figure(width=COLUMN_WIDTH * len(views), height=height, ncols=len(views), squeeze=False)
    frames = []
    for ax, (name, reading) in zip(axes[0], views.items()):
        frames.append(draw(ax, reading).assign(reading=name))
        title(ax, text, study, options, name)
    return fig, pd.concat(frames, ignore_index=True)


def epsilon_axis(ax: Any) -> None:
    """Log-scaled epsilon: grids span 0.5 to 100, and the interesting change happens below 10."""
    ax.set_xscale("log")
    ax.set_xlabel(r"privacy budget $\varepsilon$ (log scale)")
    ax.grid(alpha=0.3)


CI_LABEL = "mean, 95% bootstrap CI"


def seeds(counts: pd.Series) -> str:
    """How many seeds each epsilon's mean is over, in words: "5 seeds", or "3-5 seeds" where they differ."""
    low, high = int(counts.min()), int(counts.max())
    return f"{low} seed{'s' * (high != 1)}" if low == high else f"{low}-{high} seeds"


def interval_errorbar(ax: Any, per: pd.DataFrame, scale: float = 1.0, **style: Any) -> None:
    """Per-epsilon means with their bootstrap intervals (`ci_low`, `ci_high`) as asymmetric error bars."""
    mean = scale * per["mean"]
    ax.errorbar(per["epsilon"], mean, yerr=[mean - scale * per["ci_low"], scale * per["ci_high"] - mean],
                capsize=2, **style)
