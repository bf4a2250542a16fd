"""What every job uses: the study's dataset and device, fresh and saved models, DP settings from a calibration,
curvature with the study's settings, resumable training, shards, and tables written with their provenance.  No job
lives here: the jobs are the other modules of memcurv.jobs."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memcurv import io
from memcurv.config import ConfigError, dataset_title, format_epsilon, num_shards
from memcurv.data.label_noise import flip_labels
from memcurv.data.loading import Dataset, load_dataset
from memcurv.estimators.curvature import curvature_scores
from memcurv.estimators.score_reduction import REDUCTIONS, reduce_scores
from memcurv.seeds import stream
from memcurv.settings import StudyConfig
from memcurv.training.models import build_model
from memcurv.training.train import PrivacySettings

log = logging.getLogger(__name__)

DATA_CACHE = Path("resources/cache")  # decoded images of compressed datasets, shared by a study's jobs


def configure_torch(threads: int | None, deterministic: bool) -> None:
    """Thread count for CPU jobs; deterministic kernels when the config asks for bit-for-bit GPU reruns."""
    if threads:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


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


def fresh_model(cfg: StudyConfig, ds: Dataset, seed: int, norm: str = "group") -> torch.nn.Module:
    """The study's model, initialised from `seed`, with `norm` normalisation (GroupNorm, which DP training needs,
    unless a non-private role says otherwise: memorization.norm)."""
    torch.manual_seed(seed)
    return build_model(cfg.model, ds.input_shape, ds.num_classes, norm)


def model_from_state(cfg: StudyConfig, ds: Dataset, state: dict[str, torch.Tensor], device: torch.device
                     ) -> torch.nn.Module:
    """A fresh module of the study's model holding `state` (a state dict), on `device`."""
    model = build_model(cfg.model, ds.input_shape, ds.num_classes)
    model.load_state_dict(state)
    return model.to(device)


# --- Privacy: the calibration of an epsilon, and the check on what a model spent ---------------------

def experiment_train_size(cfg: StudyConfig, experiment: str, n: int) -> int:
    """Training-set size of one model of an experiment, nominal where sizes vary (the audit's canaries, Poisson
    subsets of memorization vs epsilon: their expected size): the size the noise is calibrated, and the DP schedule
    fixed, for."""
    if experiment == "dp_models":
        return n
    if experiment == "audit":  # nominal: the canaries' originals left out, half the canaries (expected) drawn in
        canaries = cfg.audit.canaries
        return n - canaries + canaries // 2
    m = cfg.mem_vs_epsilon
    k = m.top_k
    return round(m.subset_ratio * (n - k)) + k // 2


def noise_for(noise_file: Path, epsilon: float) -> dict[str, Any]:
    """The calibration of one epsilon from the experiment's noise file."""
    cals = io.read_json(noise_file)["calibrations"]
    if format_epsilon(epsilon) not in cals:
        raise ValueError(f"epsilon {epsilon} is not calibrated in {noise_file}; rerun `calibrate` with it")
    return cals[format_epsilon(epsilon)]


def privacy_settings(cfg: StudyConfig, noise: dict[str, Any]) -> PrivacySettings:
    p = cfg.privacy
    return PrivacySettings(noise_multiplier=noise["noise_multiplier"], max_grad_norm=p.max_grad_norm,
                           delta=p.delta, accountant=noise["accountant"], grad_sample_mode=p.grad_sample_mode)


def check_spent(spent: float, epsilon: float) -> None:
    """Refuse to write a model that spent more privacy than its target (calibration promised otherwise)."""
    if spent > epsilon * (1 + 1e-9):
        raise RuntimeError(f"spent epsilon {spent:.4f} exceeds the target {epsilon}")


# --- Curvature with the study's settings ----------------------------------------------------------

def dataset_curvature(cfg: StudyConfig, model: torch.nn.Module, ds: Dataset, device: torch.device,
                      progress: bool = False, split: str = "train", sample: int | None = None
                      ) -> dict[str, np.ndarray]:
    """Per-example curvature of the training or the test examples: all of them, or `sample` of them
    (`scored_ids`); test examples get probe ids after the training ids, so no test probe repeats a training one."""
    x, y, ids = (ds.x_train, ds.y_train, ds.ids) if split == "train" else (
        ds.x_test, ds.y_test, torch.arange(len(ds.y_test)) + len(ds.y_train))
    if sample is not None and sample < len(y):
        index = torch.from_numpy(scored_ids(cfg, len(y), sample, split))
        x, y, ids = x[index], y[index], ids[index]
    return score_curvature(cfg, model, x, y, ids, device, progress)


def score_curvature(cfg: StudyConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor,
                    device: torch.device, progress: bool = False) -> dict[str, np.ndarray]:
    """Per-example curvature scores of (x, y) (probes fixed by `ids`) with the study's curvature settings."""
    c = cfg.curvature
    return curvature_scores(model, x, y, ids=ids, probes=c.probes, residual_probes=c.residual_probes,
                            split_trace=c.split_trace, h=c.h, method=c.method, batch_size=c.batch_size, seed=c.seed,
                            device=device, progress=progress)


def scored_ids(cfg: StudyConfig, n: int, sample: int | None, split: str) -> np.ndarray:
    """The examples of a split (of n) that a DP model's mean curvature is taken over: all, or `sample` of them drawn
    once by the curvature seed (sorted), the same for every model, so that models are compared on the same inputs
    (curvature.train_examples, curvature.test_examples)."""
    if sample is None or sample >= n:
        return np.arange(n)
    path = () if split == "test" else (1,)  # the training sample is not the test sample's indices again
    return np.sort(stream(cfg.curvature.seed, n, *path).choice(n, size=sample, replace=False))


def every_reading(cfg: StudyConfig, scores: dict[str, np.ndarray], experiment: str
                  ) -> dict[tuple[str, str], np.ndarray]:
    """Per-example curvature scores (computed sum-reduced) under both loss reductions, keyed (score, reduction):
    what a table needs so that any reading can pick its column (memcurv.tables.curvature_column).  The batch-mean
    reading divides by the batch size of the released scorer of `experiment` (dp_models or memorization)."""
    bs = getattr(cfg.curvature.released_batch_size, experiment)
    return {(s, r): v for r in REDUCTIONS for s, v in reduce_scores(scores, r, bs).items()}


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


Kept = Any  # a finished model's results: tensors, numpy arrays, numbers and strings, in dicts and lists
_ARRAY = "__numpy__"  # marks a numpy array saved as a tensor, so that it is read back as one


def resumable(resume: Path | None, name: str, run: Callable[[Path | None], Kept]) -> Kept:
    """A model's results: read back if an earlier, killed run of the job finished it, else computed by
    run(epoch checkpoint path) and kept as `<name>.pt` until the job's outputs are written; its epoch checkpoint,
    `<name>_epoch.pt`, goes once it is finished.  Read with weights_only, so a file left in a shared results folder
    cannot run code."""
    if resume is None:
        return run(None)
    done, epoch = resume / f"{name}.pt", resume / f"{name}_epoch.pt"
    if done.exists():
        try:
            result = kept_results(done)
            log.info("%s: kept from an interrupted run", name)
            return result
        except Exception as e:  # noqa: BLE001 - any unreadable file: set aside, not a block on every rerun
            set_aside(done, e)
    result = run(epoch)
    with io.atomic_path(done) as tmp:
        torch.save(_as_tensors(result), tmp)
    epoch.unlink(missing_ok=True)
    return result


def set_aside(path: Path, cause: BaseException) -> None:
    """Move a damaged resume file out of the way (`<name>.damaged`, kept for a look) and say so: the job then
    recomputes what it held instead of failing on it at every rerun."""
    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    log.warning("%s is damaged (%s: %s): moved to %s; its model is trained again", path, type(cause).__name__, cause,
                aside.name)


def kept_results(path: Path) -> Kept:
    """What `resumable` kept at `path`, its numpy arrays numpy again (weights_only loads tensors, not arrays)."""
    return _as_arrays(torch.load(path, map_location="cpu", weights_only=True))


def _as_tensors(value: Kept) -> Kept:
    if isinstance(value, np.generic):  # a numpy number in the metrics: weights_only would refuse to read it back
        return value.item()
    if isinstance(value, np.ndarray):
        return {_ARRAY: torch.from_numpy(value.copy())}  # a copy: writable, strides torch accepts
    if isinstance(value, dict):
        return {k: _as_tensors(v) for k, v in value.items()}
    return [_as_tensors(v) for v in value] if isinstance(value, list | tuple) else value


def _as_arrays(value: Kept) -> Kept:
    if isinstance(value, dict):
        return value[_ARRAY].numpy() if value.keys() == {_ARRAY} else {k: _as_arrays(v) for k, v in value.items()}
    return [_as_arrays(v) for v in value] if isinstance(value, list) else value


# --- Shards of models, and tables -----------------------------------------------------------------

def shard_range(total: int, per_job: int, shard: int) -> range:
    start = shard * per_job
    if not 0 <= start < total:
        raise ValueError(f"shard {shard} is outside the {num_shards(total, per_job)} shards of {total} models")
    return range(start, min(total, start + per_job))


def grid_shard(epsilons: tuple[float, ...], per_epsilon: int, per_job: int, shard: int) -> list[tuple[float, int]]:
    """The (epsilon, index) pairs of one shard of the epsilon x `per_epsilon` grid, epsilon by epsilon: a shard of
    a small study's DP models can span several epsilons, so that each job's start is paid by more models."""
    return [(epsilons[m // per_epsilon], m % per_epsilon)
            for m in shard_range(len(epsilons) * per_epsilon, per_job, shard)]


def load_shards(files: list[Path], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The `keys` of every shard file, concatenated; a damaged shard is named (io.read_npz)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for f in files:
        for k, v in io.read_npz(f, keys).items():
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def model_scores(cfg: StudyConfig, shards: dict[str, np.ndarray]) -> np.ndarray:
    """The per-model score memorization is computed from: 0/1 correctness or true-label probability."""
    return shards["correct"] if cfg.memorization.score == "correctness" else shards["prob"]


def write_table(df: pd.DataFrame, out: Path, cfg: StudyConfig) -> None:
    """A table and, beside it, the provenance that makes its numbers citable."""
    with io.atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    io.write_provenance(out, {**io.provenance(cfg), "dataset": dataset_title(cfg), "fidelity": cfg.fidelity,
                              "resolved_defects": cfg.resolved_defects, "rows": len(df)})
