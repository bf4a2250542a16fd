"""How well the run's memorization, from a few subset models, agrees with an external reference from thousands:
each training example's memorization against 1 - C-score (Jiang et al.), with the mean memorization in bins of
1 - C-score and the Spearman correlation with its interval; drawn where the study has C-scores."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.analysis import claims
from memcurv.analysis.theory import BIN_WIDTH
from memcurv.figures.style import PALETTE, new_figure, source
from memcurv.settings import StudyConfig
from memcurv.tables import EXAMPLES, SUBSET_SCORES

TABLES = (EXAMPLES.name, SUBSET_SCORES.name)  # what plot() reads


def drawn(cfg: StudyConfig) -> bool:
    return cfg.memorization.cscores is not None


def plot(tables: Mapping[str, Path], study: str, options: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    examples = pd.read_csv(tables[EXAMPLES.name])
    x, mem = 1 - examples["cscore"], examples["mem"]
    replicates = claims.link1_replicates(tables[SUBSET_SCORES.name], "sum", examples["cscore"].to_numpy(), scores=())
    rho = claims.correlation_interval(x, mem, replicates["cscore", "mem"])
    ok = np.isfinite(x) & np.isfinite(mem)
    bins = pd.DataFrame({"x": x[ok], "mem": mem[ok], "bin": np.floor(x[ok] / BIN_WIDTH).astype(int)})
    data = bins.groupby("bin").agg(one_minus_cscore=("x", "mean"), mem=("mem", "mean"), count=("mem", "size"))
    fig, ax = new_figure(height=2.8)
    ax.hexbin(x[ok], mem[ok], gridsize=30, cmap="Greys", mincnt=1, linewidths=0, bins="log")
    ax.plot(data["one_minus_cscore"], data["mem"], "o-", color=PALETTE[0], ms=3,
            label=f"mean memorization per bin of width {BIN_WIDTH:g}")
    ax.set_xlabel("1 - C-score (Jiang et al., thousands of models)")
    ax.set_ylabel("memorization score (this run)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, title_fontsize=6, loc="upper left",
              title=f"Spearman ρ = {rho.estimate:.2f}, 95% CI [{rho.low:.2f}, {rho.high:.2f}]\n"
                    f"{int(ok.sum())} examples (shading: their count, log scale)")
    ax.set_title(f"Memorization vs 1 - C-score\n{source(study, options)}", fontsize=8)
    return fig, data.reset_index(drop=True).assign(spearman_rho=rho.estimate, spearman_ci_low=rho.low,
                                                   spearman_ci_high=rho.high)
