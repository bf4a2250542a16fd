"""Coverage and width of the claims' 95% intervals, old (percentile, moved to the run's value) and new
(bootstrap.interval, bootstrap.seed_intervals), on simulated reruns at the committed studies' sizes.

For each design and statistic: the truth (the statistic's average over many simulated runs, or the population
mean), the fraction of simulated runs whose interval covers it, the intervals' mean width, and an oracle width:
the central 95% range of the statistic across the simulated reruns. Simulations: tests/simulated_reruns.py.
Link 2's scenarios: "theory/pooled" (the study's fitted curves, its seeds' noise pooled over epsilons; what
tests/test_coverage.py asserts on), "theory/per-epsilon" and "table/per-epsilon" (the table's means and per-epsilon
noise: the noise of 3 seeds taken as the truth, an overstated heteroscedasticity).

    python benchmarks/interval_coverage.py    # 2 to 3 minutes on one core; output: benchmarks/results/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from simulated_reruns import (CIFAR, DIGITS, LINK2, coverage, draw_subset_models, draw_topk,  # noqa: E402
                              link1_estimate, link1_replicates, link2_runs, mean_runs, mean_width, old_interval,
                              topk_replicates, topk_truth)

from memcurv.analysis import bootstrap  # noqa: E402
from memcurv.analysis.bootstrap import CORRELATION  # noqa: E402

HEADER = (f"{'design':<32} {'scenario':<20} {'statistic':<26} {'truth':>8} {'cov old':>7} {'cov new':>7} "
          f"{'width old':>9} {'width new':>9} {'oracle':>9}")


def _line(design: str, scenario: str, statistic: str, truth: float, old: list, new: list,
          estimates: np.ndarray) -> None:
    oracle = float(np.diff(np.nanpercentile(estimates, [2.5, 97.5]))[0])
    print(f"{design:<32} {scenario:<20} {statistic:<26} {truth:8.3g} {coverage(old, truth):7.3f} "
          f"{coverage(new, truth):7.3f} {mean_width(old):9.3g} {mean_width(new):9.3g} {oracle:9.3g}", flush=True)


def means(runs: int) -> None:
    for seeds in (3, 5):
        old, new = mean_runs(seeds, runs, bootstrap.REPLICATES)
        estimates = np.random.default_rng(0).standard_normal((runs, seeds)).mean(1)  # the runs mean_runs drew
        _line(f"per-epsilon mean, {seeds} seeds", "normal, sd 1", "mean", 0.0, old, new, estimates)


def link2(runs: int) -> None:
    for study in (CIFAR, DIGITS):
        for shape, spread in (("theory", "pooled"), ("theory", "per-epsilon"), ("table", "per-epsilon")):
            out = link2_runs(study, shape, spread, runs, bootstrap.REPLICATES)
            for j, name in enumerate(LINK2):
                _line(study.name, f"{shape}/{spread}", name, out["truth"][j], out["old"][j], out["new"][j],
                      out["estimates"][:, j])


def link3(runs: int) -> None:
    for models in (8, 16):
        for mem in (0.03, 0.13):
            rng = np.random.default_rng(6)
            estimates, old, new = [], [], []
            for _ in range(runs):
                estimate, reps = topk_replicates(*draw_topk(rng, models, 50, mem), bootstrap.REPLICATES)
                estimates.append(estimate)
                old.append(old_interval(estimate, reps))
                new.append(bootstrap.interval(estimate, reps))
            _line(f"link 3, {models} DP models, k = 50", f"memorization {mem:g}", "mean top-k memorization",
                  topk_truth(models, 50, mem), old, new, np.array(estimates))


def link1(runs: int) -> None:
    for name, examples, models, scored, slope in (("digits", 1437, 256, 256, 0.3), ("CIFAR-10", 4988, 40, 16, 0.1)):
        rng = np.random.default_rng(7)
        truth = float(np.mean([link1_estimate(*draw_subset_models(rng, examples, models, scored, slope))
                               for _ in range(4 * runs)]))
        estimates, old, new = [], [], []
        for _ in range(runs):
            data = draw_subset_models(rng, examples, models, scored, slope)
            estimate, reps = link1_estimate(*data), link1_replicates(*data, 200)  # claims.LINK1_REPLICATES
            estimates.append(estimate)
            old.append(old_interval(estimate, reps, CORRELATION))
            new.append(bootstrap.interval(estimate, reps, limits=CORRELATION))
        _line(f"link 1, {name}: {examples} x {models} ({scored})", f"slope {slope:g}", "Spearman(mem, curvature)",
              truth, old, new, np.array(estimates))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=500, help="simulated runs per design (link 1: a third of them)")
    a = ap.parse_args()
    start = time.time()
    print(HEADER)
    means(2 * a.runs)
    link2(a.runs)
    link3(a.runs)
    link1(max(a.runs // 3, 20))
    print(f"{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
