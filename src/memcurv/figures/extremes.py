"""Paper Fig. 2: the lowest- and highest-curvature training images of a few classes, and the most
memorized examples with their labels and scores."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv import io
from memcurv.analysis.readings import describe
from memcurv.figures.style import new_figure, source
from memcurv.tables import EXTREMES

TABLES = (EXTREMES.name,)  # what plot() reads


def _class(name: str) -> str:
    """A row's label: a digit says it is a class; a long name ("European fire salamander") is wrapped to the
    row's height, so that neighbouring rows' labels do not run into each other."""
    return f"class {name}" if name.isdigit() else textwrap.fill(name, 14)


def _show(ax: Any, image: np.ndarray, caption: str) -> None:
    ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray_r" if image.shape[-1] == 1 else None,
              vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(caption, fontsize=5, labelpad=1)


def _memorized_note(shown: pd.Series, data: dict[str, np.ndarray]) -> str:
    """For the title: how many examples are as memorized as the last one shown, where more are than the most
    memorized row holds, and which of them it shows (a line of the figure's title: as the row's own title, its
    width would widen the first column)."""
    tied = int(data["memorized_at_least_shown"]) if "memorized_at_least_shown" in data else len(shown)
    if tied <= len(shown):
        return ""
    return (f"\nmost memorized: {tied} examples score {shown.min():.2f} or more; the row shows the {len(shown)} of "
            f"highest curvature")


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    data = io.read_npz(tables[EXTREMES.name])
    names = data["class_names"]
    table = pd.DataFrame({"kind": data["kind"], "id": data["ids"], "label": data["labels"],
                          "class_name": names[data["labels"]], "curvature": data["curvature"], "mem": data["mem"]})
    classes = list(dict.fromkeys(table.loc[table["kind"] == "low_curvature", "label"]))
    per_class = int((table["kind"] == "low_curvature").sum() // max(len(classes), 1))
    memorized = np.flatnonzero(table["kind"] == "most_memorized")
    cols = max(2 * per_class, 1)
    rows = len(classes) + int(np.ceil(len(memorized) / cols))
    # width grows with the columns: at a fixed width, ten 32x32 images per row shrank and spread unevenly
    fig, axes = new_figure(width=0.75 * cols + 0.5, height=0.75 * rows + 0.6, nrows=rows, ncols=cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, label in enumerate(classes):
        picks = [i for kind in ("low_curvature", "high_curvature")
                 for i in np.flatnonzero((table["kind"] == kind) & (table["label"] == label))]
        for c, i in enumerate(picks[:cols]):
            axes[r, c].set_axis_on()
            _show(axes[r, c], data["images"][i], f"curv {table['curvature'][i]:.3g}")
        axes[r, 0].set_ylabel(_class(names[label]), fontsize=6)
    for j, i in enumerate(memorized):
        ax = axes[len(classes) + j // cols, j % cols]
        ax.set_axis_on()
        _show(ax, data["images"][i], f"{_class(names[table['label'][i]])}\nmem {table['mem'][i]:.2f}")
    if classes:
        axes[0, 0].set_title("lowest curvature →", fontsize=6, loc="left")
        axes[0, per_class].set_title("highest curvature →", fontsize=6, loc="left")
    if len(memorized):
        axes[len(classes), 0].set_title("most memorized (label, score) →", fontsize=6, loc="left")
    column = str(data["curvature_column"])
    negative = (table.loc[table["kind"] == "low_curvature", "curvature"] < 0).any()
    note = ("\nnegative values: the trace's residual estimate (the network's own curvature) or a Hutchinson "
            "estimate outweighs its exact part, not a flat loss")
    fig.suptitle(f"Extremes of curvature and memorization ({source(study, options)}, "
                 f"{options.get('fidelity', 'corrected')})\n"
                 f"curvature: {describe(column)}{note if negative else ''}"
                 f"{_memorized_note(table.loc[memorized, 'mem'], data) if len(memorized) else ''}", fontsize=8)
    return fig, table
