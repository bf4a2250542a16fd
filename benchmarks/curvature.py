"""Curvature throughput: memcurv's finite-difference probe scores against the released code's way of computing them.

The baseline is the released scorer (get_regularized_curvature_for_batch in DeepakTatachar/
Privacy-Memorization-Curvature): per probe, one Rademacher tensor for the whole batch, two forward
passes (x + h v and x), one backward pass through the difference of the mean-reduced losses, and the
products v . grad diff it records beside the norms, each copied to the CPU.  Its probes are memcurv's
(drawn for the whole batch at once, the same work as ours), so the scores can be compared: its
gradient norms and v . grad diff, rescaled to undo the mean reduction and h, against ours.  Ours: the
unperturbed gradient once per batch, all probes of a batch in one forward and one backward pass,
per-example (sum) losses (memcurv.estimators.curvature.probe_terms, as curvature_scores runs it; the trace
score, which the released code does not compute, is timed by benchmarks/curvature_reliability.py).

    python benchmarks/curvature.py [--model small_cnn|resnet18] [--n 512] [--probes 10] [--device cpu|cuda]
                                   [--threads 1 --clock cpu]

On a CPU that other work keeps busy, wall time measures the other work too: `--threads 1 --clock cpu`
times the CPU seconds this process got instead (not on a GPU, whose work the CPU clock does not see).

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

from memcurv.estimators.curvature import full_fp32, probe_terms, rademacher_probes
from memcurv.training.models import build_model


def released_style(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, probes: int, h: float,
                   batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """Mean ||grad diff|| and v . grad diff per example, computed as the released scorer does (mean-reduced
    loss), scaled to memcurv's gradnorm and trace for comparison."""
    model.eval()
    norms, traces = [], []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        b = len(xb)
        v_all = rademacher_probes(torch.arange(start, start + b), probes, tuple(x.shape[1:]), seed)
        v_all = v_all.transpose(0, 1).contiguous().to(xb)  # probe-major: each probe a contiguous batch tensor
        regr, eigs = torch.zeros(b), torch.zeros(b)
        for p in range(probes):
            v = h * v_all[p]  # one probe for the whole batch
            xin = xb.clone().requires_grad_(True)
            loss_pos = F.cross_entropy(model(xin + v), yb)
            loss_orig = F.cross_entropy(model(xin), yb)
            (diff,) = torch.autograd.grad(loss_pos - loss_orig, xin)
            regr += diff.reshape(b, -1).norm(dim=1).cpu()
            eigs += torch.diag(v.reshape(b, -1) @ diff.reshape(b, -1).T).cpu()
        norms.append(regr / probes * b)  # undo the mean reduction
        traces.append(eigs / probes * b / h**2)  # (h v) . (h H v / b): undo b and h^2 to get v^T H v
    return {"gradnorm": torch.cat(norms).numpy(), "hutchinson": torch.cat(traces).numpy()}


def memcurv_style(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, probes: int, h: float,
                  batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """The probe scores as memcurv.estimators.curvature.curvature_scores computes them, batch by batch."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {"gradnorm": [], "hutchinson": []}
    with full_fp32():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            v = rademacher_probes(torch.arange(start, start + len(xb)), probes, tuple(x.shape[1:]), seed).to(xb)
            terms = probe_terms(model, xb, yb, v, h, "finite_difference")
            for name in out:
                out[name].append(terms[name].mean(1).detach().cpu().numpy())
    return {name: np.concatenate(values) for name, values in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small_cnn", choices=["small_cnn", "resnet18"])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--probes", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"], help="cpu: this process's CPU seconds")
    args = ap.parse_args()
    if args.clock == "cpu" and args.device != "cpu":
        ap.error("--clock cpu measures CPU work only: use it with --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    shape = (1, 8, 8) if args.model == "small_cnn" else (3, 32, 32)
    torch.manual_seed(0)
    model = build_model(args.model, shape, 10).to(args.device)
    x = torch.randn(args.n, *shape, device=args.device)
    y = torch.randint(0, 10, (args.n,), device=args.device)

    def timed(fn):
        fn(16)  # warm-up on a few examples
        if args.device == "cuda":
            torch.cuda.synchronize()
        t = clock()
        res = fn(args.n)
        if args.device == "cuda":
            torch.cuda.synchronize()
        return res, clock() - t

    base, t_base = timed(lambda n: released_style(model, x[:n], y[:n], args.probes, 1e-3, args.batch_size, 0))
    ours, t_ours = timed(lambda n: memcurv_style(model, x[:n], y[:n], args.probes, 1e-3, args.batch_size, 0))
    rho = {name: spearmanr(base[name], ours[name]).statistic for name in base}

    @torch.no_grad()
    def forwards(n: int, chunk: int, repeat: int) -> None:
        """One forward pass over each input a method feeds the model per probe: x repeated `repeat` times."""
        xr = x[:n].repeat_interleave(repeat, dim=0)
        for start in range(0, len(xr), chunk):
            model(xr[start:start + chunk])

    # The released code feeds batches of B, P times over; ours feeds B * P inputs at once.
    _, t_fwd_base = timed(lambda n: [forwards(n, args.batch_size, 1) for _ in range(args.probes)])
    _, t_fwd_ours = timed(lambda n: forwards(n, args.batch_size * args.probes, args.probes))
    print(f"model {args.model}, {args.n} examples, {args.probes} probes, batch {args.batch_size}, {args.device}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock")
    print(f"{'':16}{'examples/s':>12}{'fwd-equiv/probe counted':>26}{'measured':>10}")
    print(f"{'released-style':16}{args.n / t_base:12.1f}{'2 + 2*2 = 6':>26}{t_base / t_fwd_base:10.2f}")
    counted = f"3 + 3/P = {3 + 3 / args.probes:.2f}"
    print(f"{'memcurv':16}{args.n / t_ours:12.1f}{counted:>26}{t_ours / t_fwd_ours:10.2f}")
    print(f"speed-up: {t_base / t_ours:.2f}x   Spearman of scores: gradnorm {rho['gradnorm']:.4f}, "
          f"hutchinson {rho['hutchinson']:.4f}")


if __name__ == "__main__":
    main()
