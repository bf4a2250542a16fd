"""Where the claims' intervals and tests are known to be off, in words every report prints: the measured coverage of
each interval on simulated reruns at the committed studies' sizes, and the rejection rate of the lack-of-fit tests
where the data follow the fitted form (their size), from benchmarks/interval_coverage.py's JSON shipped beside this
module. A reader learns which statistics undercover and by how much without running the benchmark."""

from __future__ import annotations

import json
from pathlib import Path

COVERAGE = Path(__file__).with_name("interval_coverage.json")
BAR = 0.93  # a 95% interval that covers less on a few hundred simulated reruns undercovers (tests/test_coverage.py)


def statement(path: Path = COVERAGE) -> str:
    """The report's sentence on measured coverage and test size; a plain warning where nothing was measured."""
    if not path.exists():
        return (f"The intervals' coverage has not been measured for this version ({path.name} is missing; "
                "benchmarks/interval_coverage.py writes it).")
    data = json.loads(path.read_text())
    rows = data["intervals"]
    under = sorted((r for r in rows if r["coverage"] < BAR), key=lambda r: r["coverage"])
    rest = [r["coverage"] for r in rows if r["coverage"] >= BAR]
    text = (f"Measured on simulated reruns at the committed studies' sizes (`{data['command']}`): the intervals cover "
            f"the average rerun in {min(rest):.0%} to {max(rest):.0%} of runs")
    if under:
        text += ", except where they undercover: " + "; ".join(
            f"{r['statistic']} {r['coverage']:.0%} ({r['design']}, {r['scenario']})" for r in under)
    sizes = [t["rejects"] for t in data["lack_of_fit"] if t["scenario"].startswith("theory")]
    return text + (f". The lack-of-fit tests reject a curve of the fitted form in {min(sizes):.0%} to "
                   f"{max(sizes):.0%} of simulated runs at the 5% level (their size: exactly 5% only where the seeds' "
                   "noise is normal and alike at every epsilon).")
