"""The figures: one module per figure, and the catalogue of them that the command line, the workflow's rules and
the tests all read.

A figure module declares `TABLES`, the names of the tables it reads (from memcurv.tables), and `plot(tables,
study, options) -> (Figure, DataFrame)`: a pure function of those tables (a mapping from each name to its file) that
returns the figure and the data it draws, saved beside it as CSV.  It may declare `drawn(cfg) -> bool` where only some
studies draw it.  Adding a figure is adding its module here and its caption (workflow/report/<name>.rst).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memcurv import io
from memcurv.analysis.readings import study_readings
from memcurv.config import dataset_title
from memcurv.settings import StudyConfig

OUTPUTS = ("pdf", "png", "csv")


@dataclass(frozen=True)
class Figure:
    name: str
    tables: tuple[str, ...]
    plot: Callable[[Mapping[str, Path], str, dict[str, Any]], tuple[Any, Any]]
    drawn: Callable[[StudyConfig], bool]


def _always(cfg: StudyConfig) -> bool:
    return True


def catalogue() -> dict[str, Figure]:
    """Every figure module of this package, by name, in name order."""
    figures = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "plot") and hasattr(module, "TABLES"):
            figures[info.name] = Figure(info.name, tuple(module.TABLES), module.plot,
                                        getattr(module, "drawn", _always))
    return figures


def study_figures(cfg: StudyConfig) -> dict[str, Figure]:
    """The figures a study draws."""
    return {name: f for name, f in catalogue().items() if f.drawn(cfg)}


def _figure(name: str) -> Figure:
    figures = catalogue()
    if name not in figures:
        raise ValueError(f"unknown figure {name!r}; choose one of {tuple(figures)}")
    return figures[name]


def table_paths(figure: Figure, tables: Sequence[Path]) -> dict[str, Path]:
    """The given table files by name, refused unless they are exactly the ones the figure reads."""
    given = {Path(t).name: Path(t) for t in tables}
    if sorted(given) != sorted(figure.tables):
        raise ValueError(f"figure {figure.name} reads the tables {list(figure.tables)}, got {sorted(given)}")
    return given


def render(name: str, tables: Sequence[Path], out_pdf: Path, out_png: Path, out_csv: Path, *, study: str,
           options: dict[str, Any], provenance: dict[str, Any] | None = None) -> None:
    """Draw figure `name` from its table files and write its PDF, PNG and plotted data atomically,
    with the given provenance beside the data."""
    figure = _figure(name)
    paths = table_paths(figure, tables)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, data = figure.plot(paths, study, options)
    try:
        for out in (out_pdf, out_png):
            with io.atomic_path(out) as tmp:
                fig.savefig(tmp, format=Path(out).suffix[1:], dpi=200, bbox_inches="tight")
    finally:
        plt.close(fig)
    with io.atomic_path(out_csv) as tmp:
        data.to_csv(tmp, index=False)
    if provenance is not None:
        io.write_provenance(out_csv, {**provenance, "figure": name, "options": options})


def draw(cfg: StudyConfig, name: str, tables: Sequence[Path], out_pdf: Path, out_png: Path,
         out_csv: Path) -> None:
    """Figure `name` of a study: its readings side by side (or the run's own only), titled with its dataset."""
    views = study_readings(cfg)
    if not cfg.figures.side_by_side:
        views = dict(list(views.items())[:1])
    render(name, tables, out_pdf, out_png, out_csv, study=cfg.study,
           options={"fidelity": cfg.fidelity, "readings": views, "dataset": dataset_title(cfg),
                    "delta": cfg.privacy.delta},
           provenance={**io.provenance(cfg), "tables": [str(t) for t in tables]})
