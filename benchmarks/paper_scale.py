"""Device-hours of a paper config on this device: one step of each job kind timed here, times the steps
the config's rules take, before and after issue 13 (training arithmetic, subset models scored).

    python benchmarks/paper_scale.py [--config config/cifar10.yaml] [--model resnet18] [--device cuda|cpu]
                                     [--tiny]

Timed on random images of the config's input shape, each after a warm-up: a DP training step (the
config's logical and physical batch and grad_sample_mode, through memcurv.training.train.train) and a non-private
step (memorization.train's batch), each in IEEE fp32 and in precision auto; curvature of one batch
(curvature.batch_size x probes, always IEEE fp32); evaluation of one batch of 1024.  The rules then
cost, per model:

- train_dp_models: dp_schedule's steps of DP training, evaluation of the training and test sets, and curvature
  of every training example;
- train_subset_models: non-private training on its subset, evaluation of the training and test sets,
  and curvature of every training example under the models that are scored;
- train_dp_subset_models: DP training on its subset, and evaluation of the top-k.

"before": IEEE fp32 training and every subset model scored (the recipe's physical batch); "after":
precision auto and memorization.curvature_models subset models scored.  Process starts, data loading,
noise calibration and the tables are left out (minutes in all).  Costs are counted per example (per
example and probe for curvature), so batches timed smaller than the config's (--dp-batch and the like,
for a CPU) still give an estimate, though a GPU's is only right at the config's sizes.  `--tiny` times a
small CNN on 8x8 images with tiny batches (for CI: the hours it prints then mean nothing).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from memcurv import config as memcurv_config
from memcurv.estimators.curvature import curvature_scores
from memcurv.jobs.resources import input_dims
from memcurv.jobs.toolkit import experiment_train_size
from memcurv.settings import TrainSettings
from memcurv.training.models import build_model
from memcurv.training.train import PrivacySettings, dp_schedule, evaluate, train, training_precision


@dataclass(frozen=True)
class Sizes:
    dp_batch: int
    physical: int | None
    plain_batch: int
    curvature_batch: int
    probes: int
    eval_batch: int
    steps: int  # training steps timed


@dataclass(frozen=True)
class StepTimes:
    """Seconds per step of each job kind."""
    dp: dict[str, float]  # by precision
    plain: dict[str, float]
    curvature: float
    evaluation: float


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _training_step(model: Callable[[], torch.nn.Module], shape: tuple[int, ...], settings: TrainSettings,
                   privacy: PrivacySettings | None, steps: int, device: torch.device) -> float:
    """Seconds per logical step of memcurv.training.train.train on random data, after a two-step warm-up: the time of
    its epoch loop, which leaves out setting up Opacus and accounting for the epsilon spent."""
    g = torch.Generator().manual_seed(0)
    n = settings.batch_size * steps
    x, y = torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)
    warm = 2 * settings.batch_size
    train(model(), x[:warm], y[:warm], settings, privacy_settings=privacy, device=device)
    return train(model(), x, y, settings, privacy_settings=privacy, device=device)[1]["seconds"] / steps


def time_steps(cfg: dict[str, Any], model_name: str, shape: tuple[int, int, int], classes: int, sizes: Sizes,
               device: torch.device) -> StepTimes:
    """One step of each job kind on this device."""
    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model(model_name, shape, classes)

    dp, plain = {}, {}
    privacy = PrivacySettings(noise_multiplier=1.0, max_grad_norm=cfg.privacy.max_grad_norm, accountant="rdp",
                              grad_sample_mode=cfg.privacy.grad_sample_mode)
    for precision in ("fp32", "auto"):
        common = {"epochs": 1, "optimizer": cfg.train.optimizer, "lr": 1e-4, "precision": precision}
        dp[precision] = _training_step(model, shape, TrainSettings(batch_size=sizes.dp_batch,
                                                                   physical_batch_size=sizes.physical, **common),
                                       privacy, sizes.steps, device)
        plain[precision] = _training_step(model, shape, TrainSettings(batch_size=sizes.plain_batch, **common), None,
                                          sizes.steps, device)
    net = model().to(device)
    c = cfg.curvature
    x = torch.randn(max(sizes.curvature_batch, sizes.eval_batch), *shape)
    y = torch.randint(0, classes, (len(x),))

    def curvature(n: int) -> None:
        curvature_scores(net, x[:n], y[:n], probes=sizes.probes, h=c.h, method=c.method, batch_size=n,
                         device=device)

    curvature(2)
    evaluate(net, x[:2], y[:2], device=device)
    return StepTimes(dp, plain, _timed(lambda: curvature(sizes.curvature_batch), device),
                     _timed(lambda: evaluate(net, x[:sizes.eval_batch], y[:sizes.eval_batch],
                                             batch_size=sizes.eval_batch, device=device), device))


def device_hours(cfg: dict[str, Any], t: StepTimes, sizes: Sizes, n_train: int, n_test: int,
                 after: bool) -> dict[str, tuple[int, float]]:
    """(jobs, device-hours) per GPU rule of the config, from per-example costs."""
    precision = "auto" if after else "fp32"
    dp_example, plain_example = t.dp[precision] / sizes.dp_batch, t.plain[precision] / sizes.plain_batch
    c = cfg.curvature
    curvature_example = t.curvature / (sizes.curvature_batch * sizes.probes) * c.probes
    evaluation_example = t.evaluation / sizes.eval_batch
    dp_train = cfg.train
    dp_models = len(cfg.dp_models.epsilons) * len(cfg.dp_models.seeds)
    evaluate_all = (n_train + n_test) * evaluation_example
    curvature_all = n_train * curvature_example

    def dp_training(n: int) -> float:  # Poisson batches of the logical batch size on average
        return dp_schedule(n, dp_train.batch_size, dp_train.epochs)[1] * dp_train.batch_size * dp_example

    m = cfg.memorization
    k = m.num_models
    scored = min(k, m.curvature_models or k) if after else k
    subset_training = m.train.epochs * round(m.subset_ratio * n_train) * plain_example
    e = cfg.mem_vs_epsilon
    dp_subsets = len(e.epsilons) * e.num_models
    dp_subset = experiment_train_size(cfg, "mem_vs_epsilon", n_train)
    seconds = {
        "train_dp_models": (len(cfg.dp_models.epsilons) * memcurv_config.num_shards(len(cfg.dp_models.seeds),
                                                                                    cfg.dp_models.models_per_job),
                            dp_models * (dp_training(n_train) + evaluate_all + curvature_all)),
        "train_subset_models": (memcurv_config.num_shards(k, m.models_per_job),
                                k * (subset_training + evaluate_all) + scored * curvature_all),
        "train_dp_subset_models": (len(e.epsilons) * memcurv_config.num_shards(e.num_models, e.models_per_job),
                                   dp_subsets * (dp_training(dp_subset) + e.top_k * evaluation_example)),
    }
    return {rule: (jobs, s / 3600) for rule, (jobs, s) in seconds.items()}


def report(cfg: dict[str, Any], t: StepTimes, sizes: Sizes, n_train: int, n_test: int, device: torch.device) -> None:
    auto = training_precision("auto", device)
    mode = cfg.privacy.grad_sample_mode
    physical, both = sizes.physical or sizes.dp_batch, ("fp32", "auto")
    rows = {
        "step": ("fp32 s", f"auto ({auto}) s"),
        f"DP step (batch {sizes.dp_batch}, physical {physical}, {mode})": tuple(f"{t.dp[p]:.4f}" for p in both),
        f"non-private step (batch {sizes.plain_batch})": tuple(f"{t.plain[p]:.4f}" for p in both),
        "DP step / non-private step": tuple(f"{t.dp[p] / t.plain[p]:.2f}x" for p in both),
        f"curvature batch ({sizes.curvature_batch} x {sizes.probes} probes, IEEE fp32)": (f"{t.curvature:.4f}",),
        f"evaluation batch ({sizes.eval_batch})": (f"{t.evaluation:.4f}",),
    }
    for label, values in rows.items():
        print(f"{label:<52}" + "".join(f"{v:>16}" for v in values))
    before = device_hours(cfg, t, sizes, n_train, n_test, after=False)
    after = device_hours(cfg, t, sizes, n_train, n_test, after=True)
    scored = cfg.memorization.curvature_models or cfg.memorization.num_models
    print(f"\ndevice-hours of the config ({n_train} training examples; after: {auto} training, "
          f"{scored} subset models scored)")
    print(f"{'rule':<26}{'jobs':>6}{'before':>10}{'after':>10}")
    for rule, (jobs, hours) in before.items():
        print(f"{rule:<26}{jobs:6d}{hours:10.1f}{after[rule][1]:10.1f}")
    total_before, total_after = (sum(h for _, h in table.values()) for table in (before, after))
    print(f"{'total':<26}{'':6}{total_before:10.1f}{total_after:10.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/cifar10.yaml")
    ap.add_argument("--model", default=None, help="default: the config's")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="a small CNN, 8x8 images and tiny batches (CI)")
    ap.add_argument("--steps", type=int, default=5, help="training steps timed per kind")
    ap.add_argument("--n-train", type=int, default=None, help="training examples (default: the dataset's)")
    ap.add_argument("--n-test", type=int, default=10_000)
    for size in ("dp-batch", "physical", "plain-batch", "curvature-batch", "probes", "eval-batch"):
        ap.add_argument(f"--{size}", type=int, default=None, help="timed size (default: the config's)")
    args = ap.parse_args()
    cfg = memcurv_config.load(args.config)
    n_train = args.n_train or memcurv_config.train_size(cfg.dataset)
    if n_train is None:
        ap.error(f"the size of {cfg.dataset.name} is not known before loading it: give --n-train")
    device = torch.device(args.device)
    shape, classes = input_dims(cfg.dataset.name, cfg.dataset.options)
    model = args.model or cfg.model
    t, c = cfg.train, cfg.curvature
    sizes = Sizes(args.dp_batch or t.batch_size, args.physical or t.physical_batch_size,
                  args.plain_batch or cfg.memorization.train.batch_size,
                  args.curvature_batch or c.batch_size, args.probes or c.probes, args.eval_batch or 1024,
                  args.steps)
    if args.tiny:
        model, shape = "small_cnn", (1, 8, 8)
        sizes = Sizes(16, 8, 16, 4, 2, 64, 2)
    print(f"{args.config}: model {model} on {shape} images, {device}"
          f"{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}"
          f"{' [tiny sizes: the hours mean nothing]' if args.tiny else ''}")
    report(cfg, time_steps(cfg, model, shape, classes, sizes, device), sizes, n_train, args.n_test, device)


if __name__ == "__main__":
    main()
