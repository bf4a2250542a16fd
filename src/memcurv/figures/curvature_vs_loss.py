"""Link 2 explained: the DP models' mean input curvature against their training loss, coloured by epsilon, and
per epsilon on the training set beside the test set. If curvature follows the loss whatever the epsilon, a
trend of curvature with epsilon is a trend of how well the models fit, not of privacy as such."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.colors as mcolors
import pandas as pd

from memcurv.analysis import theory
from memcurv.analysis.readings import describe
from memcurv.figures.style import (COLUMN_WIDTH, PALETTE, epsilon_axis, interval_errorbar, new_figure, panel_readings,
                                   seeds, title)
from memcurv.tables import DP_MODELS, curvature_column

TABLES = (DP_MODELS.name,)  # what plot() reads


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    dp = pd.read_csv(tables[DP_MODELS.name])
    score = next(iter(panel_readings(options).values()))["curvature_score"]  # the run's own reading
    train, test = curvature_column(score, "sum"), curvature_column(score, "sum", test=True)
    fig, (left, right) = new_figure(width=2 * COLUMN_WIDTH, ncols=2)
    norm = mcolors.LogNorm(dp["epsilon"].min(), dp["epsilon"].max())
    points = left.scatter(dp["train_loss"], dp[train], c=dp["epsilon"], norm=norm, cmap="viridis", s=14)
    fig.colorbar(points, ax=left, label=r"$\varepsilon$")
    left.set_xlabel("training loss of the DP model (cross-entropy)")
    left.set_ylabel("mean input curvature, training set\n" + describe(train), fontsize=7)
    left.grid(alpha=0.3)
    title(left, "Curvature follows the training loss?", study, options, "one point per DP model")
    frames = []
    for color, (split, column) in zip(PALETTE, (("training set", train), ("test set", test))):
        per = theory.per_epsilon(dp, column, intervals=True)
        interval_errorbar(right, per, fmt="o-", color=color, label=split)
        frames.append(per.assign(split=split, column=column))
    epsilon_axis(right)
    right.set_ylabel("mean input curvature\n" + describe(train), fontsize=7)
    right.legend(fontsize=6, title=f"mean, 95% CI over {seeds(per['n'])} per ε", title_fontsize=6)
    title(right, "Training vs test examples", study, options, "DP models")
    models = dp[["epsilon", "seed", "train_loss", train]].rename(columns={train: "mean"}).assign(split="per model",
                                                                                                 column=train)
    return fig, pd.concat([*frames, models], ignore_index=True)
