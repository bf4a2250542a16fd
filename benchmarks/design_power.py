"""Power of a study's design to decide links 2 and 3: on reruns simulated from a committed study's own tables, the
share that reach a verdict (holds or does not hold) rather than "inconclusive", for candidate designs.

Link 3 (memorization under DP at the smallest epsilon, where the bound is tightest): each top-k example gets the
committed DP models' mean accuracy when trained without it (P_out, spread over examples as a Beta of the committed
mean) and a memorization equal to the committed mean (at least 0), each model a shift of its own; a rerun draws the
subsets by the design (Poisson: each example in with probability 1/2; fixed: exactly half), trains M models and is
judged by memcurv.analysis.claims at the design's bound (1 - e^-eps for Poisson, 1 - e^-2eps for fixed-size).

Link 2 (curvature against epsilon over the DP models): each epsilon's seeds drawn normal around the committed table's
mean with its standard deviation (curvature and test loss), S seeds per epsilon, judged by the claims' criterion.

    python benchmarks/design_power.py --study cifar10_cpu imagenet_cpu digits [--reruns 60] [--link2-reruns 20]

Prints, per study and design, the shares of simulated reruns that hold, do not hold and are inconclusive.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from memcurv import io
from memcurv.analysis import claims, theory
from memcurv.analysis.readings import CORRECTED, read_dp_models
from memcurv.tables import DP_MODELS, MEM_VS_EPSILON_MODELS


def _shares(verdicts: list[str]) -> str:
    v = pd.Series(verdicts)
    return "  ".join(f"{name} {np.mean(v == name):4.0%}" for name in (claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE))


def link3(tables: Path, models: list[int], designs: list[str], reruns: int, top_k: int) -> None:
    per = claims.topk_memorization_intervals(tables / MEM_VS_EPSILON_MODELS.name, "conditional")
    row = per.iloc[0]  # the smallest epsilon
    eps, p_out, mem = float(row["epsilon"]), float(row["p_out"]), max(float(row["mean"]), 0.0)
    print(f"  link 3 at ε = {eps:g}: committed P_out {p_out:.3f}, memorization {row['mean']:.3f} "
          f"(simulated at {mem:.3f}), top-{top_k}, {reruns} reruns per design")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "models.npz"
        for design in designs:
            for m in models:
                verdicts = []
                for _ in range(reruns):
                    q = rng.beta(2 * p_out / (1 - p_out) + 1e-3, 2.0, top_k)  # mean about p_out, concentration 2
                    shift = rng.normal(0.0, 0.03, (m, 1))
                    if design == "poisson":
                        masks = rng.random((m, top_k)) < 0.5
                    else:
                        masks = np.array([rng.permutation(top_k) < top_k // 2 for _ in range(m)])
                    p = np.clip(q + mem * masks + shift, 0, 1)
                    correct = rng.random((m, top_k)) < p
                    io.write_npz(path, subsets=np.array(design), epsilons=np.array([eps]), masks=masks[None],
                                 correct=correct[None], prob=correct[None].astype(np.float32))
                    judged = claims.topk_memorization_intervals(path, "conditional", replicates=200)
                    r = judged.iloc[0]
                    c = claims.Condition("m", claims.Interval(r["mean"], r["ci_low"], r["ci_high"], 0.95, 200), "<",
                                         r["bound"])
                    verdicts.append(claims.judge([c]) if r["can_fail"] else claims.INCONCLUSIVE)
                bound = float(theory.design_mem_bound(eps, 1e-5, design))
                print(f"    {design:<8} bound {bound:.3f}, {m:3d} models: {_shares(verdicts)}", flush=True)


def link2(tables: Path, seeds: list[int], reruns: int) -> None:
    dp = read_dp_models(tables / DP_MODELS.name, CORRECTED)
    curv = dp.groupby("epsilon")["curvature"].agg(["mean", "std"])
    loss = dp.groupby("epsilon")["test_loss"].agg(["mean", "std"])
    print(f"  link 2 over {len(curv)} epsilons (committed: {dp.groupby('epsilon').size().iloc[0]} seeds each), "
          f"{reruns} reruns per design")
    rng = np.random.default_rng(1)
    for s in seeds:
        verdicts = []
        for _ in range(reruns):
            eps = np.repeat(curv.index.to_numpy(), s)
            table = pd.DataFrame({"epsilon": eps,
                                  "curvature": np.repeat(curv["mean"], s).to_numpy()
                                  + np.repeat(curv["std"], s).to_numpy() * rng.standard_normal(len(eps)),
                                  "test_loss": np.repeat(loss["mean"], s).to_numpy()
                                  + np.repeat(loss["std"], s).to_numpy() * rng.standard_normal(len(eps))})
            conditions, _ = claims.link2_conditions(table, "mean", claims.Judging())
            verdicts.append(claims.judge(conditions))
        print(f"    {s} seeds per ε: {_shares(verdicts)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", nargs="+", default=["cifar10_cpu", "imagenet_cpu"])
    ap.add_argument("--models", type=int, nargs="+", default=[8, 16, 24, 32])
    ap.add_argument("--designs", nargs="+", default=["poisson", "fixed"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--reruns", type=int, default=60, help="simulated reruns per link-3 design")
    ap.add_argument("--link2-reruns", type=int, default=20, help="per link-2 design (each a bootstrap of fits)")
    ap.add_argument("--top-k", type=int, default=50)
    a = ap.parse_args()
    start = time.time()
    for study in a.study:
        tables = Path("paper") / study / "tables"
        print(f"{study} (simulated from {tables})")
        link3(tables, a.models, a.designs, a.reruns, a.top_k)
        link2(tables, a.seeds, a.link2_reruns)
    print(f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
