"""The images of the extremes figure (the paper's Fig. 2): the lowest- and highest-curvature training examples of a
few classes, and the most memorized ones (ties broken by higher curvature, and how many tie recorded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from memcurv import io
from memcurv.jobs.toolkit import dataset
from memcurv.settings import StudyConfig


def write_extremes(cfg: StudyConfig, examples: Path, out: Path) -> None:
    f = cfg.figures
    ds = dataset(cfg)
    table = pd.read_csv(examples)
    table = table[np.isfinite(table["curvature"])]
    picks: list[tuple[str, pd.DataFrame]] = []
    for label in sorted(table["label"].unique())[: f.extremes_classes]:
        ranked = table[table["label"] == label].sort_values("curvature")
        picks.append(("low_curvature", ranked.head(f.extremes_per_class)))
        picks.append(("high_curvature", ranked.tail(f.extremes_per_class)))
    scored = table[np.isfinite(table["mem"])]
    # dozens of examples can share the top score (1.00): among equals, the highest curvature first (then the lower id)
    top = scored.sort_values(["mem", "curvature", "id"], ascending=[False, False, True]).head(f.most_memorized)
    picks.append(("most_memorized", top))
    tied = int((scored["mem"] >= top["mem"].min()).sum()) if len(top) else 0  # as memorized as the last one shown
    chosen = pd.concat([p for _, p in picks])
    kinds = np.concatenate([[k] * len(p) for k, p in picks])
    io.write_npz(out, images=ds.images(chosen["id"].to_numpy()), ids=chosen["id"].to_numpy(),
                 labels=chosen["label"].to_numpy(), curvature=chosen["curvature"].to_numpy(),
                 mem=chosen["mem"].to_numpy(), kind=kinds, class_names=np.array(ds.classes),
                 curvature_column=np.array(table["curvature_column"].iloc[0]), memorized_at_least_shown=np.array(tied))
