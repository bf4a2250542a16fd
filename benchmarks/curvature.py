"""Curvature throughput: memcurv's estimator against a baseline that does what the released code does.

The baseline, per probe: builds the Rademacher probes one example at a time, runs two forward passes
(x and x + h v) and one backward through the difference of the mean-reduced losses, and recomputes the
unperturbed pass every probe.  Ours: the unperturbed gradient once per batch, all probes of a batch in
one forward and one backward, per-example (sum) losses.  Both see the same probes, so the scores can be
compared (the baseline's are rescaled by its batch size to undo the mean reduction).

    python benchmarks/curvature.py [--model small_cnn|resnet18] [--n 512] [--probes 10] [--device cpu|cuda]

Prints examples per second of each, the speed-up, the Spearman correlation of the scores, and
forward-pass equivalents per probe: counted (a backward pass as two forward passes, as if weight
gradients were computed too) and measured (time per probe over the time of a no-grad forward pass on
the same inputs in the same chunks; both methods ask autograd for input gradients only, so their
backward passes skip the weight gradients and cost about one forward each).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from memcurv.curvature import curvature_scores, rademacher_probes
from memcurv.models import build_model


def released_style(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, probes: int, h: float,
                   batch_size: int, seed: int) -> np.ndarray:
    """Mean ||grad diff|| per example, computed the released code's way (mean-reduced loss)."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        ids = torch.arange(start, start + len(xb))
        total = torch.zeros(len(xb))
        for p in range(probes):
            # one example at a time, as the released code builds its probes
            v = torch.stack([rademacher_probes(ids[i:i + 1], probes, tuple(x.shape[1:]), seed)[0, p]
                             for i in range(len(xb))]).to(xb)
            xin = xb.clone().requires_grad_(True)
            loss_pos = F.cross_entropy(model(xin + h * v), yb)
            loss_orig = F.cross_entropy(model(xin), yb)
            (diff,) = torch.autograd.grad(loss_pos - loss_orig, xin)
            total += diff.flatten(1).norm(dim=1).detach().cpu() * len(xb)  # undo the mean for comparison
        out.append(total / probes)
    return torch.cat(out).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small_cnn", choices=["small_cnn", "resnet18"])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--probes", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    shape = (1, 8, 8) if args.model == "small_cnn" else (3, 32, 32)
    torch.manual_seed(0)
    model = build_model(args.model, shape, 10).to(args.device)
    x = torch.randn(args.n, *shape, device=args.device)
    y = torch.randint(0, 10, (args.n,), device=args.device)

    def timed(fn):
        fn(16)  # warm-up on a few examples
        if args.device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        res = fn(args.n)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return res, time.perf_counter() - t

    base, t_base = timed(lambda n: released_style(model, x[:n], y[:n], args.probes, 1e-3, args.batch_size, 0))
    ours, t_ours = timed(lambda n: curvature_scores(model, x[:n], y[:n], probes=args.probes, h=1e-3,
                                                    batch_size=args.batch_size, device=args.device)["gradnorm"])
    rho = spearmanr(base, ours).statistic

    @torch.no_grad()
    def forwards(n: int, chunk: int, repeat: int) -> None:
        """One forward pass over each input a method feeds the model per probe: x repeated `repeat` times."""
        xr = x[:n].repeat_interleave(repeat, dim=0)
        for start in range(0, len(xr), chunk):
            model(xr[start:start + chunk])

    # The released code feeds batches of B, P times over; ours feeds B * P inputs at once.
    _, t_fwd_base = timed(lambda n: [forwards(n, args.batch_size, 1) for _ in range(args.probes)])
    _, t_fwd_ours = timed(lambda n: forwards(n, args.batch_size * args.probes, args.probes))
    print(f"model {args.model}, {args.n} examples, {args.probes} probes, batch {args.batch_size}, {args.device}")
    print(f"{'':16}{'examples/s':>12}{'fwd-equiv/probe counted':>26}{'measured':>10}")
    print(f"{'released-style':16}{args.n / t_base:12.1f}{'2 + 2*2 = 6':>26}{t_base / t_fwd_base:10.2f}")
    print(f"{'memcurv':16}{args.n / t_ours:12.1f}{f'3 + 3/P = {3 + 3 / args.probes:.2f}':>26}{t_ours / t_fwd_ours:10.2f}")
    print(f"speed-up: {t_base / t_ours:.2f}x   Spearman of scores: {rho:.4f}")


if __name__ == "__main__":
    main()
