"""How many subset models must score curvature (memorization.curvature_models) for link 1 to be read.

    python benchmarks/curvature_models.py [--study digits] [--ks 4 8 16 32 64 128]

Thm 5.1 speaks of each example's curvature averaged over models trained without it (the corrected
aggregation, `out_mean`). Reads a finished study's subset-model shards (results/<study>/subsets/), keeps
the models whose curvature was scored, and for the first K of them prints, for each K:

- split-half agreement: Spearman of the per-example estimates from models [0, K) and [K, 2K), two
  disjoint sets of K models (the estimate's reliability, with no reference needed);
- agreement with the estimate from every scored model (Spearman);
- link 1's statistic: Spearman of memorization (from all subset models) with the K-model curvature;
- the median number of models per example that excluded it and were scored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from memcurv.memorization import aggregate_by_membership, memorization


def _load(study: str) -> dict[str, np.ndarray]:
    files = sorted(Path("results", study, "subsets").glob("shard*.npz"), key=lambda f: int(f.stem[5:]))
    if not files:
        raise SystemExit(f"no subset-model shards in results/{study}/subsets: run the study first")
    parts: dict[str, list[np.ndarray]] = {"masks": [], "correct": [], "curv_trace": []}
    for f in files:
        with np.load(f) as z:
            for key, values in parts.items():
                values.append(z[key])
    return {key: np.concatenate(values) for key, values in parts.items()}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok])[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="digits")
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    args = ap.parse_args()
    z = _load(args.study)
    mem = memorization(z["masks"], z["correct"]).mem
    scored = np.isfinite(z["curv_trace"]).all(axis=1)
    masks, curv = z["masks"][scored], z["curv_trace"][scored].astype(np.float64)
    total = len(curv)

    def estimate(models: slice) -> np.ndarray:
        return aggregate_by_membership(masks[models], curv[models])["out_mean"]

    everything = estimate(slice(0, total))
    print(f"study {args.study}: {len(z['masks'])} subset models, {total} scored, {masks.shape[1]} examples; "
          f"curvature = mean trace over the scored models that excluded the example")
    print(f"{'K':>5}{'split-half rho':>16}{'rho vs all':>12}{'link 1 rho':>12}{'excluding (median)':>20}")
    for k in [k for k in args.ks if k < total]:
        first = estimate(slice(0, k))
        half = f"{_spearman(first, estimate(slice(k, 2 * k))):16.3f}" if 2 * k <= total else f"{'-':>16}"
        excluding = int(np.median((~masks[:k]).sum(0)))
        print(f"{k:5d}{half}{_spearman(first, everything):12.3f}{_spearman(mem, first):12.3f}{excluding:20d}")
    print(f"{total:5d}{'-':>16}{1.0:12.3f}{_spearman(mem, everything):12.3f}{int(np.median((~masks).sum(0))):20d}")


if __name__ == "__main__":
    main()
