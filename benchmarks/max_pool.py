"""MaxPool2x2 against torch's nn.MaxPool2d(2) on one CPU thread: forward and backward at the shapes the CPU studies
pool, the ratio in one run, and a check that both give the same values and input gradients bit for bit.

    python benchmarks/max_pool.py [--repeats 30]

Rows: a vmapped step of 32 stacked digits subset models (batch 64, the default study's memorization shards), a
digits curvature batch (256 examples x 10 probes), and cifar_cnn's three pools on a batch of 256 CIFAR images.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.func import vmap

from memcurv.training.models import MaxPool2x2

SHAPES = {
    "digits, 32 stacked models x 64 (vmap)": (32, 64, 16, 8, 8),
    "digits curvature, 2,560 inputs": (2560, 16, 8, 8),
    "cifar_cnn pool 1, 256 x 16 x 32 x 32": (256, 16, 32, 32),
    "cifar_cnn pool 2, 256 x 32 x 16 x 16": (256, 32, 16, 16),
    "cifar_cnn pool 3, 256 x 64 x 8 x 8": (256, 64, 8, 8),
}


def seconds(pool: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward and backward pass through `pool`."""
    times = []
    for _ in range(repeats + 1):  # the first is the warm-up
        start = time.perf_counter()
        torch.autograd.grad(pool(x), x, grad)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[repeats // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'shape (forward + backward, 1 thread)':42s}{'MaxPool2d ms':>13s}{'MaxPool2x2 ms':>14s}{'ratio':>7s}  same")
    for name, shape in SHAPES.items():
        x = torch.relu(torch.randn(shape, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
        stacked = len(shape) == 5
        pools = [vmap(p) if stacked else p for p in (torch.nn.MaxPool2d(2), MaxPool2x2())]
        out = [p(x) for p in pools]
        grad = torch.randn(out[0].shape, generator=torch.Generator().manual_seed(1))
        same = torch.equal(out[0], out[1]) and torch.equal(*(torch.autograd.grad(o, x, grad)[0] for o in out))
        ref, ours = (seconds(p, x, grad, args.repeats) for p in pools)
        print(f"{name:42s}{1e3 * ref:13.2f}{1e3 * ours:14.2f}{ref / ours:7.2f}  {same}")


if __name__ == "__main__":
    main()
