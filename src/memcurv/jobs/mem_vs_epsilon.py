"""Memorization vs epsilon (link 3): DP subset models at each epsilon, and a non-private control on the same subsets,
each scored on the top-k most memorized examples; and the table of the top-k's memorization at each epsilon."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.config import format_epsilon
from memcurv.estimators import memorization
from memcurv.jobs.toolkit import (check_spent, close_resume, dataset, device_of, fresh_model, load_shards, model_scores,
                                  noise_for, open_resume, privacy_settings, resumable, shard_range, write_table)
from memcurv.seeds import model_seed
from memcurv.settings import StudyConfig
from memcurv.training.train import evaluate, train

log = logging.getLogger(__name__)


def train_dp_subset_shard(cfg: StudyConfig, epsilon: float, noise: Path, topk: Path, shard: int,
                          out: Path, resume: Path | None = None) -> None:
    """Train one shard of DP subset models; keep each one's score on the top-k (finished models and the
    current one's epoch checkpoint survive a killed job in `resume`)."""
    _topk_shard(cfg, epsilon, noise_for(noise, epsilon), topk, shard, out, resume)


def train_topk_control_shard(cfg: StudyConfig, topk: Path, shard: int, out: Path, resume: Path | None = None) -> None:
    """Train one shard of the non-private control of memorization vs epsilon: the DP subset models' subsets and
    seeds, trained without privacy as the subset models are (memorization.train); what the top-k's memorization
    looks like when nothing bounds it."""
    _topk_shard(cfg, None, None, topk, shard, out, resume)


def _topk_shard(cfg: StudyConfig, epsilon: float | None, calibration: dict[str, Any] | None, topk: Path,
                shard: int, out: Path, resume: Path | None) -> None:
    """A shard of memorization vs epsilon's models (private at `epsilon`, or the non-private control when None)."""
    m = cfg.mem_vs_epsilon
    ds, device = dataset(cfg), device_of(cfg)
    top = np.array(io.read_json(topk)["ids"])
    models = shard_range(m.num_models, m.models_per_job, shard)
    seeded = cfg.resolved_defects["subset_seeding"] == "seeded"
    masks = memorization.topk_subset_masks(len(ds.y_train), top, models, m.subset_ratio,
                                           m.seed if seeded else None)
    private = {} if calibration is None else {"privacy_settings": privacy_settings(cfg, calibration)}
    settings = cfg.train if calibration is not None else cfg.memorization.train
    name = "non-private" if epsilon is None else f"eps={format_epsilon(epsilon)}"

    def run(k: int, mask: np.ndarray, ckpt: Path | None) -> dict[str, np.ndarray]:
        seed = model_seed(m.seed, k)
        idx = torch.from_numpy(np.flatnonzero(mask))
        model, metrics = train(fresh_model(cfg, ds, seed), ds.x_train[idx], ds.y_train[idx], settings, seed=seed,
                               device=device, checkpoint_path=ckpt, desc=f"{name} model {k}", **private)
        ev = evaluate(model, ds.x_train[top], ds.y_train[top], device=device)
        log.info("%s top-k model %d: spent epsilon %s", name, k, metrics.get("epsilon", "none"))
        return {"correct": ev["correct"], "prob": ev["prob"], "epsilon_spent": np.array(metrics.get("epsilon", np.inf))}

    resume = open_resume(resume, cfg)
    rows = [resumable(resume, f"model{k}", partial(run, k, mask)) for k, mask in zip(models, masks)]
    spent = np.array([r["epsilon_spent"] for r in rows])
    if epsilon is not None:
        check_spent(float(spent.max()), epsilon)
    io.write_npz(out, epsilon=np.array(np.inf if epsilon is None else epsilon), models=np.array(list(models)),
                 masks=masks[:, top], topk=top, correct=np.stack([r["correct"] for r in rows]),
                 prob=np.stack([r["prob"] for r in rows]), epsilon_spent=spent)
    close_resume(resume)


def mem_vs_epsilon_table(cfg: StudyConfig, examples: Path, shards: list[Path], out: Path,
                         models_out: Path) -> None:
    """Memorization of each top-k example at each epsilon (and without privacy: epsilon inf, the control), from the
    shards; and the per-model correctness and true-label probability of the top-k it is computed from
    (`models_out`; the control's as control_*), which the claims' bootstrap resamples."""
    baseline = pd.read_csv(examples).set_index("id")
    by_eps: dict[float, list[Path]] = {}
    for f in shards:
        with np.load(f) as z:
            by_eps.setdefault(float(z["epsilon"]), []).append(f)
    frames, arrays = [], {}
    for eps, files in sorted(by_eps.items()):
        with np.load(files[0]) as z:
            topk = z["topk"]
        z = load_shards(files, ("masks", "correct", "prob"))
        arrays[eps] = z
        cond = memorization.memorization(z["masks"], model_scores(cfg, z))
        unc = memorization.memorization(z["masks"], model_scores(cfg, z), estimator="unconditional")
        frames.append(pd.DataFrame({"epsilon": eps, "id": topk, "label": baseline.loc[topk, "label"].to_numpy(),
                                    "mem": cond.mem, "mem_unconditional": unc.mem, "n_in": cond.n_in,
                                    "n_out": cond.n_out, "baseline_mem": baseline.loc[topk, "mem"].to_numpy()}))
    write_table(pd.concat(frames), out, cfg)
    private = [e for e in arrays if np.isfinite(e)]
    control = {f"control_{k}": v for k, v in arrays[np.inf].items()} if np.inf in arrays else {}
    io.write_npz(models_out, epsilons=np.array(private), masks=np.stack([arrays[e]["masks"] for e in private]),
                 correct=np.stack([arrays[e]["correct"] for e in private]),
                 prob=np.stack([arrays[e]["prob"] for e in private]).astype(np.float32), **control)
