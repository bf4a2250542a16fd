"""Link 1 on an external axis: mean input curvature of the training examples in bins of 1 - C-score (Jiang et al.'s
held-out accuracy from thousands of models), the way the paper's Fig. 3 reads published scores; drawn where the
study has C-scores (memorization.cscores). One panel per reading of the table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from memcurv.analysis.readings import read_examples
from memcurv.figures.mem_vs_curvature import BINNED_HEIGHT, binned_panel, spearman_with_interval
from memcurv.figures.style import side_by_side
from memcurv.settings import StudyConfig
from memcurv.tables import EXAMPLES, SUBSET_SCORES

TABLES = (EXAMPLES.name, SUBSET_SCORES.name)  # what plot() reads
SOURCES = {"one_minus_cscore": "1 - C-score"}


def drawn(cfg: StudyConfig) -> bool:
    return cfg.memorization.cscores is not None


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    def draw(ax: Any, reading: dict[str, str]) -> pd.DataFrame:
        examples = read_examples(tables[EXAMPLES.name], reading)
        examples["one_minus_cscore"] = 1 - examples["cscore"]
        rho = spearman_with_interval(examples, tables[SUBSET_SCORES.name], reading, target="cscore")
        return binned_panel(ax, examples, SOURCES, "1 - C-score (bin mean)", rho, reading["eq15_fit"])

    return side_by_side("Curvature vs 1 - C-score", study, options, draw, height=BINNED_HEIGHT)
