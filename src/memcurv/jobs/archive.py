"""The tables behind a study's report, archived beside it (`paper/<study>/`), and every figure and verdict recomputed
from them without training: a reader can recheck each committed number with one command,

    python -m memcurv reproduce --config paper/<study>/config.yaml --tables paper/<study>/tables --out <folder>

which draws the study's figures and writes its report into <folder> and says whether the report's numbers are the
committed ones (`paper/<study>.json`).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import yaml

from memcurv import io
from memcurv.figures import OUTPUTS, draw, study_figures
from memcurv.report import replication as report
from memcurv.settings import StudyConfig

ARCHIVE = Path("paper")
VOLATILE = ("provenance", "generated")  # keys whose values differ between a run and its recomputation


def archived_tables(cfg: StudyConfig) -> list[str]:
    """The tables a study's report and figures read: what its archive holds."""
    figures = {t for figure in study_figures(cfg).values() for t in figure.tables}
    return sorted(figures | set(report.tables(cfg)))


def archive(cfg: StudyConfig, tables: list[Path], out_dir: Path) -> None:
    """Copy the study's tables (with their provenance) into `out_dir`/tables and its resolved config beside them."""
    for table in tables:
        for source in (table, io.provenance_path(table)):
            if source.exists():
                with io.atomic_path(out_dir / "tables" / source.name) as tmp:
                    shutil.copyfile(source, tmp)
    with io.atomic_path(out_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(cfg.as_dict(), sort_keys=True))


def reproduce(cfg: StudyConfig, tables: Path, out: Path) -> None:
    """Every figure of the study drawn from the archived `tables` into `out`/figures/<study>/, and the report into
    `out`/paper/<study>.md; then the report's numbers set against the committed ones (paper/<study>.json),
    printing whether they agree."""
    figures = out / "figures" / cfg.study
    for name, figure in study_figures(cfg).items():
        draw(cfg, name, [tables / t for t in figure.tables], *(figures / f"{name}.{ext}" for ext in OUTPUTS))
    recomputed = out / "paper" / f"{cfg.study}.md"
    report.build(cfg, tables, figures, recomputed)
    committed = ARCHIVE / f"{cfg.study}.json"
    if committed.exists():
        differences = compare(io.read_json(committed), io.read_json(recomputed.with_suffix(".json")))
        print(f"{len(differences)} numbers differ from {committed}" + "".join(f"\n  {d}" for d in differences[:20])
              if differences else f"every number of {committed} recomputed from {tables}")


def compare(committed: Any, recomputed: Any, path: str = "", rel: float = 1e-6) -> list[str]:
    """Where two reports' numbers differ (beyond `rel` for floats), as key paths; provenance and dates aside."""
    if isinstance(committed, dict) and isinstance(recomputed, dict):
        keys = sorted(set(committed) | set(recomputed))
        return [d for k in keys if k not in VOLATILE
                for d in compare(committed.get(k), recomputed.get(k), f"{path}.{k}", rel)]
    if isinstance(committed, list) and isinstance(recomputed, list) and len(committed) == len(recomputed):
        return [d for i, (a, b) in enumerate(zip(committed, recomputed)) for d in compare(a, b, f"{path}[{i}]", rel)]
    if isinstance(committed, float) and isinstance(recomputed, float | int):
        same = (math.isnan(committed) and math.isnan(recomputed)) or math.isclose(committed, recomputed, rel_tol=rel,
                                                                                   abs_tol=1e-12)
        return [] if same else [f"{path}: {committed} != {recomputed}"]
    return [] if committed == recomputed else [f"{path}: {committed!r} != {recomputed!r}"]
