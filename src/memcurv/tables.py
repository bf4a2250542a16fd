"""The tables of a study, declared once: each file the workflow writes into results/<study>/tables/, the verb of
`python -m memcurv` (and its option) that writes it, what it holds, and its columns (a CSV) or arrays (an .npz).

Everything else names a table through this catalogue: the workflow's rules (their outputs and inputs), the figures'
`TABLES`, the claims, the report and the archive.  A table's file name appears nowhere else in src/ or workflow/
(tests/test_tables.py checks).  Adding a table: declare it here; write it in its job (memcurv.jobs) to the path its
verb's option gives; name it as that rule's output, `table_file(catalogue.<TABLE>)` (workflow/rules/); its readers
name it `<TABLE>.name` (a figure's `TABLES`, the report's).

The curvature columns follow one scheme, built by :func:`curvature_column` wherever a column is named:
`curv_<score>` (a per-model array of per-example scores), `curv_<score>_<reduction>` (the DP models' mean under a
loss reduction), `curv_<score>_<reduction>_<aggregation>` (an example's curvature aggregated over subset models) and
`test_curv_<score>_sum` (a DP model's mean on test examples).  This module imports only the standard library: the
workflow reads it while it parses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str  # the file name in results/<study>/tables/
    verb: str  # the `python -m memcurv` verb that writes it
    option: str  # the verb's option that names the file
    description: str
    columns: tuple[str, ...]  # CSV columns or .npz arrays, in order; {braced} parts vary, (optional) ones may be absent


DP_MODELS = Table(
    "dp_models.csv", "dp-table", "--out",
    "One row per DP model on the full training set (epsilon x seed): privacy spent, loss and accuracy, and its mean "
    "curvature over the training set under every score and loss reduction, and over the scored test examples.",
    ("study", "fidelity", "epsilon", "seed", "noise_multiplier", "epsilon_spent", "sample_rate", "steps", "seconds",
     "train_loss", "train_acc", "test_loss", "test_acc", "curv_{score}_{reduction}", "test_curv_{score}_sum",
     "curvature_column", "curvature"))
EXAMPLES = Table(
    "examples.csv", "examples", "--out",
    "One row per training example: its memorization (Feldman-Zhang, conditional and unconditional) over the subset "
    "models, whether its label was flipped, and its curvature under every score, loss reduction and aggregation over "
    "the scored subset models; the run's own reading in `curvature`.",
    ("id", "label", "mem", "mem_unconditional", "n_in", "n_out", "planted", "n_curvature_models",
     "curv_{score}_{reduction}_{aggregation}", "mem_published (optional)", "cscore (optional)", "curvature",
     "curvature_column"))
SUBSET_MODELS = Table(
    "subset_models.csv", "examples", "--models-out",
    "One row per non-private subset model: its normalisation (memorization.norm), training-set size, test accuracy and "
    "whether its curvature was scored.",
    ("study", "model", "norm", "train_size", "test_acc", "curvature_scored"))
SUBSET_SCORES = Table(
    "subset_scores.npz", "examples", "--scores-out",
    "The per-model scores the examples table is computed from, which link 1's bootstrap resamples: each subset "
    "model's membership mask and memorization score per example, and the scored models' per-example curvature.",
    ("masks", "score", "scored", "released_batch_size", "curv_{score}"))
MEM_VS_EPSILON = Table(
    "mem_vs_epsilon.csv", "mem-eps-table", "--out",
    "One row per top-k example and epsilon (inf: the non-private control): its memorization under the DP subset "
    "models and its memorization without privacy.  Read by no module (the claims and figures resample the per-model "
    "scores instead): it is the per-example table for users.",
    ("epsilon", "id", "label", "mem", "mem_unconditional", "n_in", "n_out", "baseline_mem"))
MEM_VS_EPSILON_MODELS = Table(
    "mem_vs_epsilon_models.npz", "mem-eps-table", "--models-out",
    "The per-model correctness and true-label probability of the top-k under the DP subset models at each epsilon "
    "(and the non-private control's, control_*), which link 3's bootstrap resamples.",
    ("subsets", "epsilons", "masks", "correct", "prob", "control_masks (optional)", "control_correct (optional)",
     "control_prob (optional)"))
EXTREMES = Table(
    "extremes.npz", "extremes", "--out",
    "The images of the extremes figure: the lowest- and highest-curvature training examples of a few classes and the "
    "most memorized ones, with their labels and scores.",
    ("images", "ids", "labels", "curvature", "mem", "kind", "class_names", "curvature_column",
     "memorized_at_least_shown (optional)"))
AUDIT = Table(
    "audit.csv", "audit-table", "--out",
    "The empirical DP audit's bounds: one row per arm (epsilon, or the non-private control) and attack score.",
    ("arm", "private", "epsilon", "epsilon_spent", "delta", "confidence", "canaries", "models", "test_acc", "score",
     "direction", "guess_in", "guess_out", "guesses", "correct", "precision", "slots", "models_selection",
     "models_evaluation", "eps_lb_selection", "eps_lb", "eps_lb_max"))
AUDIT_CANARIES = Table(
    "audit_canaries.csv", "audit-table", "--canaries-out",
    "The audit's canaries: one row per arm and canary, its memorization against the bound 1 - e^-eps.",
    ("arm", "epsilon", "id", "label", "canary_label", "mem", "n_in", "n_out", "bound"))

CATALOGUE = {t.name: t for t in (DP_MODELS, EXAMPLES, SUBSET_MODELS, SUBSET_SCORES, MEM_VS_EPSILON,
                                 MEM_VS_EPSILON_MODELS, EXTREMES, AUDIT, AUDIT_CANARIES)}
AUDIT_TABLES = (AUDIT, AUDIT_CANARIES)  # written only where the study runs the audit


def names(tables: Iterable[Table]) -> tuple[str, ...]:
    return tuple(t.name for t in tables)


def curvature_column(score: str, reduction: str | None = None, aggregation: str | None = None, *,
                     test: bool = False) -> str:
    """The name of a curvature column or array: `[test_]curv_<score>[_<reduction>[_<aggregation>]]`."""
    if aggregation is not None and reduction is None:
        raise ValueError("a curvature column's aggregation needs its loss reduction")
    parts = ["test_curv" if test else "curv", score, reduction, aggregation]
    return "_".join(p for p in parts if p is not None)


def declared(table: Table, column: str) -> bool:
    """Whether `column` is one of the table's declared columns (a {braced} part matching any word)."""
    patterns = (re.sub(r"\\\{\w+\\\}", r"\\w+", re.escape(c.removesuffix(" (optional)"))) for c in table.columns)
    return any(re.fullmatch(p, column) for p in patterns)
