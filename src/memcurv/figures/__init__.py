"""One module per figure.  Each has `plot(tables, study, options) -> (Figure, DataFrame)`: a pure
function of the run's tables that returns the figure and the data it draws, saved beside it as CSV."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from memcurv import io

FIGURES = ("mem_vs_curvature", "curvature_vs_epsilon", "loss_vs_epsilon", "memorization_vs_epsilon",
           "accuracy_vs_epsilon", "extremes", "curvature_vs_loss", "audit")


def render(name: str, tables: Path, out_pdf: Path, out_png: Path, out_csv: Path, *, study: str,
           options: dict[str, Any], provenance: dict[str, Any] | None = None) -> None:
    """Draw figure `name` from the tables folder and write its PDF, PNG and plotted data atomically,
    with the given provenance beside the data."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose one of {FIGURES}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    module = importlib.import_module(f"memcurv.figures.{name}")
    fig, data = module.plot(Path(tables), study, options)
    try:
        for out in (out_pdf, out_png):
            with io.atomic_path(out) as tmp:
                fig.savefig(tmp, format=Path(out).suffix[1:], dpi=200, bbox_inches="tight")
    finally:
        plt.close(fig)
    with io.atomic_path(out_csv) as tmp:
        data.to_csv(tmp, index=False)
    if provenance is not None:
        io.write_json(io.provenance_path(out_csv), {**provenance, "figure": name, "options": options})
