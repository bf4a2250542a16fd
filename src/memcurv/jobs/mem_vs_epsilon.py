"""Memorization vs epsilon (link 3): DP subset models at each epsilon, and a non-private control on the same subsets,
each scored on the top-k most memorized examples; and the table of the top-k's memorization at each epsilon."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.config import format_epsilon
from memcurv.estimators import memorization
from memcurv.jobs.toolkit import (check_spent, close_resume, dataset, device_of, experiment_train_size, fresh_model,
                                  grid_shard, load_shards, model_scores, noise_for, open_resume, privacy_settings,
                                  resumable, write_table)
from memcurv.seeds import model_seed
from memcurv.settings import StudyConfig
from memcurv.training.train import dp_schedule, evaluate, train

log = logging.getLogger(__name__)


def train_dp_subset_shard(cfg: StudyConfig, noise: Path, topk: Path, shard: int, out: Path,
                          resume: Path | None = None) -> None:
    """Train one shard of DP subset models (`mem_vs_epsilon.models_per_job` of the epsilon x model grid, epsilon by
    epsilon); keep each one's score on the top-k (finished models and the current one's epoch checkpoint survive a
    killed job in `resume`)."""
    m = cfg.mem_vs_epsilon
    _topk_shard(cfg, grid_shard(m.epsilons, m.num_models, m.models_per_job, shard), noise, topk, out, resume)


def train_topk_control_shard(cfg: StudyConfig, topk: Path, shard: int, out: Path, resume: Path | None = None) -> None:
    """Train one shard of the non-private control of memorization vs epsilon: the DP subset models' subsets and
    seeds, trained without privacy as the subset models are (memorization.train); what the top-k's memorization
    looks like when nothing bounds it."""
    m = cfg.mem_vs_epsilon
    _topk_shard(cfg, grid_shard((np.inf,), m.num_models, m.models_per_job, shard), None, topk, out, resume)


def _topk_shard(cfg: StudyConfig, models: list[tuple[float, int]], noise: Path | None, topk: Path, out: Path,
                resume: Path | None) -> None:
    """The (epsilon, model) pairs of a shard of memorization vs epsilon: model k trained on top-k subset k, private at
    epsilon, or the non-private control where epsilon is inf (and `noise` None)."""
    m = cfg.mem_vs_epsilon
    ds, device = dataset(cfg), device_of(cfg)
    top = np.array(io.read_json(topk)["ids"])
    seeded = cfg.resolved_defects["subset_seeding"] == "seeded"
    masks = memorization.topk_subset_masks(len(ds.y_train), top, [k for _, k in models], m.subset_ratio,
                                           m.seed if seeded else None, m.subsets)

    # the Poisson rate and step count of the nominal subset size, as calibrated: fixed whatever size a subset drawn by
    # Poisson sampling has, so that the accountant's epsilon holds between a subset with an example and one without
    schedule = dp_schedule(experiment_train_size(cfg, "mem_vs_epsilon", len(ds.y_train)), cfg.train.batch_size,
                           cfg.train.epochs)

    def run(epsilon: float, k: int, mask: np.ndarray, ckpt: Path | None) -> dict[str, np.ndarray]:
        private = {} if noise is None else {"privacy_settings": privacy_settings(cfg, noise_for(noise, epsilon)),
                                            "schedule": schedule}
        settings = cfg.train if private else cfg.memorization.train
        name = "non-private" if not private else f"eps={format_epsilon(epsilon)}"
        seed = model_seed(m.seed, k)
        idx = torch.from_numpy(np.flatnonzero(mask))
        model, metrics = train(fresh_model(cfg, ds, seed), ds.x_train[idx], ds.y_train[idx], settings, seed=seed,
                               device=device, checkpoint_path=ckpt, desc=f"{name} model {k}", **private)
        if private:
            check_spent(metrics["epsilon"], epsilon)
        ev = evaluate(model, ds.x_train[top], ds.y_train[top], device=device)
        log.info("%s top-k model %d: spent epsilon %s", name, k, metrics.get("epsilon", "none"))
        return {"correct": ev["correct"], "prob": ev["prob"], "epsilon_spent": np.array(metrics.get("epsilon", np.inf))}

    resume = open_resume(resume, cfg)
    rows = [resumable(resume, f"eps{format_epsilon(eps)}_model{k}", partial(run, eps, k, mask))
            for (eps, k), mask in zip(models, masks)]
    io.write_npz(out, epsilons=np.array([eps for eps, _ in models]), models=np.array([k for _, k in models]),
                 masks=masks[:, top], topk=top, correct=np.stack([r["correct"] for r in rows]),
                 prob=np.stack([r["prob"] for r in rows]), epsilon_spent=np.array([r["epsilon_spent"] for r in rows]))
    close_resume(resume)


def mem_vs_epsilon_table(cfg: StudyConfig, examples: Path, shards: list[Path], out: Path,
                         models_out: Path) -> None:
    """Memorization of each top-k example at each epsilon (and without privacy: epsilon inf, the control), from the
    shards; and the per-model correctness and true-label probability of the top-k it is computed from
    (`models_out`; the control's as control_*), which the claims' bootstrap resamples."""
    baseline = pd.read_csv(examples).set_index("id")
    keys = ("epsilons", "models", "masks", "correct", "prob")
    everything = load_shards(shards, keys)
    topk = io.read_npz(shards[0], ("topk",))["topk"]
    frames, arrays = [], {}
    for eps in np.unique(everything["epsilons"]):  # sorted, the control's inf last
        rows = np.flatnonzero(everything["epsilons"] == eps)
        rows = rows[np.argsort(everything["models"][rows], kind="stable")]  # model by model, however sharded
        z = {k: everything[k][rows] for k in ("masks", "correct", "prob")}
        arrays[float(eps)] = z
        cond = memorization.memorization(z["masks"], model_scores(cfg, z))
        unc = memorization.memorization(z["masks"], model_scores(cfg, z), estimator="unconditional")
        frames.append(pd.DataFrame({"epsilon": float(eps), "id": topk, "label": baseline.loc[topk, "label"].to_numpy(),
                                    "mem": cond.mem, "mem_unconditional": unc.mem, "n_in": cond.n_in,
                                    "n_out": cond.n_out, "baseline_mem": baseline.loc[topk, "mem"].to_numpy()}))
    write_table(pd.concat(frames), out, cfg)
    private = [e for e in arrays if np.isfinite(e)]
    control = {f"control_{k}": v for k, v in arrays[np.inf].items()} if np.inf in arrays else {}
    io.write_npz(models_out, subsets=np.array(cfg.mem_vs_epsilon.subsets),
                 epsilons=np.array(private), masks=np.stack([arrays[e]["masks"] for e in private]),
                 correct=np.stack([arrays[e]["correct"] for e in private]),
                 prob=np.stack([arrays[e]["prob"] for e in private]).astype(np.float32), **control)
