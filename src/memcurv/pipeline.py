"""The workflow's jobs: each reads a validated study config and input files, writes its outputs
atomically.  The command line (memcurv.cli) is a thin layer over these functions."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memcurv import io, memorization
from memcurv.config import EXPERIMENTS, ConfigError, dataset_title, format_epsilon, num_shards
from memcurv.curvature import REDUCTIONS, SCORES, curvature_scores, reduce_scores
from memcurv.data import Dataset, fetch, load_dataset
from memcurv.ensemble import train_ensemble
from memcurv.label_noise import flip_labels
from memcurv.models import build_model
from memcurv.readings import example_curvature_column, model_curvature_column
from memcurv.seeds import model_seed, stream
from memcurv.settings import StudyConfig
from memcurv.train import PrivacySettings, dp_schedule, evaluate, train

log = logging.getLogger("memcurv.pipeline")

DATA_CACHE = Path("resources/cache")  # decoded images of compressed datasets, shared by a study's jobs


def device_of(cfg: StudyConfig) -> torch.device:
    want = cfg.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key device = cuda, but no GPU is visible; use device: auto or cpu")
    return torch.device("cuda" if want in ("cuda", "auto") and torch.cuda.is_available() else "cpu")


def dataset(cfg: StudyConfig, label_noise: bool = True) -> Dataset:
    """The study's dataset, with its labels flipped where the config asks for label noise (unless `label_noise` is
    false: the original labels)."""
    d = cfg.dataset
    ds = load_dataset(d.name, root=d.root, download=d.download, verify_checksums=d.verify_checksums,
                      seed=d.seed, cache_dir=DATA_CACHE, **d.options)
    return flip_labels(ds, d.label_noise.fraction, d.label_noise.seed) if label_noise else ds


def download(cfg: StudyConfig, out: Path) -> None:
    """Fetch the dataset into dataset.root where it comes from the internet; `out` records what was fetched."""
    fetch(cfg.dataset, out)


def privacy_settings(cfg: StudyConfig, noise: dict[str, Any]) -> PrivacySettings:
    p = cfg.privacy
    return PrivacySettings(noise_multiplier=noise["noise_multiplier"], max_grad_norm=p.max_grad_norm,
                           delta=p.delta, accountant=noise["accountant"], grad_sample_mode=p.grad_sample_mode)


def fresh_model(cfg: StudyConfig, ds: Dataset, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(cfg.model, ds.input_shape, ds.num_classes)


def _curvature(cfg: StudyConfig, model: torch.nn.Module, ds: Dataset, device: torch.device,
               progress: bool = False, split: str = "train") -> dict[str, np.ndarray]:
    """Per-example curvature of the training examples, or of the scored test examples (`scored_test_ids`); test
    examples get probe ids after the training ids, so no test probe repeats a training one."""
    if split == "train":
        x, y, ids = ds.x_train, ds.y_train, ds.ids
    else:
        test = torch.from_numpy(scored_test_ids(cfg, len(ds.y_test)))
        x, y, ids = ds.x_test[test], ds.y_test[test], test + len(ds.y_train)
    return score_curvature(cfg, model, x, y, ids, device, progress)


def score_curvature(cfg: StudyConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
                    device: torch.device, progress: bool = False) -> dict[str, np.ndarray]:
    """Per-example curvature scores of (x, y) (probes fixed by `ids`) with the study's curvature settings."""
    c = cfg.curvature
    return curvature_scores(model, x, y, ids=ids, probes=c.probes, residual_probes=c.residual_probes,
                            split_trace=c.split_trace, h=c.h, method=c.method, batch_size=c.batch_size, seed=c.seed,
                            device=device, progress=progress)


def scored_test_ids(cfg: StudyConfig, n_test: int) -> np.ndarray:
    """The test examples whose curvature DP models are scored on: all, or `curvature.test_examples` of them drawn
    once by the curvature seed (sorted), the same for every model."""
    k = cfg.curvature.test_examples
    if k is None or k >= n_test:
        return np.arange(n_test)
    return np.sort(stream(cfg.curvature.seed, n_test).choice(n_test, size=k, replace=False))


# --- DP models: calibration, training, curvature -------------------------------------------------

def experiment_train_size(cfg: StudyConfig, experiment: str, n: int) -> int:
    """Training-set size of one model of an experiment (the subset size for memorization vs epsilon)."""
    if experiment == "dp_models":
        return n
    if experiment == "audit":  # nominal: the canaries' originals left out, half the canaries (expected) drawn in
        canaries = cfg.audit.canaries
        return n - canaries + canaries // 2
    m = cfg.mem_vs_epsilon
    k = m.top_k
    return round(m.subset_ratio * (n - k)) + k // 2


def calibrate(cfg: StudyConfig, experiment: str, epsilons: list[float], out: Path) -> None:
    """Noise multiplier for each target epsilon of an experiment, keyed by the epsilon's file-name text."""
    from memcurv import privacy

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {EXPERIMENTS}")
    n = experiment_train_size(cfg, experiment, len(dataset(cfg).y_train))
    rate, steps = dp_schedule(n, cfg.train.batch_size, cfg.train.epochs)
    p = cfg.privacy
    cals = {format_epsilon(e): privacy.calibrate_noise(e, p.delta, rate, steps, p.accountant).to_dict()
            for e in epsilons}
    io.write_json(out, {"experiment": experiment, "train_size": n, "calibrations": cals,
                        "provenance": io.provenance(cfg)})


def noise_for(noise_file: Path, epsilon: float) -> dict[str, Any]:
    """The calibration of one epsilon from the experiment's noise file."""
    cals = io.read_json(noise_file)["calibrations"]
    if format_epsilon(epsilon) not in cals:
        raise ValueError(f"epsilon {epsilon} is not calibrated in {noise_file}; rerun `calibrate` with it")
    return cals[format_epsilon(epsilon)]


def check_spent(spent: float, epsilon: float) -> None:
    """Refuse to write a model that spent more privacy than its target (calibration promised otherwise)."""
    if spent > epsilon * (1 + 1e-9):
        raise RuntimeError(f"spent epsilon {spent:.4f} exceeds the target {epsilon}")


# --- Resuming killed jobs ---------------------------------------------------------------------------
# A training job keeps its progress in a folder of its own (not a declared output: Snakemake deletes the
# outputs of failed jobs): each epoch's checkpoint and, in shard jobs, every finished model's results.

def open_resume(resume: Path | None, cfg: StudyConfig) -> Path | None:
    """The job's resume folder, emptied first if a run under another configuration left it: a rerun after
    a config change must not continue a model trained under the old settings."""
    if resume is None:
        return None
    stamp, want = resume / "config_hash", io.config_hash(cfg)
    if resume.exists() and (not stamp.exists() or stamp.read_text() != want):
        log.warning("%s holds progress made under another configuration: starting afresh", resume)
        shutil.rmtree(resume)
    resume.mkdir(parents=True, exist_ok=True)
    stamp.write_text(want)
    return resume


def close_resume(resume: Path | None) -> None:
    """Drop the job's progress once its outputs are written."""
    if resume is not None:
        shutil.rmtree(resume, ignore_errors=True)


def resumable(resume: Path | None, k: int,
               run: Callable[[Path | None], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Model k's results: read back if an earlier, killed run of the job finished it, else computed by
    run(epoch checkpoint path) and kept until the job's outputs are written."""
    if resume is None:
        return run(None)
    done = resume / f"model{k}.npz"
    if done.exists():
        log.info("model %d: results kept from an interrupted run", k)
        with np.load(done) as z:
            return {key: z[key] for key in z.files}
    result = run(resume / f"model{k}.pt")
    io.write_npz(done, **result)
    (resume / f"model{k}.pt").unlink(missing_ok=True)
    return result


# --- DP models on the full training set ----------------------------------------------------------

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


def load_model(cfg: StudyConfig, ds: Dataset, checkpoint: Path, device: torch.device) -> torch.nn.Module:
    saved = torch.load(checkpoint, map_location=device, weights_only=True)  # tensors and plain data only
    model = build_model(cfg.model, ds.input_shape, ds.num_classes)
    model.load_state_dict(saved["state_dict"])
    return model.to(device)


def model_curvature(cfg: StudyConfig, checkpoint: Path, out: Path) -> None:
    """Curvature of every training example under one trained model, and of the scored test examples (`test_<score>`,
    `curvature.test_examples`): whether a trend with epsilon is the training set's or any input's is one test of
    link 2's explanation."""
    ds, device = dataset(cfg), device_of(cfg)
    model = load_model(cfg, ds, checkpoint, device)
    scores = _curvature(cfg, model, ds, device, progress=True)
    test = _curvature(cfg, model, ds, device, progress=True, split="test")
    io.write_npz(out, ids=ds.ids.numpy(), **scores, **{f"test_{s}": v for s, v in test.items()})


def every_reading(cfg: StudyConfig, scores: dict[str, np.ndarray], experiment: str) -> dict[str, np.ndarray]:
    """Per-example curvature scores (computed sum-reduced) under both loss reductions, keyed
    curv_<score>_<reduction>: what a table needs so that any reading can pick its column.  The batch-mean
    reading divides by the batch size of the released scorer of `experiment` (dp_models or memorization)."""
    bs = getattr(cfg.curvature.released_batch_size, experiment)
    return {f"curv_{s}_{r}": v for r in REDUCTIONS for s, v in reduce_scores(scores, r, bs).items()}


def dp_models_table(cfg: StudyConfig, metrics: list[Path], curvature: list[Path], out: Path) -> None:
    column = model_curvature_column(cfg.resolved_defects)
    rows = []
    for mf, cf in zip(metrics, curvature, strict=True):
        m = io.read_json(mf)
        with np.load(cf) as curv:
            readings = every_reading(cfg, {s: curv[s] for s in SCORES}, "dp_models")
            means = {k: float(v.mean()) for k, v in readings.items()}
            means.update({f"test_curv_{s}_sum": float(curv[f"test_{s}"].mean()) for s in SCORES})
        rows.append({"study": cfg.study, "fidelity": cfg.fidelity, "epsilon": m["target_epsilon"],
                     "seed": m["seed"], "noise_multiplier": m["noise_multiplier"], "epsilon_spent": m["epsilon"],
                     "sample_rate": m["sample_rate"], "steps": m["steps"], "seconds": m["seconds"],
                     "train_loss": m["train_loss"], "train_acc": m["train_acc"], "test_loss": m["test_loss"],
                     "test_acc": m["test_acc"], **means, "curvature_column": column, "curvature": means[column]})
    write_table(pd.DataFrame(rows).sort_values(["epsilon", "seed"]), out, cfg)


def write_table(df: pd.DataFrame, out: Path, cfg: StudyConfig) -> None:
    """A table and, beside it, the provenance that makes its numbers citable."""
    with io.atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    io.write_json(io.provenance_path(out), {**io.provenance(cfg), "dataset": dataset_title(cfg),
                                            "fidelity": cfg.fidelity, "resolved_defects": cfg.resolved_defects,
                                            "rows": len(df)})


# --- Non-private subset models: memorization and per-model curvature ------------------------------

def write_subset_masks(cfg: StudyConfig, out: Path) -> None:
    m = cfg.memorization
    n = len(dataset(cfg).y_train)
    masks = memorization.subset_masks(n, range(m.num_models), m.subset_ratio, m.seed)
    io.write_npz(out, masks=masks)


def shard_range(total: int, per_job: int, shard: int) -> range:
    start = shard * per_job
    if not 0 <= start < total:
        raise ValueError(f"shard {shard} is outside the {num_shards(total, per_job)} shards of {total} models")
    return range(start, min(total, start + per_job))


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
    with np.load(masks) as f:
        shard_masks = f["masks"][models.start:models.stop]
    settings = m.train
    seeds = [model_seed(m.seed, k) for k in models]
    subsets = [torch.from_numpy(np.flatnonzero(row)) for row in shard_masks]

    def scores(k: int, model: torch.nn.Module) -> dict[str, np.ndarray]:
        ev = evaluate(model, ds.x_train, ds.y_train, device=device)
        if m.curvature_models is None or k < m.curvature_models:
            curv = {f"curv_{s}": v.astype(np.float32) for s, v in _curvature(cfg, model, ds, device).items()}
        else:  # not scored (memorization.curvature_models): NaN, left out of the per-example averages
            curv = {f"curv_{s}": np.full(len(ds.y_train), np.nan, np.float32) for s in SCORES}
        test_acc = evaluate(model, ds.x_test, ds.y_test, device=device)["acc"]
        log.info("subset model %d: test acc %.3f", k, test_acc)
        return {"correct": ev["correct"], "prob": ev["prob"], **curv, "test_acc": np.array(test_acc)}

    if m.stacked:
        trained = train_ensemble(lambda: build_model(cfg.model, ds.input_shape, ds.num_classes), ds.x_train,
                                 ds.y_train, subsets, seeds, settings, device=device)
        rows = [scores(k, model) for k, model in zip(models, trained)]
    else:
        def run(k: int, seed: int, idx: torch.Tensor, ckpt: Path | None) -> dict[str, np.ndarray]:
            return scores(k, train(fresh_model(cfg, ds, seed), ds.x_train[idx], ds.y_train[idx], settings, seed=seed,
                                   device=device, checkpoint_path=ckpt, desc=f"subset model {k}")[0])

        resume = open_resume(resume, cfg)
        rows = [resumable(resume, k, partial(run, k, seed, idx)) for k, seed, idx in zip(models, seeds, subsets)]
    io.write_npz(out, models=np.array(list(models)), masks=shard_masks, **{key: np.stack([r[key] for r in rows])
                                                                    for key in rows[0]})
    close_resume(resume)


def model_scores(cfg: StudyConfig, shards: dict[str, np.ndarray]) -> np.ndarray:
    """The per-model score memorization is computed from: 0/1 correctness or true-label probability."""
    return shards["correct"] if cfg.memorization.score == "correctness" else shards["prob"]


def load_shards(files: list[Path], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for f in files:
        with np.load(f) as z:
            for k in keys:
                parts[k].append(z[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def examples_table(cfg: StudyConfig, shards: list[Path], out: Path, models_out: Path,
                   scores_out: Path) -> None:
    """Per training example: memorization, inclusion counts and curvature over subset models; per subset model
    (`models_out`): its training-set size, test accuracy and whether its curvature was scored; and the per-model
    scores both are computed from (`scores_out`), which the claims' bootstrap resamples."""
    ds, m = dataset(cfg), cfg.memorization
    keys = ("models", "masks", "correct", "prob", "test_acc", *[f"curv_{s}" for s in SCORES])
    z = load_shards(shards, keys)
    score = model_scores(cfg, z)
    mem = memorization.memorization(z["masks"], score)
    unc = memorization.memorization(z["masks"], score, estimator="unconditional")
    table = pd.DataFrame({"id": ds.ids.numpy(), "label": ds.y_train.numpy(), "mem": mem.mem,
                          "mem_unconditional": unc.mem, "n_in": mem.n_in, "n_out": mem.n_out,
                          "planted": _planted(ds)})
    scored = np.isfinite(z["curv_trace"]).all(axis=1)  # the models whose curvature was scored
    write_table(pd.DataFrame({"study": cfg.study, "model": z["models"], "train_size": z["masks"].sum(1),
                             "test_acc": z["test_acc"].astype(np.float64).round(6),  # float32 noise off
                             "curvature_scored": scored}), models_out, cfg)
    io.write_npz(scores_out, masks=z["masks"], score=score.astype(np.float32), scored=scored,
                 released_batch_size=np.array(cfg.curvature.released_batch_size.memorization),
                 **{f"curv_{s}": z[f"curv_{s}"][scored] for s in SCORES})
    table["n_curvature_models"] = scored.sum()
    scored_scores = {s: z[f"curv_{s}"][scored] for s in SCORES}
    for name, per_model in every_reading(cfg, scored_scores, "memorization").items():
        for agg, values in memorization.aggregate_by_membership(z["masks"][scored], per_model).items():
            table[f"{name}_{agg}"] = values
    if m.published_scores:
        from memcurv.published import load_published_memorization

        table["mem_published"] = load_published_memorization(m.published_scores, ds.y_train.numpy(),
                                                              m.published_index_map,
                                                              cfg.resolved_defects["index_mapping"])
    if m.cscores:
        from memcurv.cscores import load_cscores

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


# --- DP subset models: memorization of the top-k vs epsilon ---------------------------------------

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
    rows = [resumable(resume, k, partial(run, k, mask)) for k, mask in zip(models, masks)]
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


# --- Images for the extremes figure ---------------------------------------------------------------

def write_extremes(cfg: StudyConfig, examples: Path, out: Path) -> None:
    f = cfg.figures
    ds = dataset(cfg)
    table = pd.read_csv(examples)
    table = table[np.isfinite(table["curvature"])]
    picks: list[tuple[str, pd.DataFrame]] = []
    for label in sorted(table["label"].unique())[: f.extremes_classes]:
        ranked = table[table["label"] == label].sort_values("curvature")
        picks.append(("low_curvature", ranked.head(f.extremes_per_class)))
        picks.append(("high_curvature", ranked.tail(f.extremes_per_class)))
    picks.append(("most_memorized", table[np.isfinite(table["mem"])].nlargest(f.most_memorized, "mem")))
    chosen = pd.concat([p for _, p in picks])
    kinds = np.concatenate([[k] * len(p) for k, p in picks])
    io.write_npz(out, images=ds.images(chosen["id"].to_numpy()), ids=chosen["id"].to_numpy(),
                 labels=chosen["label"].to_numpy(), curvature=chosen["curvature"].to_numpy(),
                 mem=chosen["mem"].to_numpy(), kind=kinds, class_names=np.array(ds.classes),
                 curvature_column=np.array(table["curvature_column"].iloc[0]))


def configure_torch(threads: int | None, deterministic: bool) -> None:
    """Thread count for CPU jobs; deterministic kernels when the config asks for bit-for-bit GPU reruns."""
    if threads:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
