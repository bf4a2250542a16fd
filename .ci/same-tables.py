"""Exit 1 unless two runs of a study wrote the same tables and figure data (apart from run times).

Usage: python .ci/same-tables.py STUDY RUN_A RUN_B  (each RUN a working directory with results/ and figures/)."""

import sys
from pathlib import Path

import pandas as pd

TIMINGS = ["seconds"]  # wall-clock columns: differ between any two runs


def frames(run: Path, study: str) -> dict[str, pd.DataFrame]:
    files = [*sorted((run / "results" / study / "tables").glob("*.csv")),
             *sorted((run / "figures" / study).glob("*.csv"))]
    return {str(f.relative_to(run)): pd.read_csv(f).drop(columns=TIMINGS, errors="ignore") for f in files}


def main(study: str, a: str, b: str) -> int:
    first, second = frames(Path(a), study), frames(Path(b), study)
    if not first or sorted(first) != sorted(second):
        print(f"same-tables: different files: {sorted(first)} vs {sorted(second)}")
        return 1
    differ = []
    for name, table in first.items():
        try:
            pd.testing.assert_frame_equal(table, second[name], check_exact=True)
        except AssertionError as error:
            differ.append(f"{name}: {str(error).splitlines()[0]}")
    for line in differ:
        print(f"same-tables: {line}")
    print(f"same-tables: {len(first) - len(differ)} of {len(first)} tables of study {study} equal in {a} and {b}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
