"""Where a finished study's time went: the seconds of every job, summed per rule, from Snakemake's benchmark files.

    python benchmarks/study_times.py --study digits [--wall 540] [--out paper/digits/timing.json]
                                     [--before OLD_TIMING_JSON]

Reads logs/<study>/benchmarks/ (one TSV per job, `benchmark:` in every rule) and prints each rule's jobs and total
seconds, largest first. With --wall (the run's wall-clock seconds, e.g. from `time snakemake ...`) and --out, it
writes both to a JSON that docs/results.md shows beside the study's numbers (python -m memcurv.report.summary).
With --before (an earlier run's timing JSON, e.g. `git show <commit>:paper/digits/timing.json`), it prints each
rule before and after, and the ratios of wall clock and job-seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
from pathlib import Path


def rule_totals(study: str) -> dict[str, dict[str, float]]:
    """{rule: {"jobs": n, "seconds": total}} from logs/<study>/benchmarks/<rule>.tsv or <rule>/<job>.tsv."""
    root = Path("logs", study, "benchmarks")
    files = sorted(root.rglob("*.tsv"))
    if not files:
        raise SystemExit(f"no benchmark files under {root}: run the study first")
    totals: dict[str, dict[str, float]] = {}
    for f in files:
        rule = f.relative_to(root).parts[0].removesuffix(".tsv")
        with f.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        entry = totals.setdefault(rule, {"jobs": 0, "seconds": 0.0})
        entry["jobs"] += 1
        entry["seconds"] += sum(float(r["s"]) for r in rows[-1:])  # the last attempt of the job
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]["seconds"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True)
    ap.add_argument("--wall", type=float, help="the run's wall-clock seconds")
    ap.add_argument("--out", type=Path, help="JSON to write (with --wall)")
    ap.add_argument("--before", type=Path, help="an earlier run's timing JSON to compare with (with --wall)")
    args = ap.parse_args()
    totals = rule_totals(args.study)
    jobs, seconds = sum(t["jobs"] for t in totals.values()), sum(t["seconds"] for t in totals.values())
    if args.before:
        if not args.wall:
            raise SystemExit("--before needs --wall")
        compare(json.loads(args.before.read_text()), totals, args.wall)
        return
    print(f"study {args.study}: {int(jobs)} jobs, {seconds:,.0f} job-seconds" +
          (f", {args.wall:,.0f} s wall clock" if args.wall else ""))
    for rule, t in totals.items():
        print(f"{rule:32s}{int(t['jobs']):5d} jobs{t['seconds']:10,.0f} s")
    if args.out:
        if not args.wall:
            raise SystemExit("--out needs --wall")
        args.out.write_text(json.dumps({"study": args.study, "wall_seconds": args.wall, "jobs": int(jobs),
                                        "job_seconds": round(seconds, 1), "host": platform.node(),
                                        "rules": {r: {"jobs": int(t["jobs"]), "seconds": round(t["seconds"], 1)}
                                                  for r, t in totals.items()}}, indent=2) + "\n")


def compare(before: dict, after: dict[str, dict[str, float]], wall: float) -> None:
    """Each rule's jobs and seconds in an earlier run and in this one, and the ratios of the totals."""
    old = before["rules"]
    print(f"{'rule':32s}{'jobs before':>12s}{'after':>7s}{'seconds before':>16s}{'after':>8s}")
    for rule in sorted(set(old) | set(after), key=lambda r: -max(old.get(r, {}).get("seconds", 0),
                                                                   after.get(r, {}).get("seconds", 0))):
        a, b = old.get(rule, {"jobs": 0, "seconds": 0.0}), after.get(rule, {"jobs": 0, "seconds": 0.0})
        print(f"{rule:32s}{int(a['jobs']):12d}{int(b['jobs']):7d}{a['seconds']:16,.0f}{b['seconds']:8,.0f}")
    jobs, seconds = sum(int(t["jobs"]) for t in after.values()), sum(t["seconds"] for t in after.values())
    print(f"{'all':32s}{before['jobs']:12d}{jobs:7d}{before['job_seconds']:16,.0f}{seconds:8,.0f}")
    was = before["wall_seconds"]
    print(f"wall clock: {was:,.0f} s before, {wall:,.0f} s after: {wall / was:.2f}x;"
          f" job-seconds {seconds / before['job_seconds']:.2f}x")


if __name__ == "__main__":
    main()
