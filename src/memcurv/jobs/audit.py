"""Empirical DP audit with canaries: a lower bound on the epsilon a training run spent, set against the accountant's.

Design (Steinke, Nasr and Jagielski 2023, "Privacy auditing with one (1) training run", Thm 3.1 and App. D):

- m canaries are training images given another class's label (a flipped label is what a model must memorize to get
  it right); their originals are left out of every model.  Each of R models (per epsilon, and R non-private models
  of the negative control) draws each canary in independently with probability 1/2.  A slot is a (canary, model)
  pair: its inclusion bits are i.i.d. uniform, and flipping one changes one model's training set by one example and
  no other model, so the R models together are (eps, delta)-DP in each slot whenever each model is.  That is the
  hypothesis of the theorem, which lets many canaries per model (dependent trials in the classic analysis of
  Jagielski et al. 2020) count towards one bound.  Private models train with a Poisson rate and step count fixed
  from the nominal training-set size (memcurv.training.train, ``schedule``), so the data never changes them.
- The attacker ranks the slots of a model set by a score (the canary's loss, its per-model memorization score, its
  input curvature), guesses IN for the k+ highest, OUT for the k- lowest, and abstains on the rest.  Under
  (eps, delta)-DP the number v of correct guesses among r is stochastically dominated by Binomial(r, e^eps /
  (1 + e^eps)), up to a delta term; the lower bound is the largest eps that this rejects at the chosen confidence.
- The direction of each score and (k+, k-) are chosen on the first models (selection), and the bound is computed on
  the others only: they are independent of the choice, so trying many attacks does not inflate the bound.

The per-canary Feldman-Zhang memorization over the R models (P[correct | IN] - P[correct | OUT], the advantage of the
correctness attack) is what Thm 5.4 bounds by 1 - e^-eps.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.analysis import theory
from memcurv.config import format_epsilon
from memcurv.estimators import memorization
from memcurv.estimators.audit_bound import audit_score
from memcurv.jobs.toolkit import (check_spent, close_resume, dataset, device_of, experiment_train_size, fresh_model,
                                  load_shards, model_scores, noise_for, open_resume, privacy_settings, resumable,
                                  score_curvature, shard_range, write_table)
from memcurv.seeds import model_seed, stream
from memcurv.settings import StudyConfig
from memcurv.training.train import dp_schedule, evaluate, train

CONTROL = "nonprivate"
ATTACK_SCORES = ("loss", "memorization", "curvature")


# --- Jobs: canaries, models, tables ------------------------------------------------------------------

def arms(cfg: StudyConfig) -> list[str]:
    """The audit's model sets: one per epsilon (eps<epsilon>) and the non-private negative control."""
    return [f"eps{format_epsilon(e)}" for e in cfg.audit.epsilons] + [CONTROL]


def arm_epsilon(arm: str) -> float | None:
    """The target epsilon of an arm; None for the non-private control."""
    if arm == CONTROL:
        return None
    if not arm.startswith("eps"):
        raise ValueError(f"unknown audit arm {arm!r}: eps<epsilon> or {CONTROL}")
    return float(arm.removeprefix("eps"))


def write_canaries(cfg: StudyConfig, out: Path) -> None:
    """The canaries (ids, original and flipped labels) and every model's inclusion bits, i.i.d. fair coins."""
    a, ds = cfg.audit, dataset(cfg)
    n, m = len(ds.y_train), a.canaries
    if m >= n:
        raise ValueError(f"config key audit.canaries = {m} must be below the {n} training examples")
    rng = stream(a.seed, 0)
    ids = np.sort(rng.choice(n, size=m, replace=False))
    labels = ds.y_train.numpy()[ids]
    flipped = (labels + rng.integers(1, ds.num_classes, m)) % ds.num_classes
    masks = np.stack([stream(a.seed, 1, k).random(m) < 0.5 for k in range(a.num_models)])
    io.write_npz(out, ids=ids, labels=labels, canary_labels=flipped, masks=masks)


def train_audit_shard(cfg: StudyConfig, arm: str, canaries: Path, noise: Path | None, shard: int,
                      out: Path, resume: Path | None = None) -> None:
    """Train one shard of an arm's models on the base set plus their canaries; keep each canary's scores."""
    a, ds, device = cfg.audit, dataset(cfg), device_of(cfg)
    eps = arm_epsilon(arm)
    z = io.read_npz(canaries, ("ids", "canary_labels", "masks"))
    ids, flipped, masks = z["ids"], torch.from_numpy(z["canary_labels"]), z["masks"]
    base = torch.from_numpy(np.setdiff1d(np.arange(len(ds.y_train)), ids))
    x_can = ds.x_train[torch.from_numpy(ids)]
    models = shard_range(a.num_models, a.models_per_job, shard)
    if eps is None:
        settings, private = a.control_train, {}
    else:
        calibration = noise_for(noise, eps)
        n_nominal = experiment_train_size(cfg, "audit", len(ds.y_train))
        settings = cfg.train
        private = {"privacy_settings": privacy_settings(cfg, calibration),
                   "schedule": dp_schedule(n_nominal, settings.batch_size, settings.epochs)}

    def run(k: int, ckpt: Path | None) -> dict[str, np.ndarray]:
        seed = model_seed(a.seed, k)
        drawn = torch.from_numpy(masks[k])
        x = torch.cat([ds.x_train[base], x_can[drawn]])
        y = torch.cat([ds.y_train[base], flipped[drawn]])
        model, metrics = train(fresh_model(cfg, ds, seed), x, y, settings, seed=seed, device=device,
                               checkpoint_path=ckpt, desc=f"audit {arm} model {k}", **private)
        if eps is not None:
            check_spent(metrics["epsilon"], eps)
        return {**_canary_scores(cfg, model, x_can, flipped, ids, device),
                "test_acc": np.array(evaluate(model, ds.x_test, ds.y_test, device=device)["acc"]),
                "epsilon_spent": np.array(metrics.get("epsilon", np.nan))}

    resume = open_resume(resume, cfg)
    rows = [resumable(resume, f"model{k}", partial(run, k)) for k in models]
    io.write_npz(out, arm=np.array(arm), models=np.array(list(models)), masks=masks[models.start:models.stop],
                 **{key: np.stack([r[key] for r in rows]) for key in rows[0]})
    close_resume(resume)


def _canary_scores(cfg: StudyConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: np.ndarray,
                   device: torch.device) -> dict[str, np.ndarray]:
    """What the attacker sees of each canary under one model: correctness and probability of its (flipped)
    training label, its loss, and its input curvature (the study's curvature score)."""
    ev = evaluate(model, x, y, device=device)
    curv = score_curvature(cfg, model, x, y, torch.from_numpy(ids), device)
    loss = -np.log(np.maximum(ev["prob"].astype(np.float64), np.finfo(np.float64).tiny))
    return {"correct": ev["correct"], "prob": ev["prob"], "loss": loss,
            "curvature": curv[cfg.resolved_defects["curvature_score"]]}


def _load_arms(shard_files: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """Every arm's models, in model order, from its shards."""
    by_arm: dict[str, list[Path]] = {}
    for f in shard_files:
        by_arm.setdefault(str(io.read_npz(f, ("arm",))["arm"]), []).append(f)
    keys = ("models", "masks", "correct", "prob", "loss", "curvature", "test_acc", "epsilon_spent")
    loaded = {arm: load_shards(files, keys) for arm, files in by_arm.items()}
    for z in loaded.values():
        order = np.argsort(z["models"])
        z.update({k: v[order] for k, v in z.items()})
    return loaded


def attack_scores(cfg: StudyConfig, z: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per (model, canary) score of each attack: the loss, the per-model score the memorization estimator averages
    (memorization.score), the input curvature."""
    return {"loss": z["loss"], "memorization": model_scores(cfg, z).astype(np.float64),
            "curvature": z["curvature"].astype(np.float64)}


def audit_tables(cfg: StudyConfig, canaries: Path, shards: list[Path], out: Path,
                 canaries_out: Path) -> None:
    """One row per arm and attack score (the bound and how it was reached) and one per arm and canary (its
    memorization, against 1 - e^-eps)."""
    a, delta = cfg.audit, cfg.privacy.delta
    c = io.read_npz(canaries, ("ids", "labels", "canary_labels"))
    ids, labels, flipped = c["ids"], c["labels"], c["canary_labels"]
    rows, canary_frames = [], []
    for arm, z in sorted(_load_arms(shards).items(), key=lambda kv: arm_epsilon(kv[0]) or math.inf):
        eps = arm_epsilon(arm)
        n_models = z["masks"].shape[0]
        n_select = min(max(1, round(a.selection_fraction * n_models)), n_models - 1)
        tiebreak = stream(a.seed, 2).random(z["masks"].shape)
        common = {"arm": arm, "private": eps is not None, "epsilon": eps if eps is not None else math.nan,
                  "epsilon_spent": float(np.max(z["epsilon_spent"])), "delta": delta, "confidence": a.confidence,
                  "canaries": len(ids), "models": n_models, "test_acc": float(np.mean(z["test_acc"]))}
        for name, score in attack_scores(cfg, z).items():
            rows.append({**common, "score": name, **audit_score(score, z["masks"], tiebreak, n_select, a, delta)})
        mem = memorization.memorization(z["masks"], model_scores(cfg, z))
        canary_frames.append(pd.DataFrame({
            "arm": arm, "epsilon": common["epsilon"], "id": ids, "label": labels, "canary_label": flipped,
            "mem": mem.mem, "n_in": mem.n_in, "n_out": mem.n_out,
            "bound": theory.mem_bound(eps) if eps is not None else math.nan}))
    write_table(pd.DataFrame(rows), out, cfg)
    write_table(pd.concat(canary_frames, ignore_index=True), canaries_out, cfg)
