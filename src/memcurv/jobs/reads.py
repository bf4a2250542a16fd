"""Which config sections each job reads, so that a changed setting reruns only the jobs that read it.

Every job reads the shared sections (the dataset, model, device, training, privacy and curvature settings, the
fidelity and its defects); of the rest, an experiment's section, the figures' and the claims' options, a verb
reads only those named in READS (a verb not named reads them all).  The workflow writes what a verb reads to its
settings file (results/<study>/settings/<verb>.yaml, rewritten only when it changes), an input of the verb's rules,
so a change reruns the jobs that read it; the job itself gets the config with every other section replaced by a
stand-in that fails when read (memcurv.settings.UnreadSection), so a wrong declaration here fails the job rather
than leaving a stale table.  The hash of what a job reads is its tables' provenance `config_hash`: the settings
that made them.
"""

from __future__ import annotations

import dataclasses

from memcurv.settings import StudyConfig, UnreadSection

OPTIONAL = ("dp_models", "memorization", "mem_vs_epsilon", "audit", "figures", "claims")
MEM_VS_EPSILON = ("memorization", "mem_vs_epsilon")  # the top-k comes from memorization's scores
READS: dict[str, tuple[str, ...]] = {
    "download": (),
    "train-dp": ("dp_models",),
    "dp-table": ("dp_models",),
    "masks": ("memorization",),
    "train-subsets": ("memorization",),
    "examples": ("memorization",),
    "topk": MEM_VS_EPSILON,
    "train-dp-subsets": MEM_VS_EPSILON,
    "train-topk-control": MEM_VS_EPSILON,
    "mem-eps-table": MEM_VS_EPSILON,
    "audit-canaries": ("audit",),
    "train-audit": ("audit",),
    "audit-table": ("audit", "memorization"),  # the canaries' memorization, from the same per-model score
    "extremes": ("memorization", "figures"),
    # a figure draws its tables; the verdicts' thresholds (claims) are the report's alone
    "figure": ("figures",),
}


def sections_read(verb: str, experiment: str | None = None) -> tuple[str, ...]:
    """The optional sections `verb` reads; `calibrate` reads the one of the experiment it calibrates."""
    if verb == "calibrate":
        if experiment not in OPTIONAL:
            raise ValueError(f"calibrate needs the experiment it calibrates, not {experiment!r}")
        return (experiment,)
    return READS.get(verb, OPTIONAL)


def restrict(cfg: StudyConfig, verb: str, experiment: str | None = None) -> StudyConfig:
    """`cfg` as the job of `verb` may read it: every optional section it does not read replaced by a stand-in."""
    read = sections_read(verb, experiment)
    return dataclasses.replace(cfg, **{s: UnreadSection(s, verb) for s in OPTIONAL if s not in read})

