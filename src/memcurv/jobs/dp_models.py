"""The DP models on the full training set (links 2 and the loss claim): one per epsilon and seed, trained, scored for
curvature on the training set and on test examples, and summed up in one table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.analysis.readings import model_curvature_column
from memcurv.config import format_epsilon
from memcurv.estimators.curvature import SCORES
from memcurv.jobs.toolkit import (check_spent, close_resume, dataset, dataset_curvature, device_of, every_reading,
                                  fresh_model, load_model, noise_for, open_resume, privacy_settings, write_table)
from memcurv.settings import StudyConfig
from memcurv.tables import curvature_column
from memcurv.training.train import evaluate, train


def train_dp_model(cfg: StudyConfig, epsilon: float, seed: int, noise: Path, out_dir: Path,
                   resume: Path | None) -> None:
    """One DP model on the full training set: checkpoint and metrics."""
    ds, device = dataset(cfg), device_of(cfg)
    calibration = noise_for(noise, epsilon)
    resume = open_resume(resume, cfg)
    model, metrics = train(fresh_model(cfg, ds, seed), ds.x_train, ds.y_train, cfg.train,
                           privacy_settings=privacy_settings(cfg, calibration), seed=seed, device=device,
                           checkpoint_path=None if resume is None else resume / "checkpoint.pt", progress=True,
                           desc=f"eps={format_epsilon(epsilon)} seed={seed}")
    check_spent(metrics["epsilon"], epsilon)
    for split, (x, y) in {"train": (ds.x_train, ds.y_train), "test": (ds.x_test, ds.y_test)}.items():
        ev = evaluate(model, x, y, device=device)
        metrics[f"{split}_loss"], metrics[f"{split}_acc"] = ev["loss"], ev["acc"]
    metrics.update(target_epsilon=epsilon, seed=seed, fidelity=cfg.fidelity,
                   provenance=io.provenance(cfg, seed=seed, device=str(device)))
    with io.atomic_path(out_dir / "model.pt") as tmp:
        torch.save({"state_dict": model.state_dict(), "config": cfg.as_dict(), "epsilon": epsilon, "seed": seed}, tmp)
    io.write_json(out_dir / "metrics.json", metrics)
    close_resume(resume)


def model_curvature(cfg: StudyConfig, checkpoint: Path, out: Path) -> None:
    """Curvature of every training example under one trained model, and of the scored test examples (`test_<score>`,
    `curvature.test_examples`): whether a trend with epsilon is the training set's or any input's is one test of
    link 2's explanation."""
    ds, device = dataset(cfg), device_of(cfg)
    model = load_model(cfg, ds, checkpoint, device)
    scores = dataset_curvature(cfg, model, ds, device, progress=True)
    test = dataset_curvature(cfg, model, ds, device, progress=True, split="test")
    io.write_npz(out, ids=ds.ids.numpy(), **scores, **{f"test_{s}": v for s, v in test.items()})


def dp_models_table(cfg: StudyConfig, metrics: list[Path], curvature: list[Path], out: Path) -> None:
    column = model_curvature_column(cfg.resolved_defects)
    rows = []
    for mf, cf in zip(metrics, curvature, strict=True):
        m = io.read_json(mf)
        with np.load(cf) as curv:
            readings = every_reading(cfg, {s: curv[s] for s in SCORES}, "dp_models")
            means = {curvature_column(s, r): float(v.mean()) for (s, r), v in readings.items()}
            means.update({curvature_column(s, "sum", test=True): float(curv[f"test_{s}"].mean()) for s in SCORES})
        rows.append({"study": cfg.study, "fidelity": cfg.fidelity, "epsilon": m["target_epsilon"],
                     "seed": m["seed"], "noise_multiplier": m["noise_multiplier"], "epsilon_spent": m["epsilon"],
                     "sample_rate": m["sample_rate"], "steps": m["steps"], "seconds": m["seconds"],
                     "train_loss": m["train_loss"], "train_acc": m["train_acc"], "test_loss": m["test_loss"],
                     "test_acc": m["test_acc"], **means, "curvature_column": column, "curvature": means[column]})
    write_table(pd.DataFrame(rows).sort_values(["epsilon", "seed"]), out, cfg)
