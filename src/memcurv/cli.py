"""Command line: `python -m memcurv <verb> ...`, the interface every workflow rule calls.

It only parses and dispatches: each verb names a job, a function of the validated study config (restricted to the
sections the job reads, memcurv.jobs.reads) whose other parameters are the verb's options, by name.  Bad input (an
invalid config or argument, a missing file) exits with status 2 and one line naming it and the fix; a failure
inside a job (a CUDA error, a bug) prints its traceback and exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memcurv import config as config_mod
from memcurv import io
from memcurv.jobs import reads

JOB_FAILED, BAD_INPUT = 1, 2
BAD_INPUT_ERRORS = (config_mod.ConfigError, ValueError, FileNotFoundError)

Option = tuple[str, dict[str, Any]]  # an argparse flag (or positional name) and its keyword arguments


def _path(flag: str, help: str | None = None, *, many: bool = False, required: bool = True) -> Option:
    return flag, {"type": Path, "required": required, "help": help, **({"nargs": "+"} if many else {})}


OUT = _path("--out")
RESUME = _path("--resume", "folder that keeps the job's progress (epoch checkpoints, finished models) so that a "
               "rerun after a kill resumes; emptied if made under another config, removed once the outputs are "
               "written", required=False)
SHARD = ("--shard", {"type": int, "required": True})
EXAMPLES = _path("--examples", "the per-example table (`examples`)")
SHARDS = _path("--shards", "the shard files of one experiment", many=True)


@dataclass(frozen=True)
class Verb:
    help: str
    job: str  # "module:function", imported when the verb runs: a verb loads only its own job's modules
    options: tuple[Option, ...] = ()


VERBS = {
    "validate": Verb("Validate a config and print it with every default filled in.", "memcurv.config:show"),
    "check-inputs": Verb("Check the files the config names (C-scores with their md5, published scores) before any "
                         "job reads them.", "memcurv.jobs.inputs:check_inputs"),
    "download": Verb("Fetch the dataset into dataset.root where it comes from the internet (CIFAR, md5 checked).",
                     "memcurv.jobs.study:download", (OUT,)),
    "calibrate": Verb("Noise multipliers for target epsilons (once per epsilon, reused by every seed).",
                      "memcurv.jobs.study:calibrate",
                      (("--experiment", {"choices": config_mod.EXPERIMENTS, "required": True}),
                       ("--epsilons", {"type": float, "nargs": "+", "required": True}), OUT)),
    "train-dp": Verb("Train one shard of DP models (of the epsilon x seed grid) on the full training set; score "
                     "their curvature.", "memcurv.jobs.dp_models:train_dp_shard",
                     (SHARD, _path("--noise", "calibration JSON from `calibrate`"), _path("--out-dir"),
                      RESUME)),
    "dp-table": Verb("Table of the DP models: accuracy, loss, epsilon spent, mean curvature.",
                     "memcurv.jobs.dp_models:dp_models_table", (_path("--shards", "the DP shard folders", many=True),
                                                                 OUT)),
    "masks": Verb("Seeded subset masks of the non-private subset models.",
                  "memcurv.jobs.subset_models:write_subset_masks", (OUT,)),
    "train-subsets": Verb("Train one shard of non-private subset models; score every training example.",
                          "memcurv.jobs.subset_models:train_subset_shard", (_path("--masks"), SHARD, OUT, RESUME)),
    "examples": Verb("Per-example table: memorization and curvature from the subset-model shards.",
                     "memcurv.jobs.subset_models:examples_table",
                     (SHARDS, OUT, _path("--models-out", "table of the subset models (test accuracy)"),
                      _path("--scores-out", "per-model scores for the claims' bootstrap"))),
    "topk": Verb("The top-k most memorized examples.", "memcurv.jobs.subset_models:write_topk", (EXAMPLES, OUT)),
    "train-dp-subsets": Verb("Train one shard of DP subset models (of the epsilon x model grid) for memorization vs "
                             "epsilon.", "memcurv.jobs.mem_vs_epsilon:train_dp_subset_shard",
                             (_path("--noise"), _path("--topk"), SHARD, OUT, RESUME)),
    "train-topk-control": Verb("Train one shard of the non-private control of memorization vs epsilon.",
                               "memcurv.jobs.mem_vs_epsilon:train_topk_control_shard",
                               (_path("--topk"), SHARD, OUT, RESUME)),
    "mem-eps-table": Verb("Memorization of the top-k at each epsilon.",
                          "memcurv.jobs.mem_vs_epsilon:mem_vs_epsilon_table",
                          (EXAMPLES, SHARDS, OUT, _path("--models-out", "per-model scores for the claims' bootstrap"))),
    "audit-canaries": Verb("Canaries of the DP audit and each audit model's inclusion bits.",
                           "memcurv.jobs.audit:write_canaries", (OUT,)),
    "train-audit": Verb("Train one shard of an audit arm's models; score its canaries.",
                        "memcurv.jobs.audit:train_audit_shard",
                        (("--arm", {"required": True, "help": "eps<epsilon> (DP models) or nonprivate (the control)"}),
                         _path("--canaries", "canaries and inclusions from `audit-canaries`"),
                         _path("--noise", "calibration JSON of the audit's epsilons (DP arms only)", required=False),
                         SHARD, OUT, RESUME)),
    "audit-table": Verb("Empirical epsilon lower bounds of the audit, and its canaries' memorization.",
                        "memcurv.jobs.audit:audit_tables",
                        (_path("--canaries"), SHARDS, _path("--out", "the bounds: one row per arm and attack score"),
                         _path("--canaries-out", "memorization of each canary per arm"))),
    "extremes": Verb("Images of the lowest/highest curvature and most memorized examples.",
                     "memcurv.jobs.extremes:write_extremes", (EXAMPLES, OUT)),
    "report": Verb("The replication report: each claim's figure, numbers, criterion and verdict.",
                   "memcurv.report.replication:build",
                   (_path("--tables-dir", "folder of the study's tables"),
                    _path("--figures", "folder of the study's figures (linked, not read)"),
                    _path("--out", "Markdown report; its numbers go beside it as JSON"))),
    "archive": Verb("Copy the tables behind the study's report and figures, and its resolved config, beside it.",
                    "memcurv.jobs.archive:archive", (_path("--tables", "the tables to archive", many=True),
                                                     _path("--out-dir", "the study's archive, paper/<study>"))),
    "reproduce": Verb("Every figure and the report recomputed from archived tables, without training; compared with "
                      "the committed report's numbers.", "memcurv.jobs.archive:reproduce",
                      (_path("--tables", "an archived tables folder, paper/<study>/tables"),
                       _path("--out", "folder for the recomputed figures/ and paper/"))),
    "figure": Verb("Draw one figure from the tables (PDF, PNG and the plotted data as CSV).", "memcurv.figures:draw",
                   (("name", {"help": "figure name, e.g. mem_vs_curvature (see memcurv.figures.catalogue())"}),
                    _path("--tables", "the tables the figure reads", many=True), _path("--out-pdf"),
                    _path("--out-png"), _path("--out-csv"))),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memcurv", description=__doc__.splitlines()[0], allow_abbrev=False)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, verb in VERBS.items():
        ap = sub.add_parser(name, help=verb.help, description=verb.help, allow_abbrev=False)
        ap.add_argument("--config", type=Path, required=True, help="study config YAML (see config/config.yaml)")
        ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
        for flag, kwargs in verb.options:
            ap.add_argument(flag, **kwargs)
    return parser


def _job(verb: Verb) -> Any:
    module, function = verb.job.split(":")
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    name, config_path, threads = args.pop("verb"), args.pop("config"), args.pop("threads")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr,
                        force=True)  # Opacus configures the root logger on import
    try:
        cfg = reads.restrict(config_mod.load(config_path), name, args.get("experiment"))
        job = _job(VERBS[name])
        if "torch" in sys.modules:  # a job that computes with torch; the others (figures) never pay for its import
            from memcurv.jobs.toolkit import configure_torch

            configure_torch(threads, cfg.deterministic)
        job(cfg, **args)
    except BAD_INPUT_ERRORS as e:
        io.discard_provenance()
        print(f"memcurv {name}: error: {e}", file=sys.stderr)
        return BAD_INPUT
    except Exception:  # noqa: BLE001 - a job's failure: the whole traceback, for the job's log
        io.discard_provenance()
        traceback.print_exc()
        print(f"memcurv {name}: failed (traceback above)", file=sys.stderr)
        return JOB_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
