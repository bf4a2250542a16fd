"""Command line: `python -m memcurv <verb> ...`, the interface every workflow rule calls.

Each verb reads the study config (validated, defaults filled), writes its outputs atomically and,
on bad input, exits with status 2 and one line naming the bad argument and the fix.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memcurv import config as config_mod

RESUME_HELP = ("folder that keeps the job's progress (epoch checkpoints, finished models) so that a rerun after "
               "a kill resumes; emptied if made under another config, removed once the outputs are written")


def _verbs() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[Any, dict], None]]]:
    from memcurv import audit
    from memcurv import pipeline as p
    from memcurv.data import fetch as fetch_dataset

    def cfg_only(ap: argparse.ArgumentParser) -> None:
        pass

    def calibrate(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--experiment", choices=p.EXPERIMENTS, required=True)
        ap.add_argument("--epsilons", type=float, nargs="+", required=True)
        ap.add_argument("--out", type=Path, required=True)

    def train_dp(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--epsilon", type=float, required=True)
        ap.add_argument("--seed", type=int, required=True)
        ap.add_argument("--noise", type=Path, required=True, help="calibration JSON from `calibrate`")
        ap.add_argument("--out-dir", type=Path, required=True)
        ap.add_argument("--resume", type=Path, help=RESUME_HELP)

    def curvature(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--checkpoint", type=Path, required=True)
        ap.add_argument("--out", type=Path, required=True)

    def dp_table(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--metrics", type=Path, nargs="+", required=True)
        ap.add_argument("--curvature", type=Path, nargs="+", required=True)
        ap.add_argument("--out", type=Path, required=True)

    def out_only(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--out", type=Path, required=True)

    def shard_job(ap: argparse.ArgumentParser) -> None:
        """What every job that trains a shard of models takes."""
        ap.add_argument("--shard", type=int, required=True)
        ap.add_argument("--out", type=Path, required=True)
        ap.add_argument("--resume", type=Path, help=RESUME_HELP)

    def train_subsets(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--masks", type=Path, required=True)
        shard_job(ap)

    def shards_table(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--shards", type=Path, nargs="+", required=True)
        ap.add_argument("--out", type=Path, required=True)
        ap.add_argument("--models-out", type=Path, required=True, help="table of the subset models (test accuracy)")
        ap.add_argument("--scores-out", type=Path, required=True, help="per-model scores for the claims' bootstrap")

    def from_examples(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--examples", type=Path, required=True)
        ap.add_argument("--out", type=Path, required=True)

    def train_dp_subsets(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--epsilon", type=float, required=True)
        ap.add_argument("--noise", type=Path, required=True)
        ap.add_argument("--topk", type=Path, required=True)
        shard_job(ap)

    def mem_eps_table(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--examples", type=Path, required=True)
        ap.add_argument("--shards", type=Path, nargs="+", required=True)
        ap.add_argument("--out", type=Path, required=True)
        ap.add_argument("--models-out", type=Path, required=True, help="per-model scores for the claims' bootstrap")

    def train_audit(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--arm", required=True, help="eps<epsilon> (DP models) or nonprivate (the negative control)")
        ap.add_argument("--canaries", type=Path, required=True, help="canaries and inclusions from `audit-canaries`")
        ap.add_argument("--noise", type=Path, help="calibration JSON of the audit's epsilons (DP arms only)")
        shard_job(ap)

    def audit_table(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--canaries", type=Path, required=True)
        ap.add_argument("--shards", type=Path, nargs="+", required=True)
        ap.add_argument("--out", type=Path, required=True, help="the bounds: one row per arm and attack score")
        ap.add_argument("--canaries-out", type=Path, required=True, help="memorization of each canary per arm")

    def figure(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("name", help="figure name, e.g. mem_vs_curvature (see memcurv.figures.FIGURES)")
        ap.add_argument("--tables", type=Path, nargs="+", required=True, help="the tables the figure reads (one folder)")
        ap.add_argument("--out-pdf", type=Path, required=True)
        ap.add_argument("--out-png", type=Path, required=True)
        ap.add_argument("--out-csv", type=Path, required=True)

    def run_figure(a: Any, c: dict) -> None:
        from memcurv.figures import render
        from memcurv.io import provenance

        views = config_mod.readings(c)
        if not c["figures"]["side_by_side"]:
            views = dict(list(views.items())[:1])
        render(a.name, a.tables[0].parent, a.out_pdf, a.out_png, a.out_csv, study=c["study"],
               options={"fidelity": c["fidelity"], "readings": views, "dataset": config_mod.dataset_title(c)},
               provenance={**provenance(c), "tables": [str(t) for t in a.tables]})

    def report(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--tables", type=Path, nargs="+", required=True, help="the study's tables (one folder)")
        ap.add_argument("--figures", type=Path, required=True, help="folder of the study's figures")
        ap.add_argument("--out", type=Path, required=True, help="Markdown report; its numbers go beside it as JSON")

    def run_report(a: Any, c: dict) -> None:
        from memcurv.report import build

        build(c, a.tables[0].parent, a.figures, a.out)

    def show(a: Any, c: dict) -> None:
        import yaml

        print(yaml.safe_dump(c, sort_keys=False), end="")

    return {
        "validate": ("Validate a config and print it with every default filled in.", cfg_only, show),
        "download": ("Fetch the dataset into dataset.root where it comes from the internet (CIFAR, md5 checked).",
                     out_only, lambda a, c: fetch_dataset(c["dataset"], a.out)),
        "calibrate": ("Noise multipliers for target epsilons (once per epsilon, reused by every seed).", calibrate,
                      lambda a, c: p.calibrate(c, a.experiment, a.epsilons, a.out)),
        "train-dp": ("Train one DP model on the full training set.", train_dp,
                     lambda a, c: p.train_dp_model(c, a.epsilon, a.seed, a.noise, a.out_dir, a.resume)),
        "curvature": ("Input loss curvature of every training example under a checkpoint.", curvature,
                      lambda a, c: p.model_curvature(c, a.checkpoint, a.out)),
        "dp-table": ("Table of the DP models: accuracy, loss, epsilon spent, mean curvature.", dp_table,
                     lambda a, c: p.dp_models_table(c, a.metrics, a.curvature, a.out)),
        "masks": ("Seeded subset masks of the non-private subset models.", out_only,
                  lambda a, c: p.write_subset_masks(c, a.out)),
        "train-subsets": ("Train one shard of non-private subset models; score every training example.",
                          train_subsets, lambda a, c: p.train_subset_shard(c, a.masks, a.shard, a.out, a.resume)),
        "examples": ("Per-example table: memorization and curvature from the subset-model shards.", shards_table,
                     lambda a, c: p.examples_table(c, a.shards, a.out, a.models_out, a.scores_out)),
        "topk": ("The top-k most memorized examples.", from_examples,
                 lambda a, c: p.write_topk(c, a.examples, a.out)),
        "train-dp-subsets": ("Train one shard of DP subset models for memorization vs epsilon.", train_dp_subsets,
                             lambda a, c: p.train_dp_subset_shard(c, a.epsilon, a.noise, a.topk, a.shard, a.out,
                                                                   a.resume)),
        "mem-eps-table": ("Memorization of the top-k at each epsilon.", mem_eps_table,
                          lambda a, c: p.mem_vs_epsilon_table(c, a.examples, a.shards, a.out,
                                                                  a.models_out)),
        "audit-canaries": ("Canaries of the DP audit and each audit model's inclusion bits.", out_only,
                           lambda a, c: audit.write_canaries(c, a.out)),
        "train-audit": ("Train one shard of an audit arm's models; score its canaries.", train_audit,
                        lambda a, c: audit.train_audit_shard(c, a.arm, a.canaries, a.noise, a.shard, a.out, a.resume)),
        "audit-table": ("Empirical epsilon lower bounds of the audit, and its canaries' memorization.", audit_table,
                        lambda a, c: audit.audit_tables(c, a.canaries, a.shards, a.out, a.canaries_out)),
        "extremes": ("Images of the lowest/highest curvature and most memorized examples.", from_examples,
                     lambda a, c: p.write_extremes(c, a.examples, a.out)),
        "report": ("The replication report: each claim's figure, numbers, criterion and verdict.", report,
                   run_report),
        "figure": ("Draw one figure from the tables (PDF, PNG and the plotted data as CSV).", figure, run_figure),
    }


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    verbs = _verbs()
    parser = argparse.ArgumentParser(prog="memcurv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name, (help_text, add_args, _) in verbs.items():
        ap = sub.add_parser(name, help=help_text, description=help_text)
        ap.add_argument("--config", type=Path, required=True, help="study config YAML (see config/config.yaml)")
        ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
        add_args(ap)
    return parser, verbs


def main(argv: list[str] | None = None) -> int:
    parser, verbs = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr,
                        force=True)  # Opacus configures the root logger on import
    try:
        cfg = config_mod.load(args.config)
        from memcurv.pipeline import configure_torch

        configure_torch(args.threads, cfg["deterministic"])
        verbs[args.verb][2](args, cfg)
    except (config_mod.ConfigError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"memcurv {args.verb}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
