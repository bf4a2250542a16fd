"""Coverage and width of the claims' 95% intervals, old (percentile, moved to the run's value) and new
(bootstrap.interval, bootstrap.seed_intervals), on simulated reruns at the committed studies' sizes.

For each design and statistic: the truth (the statistic's average over many simulated runs, or the population
mean), the fraction of simulated runs whose interval covers it, the intervals' mean width, and an oracle width:
the central 95% range of the statistic across the simulated reruns. Simulations: tests/simulated_reruns.py.
Link 2's scenarios: "theory/pooled" (the study's fitted curves, its seeds' noise pooled over epsilons; what
tests/test_coverage.py asserts on), "theory/per-epsilon" and "table/per-epsilon" (the table's means and per-epsilon
noise: the noise of 3 seeds taken as the truth, an overstated heteroscedasticity).

Then how often the lack-of-fit tests of the fitted curves (eq. 16, the loss curve) reject, where the data follow the
fitted form (the test's size) and where they follow the table's means (its power).

    python benchmarks/interval_coverage.py --json src/memcurv/report/interval_coverage.json
    # 3 to 4 minutes on one core; output: benchmarks/results/interval_coverage.txt, and the JSON every report reads
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from simulated_reruns import (CIFAR, DIGITS, LACK_OF_FIT, LINK2, coverage, draw_dp_models,  # noqa: E402
                              draw_subset_models, draw_topk, lack_of_fit, link1_estimate, link1_replicates, link2_runs,
                              mean_runs, mean_width, old_interval, topk_replicates, topk_truth)

from memcurv.analysis import bootstrap  # noqa: E402
from memcurv.analysis.bootstrap import CORRELATION  # noqa: E402
from memcurv.report.coverage import COVERAGE  # noqa: E402

HEADER = (f"{'design':<32} {'scenario':<20} {'statistic':<26} {'truth':>8} {'cov old':>7} {'cov new':>7} "
          f"{'width old':>9} {'width new':>9} {'oracle':>9}")


ROWS: list[dict[str, object]] = []  # every printed line, for --json


def _line(design: str, scenario: str, statistic: str, truth: float, old: list, new: list,
          estimates: np.ndarray) -> None:
    oracle = float(np.diff(np.nanpercentile(estimates, [2.5, 97.5]))[0])
    print(f"{design:<32} {scenario:<20} {statistic:<26} {truth:8.3g} {coverage(old, truth):7.3f} "
          f"{coverage(new, truth):7.3f} {mean_width(old):9.3g} {mean_width(new):9.3g} {oracle:9.3g}", flush=True)
    ROWS.append({"design": design, "scenario": scenario, "statistic": statistic, "truth": float(truth),
                 "coverage": coverage(new, truth), "width": mean_width(new), "oracle_width": oracle})


def lack_of_fit_tests(runs: int) -> list[dict[str, object]]:
    """How often the lack-of-fit tests reject at 0.05: where the data follow the fitted form ("theory": eq. 16 and the
    loss curve exactly) the rate is the test's size, 0.05 when the seeds' noise is alike at every epsilon; where they
    follow the table's own means ("table"), its power against the shape the run showed."""
    out = []
    print(f"\n{'design':<32} {'scenario':<20} {'test':<26} {'rejects at 0.05':>15}")
    for study in (CIFAR, DIGITS):
        for shape, spread in (("theory", "pooled"), ("theory", "per-epsilon"), ("table", "per-epsilon")):
            p = lack_of_fit(*draw_dp_models(study, shape, spread, runs, np.random.default_rng(11)))
            for j, name in enumerate(LACK_OF_FIT):
                rate = float(np.mean(p[:, j] < 0.05))
                print(f"{study.name:<32} {shape + '/' + spread:<20} {name:<26} {rate:15.3f}", flush=True)
                out.append({"design": study.name, "scenario": f"{shape}/{spread}", "test": name, "rejects": rate})
    return out


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
    ap.add_argument("--json", type=Path, help=f"also write the measurements here (the reports read {COVERAGE})")
    a = ap.parse_args()
    start = time.time()
    print(HEADER)
    means(2 * a.runs)
    link2(a.runs)
    link3(a.runs)
    link1(max(a.runs // 3, 20))
    tests = lack_of_fit_tests(4 * a.runs)
    print(f"{time.time() - start:.0f} s")
    if a.json:
        a.json.write_text(json.dumps({"command": f"python benchmarks/interval_coverage.py --runs {a.runs}",
                                      "intervals": ROWS, "lack_of_fit": tests}, indent=1) + "\n")


if __name__ == "__main__":
    main()
