"""The non-private subset models (link 1): seeded subsets, the models trained in shards, and the per-example table
of memorization and curvature computed from them; and the top-k most memorized examples that memorization vs
epsilon follows."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.analysis.readings import example_curvature_column
from memcurv.data.loading import Dataset
from memcurv.estimators import memorization
from memcurv.estimators.score_reduction import SCORES
from memcurv.jobs.toolkit import (close_resume, dataset, dataset_curvature, device_of, every_reading, fresh_model,
                                  load_shards, model_scores, open_resume, resumable, shard_range, write_table)
from memcurv.seeds import model_seed
from memcurv.settings import StudyConfig
from memcurv.tables import curvature_column
from memcurv.training.ensemble import train_ensemble
from memcurv.training.models import build_model
from memcurv.training.train import evaluate, train

log = logging.getLogger(__name__)


def write_subset_masks(cfg: StudyConfig, out: Path) -> None:
    m = cfg.memorization
    n = len(dataset(cfg).y_train)
    masks = memorization.subset_masks(n, range(m.num_models), m.subset_ratio, m.seed)
    io.write_npz(out, masks=masks)


def train_subset_shard(cfg: StudyConfig, masks: Path, shard: int, out: Path,
                       resume: Path | None = None) -> None:
    """Train one shard of subset models; keep each model's per-example score and, for the first
    `memorization.curvature_models` models, curvature on all training examples (the models themselves are
    not kept: hundreds of checkpoints are not needed).

    Trained one after another, finished models survive a killed job in `resume`; a stacked shard trains
    all its models at once and starts again."""
    m = cfg.memorization
    ds, device = dataset(cfg), device_of(cfg)
    models = shard_range(m.num_models, m.models_per_job, shard)
    shard_masks = io.read_npz(masks, ("masks",))["masks"][models.start:models.stop]
    settings = m.train
    seeds = [model_seed(m.seed, k) for k in models]
    subsets = [torch.from_numpy(np.flatnonzero(row)) for row in shard_masks]

    def scores(k: int, model: torch.nn.Module) -> dict[str, np.ndarray]:
        ev = evaluate(model, ds.x_train, ds.y_train, device=device)
        if m.curvature_models is None or k < m.curvature_models:
            curv = {curvature_column(s): v.astype(np.float32)
                    for s, v in dataset_curvature(cfg, model, ds, device).items()}
        else:  # not scored (memorization.curvature_models): NaN, left out of the per-example averages
            curv = {curvature_column(s): np.full(len(ds.y_train), np.nan, np.float32) for s in SCORES}
        test_acc = evaluate(model, ds.x_test, ds.y_test, device=device)["acc"]
        log.info("subset model %d: test acc %.3f", k, test_acc)
        return {"correct": ev["correct"], "prob": ev["prob"], **curv, "test_acc": np.array(test_acc)}

    if m.stacked:
        trained = train_ensemble(lambda: build_model(cfg.model, ds.input_shape, ds.num_classes, m.norm), ds.x_train,
                                 ds.y_train, subsets, seeds, settings, device=device)
        rows = [scores(k, model) for k, model in zip(models, trained)]
    else:
        def run(k: int, seed: int, idx: torch.Tensor, ckpt: Path | None) -> dict[str, np.ndarray]:
            return scores(k, train(fresh_model(cfg, ds, seed, m.norm), ds.x_train[idx], ds.y_train[idx], settings,
                                   seed=seed, device=device, checkpoint_path=ckpt, desc=f"subset model {k}")[0])

        resume = open_resume(resume, cfg)
        rows = [resumable(resume, f"model{k}", partial(run, k, seed, idx))
                for k, seed, idx in zip(models, seeds, subsets)]
    io.write_npz(out, models=np.array(list(models)), masks=shard_masks, **{key: np.stack([r[key] for r in rows])
                                                                    for key in rows[0]})
    close_resume(resume)


def examples_table(cfg: StudyConfig, shards: list[Path], out: Path, models_out: Path,
                   scores_out: Path) -> None:
    """Per training example: memorization, inclusion counts and curvature over subset models; per subset model
    (`models_out`): its normalisation, training-set size, test accuracy and whether its curvature was scored; and the
    per-model scores both are computed from (`scores_out`), which the claims' bootstrap resamples."""
    ds, m = dataset(cfg), cfg.memorization
    per_model_curvature = {s: curvature_column(s) for s in SCORES}  # the shards' arrays, and the scores file's
    keys = ("models", "masks", "correct", "prob", "test_acc", *per_model_curvature.values())
    z = load_shards(shards, keys)
    score = model_scores(cfg, z)
    mem = memorization.memorization(z["masks"], score)
    unc = memorization.memorization(z["masks"], score, estimator="unconditional")
    table = pd.DataFrame({"id": ds.ids.numpy(), "label": ds.y_train.numpy(), "mem": mem.mem,
                          "mem_unconditional": unc.mem, "n_in": mem.n_in, "n_out": mem.n_out,
                          "planted": _planted(ds)})
    scored = np.isfinite(z[per_model_curvature["trace"]]).all(axis=1)  # the models whose curvature was scored
    write_table(pd.DataFrame({"study": cfg.study, "model": z["models"], "norm": m.norm,
                              "train_size": z["masks"].sum(1),
                              "test_acc": z["test_acc"].astype(np.float64).round(6),  # float32 noise off
                              "curvature_scored": scored}), models_out, cfg)
    io.write_npz(scores_out, masks=z["masks"], score=score.astype(np.float32), scored=scored,
                 released_batch_size=np.array(cfg.curvature.released_batch_size.memorization),
                 **{name: z[name][scored] for name in per_model_curvature.values()})
    table["n_curvature_models"] = scored.sum()
    scored_scores = {s: z[name][scored] for s, name in per_model_curvature.items()}
    for (s, r), per_model in every_reading(cfg, scored_scores, "memorization").items():
        for agg, values in memorization.aggregate_by_membership(z["masks"][scored], per_model).items():
            table[curvature_column(s, r, agg)] = values
    if m.published_scores:
        from memcurv.analysis.published import load_published_memorization

        table["mem_published"] = load_published_memorization(m.published_scores, ds.y_train.numpy(),
                                                              m.published_index_map,
                                                              cfg.resolved_defects["index_mapping"])
    if m.cscores:
        from memcurv.analysis.cscores import load_cscores

        original = dataset(cfg, label_noise=False).y_train.numpy()
        table["cscore"] = load_cscores(m.cscores, original, verify_checksum=cfg.dataset.verify_checksums)
    column = example_curvature_column(cfg.resolved_defects)
    table["curvature"], table["curvature_column"] = table[column], column
    write_table(table, out, cfg)


def _planted(ds: Dataset) -> np.ndarray:
    planted = np.full(len(ds.y_train), "" if not ds.ground_truth else "typical", dtype=object)
    for kind, ids in ds.ground_truth.items():
        planted[ids] = kind
    return planted


def write_topk(cfg: StudyConfig, examples: Path, out: Path) -> None:
    """The most memorized examples by this run's scores or, with `topk_source: published` (the released
    code's choice), by the published Feldman-Zhang scores."""
    table = pd.read_csv(examples)
    column = "mem" if cfg.mem_vs_epsilon.topk_source == "run" else "mem_published"
    ids = memorization.top_k(table[column].to_numpy(), cfg.mem_vs_epsilon.top_k)
    io.write_json(out, {"ids": ids.tolist(), "source": column, "mem": table[column].to_numpy()[ids].tolist(),
                        "labels": table["label"].to_numpy()[ids].tolist()})
