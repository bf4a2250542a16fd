"""The tables behind a study's report, archived beside it (`paper/<study>/`), and every figure and verdict recomputed
from them without training: a reader can recheck each committed number with one command,

    python -m memcurv reproduce --config paper/<study>/config.yaml --tables paper/<study>/tables --out <folder>

which draws the study's figures and writes its report into <folder> and says whether the report's numbers are the
committed ones (`paper/<study>.json`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from memcurv import io
from memcurv.figures import OUTPUTS, draw, study_figures
from memcurv.report import replication as report
from memcurv.settings import StudyConfig

ARCHIVE = Path("paper")


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
        differences = io.compare_numbers(io.read_json(committed), io.read_json(recomputed.with_suffix(".json")))
        print(f"{len(differences)} numbers differ from {committed}" + "".join(f"\n  {d}" for d in differences[:20])
              if differences else f"every number of {committed} recomputed from {tables}")
