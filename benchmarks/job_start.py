"""What starting a workflow job costs before it computes anything: each import a job may need, timed in a fresh
Python process (the median of --repeats), beside the work of the smallest job it would pay for.

    python benchmarks/job_start.py [--repeats 5]

Each row is a new interpreter that imports the module(s) and nothing else, so a row's time is the import on top of
Python's own start (the first row). The last rows time what a default-study job does once started: one digits DP
model trained (15 epochs, the default config) and one scored for curvature, in this process after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

IMPORTS = {
    "python": "pass",
    "numpy + pandas": "import numpy, pandas",
    "every figure module (a figure job)": "import memcurv.figures; memcurv.figures.catalogue()",
    "memcurv.report.replication (the report)": "import memcurv.report.replication",
    "torch": "import torch",
    "torch + torch._dynamo (a torch optimizer)": "import torch, torch._dynamo",
    "torch + opacus": "import torch, opacus",
    "scikit-learn": "import sklearn.model_selection",
    "memcurv.jobs.dp_models (a DP job)": "import memcurv.jobs.dp_models",
}


def start_seconds(code: str, repeats: int) -> float:
    """Median wall-clock seconds of a fresh interpreter that runs `code`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def work_seconds() -> tuple[float, float]:
    """Seconds to train one default-study DP model (epsilon 10) and to score its curvature, after a warm-up."""
    import torch

    from memcurv.config import load
    from memcurv.jobs import toolkit
    from memcurv.training.train import PrivacySettings, train

    torch.set_num_threads(1)
    cfg = load("config/config.yaml")
    ds, device = toolkit.dataset(cfg), torch.device("cpu")
    p = cfg.privacy
    private = PrivacySettings(noise_multiplier=1.0, max_grad_norm=p.max_grad_norm, delta=p.delta, accountant="rdp",
                              grad_sample_mode=p.grad_sample_mode)
    timed = []
    for _ in range(2):  # the first is the warm-up
        start = time.perf_counter()
        model, _ = train(toolkit.fresh_model(cfg, ds, 0), ds.x_train, ds.y_train, cfg.train, privacy_settings=private,
                         device=device)
        trained = time.perf_counter()
        toolkit.dataset_curvature(cfg, model, ds, device)
        timed.append((trained - start, time.perf_counter() - trained))
    return timed[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"fresh interpreter, median of {args.repeats}           seconds")
    for name, code in IMPORTS.items():
        print(f"{name:44s}{start_seconds(code, args.repeats):8.2f}")
    train_s, curvature_s = work_seconds()
    print(f"{'train one digits DP model (1 thread)':44s}{train_s:8.2f}")
    print(f"{'its curvature, 1,437 examples':44s}{curvature_s:8.2f}")


if __name__ == "__main__":
    main()
