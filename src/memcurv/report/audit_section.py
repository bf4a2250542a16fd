"""The replication report's section on the empirical DP audit (memcurv.jobs.audit): its verdict against the
accountant, the negative control's, and the canaries' memorization against Thm 5.4's bound."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memcurv.tables import AUDIT, AUDIT_CANARIES

CONSISTENT = "audit consistent with the accountant"
INCONSISTENT = "audit NOT consistent with the accountant"
CONTROL_DETECTED = "negative control detected"
CONTROL_MISSED = "negative control NOT detected (the audit is too weak to tell a broken DP training)"


def verdicts(bounds: pd.DataFrame, canaries: pd.DataFrame, control_epsilon: float) -> dict[str, Any]:
    """The audit's verdict (every DP bound at or below the accountant's epsilon, what the model spent) and the
    negative control's (its best bound above control_epsilon), with the numbers behind them."""
    private, control = bounds[bounds["private"]], bounds[~bounds["private"]]
    over = private[private["eps_lb"] > private["epsilon_spent"]]
    powerless = sorted(set(private.loc[private["epsilon_spent"] >= private["eps_lb_max"], "epsilon"].tolist()))
    dp = canaries[np.isfinite(canaries["epsilon"])].dropna(subset=["mem"])
    per_epsilon = (dp.assign(above=dp["mem"] > dp["bound"]).groupby("epsilon")
                   .agg(mean_mem=("mem", "mean"), sd_mem=("mem", "std"), bound=("bound", "first"),
                        fraction_above_bound=("above", "mean")))
    best_control = float(control["eps_lb"].max()) if len(control) else math.nan
    return {"verdict": INCONSISTENT if len(over) else CONSISTENT,
            "violations": over[["epsilon", "score", "eps_lb", "epsilon_spent"]].to_dict("records"),
            "max_ratio_lb_to_accountant": float((private["eps_lb"] / private["epsilon_spent"]).max()),
            "largest_certifiable": float(bounds["eps_lb_max"].max()), "epsilons_without_power": powerless,
            "control_verdict": CONTROL_DETECTED if best_control > control_epsilon else CONTROL_MISSED,
            "control_epsilon": control_epsilon, "control_best_eps_lb": best_control,
            "control_mean_mem": float(canaries.loc[~np.isfinite(canaries["epsilon"]), "mem"].mean()),
            "bounds": bounds.to_dict("records"),
            "memorization_per_epsilon": per_epsilon.reset_index().to_dict("records")}


def _listed(epsilons: list[float]) -> str:
    return "no audited ε" if not epsilons else "ε = " + ", ".join(f"{e:g}" for e in epsilons)


def report_section(tables: Path, figure: Path, control_epsilon: float) -> tuple[list[str], dict[str, Any] | None]:
    """The report's audit section (Markdown lines) and its numbers; nothing when the audit did not run."""
    if not (tables / AUDIT.name).exists():
        return [], None
    bounds = pd.read_csv(tables / AUDIT.name)
    v = verdicts(bounds, pd.read_csv(tables / AUDIT_CANARIES.name), control_epsilon)
    first = bounds.iloc[0]
    rows = [f"| {f'{r.epsilon:g}' if r.private else 'non-private'} | "
            f"{f'{r.epsilon_spent:.3f}' if r.private else '-'} | {r.score} | {r.direction}, "
            f"{r.guess_in} IN + {r.guess_out} OUT | {r.correct}/{r.guesses} | **{r.eps_lb:.3f}** | {r.eps_lb_max:.2f} |"
            for r in bounds.itertuples()]
    mem_rows = [f"| {m['epsilon']:g} | {m['mean_mem']:.3f} ± {m['sd_mem']:.3f} | {m['bound']:.3f} | "
                f"{m['fraction_above_bound']:.2f} |" for m in v["memorization_per_epsilon"]]
    lines = [
        "", "### Empirical DP audit (beyond the paper)", "",
        f"{first['canaries']} canaries (training images given another class's label, their originals left out), each "
        f"drawn into each of {first['models']} models per epsilon with probability 1/2; the attack's direction and "
        f"guess counts are chosen on {first['models_selection']} models, the bound computed on the other "
        f"{first['models_evaluation']} ({first['slots']} canary-model slots) at {first['confidence']:.0%} confidence "
        f"(Steinke, Nasr and Jagielski 2023, delta = {first['delta']:g}). Accountant's epsilon: what the models spent.",
        "", f"![audit]({figure.as_posix()})", "",
        "*Criterion:* every empirical lower bound stays at or below the accountant's epsilon; the non-private "
        f"negative control's best bound exceeds {control_epsilon:g}.", "",
        f"*Verdict:* **{v['verdict']}** (largest bound / accountant's epsilon: {v['max_ratio_lb_to_accountant']:.3f}); "
        f"**{v['control_verdict']}** (best bound {v['control_best_eps_lb']:.3f}).", "",
        f"Where the audit has power: with {first['slots']} slots it can certify at most "
        f"{v['largest_certifiable']:.2f} even with every guess right, so at "
        f"{_listed(v['epsilons_without_power'])} \"consistent with the accountant\" holds whatever the training did.",
        "", "| ε | accountant's ε | score | attack | correct | ε lower bound | largest certifiable |",
        "|---|---|---|---|---|---|---|", *rows, "",
        f"Canary memorization (Feldman-Zhang over all {first['models']} models) against Thm 5.4's bound; non-private "
        f"control: mean {v['control_mean_mem']:.3f}.", "",
        "| ε | mean memorization ± sd | bound 1 - e^-ε | fraction of canaries above it |", "|---|---|---|---|",
        *mem_rows,
    ]
    return lines, v
