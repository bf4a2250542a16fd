"""How the claims' bootstrap intervals shrink with the number of seeds and subset models, on a run's tables.

Link 2 (and the loss) is judged on the first S seeds of every epsilon, link 1 on the first K subset models
(memorization from all K, curvature from those of them that were scored); each line prints the statistic, its
95% interval and the interval's width. This is how the default study's sizes were chosen: enough that the
verdicts do not straddle their thresholds, within 10 minutes on 2 cores.

    python benchmarks/interval_width.py results/digits/tables
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from memcurv.analysis import claims
from memcurv.analysis.readings import CORRECTED, read_dp_models, read_examples
from memcurv.estimators.score_reduction import SCORES
from memcurv.estimators.memorization import aggregate_by_membership, memorization


def _line(what: str, condition: dict) -> str:
    width = condition["high"] - condition["low"]
    return (f"{what:<28} {condition['name']:<38} {condition['estimate']:7.3f} "
            f"[{condition['low']:7.3f}, {condition['high']:7.3f}]  width {width:.3f}")


def by_seeds(tables: Path) -> None:
    dp = read_dp_models(tables / "dp_models.csv", CORRECTED)
    seeds = sorted(dp["seed"].unique())
    for s in range(2, len(seeds) + 1):
        subset = dp[dp["seed"].isin(seeds[:s])]
        for claim in (claims.claim_epsilon_bounds_curvature(subset, CORRECTED), claims.claim_loss_falls(subset)):
            print(_line(f"{s} seeds per epsilon", claim.numbers["conditions"][0]))


def by_subset_models(tables: Path, counts: list[int]) -> None:
    """Link 1 under the corrected reading (trace, summed loss, mean over the models that left an example out)."""
    examples = read_examples(tables / "examples.csv", CORRECTED)
    with np.load(tables / "subset_scores.npz") as z:
        arrays = dict(z)
    for k in counts:
        if k > len(arrays["masks"]):
            break
        scored = arrays["scored"][:k]
        part = {**arrays, "masks": arrays["masks"][:k], "score": arrays["score"][:k], "scored": scored,
                **{f"curv_{s}": arrays[f"curv_{s}"][:scored.sum()] for s in SCORES}}
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "subset_scores.npz", **part)
            curvature = aggregate_by_membership(part["masks"][scored], part["curv_trace"])["out_mean"]
            table = examples.assign(mem=memorization(part["masks"], part["score"]).mem, curvature=curvature)
            scores = Path(tmp) / "subset_scores.npz"
            replicates = claims.link1_replicates(scores, "sum")
            claim = claims.claim_curvature_bounds_memorization(table, scores, CORRECTED, replicates)
        print(_line(f"{k} subset models ({scored.sum()} scored)", claim.numbers["conditions"][0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tables", type=Path)
    ap.add_argument("--subset-models", type=int, nargs="+", default=[32, 64, 128, 256])
    a = ap.parse_args()
    by_seeds(a.tables)
    by_subset_models(a.tables, a.subset_models)


if __name__ == "__main__":
    main()
