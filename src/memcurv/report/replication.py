"""The replication report of one study: each claim of the paper with its figure, numbers, criterion and
verdict, generated from the run's tables only (and a JSON twin of every number, for citing)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from memcurv import io
from memcurv.analysis import bootstrap, claims
from memcurv.analysis.readings import (AGGREGATION_NAMES, SCORE_NAMES, describe, example_curvature_column,
                                      model_curvature_column, study_readings)
from memcurv.config import dataset_as_run, train_size
from memcurv.report import audit_section, coverage
from memcurv.settings import StudyConfig
from memcurv.tables import (AUDIT_TABLES, DP_MODELS, EXAMPLES, MEM_VS_EPSILON_MODELS, SUBSET_MODELS, SUBSET_SCORES,
                            names)

FIGURE_OF_CLAIM = {
    "curvature_memorization": "mem_vs_curvature",
    "curvature_cscore": "curvature_vs_cscore",
    "epsilon_curvature": "curvature_vs_epsilon",
    "epsilon_memorization": "memorization_vs_epsilon",
    "loss_epsilon": "loss_vs_epsilon",
}


INTERVALS = (
    "Verdicts are three-way. A claim **holds** when every condition of its criterion passes, **does not hold** when "
    "one fails, and is **inconclusive** when one can go either way: this run cannot tell. A correlation is judged "
    "against the smallest effect of interest, not against 0 (claims.min_effect: with thousands of examples a "
    "negligible correlation excludes 0): it passes when its 95% interval lies wholly beyond that effect, fails when "
    "it lies wholly short of it. A fitted curve is judged on the data's shape: a lack-of-fit F test of the curve's "
    "distance from each epsilon's mean against the seeds' spread around it, failing at p below claims.alpha. The "
    "intervals resample what changes when the study is run again: the DP models' seeds within each epsilon (link 2 "
    f"and the loss), the subset models and the examples (link 1; {claims.LINK1_REPLICATES} replicates), and the DP "
    f"subset models and the top-k examples (link 3); {bootstrap.REPLICATES} replicates elsewhere. Each interval is "
    "the run's value ± a t quantile times the replicates' standard deviation, on the atanh scale for a correlation or "
    "an R²; over a few seeds per epsilon the variance is scaled by n/(n − 1) for resampling n values and the t "
    "quantile takes the seeds' degrees of freedom (Welch–Satterthwaite's for a fitted parameter). Where some "
    "replicates reach a bound (an AUROC of exactly 0), the interval is read from the replicates' quantiles about "
    "their median instead. A rerun on another machine trains different models, since DP training amplifies "
    "floating-point differences, so its point values move within these intervals (memcurv.analysis.claims, "
    "memcurv.analysis.bootstrap).")
LINK1_READINGS = (
    "Thm 5.1 bounds an example's memorization by the input curvature of models trained *without* it, and its "
    "curvature is the Hessian's trace: the corrected reading is the trace averaged over the subset models that "
    "left the example out. The released code plots the largest gradient-difference norm over the models that "
    "trained on it. Every combination on this run's tables, each judged by the criterion above, with its split-half "
    "reliability (the scored models split in two, each half's per-example values correlated, Spearman-Brown "
    "corrected to all of them: a reading near 0 is noise; memcurv.analysis.reliability) and its correlation "
    "corrected for the reliabilities of both measures (ρ / √(rel_curvature · rel_reference), Spearman's correction "
    "for attenuation; a C-score is taken as reliable): a weak correlation that stays weak when corrected is absent, "
    "not noise. The headline verdict is the configured reading's, not the best of these.")
CURVATURE_SCORES = (
    "The trace is computed by the Hessian's structure: its Gauss-Newton part JᵀAJ exactly (one backward pass per "
    "class) plus the rest, the network's own curvature, by Hutchinson with exact Hessian-vector products; where "
    "the models are piecewise linear in their input (ReLU, max-pooling, BatchNorm in eval mode) the rest is zero, "
    "and the trace is its Gauss-Newton part exactly (their rows agree). The "
    "paper's estimator (Hutchinson on finite differences at h = 1e-3) is listed as the Hutchinson trace: on a ReLU "
    "network its step crosses activation kinks, whose gradient jumps divided by h swamp the Hessian, so it and the "
    "two norms (also finite differences) measure how much the gradient jumps (memcurv.estimators.curvature).")
NOISE = ("AUROC: how well each score ranks the examples whose training labels the study flipped "
         "(`dataset.label_noise`) above the others; 0.5 is chance. Feldman and Zhang's mislabeled examples are the "
         "textbook case of memorization.")

NOT_RUN_REASON = "- not run: its table is missing (or, for the epsilon claims, has fewer than 4 epsilons)"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _fit_line(name: str, fit: dict[str, Any]) -> str:
    if "error" in fit:
        return f"- {name}: fit failed ({fit['error']})"
    if fit.get("degenerate"):
        return f"- {name}: `{fit['formula']}` is degenerate on these data ({fit['degenerate']}); not a result"
    params = ", ".join(f"{k} = {_fmt(v)} ± {_fmt(fit['stderr'][k])}" for k, v in fit["params"].items())
    return f"- {name}: `{fit['formula']}` with {params}; R² = {_fmt(fit['r2'])} over {fit['n']} points"


def _interval(i: dict[str, Any]) -> str:
    return f"{_fmt(i['estimate'])} [{_fmt(i['low'])}, {_fmt(i['high'])}]"


def _condition_cells(c: dict[str, Any]) -> tuple[str, str]:
    """A condition's value and what it must be, as the criterion table shows them."""
    if c["kind"] == "test":
        return (f"F = {_fmt(c['f'])} on ({c['df_lack_of_fit']}, {c['df_pure_error']}) df, p = {_fmt(c['p_value'])}",
                f"p ≥ {_fmt(c['alpha'])}")
    if c["rule"] == claims.NOT_AGAINST:
        return _interval(c), f"not wholly {'<' if c['side'] == '>' else '>'} {_fmt(c['threshold'])}"
    return _interval(c), f"{c['side']} {_fmt(c['threshold'])}"


def _conditions(claim: claims.Claim) -> list[str]:
    rows = []
    for c in claim.numbers["conditions"]:
        value, wanted = _condition_cells(c)
        rows.append(f"| {c['name']} | {value} | {wanted} | {'yes' if c['passes'] else 'no' if c['fails'] else '?'} |")
    decided = claim.numbers.get("deciding")
    lines = ["| condition | value [95% CI] | holds when | passes |", "|---|---|---|---|", *rows] if rows else []
    if decided:
        lines += ["", f"Deciding: {claims.describe_condition(decided)}."]
    return lines


def _link1_readings(rows: list[dict[str, Any]]) -> list[str]:
    noise = any("auroc_flipped" in r for r in rows)
    cscore = any("cscore" in r for r in rows)
    head = ("| curvature score | aggregation over subset models | reliability | Spearman ρ with memorization [95% CI] "
            "| corrected for reliability | binned slope [95% CI] | verdict |"
            + (" ρ with 1 - C-score [95% CI] | corrected | verdict |" if cscore else "")
            + (" AUROC for flipped labels [95% CI] |" if noise else ""))
    lines = ["", LINK1_READINGS, "", head, "|---|---|---|---|---|---|---|" + "---|" * (3 * cscore + noise)]
    for r in rows:
        cells = [SCORE_NAMES.get(r["score"], r["score"]), AGGREGATION_NAMES.get(r["aggregation"], r["aggregation"]),
                 _fmt(r.get("reliability", "-"))]
        if "spearman" in r:
            cells += [_interval(r["spearman"]), _fmt(r["corrected_for_reliability"]["estimate"]),
                      _interval(r["slope"]), r["verdict"]]
        else:
            cells += ["-"] * 4
        if cscore:
            c = r.get("cscore")
            cells += [_interval(c["spearman"]), _fmt(c["corrected_for_reliability"]["estimate"]), c["verdict"]] if c \
                else ["-"] * 3
        cells += [_interval(r["auroc_flipped"]) if "auroc_flipped" in r else "-"] if noise else []
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", CURVATURE_SCORES] + (["", NOISE] if noise else [])


def _ci(row: dict[str, Any], prefix: str) -> str:
    return _interval({"estimate": row[prefix], "low": row[f"{prefix}_ci_low"], "high": row[f"{prefix}_ci_high"]})


LINK3_POWER = (
    "Where the check can fail: memorization is P_in - P_out, the models' mean accuracy on an example when trained "
    "with it minus without it, so it cannot exceed P_in; at an ε whose bound lies above P_in's interval no run of "
    "these models could fail it. DP itself implies a tighter, direct test, P_in ≤ e^ε' P_out + δ' for the (ε', δ') "
    "that holds between the two (the last but one column: at most 0 under DP; an interval wholly above 0 would be a "
    "violation). The non-private control (the same subsets and top-k, trained without privacy) shows what "
    "memorization looks like when nothing bounds it; the last column is the share of the top-k whose own "
    "memorization interval (the ε's models resampled) lies above the bound.")


def _link3_table(per: list[dict[str, Any]], bound: str) -> list[str]:
    """Link 3 per epsilon: the design's bound, the DP top-k's memorization, P_in and whether the check can fail
    there, the direct DP test, the non-private control's memorization, and the share of examples above the bound."""
    control = "nonprivate_mean" in per[0]
    lines = ["", f"Top-{per[0]['n']} examples, {per[0]['models']} DP subset models per epsilon. The bound: {bound}. "
                 f"{LINK3_POWER}", "",
             "| ε | bound | mean top-k memorization [95% CI] | P_in [95% CI] | can fail here | P_in - e^ε' P_out - δ' "
             "[95% CI] |" + (" without privacy [95% CI] |" if control else "") + " share of top-k above the bound |",
             "|---|---|---|---|---|---|" + ("---|" if control else "") + "---|"]
    for r in per:
        cells = [_fmt(r["epsilon"]), _fmt(r["bound"]),
                 _interval({"estimate": r["mean"], "low": r["ci_low"], "high": r["ci_high"]}), _ci(r, "p_in"),
                 "yes" if r["can_fail"] else "no", _ci(r, "dp_gap")]
        cells += [_ci(r, "nonprivate_mean")] if control else []
        lines.append("| " + " | ".join(cells + [_fmt(r["share_above_bound"])]) + " |")
    return lines


def _link2_readings(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "Every curvature score of link 2 on this run, judged by the same criterion:", "",
             "| curvature score | Spearman ρ(ε, mean curvature) [95% CI] | eq. 16 rise [95% CI] | lack of fit | "
             "verdict |", "|---|---|---|---|---|"]
    for r in rows:
        rho, rise, test = r["conditions"]
        lines.append(f"| {SCORE_NAMES[r['score']]} | {_interval(rho)} | {_interval(rise)} | "
                     f"{_condition_cells(test)[0]} | {r['verdict']} |")
    return lines


def _numbers(claim: claims.Claim) -> list[str]:
    n = claim.numbers
    lines = _conditions(claim) + [""]
    for key, name in (("linear_fit", "linear fit"), ("subpopulation_fit", "eq. 15 fit"), ("eq16_fit", "eq. 16 fit"),
                      ("fit", "loss fit")):
        if key in n:
            lines.append(_fit_line(name, n[key]))
    for name, i in n.get("reported", {}).items():
        lines.append(f"- {name}, reported, not judged: {_interval(i)}")
    if "curvature_column" in n:
        lines.append(f"- judged on the configured reading, {n['reading']} (`{n['curvature_column']}`), over "
                     f"{n['examples']} examples in {n['bins']} bins")
    if "corrected_for_reliability" in n:
        lines.append(f"- corrected for the reliabilities: ρ {_interval(n['corrected_for_reliability'])}")
    if "reliability" in n:
        lines.append(f"- split-half reliability over the scored subset models: {_fmt(n['reliability'])} for this "
                     f"reading, {_fmt(n['mem_reliability'])} for memorization (over all subset models)")
    if "examples_to_decide" in n:
        lines.append(f"- cost to decide: an interval this wide around this estimate would clear the smallest effect "
                     f"of interest with about {n['examples_to_decide']:,.0f} examples (this run: {n['examples']:,}), "
                     f"the interval narrowing like 1/sqrt(examples); benchmarks/curvature_reliability.py gives the "
                     f"subset models a reliability would take")
    if "models_to_decide" in n:
        lines += [f"- cost to decide: at ε = {eps}, an interval this wide around this estimate would clear the bound "
                  f"with about {m:,.0f} DP subset models (this run: {n['per_epsilon'][0]['models']}), the interval "
                  f"narrowing like 1/sqrt(models); benchmarks/design_power.py simulates designs"
                  for eps, m in n["models_to_decide"].items()]
    if "memorization_vs_cscore" in n:
        lines.append(f"- this run's memorization against 1 - C-score: Spearman ρ "
                     f"{_interval(n['memorization_vs_cscore'])} (how well a few subset models agree with a reference "
                     f"from thousands)")
    if "fraction_below_bound" in n:
        lines += _link3_table(n["per_epsilon"], n["bound"])
    if claim.key == "curvature_memorization":
        lines += _link1_readings(n["readings"])
    if claim.key == "epsilon_curvature":
        lines += _link2_readings(n["readings"])
    return lines


def _markdown_table(df: pd.DataFrame) -> list[str]:
    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    return [head, rule, *("| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False))]


TABLES = names((DP_MODELS, EXAMPLES, SUBSET_MODELS, SUBSET_SCORES, MEM_VS_EPSILON_MODELS))


def tables(cfg: StudyConfig) -> tuple[str, ...]:
    """The tables a study's report reads: the paper's, and the audit's where the study runs it."""
    return TABLES + (names(AUDIT_TABLES) if cfg.audit.enabled else ())


def _dataset(cfg: StudyConfig) -> str:
    """The dataset as the report names it: as run (config.dataset_as_run), and its config name."""
    return f"{dataset_as_run(cfg)} (`{cfg.dataset.name}`)"


def judging_of(cfg: StudyConfig) -> claims.Judging:
    """What a study's claims are judged against: its `claims` settings and its DP models' delta."""
    return claims.Judging(cfg.claims.min_effect, cfg.claims.alpha, cfg.privacy.delta)


def _decided(claim: claims.Claim) -> str:
    """The condition that decided a claim's verdict, in words ("-" for a claim not run)."""
    decided = claim.numbers.get("deciding")
    return claims.describe_condition(decided) if decided else "-"


def build(cfg: StudyConfig, tables_dir: Path, figures: Path, out: Path) -> dict[str, Any]:
    """Markdown report of the study at `out`, from the tables in `tables_dir`, and its numbers as JSON beside it;
    returns the numbers."""
    study, fidelity, resolved = cfg.study, cfg.fidelity, cfg.resolved_defects
    (own, own_reading), (other, other_reading) = study_readings(cfg).items()
    judging = judging_of(cfg)
    judged = claims.check_claims(tables_dir, own_reading, judging)
    other_claims = claims.check_claims(tables_dir, other_reading, judging)
    rel = Path("..") / figures  # the report lives in paper/, figures in figures/<study>/
    lines = [
        f"## Study `{study}`",
        "",
        f"Dataset {_dataset(cfg)}, model `{cfg.model}` ({_norms(tables_dir)}), fidelity **{fidelity}** "
        f"(defect settings: {', '.join(f'{k}={v}' for k, v in resolved.items())}). "
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by memcurv from `{tables_dir}` only.",
        "",
        f"| claim | verdict ({own}) | what decided it | verdict, same tables {other} |",
        "|---|---|---|---|",
        *(f"| {c.title} | **{c.verdict}** | {_decided(c)} | {o.verdict} |" for c, o in zip(judged, other_claims)),
        "",
        f"Judged on the configured reading: per-example curvature is the "
        f"{describe(example_curvature_column(own_reading))}, the DP models' the "
        f"{describe(model_curvature_column(own_reading))}, averaged over {_dp_scored(cfg)}; smallest effect of "
        f"interest ρ = "
        f"{judging.min_effect:g}, lack-of-fit tests at p < {judging.alpha:g}. Every other reading's own verdict is "
        f"in its claim's section.",
        "",
        f"The second column re-reads this run's tables with "
        f"{', '.join(f'{k}={v}' for k, v in other_reading.items())} (defects 1-5, 8 and 9; the figures draw both "
        f"readings side by side); the index mapping of published scores (defect 6) and the seeding of the "
        f"memorization-vs-epsilon subsets (defect 7) change what is trained and need a run of their own.",
        "",
        INTERVALS,
        "",
        coverage.statement(),
    ]
    for claim in judged:
        figure = FIGURE_OF_CLAIM[claim.key]
        image = (rel / f"{figure}.png").as_posix()
        lines += ["", f"### {claim.title}", "", claim.statement, "", f"![{figure}]({image})", "",
                  f"*Criterion:* {claim.criterion}", "", f"*Verdict:* **{claim.verdict}**", ""]
        lines += _numbers(claim) if claim.verdict != claims.NOT_RUN else [NOT_RUN_REASON]
    explained = claims.explain_link2(tables_dir)
    lines += _explained_lines(explained, rel)
    accuracy = _accuracy(tables_dir)
    lines += _accuracy_lines(accuracy)
    audit_lines, audit_numbers = audit_section.report_section(tables_dir, rel / "audit.png", cfg.audit.control_epsilon)
    lines += audit_lines
    lines += ["", "### Provenance", "", *_provenance_lines(tables_dir)]
    with io.atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    numbers = {"study": study, "dataset": dataset_as_run(cfg), "model": cfg.model, "fidelity": fidelity,
               "resolved_defects": resolved, "judging": vars(judging), "claims": [vars(c) for c in judged],
               f"claims_{other.replace(' ', '_')}": [vars(c) for c in other_claims], "link2_explained": explained,
               "accuracy": accuracy, "audit": audit_numbers, "provenance": io.provenance(cfg)}
    io.write_json(out.with_suffix(".json"), numbers)
    return numbers


NORM_NAMES = {"batch": "BatchNorm", "group": "GroupNorm", "none": "no normalisation"}
LEGACY_NORM = "group"  # subset-model tables written before the normalisation was recorded: every model had GroupNorm


def subset_norm(tables: Path) -> str | None:
    """The subset models' normalisation (memorization.norm), as their table records it; None without the table."""
    path = tables / SUBSET_MODELS.name
    if not path.exists():
        return None
    models = pd.read_csv(path)
    return str(models["norm"].iloc[0]) if "norm" in models else LEGACY_NORM


def _norms(tables: Path) -> str:
    """The normalisation of each role's models, in words."""
    norm = subset_norm(tables)
    subsets = f"non-private subset models with {NORM_NAMES[norm]}, " if norm else ""
    return subsets + "DP models with GroupNorm (Opacus)"


def _dp_scored(cfg: StudyConfig) -> str:
    """The training examples a DP model's mean curvature is over, in words."""
    n, size = cfg.curvature.train_examples, train_size(cfg.dataset)
    return ("every training example" if n is None or (size is not None and n >= size) else
            f"the same {n:,} training examples for every model (a seeded sample, curvature.train_examples)")


def _side(i: dict[str, Any]) -> str:
    """Where an interval lies with respect to 0, in words."""
    return "above 0" if i["low"] > 0 else "below 0" if i["high"] < 0 else "straddling 0"


def _explained_lines(rows: list[dict[str, Any]], rel: Path) -> list[str]:
    """Link 2's explanations tested on this run: each correlation with its interval, and what it says."""
    if not rows:
        return []
    names = claims.EXPLANATIONS
    table = [f"| {SCORE_NAMES[r['score']]} | " + " | ".join(_interval(r[n]) for n in names) + " |" for r in rows]
    lines = ["", "### Link 2 explained: what the DP models' curvature follows", "",
             f"![curvature_vs_loss]({(rel / 'curvature_vs_loss.png').as_posix()})", "",
             "Spearman correlations over the DP models (summed loss), 95% intervals over seeds resampled within each "
             "epsilon. A trend of curvature with ε can come from privacy itself, or from the less private models "
             "simply fitting better: the last column removes the training loss from both (partial Spearman of the "
             "ranks), and the second asks whether the trend is the training set's or any input's.", "",
             "| curvature score | " + " | ".join(names) + " |", "|---|" + "---|" * len(names), *table, ""]
    for r in rows:
        lines.append(f"- {SCORE_NAMES[r['score']]}: curvature vs ε {_side(r[names[0]])} on the training set and "
                     f"{_side(r[names[1]])} on the test set; vs the training loss {_side(r[names[2]])}; at matched "
                     f"training loss, vs ε {_side(r[names[3]])}.")
    return lines


def _accuracy(tables: Path) -> dict[str, Any]:
    """Test accuracy of the DP models per epsilon and of the non-private subset models, and the gap between
    the non-private models and the DP models at the largest epsilon: what tells whether the models learned."""
    out: dict[str, Any] = {}
    dp, subsets = (pd.read_csv(tables / t) if (tables / t).exists() else None
                   for t in (DP_MODELS.name, SUBSET_MODELS.name))
    if dp is not None:
        out["dp_per_epsilon"] = (dp.groupby("epsilon")[["test_acc", "train_acc", "test_loss", "epsilon_spent"]]
                                 .mean().reset_index().to_dict("records"))
    if subsets is not None:
        acc = subsets["test_acc"]
        out["subset_models"] = {"models": len(subsets), "norm": subset_norm(tables),
                                "train_size": int(subsets["train_size"].iloc[0]),
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
                  f"{s['test_acc_max']:.4f}) over {s['models']} models with {NORM_NAMES[s['norm']]}, each trained on "
                  f"{s['train_size']} examples; "
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
    return ["| table | git commit | config hash (of the settings its job read) | host |", "|---|---|---|---|", *rows,
            "",
            "Package versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
