"""DP-SGD overhead: step time of private training divided by that of non-private training, on the same
model, batch and precision, for every per-example gradient mode memcurv supports.

    python benchmarks/dp_overhead.py [--model small_cnn|cifar_cnn|resnet18|...] [--batch 256] [--steps 10]
                                     [--device cpu|cuda] [--threads 1 --clock cpu]

On a CPU that other work keeps busy, `--threads 1 --clock cpu` times the CPU seconds this process got, as a workflow
job runs (one thread), instead of wall time.

Each mode is timed through memcurv.training.train.train (one epoch of `--steps` logical batches), so the numbers
include Poisson sampling, clipping, noise and the optimizer step, exactly as the workflow runs them.
"""

from __future__ import annotations

import argparse
import time

import torch

from memcurv.settings import GRAD_SAMPLE_MODES, TrainSettings
from memcurv.training import architectures
from memcurv.training.models import build_model
from memcurv.training.train import PrivacySettings, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small_cnn", choices=list(architectures.catalogue()))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--physical", type=int, default=None, help="physical batch (default: the logical batch)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (a workflow job uses 1)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"], help="cpu: this process's CPU seconds")
    args = ap.parse_args()
    if args.clock == "cpu" and args.device != "cpu":
        ap.error("--clock cpu measures CPU work only: use it with --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    shape = (1, 8, 8) if args.model == "small_cnn" else (3, 32, 32)
    n = args.batch * args.steps
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)
    settings = TrainSettings(epochs=1, batch_size=args.batch, physical_batch_size=args.physical, lr=0.1)

    def step_time(privacy: PrivacySettings | None) -> float:
        torch.manual_seed(0)
        model = build_model(args.model, shape, 10)
        train(model, x[: args.batch * 2], y[: args.batch * 2], settings, privacy_settings=privacy,
              device=args.device)  # warm-up
        torch.manual_seed(0)
        model = build_model(args.model, shape, 10)
        start = clock()
        train(model, x, y, settings, privacy_settings=privacy, device=args.device)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return (clock() - start) / args.steps

    base = step_time(None)
    print(f"model {args.model}, logical batch {args.batch}, physical {args.physical or args.batch}, {args.device}, "
          f"{args.clock} clock, threads {torch.get_num_threads()}")
    print(f"{'mode':<12}{'s/step':>10}{'overhead':>10}")
    print(f"{'non-private':<12}{base:10.4f}{1.0:10.2f}x")
    times = {}
    for mode in GRAD_SAMPLE_MODES:
        times[mode] = t = step_time(PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode=mode))
        print(f"{mode:<12}{t:10.4f}{t / base:10.2f}x")
    fastest = min(times, key=times.get)
    print(f"fastest private mode: {fastest} ({times[fastest]:.4f} s/step, {times[fastest] / base:.2f}x non-private)")


if __name__ == "__main__":
    main()
