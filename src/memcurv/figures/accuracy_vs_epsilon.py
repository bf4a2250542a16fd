"""Train and test accuracy of the DP models against epsilon: what the privacy budget costs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from memcurv.analysis import theory
from memcurv.figures.style import CI_LABEL, PALETTE, epsilon_axis, interval_errorbar, new_figure, title
from memcurv.tables import DP_MODELS

TABLES = (DP_MODELS.name,)  # what plot() reads


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    dp = pd.read_csv(tables[DP_MODELS.name])
    fig, ax = new_figure()
    frames = []
    for color, split in zip(PALETTE, ("train", "test")):
        acc = theory.per_epsilon(dp, f"{split}_acc", intervals=True)
        acc[["ci_low", "ci_high"]] = acc[["ci_low", "ci_high"]].clip(0.0, 1.0)  # an accuracy stays in [0, 1]
        interval_errorbar(ax, acc, scale=100, fmt="o-", color=color, label=split)
        frames.append(acc.assign(split=split))
    epsilon_axis(ax)
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=6, title=f"DP models, {CI_LABEL}", title_fontsize=6)
    title(ax, "Accuracy vs privacy budget", study, options)
    return fig, pd.concat(frames, ignore_index=True)
