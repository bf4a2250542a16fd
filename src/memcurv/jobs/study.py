"""Jobs a study runs before its experiments: fetching the dataset where it comes from the internet, and calibrating
the noise of each experiment's target epsilons."""

from __future__ import annotations

from pathlib import Path

from memcurv import io
from memcurv.config import EXPERIMENTS, format_epsilon
from memcurv.data.loading import fetch
from memcurv.jobs.toolkit import dataset, experiment_train_size
from memcurv.settings import StudyConfig
from memcurv.training.train import dp_schedule


def download(cfg: StudyConfig, out: Path) -> None:
    """Fetch the dataset into dataset.root where it comes from the internet; `out` records what was fetched."""
    fetch(cfg.dataset, out)


def calibrate(cfg: StudyConfig, experiment: str, epsilons: list[float], out: Path) -> None:
    """Noise multiplier for each target epsilon of an experiment, keyed by the epsilon's file-name text."""
    from memcurv.estimators import privacy  # Opacus's accountants: only this job pays for them here

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {EXPERIMENTS}")
    n = experiment_train_size(cfg, experiment, len(dataset(cfg).y_train))
    rate, steps = dp_schedule(n, cfg.train.batch_size, cfg.train.epochs)
    p = cfg.privacy
    cals = {format_epsilon(e): privacy.calibrate_noise(e, p.delta, rate, steps, p.accountant).to_dict()
            for e in epsilons}
    io.write_json(out, {"experiment": experiment, "train_size": n, "calibrations": cals,
                        "provenance": io.provenance(cfg)})
