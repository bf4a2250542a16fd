"""The replication report of one study: each claim of the paper with its figure, numbers, criterion and
verdict, generated from the run's tables only (and a JSON twin of every number, for citing)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from memcurv import audit, io, theory
from memcurv.config import dataset_title, readings

FIGURE_OF_CLAIM = {
    "curvature_memorization": "mem_vs_curvature",
    "epsilon_curvature": "curvature_vs_epsilon",
    "epsilon_memorization": "memorization_vs_epsilon",
    "loss_epsilon": "loss_vs_epsilon",
}


NOT_RUN_REASON = "- not run: its table is missing (or, for the epsilon claims, has fewer than 4 epsilons)"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _fit_line(name: str, fit: dict[str, Any]) -> str:
    if "error" in fit:
        return f"- {name}: fit failed ({fit['error']})"
    params = ", ".join(f"{k} = {_fmt(v)} ± {_fmt(fit['stderr'][k])}" for k, v in fit["params"].items())
    return f"- {name}: `{fit['formula']}` with {params}; R² = {_fmt(fit['r2'])} over {fit['n']} points"


def _numbers(claim: theory.Claim) -> list[str]:
    n = claim.numbers
    lines = []
    if "spearman_rho" in n:
        lines.append(f"- Spearman ρ = {_fmt(n['spearman_rho'])} (p = {n['spearman_p']:.2g})")
    for key, name in (("linear_fit", "linear fit"), ("subpopulation_fit", "eq. 15 fit"), ("eq16_fit", "eq. 16 fit"),
                      ("fit", "loss fit")):
        if key in n:
            lines.append(_fit_line(name, n[key]))
    if "curvature_column" in n:
        lines.append(f"- curvature column: `{n['curvature_column']}` over {n['examples']} examples in {n['bins']} bins")
    if "fraction_below_bound" in n:
        lines.append(f"- fraction of epsilons at which memorization stays below 1 - e^-ε: "
                     f"{_fmt(n['fraction_below_bound'])}")
        rows = [f"| {_fmt(r['epsilon'])} | {r['mean']:.4f} ± {r['std']:.4f} | {r['bound']:.4f} | "
                f"{'yes' if r['below_bound'] else '**no**'} |" for r in n["per_epsilon"]]
        lines += ["", "| ε | mean top-k memorization ± sd | bound 1 - e^-ε | below |", "|---|---|---|---|", *rows]
    return lines


def _markdown_table(df: pd.DataFrame) -> list[str]:
    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    return [head, rule, *("| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False))]


def _dataset(cfg: dict[str, Any]) -> str:
    """The dataset as the report names it: its config name, and its title where that says more."""
    name, title = cfg["dataset"]["name"], dataset_title(cfg)
    return f"`{name}`" if title == name else f"{title} (`{name}`)"


def build(cfg: dict[str, Any], tables: Path, figures: Path, out: Path) -> dict[str, Any]:
    """Markdown report of the study at `out` and its numbers as JSON beside it; returns the numbers."""
    study, fidelity, resolved = cfg["study"], cfg["fidelity"], cfg["resolved_defects"]
    (own, own_reading), (other, other_reading) = readings(cfg).items()
    claims = theory.check_claims(tables, own_reading)
    other_claims = theory.check_claims(tables, other_reading)
    rel = Path("..") / figures  # the report lives in paper/, figures in figures/<study>/
    lines = [
        f"## Study `{study}`",
        "",
        f"Dataset {_dataset(cfg)}, model `{cfg['model']}`, fidelity **{fidelity}** "
        f"(defect settings: {', '.join(f'{k}={v}' for k, v in resolved.items())}). "
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by memcurv from `{tables}` only.",
        "",
        f"| claim | verdict ({own}) | verdict, same tables {other} |",
        "|---|---|---|",
        *(f"| {c.title} | **{c.verdict}** | {o.verdict} |" for c, o in zip(claims, other_claims)),
        "",
        f"The second column re-reads this run's tables with "
        f"{', '.join(f'{k}={v}' for k, v in other_reading.items())} (defects 1-5; the figures draw both "
        f"readings side by side); the index mapping of published scores (defect 6) and the seeding of the "
        f"memorization-vs-epsilon subsets (defect 7) change what is trained and need a run of their own.",
    ]
    for claim in claims:
        figure = FIGURE_OF_CLAIM[claim.key]
        lines += ["", f"### {claim.title}", "", claim.statement, "", f"![{figure}]({(rel / f'{figure}.png').as_posix()})", "",
                  f"*Criterion:* {claim.criterion}", "", f"*Verdict:* **{claim.verdict}**", ""]
        lines += _numbers(claim) if claim.verdict != theory.NOT_RUN else [NOT_RUN_REASON]
    accuracy = _accuracy(tables)
    lines += _accuracy_lines(accuracy)
    audit_lines, audit_numbers = audit.report_section(tables, rel / "audit.png", cfg["audit"]["control_epsilon"])
    lines += audit_lines
    lines += ["", "### Provenance", "", *_provenance_lines(tables)]
    with io.atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    numbers = {"study": study, "fidelity": fidelity, "resolved_defects": resolved, "claims": [vars(c) for c in claims],
               f"claims_{other.replace(' ', '_')}": [vars(c) for c in other_claims], "accuracy": accuracy,
               "audit": audit_numbers, "provenance": io.provenance(cfg)}
    io.write_json(out.with_suffix(".json"), numbers)
    return numbers


def _accuracy(tables: Path) -> dict[str, Any]:
    """Test accuracy of the DP models per epsilon and of the non-private subset models, and the gap between
    the non-private models and the DP models at the largest epsilon: what tells whether the models learned."""
    out: dict[str, Any] = {}
    dp, subsets = (pd.read_csv(tables / t) if (tables / t).exists() else None
                   for t in ("dp_models.csv", "subset_models.csv"))
    if dp is not None:
        out["dp_per_epsilon"] = (dp.groupby("epsilon")[["test_acc", "train_acc", "test_loss", "epsilon_spent"]]
                                 .mean().reset_index().to_dict("records"))
    if subsets is not None:
        acc = subsets["test_acc"]
        out["subset_models"] = {"models": len(subsets), "train_size": int(subsets["train_size"].iloc[0]),
                                "curvature_scored": int(subsets["curvature_scored"].sum()),
                                "test_acc_mean": float(acc.mean()), "test_acc_min": float(acc.min()),
                                "test_acc_max": float(acc.max())}
    if dp is not None and subsets is not None:
        largest = out["dp_per_epsilon"][-1]
        out["gap_at_largest_epsilon"] = {"epsilon": largest["epsilon"],
                                         "points": 100 * (out["subset_models"]["test_acc_mean"] - largest["test_acc"])}
    return out


def _accuracy_lines(accuracy: dict[str, Any]) -> list[str]:
    lines = []
    if "dp_per_epsilon" in accuracy:
        table = pd.DataFrame(accuracy["dp_per_epsilon"]).round(4)
        lines += ["", "### Accuracy per epsilon (DP models, mean over seeds)", "", *_markdown_table(table)]
    if "subset_models" in accuracy:
        s = accuracy["subset_models"]
        lines += ["", "### Accuracy of the non-private subset models", "",
                  f"Test accuracy {s['test_acc_mean']:.4f} on average (min {s['test_acc_min']:.4f}, max "
                  f"{s['test_acc_max']:.4f}) over {s['models']} models, each trained on {s['train_size']} examples; "
                  f"input curvature scored under {s['curvature_scored']} of them."]
    if "gap_at_largest_epsilon" in accuracy:
        g = accuracy["gap_at_largest_epsilon"]
        lines += ["", f"DP models at the largest epsilon ({_fmt(g['epsilon'])}) reach a test accuracy "
                      f"{g['points']:.1f} points below the non-private subset models' mean (a negative number: above "
                      f"it; the DP models see the whole training set, the subset models a fraction of it)."]
    return lines


def _provenance_lines(tables: Path) -> list[str]:
    rows = []
    for path in sorted(tables.glob("*.provenance.json")):
        p = io.read_json(path)
        git = p["git"]
        rows.append(f"| `{path.name.removesuffix('.provenance.json')}` | `{git['commit'][:12]}`"
                    f"{' (dirty)' if git['dirty'] else ''} | `{p['config_hash']}` | {p['host']} |")
    if not rows:
        return ["No provenance files found beside the tables."]
    versions = io.read_json(sorted(tables.glob("*.provenance.json"))[0])["versions"]
    return ["| table | git commit | config hash | host |", "|---|---|---|---|", *rows, "",
            "Package versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
