"""Readings of a run's tables: which column holds "curvature" under a choice of the released code's
defects 1-5 (memcurv.config.DEFECTS), so that one run can be judged the corrected way and the released way."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memcurv.config import DEFECTS, READABLE

CORRECTED = {k: DEFECTS[k][0] for k in READABLE}  # the corrected reading of a run's tables
SCORE_NAMES = {"trace": "trace tr H (Hutchinson)", "sqnorm": "squared norm ‖Hv‖² (eq. 14)",
               "gradnorm": "released norm ‖grad diff‖"}
AGGREGATION_NAMES = {"out_mean": "mean over models without it", "in_mean": "mean over models with it",
                     "in_max": "max over models with it (released)"}


def model_curvature_column(defects: dict[str, str]) -> str:
    """Column of the DP models' table holding a model's mean curvature under a reading (score, loss reduction)."""
    d = {**CORRECTED, **defects}
    return f"curv_{d['curvature_score']}_{d['loss_reduction']}"


def example_curvature_column(defects: dict[str, str]) -> str:
    """Column of the examples table holding an example's curvature under a reading: score, loss reduction and
    aggregation over the subset models."""
    d = {**CORRECTED, **defects}
    return f"{model_curvature_column(d)}_{d['curvature_aggregation']}"


def read_table(path: Path) -> pd.DataFrame | None:
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
