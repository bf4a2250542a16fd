"""The DP models on the full training set (links 2 and the loss claim): one per epsilon and seed, trained and scored
for curvature on the training set and on test examples in shards of the epsilon x seed grid, and summed up in one
table."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.analysis.readings import model_curvature_column
from memcurv.config import format_epsilon
from memcurv.data.loading import Dataset
from memcurv.estimators.score_reduction import SCORES
from memcurv.jobs.toolkit import (check_spent, close_resume, dataset, dataset_curvature, device_of, every_reading,
                                  fresh_model, grid_shard, model_from_state, noise_for, open_resume, privacy_settings,
                                  resumable, write_table)
from memcurv.settings import StudyConfig
from memcurv.tables import curvature_column
from memcurv.training.train import evaluate, train


def train_dp_shard(cfg: StudyConfig, shard: int, noise: Path, out_dir: Path, resume: Path | None = None) -> None:
    """One shard of DP models (`dp_models.models_per_job` of the epsilon x seed grid, epsilon by epsilon), each trained
    on the full training set and scored for curvature in the same process: in a small study, starting a process
    (torch and Opacus imported, the dataset read) cost more than training a model.  Writes the shard's checkpoints
    (models.pt), metrics (one entry per model) and curvature (stacked by model, with its epsilon and seed); a model
    finished before a kill is kept in `resume`."""
    d = cfg.dp_models
    models = [(eps, d.seeds[i]) for eps, i in grid_shard(d.epsilons, len(d.seeds), d.models_per_job, shard)]
    ds, device = dataset(cfg), device_of(cfg)
    resume = open_resume(resume, cfg)
    done = [resumable(resume, f"eps{format_epsilon(eps)}_seed{seed}",
                      partial(_dp_model, cfg, ds, device, eps, seed, noise_for(noise, eps))) for eps, seed in models]
    with io.atomic_path(out_dir / "models.pt") as tmp:
        torch.save({"config": cfg.as_dict(), "models": [{"epsilon": eps, "seed": seed, "state_dict": m["state_dict"]}
                                                        for (eps, seed), m in zip(models, done, strict=True)]}, tmp)
    io.write_json(out_dir / "metrics.json", [m["metrics"] for m in done])
    io.write_npz(out_dir / "curvature.npz", epsilons=np.array([eps for eps, _ in models]),
                 seeds=np.array([seed for _, seed in models]), ids=ds.ids.numpy(),
                 **{key: np.stack([m["curvature"][key] for m in done]) for key in done[0]["curvature"]})
    close_resume(resume)


def _dp_model(cfg: StudyConfig, ds: Dataset, device: torch.device, epsilon: float, seed: int,
              calibration: dict[str, Any], epoch: Path | None) -> dict[str, Any]:
    """One DP model's `state_dict`, `metrics` (accuracy and loss on both splits, the epsilon spent) and `curvature`
    (of the scored training examples, and of the scored test examples as `test_<score>`: whether a trend with
    epsilon is the training set's or any input's is one test of link 2's explanation); `epoch` is its epoch
    checkpoint."""
    model, metrics = train(fresh_model(cfg, ds, seed), ds.x_train, ds.y_train, cfg.train,
                           privacy_settings=privacy_settings(cfg, calibration), seed=seed, device=device,
                           checkpoint_path=epoch, progress=True, desc=f"eps={format_epsilon(epsilon)} seed={seed}")
    check_spent(metrics["epsilon"], epsilon)
    for split, (x, y) in {"train": (ds.x_train, ds.y_train), "test": (ds.x_test, ds.y_test)}.items():
        ev = evaluate(model, x, y, device=device)
        metrics[f"{split}_loss"], metrics[f"{split}_acc"] = ev["loss"], ev["acc"]
    metrics.update(target_epsilon=epsilon, seed=seed, fidelity=cfg.fidelity,
                   provenance=io.provenance(cfg, seed=seed, device=str(device)))
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    scored = model_from_state(cfg, ds, state, device)  # scored as saved: a plain module, whatever training left
    c = cfg.curvature
    curvature = {**dataset_curvature(cfg, scored, ds, device, progress=True, sample=c.train_examples),
                 **{f"test_{s}": v for s, v in dataset_curvature(cfg, scored, ds, device, progress=True,
                                                                 split="test", sample=c.test_examples).items()}}
    return {"state_dict": state, "metrics": metrics, "curvature": curvature}


def dp_models_table(cfg: StudyConfig, shards: list[Path], out: Path) -> None:
    """One row per DP model: its metrics and mean curvature under every reading (`shards`: the shard folders)."""
    column = model_curvature_column(cfg.resolved_defects)
    rows = []
    for shard in shards:
        curv = io.read_npz(shard / "curvature.npz")
        models = io.read_json(shard / "metrics.json")
        in_metrics = [(m["target_epsilon"], m["seed"]) for m in models]
        in_curvature = list(zip(curv["epsilons"].tolist(), curv["seeds"].tolist()))
        if in_metrics != in_curvature:
            raise ValueError(f"{shard}: metrics of (epsilon, seed) {in_metrics} but curvature of {in_curvature}; "
                             "rerun the shard")
        for i, m in enumerate(models):
            readings = every_reading(cfg, {s: curv[s][i] for s in SCORES}, "dp_models")
            means = {curvature_column(s, r): float(v.mean()) for (s, r), v in readings.items()}
            means.update({curvature_column(s, "sum", test=True): float(curv[f"test_{s}"][i].mean())
                          for s in SCORES})
            rows.append(_dp_row(cfg, m, means, column))
    write_table(pd.DataFrame(rows).sort_values(["epsilon", "seed"]), out, cfg)


def _dp_row(cfg: StudyConfig, m: dict[str, Any], means: dict[str, float], column: str) -> dict[str, Any]:
    return {"study": cfg.study, "fidelity": cfg.fidelity, "epsilon": m["target_epsilon"], "seed": m["seed"],
            "noise_multiplier": m["noise_multiplier"], "epsilon_spent": m["epsilon"], "sample_rate": m["sample_rate"],
            "steps": m["steps"], "seconds": m["seconds"], "train_loss": m["train_loss"],
            "train_acc": m["train_acc"], "test_loss": m["test_loss"], "test_acc": m["test_acc"], **means,
            "curvature_column": column, "curvature": means[column]}
