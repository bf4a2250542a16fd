"""The released code's defects, and the readings of a run's tables they give: which column holds "curvature"
under a choice of defects 1-5, 8 and 9, so that one run can be judged the corrected way and the released way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from memcurv.tables import curvature_column

if TYPE_CHECKING:
    import pandas as pd

    from memcurv.settings import StudyConfig

# Defect switches (PAPER.md, "Known defects"): the corrected and the faithful (released code) value.
DEFECTS: dict[str, tuple[str, str]] = {
    "curvature_score": ("trace", "gradnorm"),
    "loss_reduction": ("sum", "mean"),
    "curvature_aggregation": ("out_mean", "in_max"),
    "mem_estimator": ("conditional", "faithful"),
    "seed_average": ("mean", "faithful"),
    "index_mapping": ("mapped", "identity"),
    "subset_seeding": ("seeded", "unseeded"),
    "eq15_fit": ("paper", "released"),
    "topk_score": ("correctness", "probability"),
}
# The switches that only change how a run's tables are read (defects 1-5, 8, 9); index mapping (6) and subset
# seeding (7) change what is trained, so only a run with the other setting shows their effect.
READABLE = ("curvature_score", "loss_reduction", "curvature_aggregation", "mem_estimator", "seed_average", "eq15_fit",
            "topk_score")
CORRECTED = {k: DEFECTS[k][0] for k in READABLE}  # the corrected reading of a run's tables
SCORE_NAMES = {"trace": "trace tr H (Gauss-Newton exact + residual)", "gauss_newton": "Gauss-Newton part tr JᵀAJ",
               "hutchinson": "Hutchinson trace (paper's finite difference)", "sqnorm": "squared norm ‖Hv‖² (eq. 14)",
               "gradnorm": "released norm ‖grad diff‖"}
AGGREGATION_NAMES = {"out_mean": "mean over models without it", "in_mean": "mean over models with it",
                     "in_max": "max over models with it (released)"}


REDUCTION_NAMES = {"sum": "per-example loss", "mean": "batch-mean loss (released)"}


def describe(column: str) -> str:
    """A curvature column of the tables in words: curv_<score>_<reduction>[_<aggregation>] (examples table) or
    [test_]curv_<score>_<reduction> (DP models' table) -> score, loss and aggregation named as the report names them."""
    rest = column.removeprefix("test_").removeprefix("curv_")
    score = max((s for s in SCORE_NAMES if rest.startswith(f"{s}_")), key=len, default=None)
    if score is None:
        return column
    reduction, _, aggregation = rest.removeprefix(f"{score}_").partition("_")
    words = [SCORE_NAMES[score], REDUCTION_NAMES.get(reduction, reduction)]
    words += [AGGREGATION_NAMES[aggregation]] if aggregation in AGGREGATION_NAMES else []
    return ", ".join(words) + (" (test set)" if column.startswith("test_") else "")


def resolve_defects(config: dict[str, Any]) -> dict[str, str]:
    """Each defect switch's value in a schema-valid config: the explicit override, else the one `fidelity` implies."""
    pick = 1 if config["fidelity"] == "faithful" else 0
    return {name: config["defects"].get(name) or values[pick] for name, values in DEFECTS.items()}


def study_readings(cfg: StudyConfig) -> dict[str, dict[str, str]]:
    """Ways to read one run's tables, by name: the run's own (its resolved defects) and the other fidelity's
    (every readable switch at that fidelity's value).  Figures draw them side by side; the report judges both."""
    other = "faithful" if cfg.fidelity == "corrected" else "corrected"
    pick = 1 if other == "faithful" else 0
    return {cfg.fidelity: {k: cfg.resolved_defects[k] for k in READABLE},
            f"read {other}": {k: DEFECTS[k][pick] for k in READABLE}}


def model_curvature_column(defects: dict[str, str]) -> str:
    """Column of the DP models' table holding a model's mean curvature under a reading (score, loss reduction)."""
    d = {**CORRECTED, **defects}
    return curvature_column(d["curvature_score"], d["loss_reduction"])


def example_curvature_column(defects: dict[str, str]) -> str:
    """Column of the examples table holding an example's curvature under a reading: score, loss reduction and
    aggregation over the subset models."""
    d = {**CORRECTED, **defects}
    return curvature_column(d["curvature_score"], d["loss_reduction"], d["curvature_aggregation"])


def read_table(path: Path) -> pd.DataFrame | None:
    import pandas as pd  # not for the config's validation, which resolves defects here

    return pd.read_csv(path) if path.exists() else None


def _read_curvature(path: Path, column: str) -> pd.DataFrame | None:
    table = read_table(path)
    return None if table is None else table.assign(curvature=table[column], curvature_column=column)


def read_dp_models(path: Path, defects: dict[str, str]) -> pd.DataFrame | None:
    """The DP models' table with `curvature` and `curvature_column` as the reading picks them."""
    return _read_curvature(path, model_curvature_column(defects))


def read_examples(path: Path, defects: dict[str, str]) -> pd.DataFrame | None:
    """The examples table with `curvature` and `curvature_column` as the reading picks them."""
    return _read_curvature(path, example_curvature_column(defects))
