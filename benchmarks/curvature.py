"""Curvature throughput: memcurv's scorer, every reading at once, against the released code's scorer, which computes
one (the finite-difference gradient norm).

The baseline is the released scorer (get_regularized_curvature_for_batch in DeepakTatachar/
Privacy-Memorization-Curvature, as calc_curv_fz_models.py runs it): per probe, one Rademacher tensor for the whole
batch, two forward passes (x + h v and x), one backward pass through the difference of the mean-reduced losses, and
the products v . grad diff it records beside the norms, each copied to the CPU. Its probes are memcurv's, so the
scores can be compared: its gradient norms and v . grad diff, rescaled to undo the mean reduction and h, against ours.

Ours is memcurv.estimators.curvature.curvature_scores as the workflow runs it, computing all five scores: the
paper's probe scores by finite differences (the released norm, the squared norm, the Hutchinson trace), the exact
Gauss-Newton part of the trace, and the trace, with its residual estimated by exact Hessian-vector products where
the network is not piecewise linear in its input (GroupNorm) and exactly zero where it is (BatchNorm in eval mode,
as the paper's subset models: memcurv.estimators.curvature.piecewise_linear). Same model, batch, probes and inputs
for both; then what each part of ours costs.

    python benchmarks/curvature.py [--model cifar_cnn] [--norm batch group] [--n 512] [--probes 10]
                                   [--batch-size 64] [--threads 1 --clock cpu]

On a CPU that other work keeps busy, wall time measures the other work too: `--threads 1 --clock cpu` times the CPU
seconds this process got instead (not on a GPU, whose work the CPU clock does not see).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from memcurv.estimators import curvature as C
from memcurv.training.models import NORMS, build_model

SHAPES = {"small_cnn": (1, 8, 8), "cifar_cnn": (3, 32, 32), "resnet18": (3, 32, 32)}


def released_style(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, probes: int, h: float,
                   batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """Mean ||grad diff|| and v . grad diff per example, computed as the released scorer does (mean-reduced
    loss), scaled to memcurv's gradnorm and trace for comparison."""
    model.eval()
    norms, traces = [], []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        b = len(xb)
        v_all = C.rademacher_probes(torch.arange(start, start + b), probes, tuple(x.shape[1:]), seed)
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


def parts(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, probes: int, batch_size: int
          ) -> dict[str, Callable[[], object]]:
    """Each part of memcurv's scorer over all of x, batch by batch: the finite-difference probe scores (one probe's
    batch per pass, as on a CPU, and all probes in one pass, as on a GPU), the Gauss-Newton part, and the residual's
    two exact Hessian-vector products."""
    shape = tuple(x.shape[1:])

    def batches(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], object]) -> Callable[[], object]:
        def run() -> None:
            with C.full_fp32():
                for s in range(0, len(x), batch_size):
                    ids = torch.arange(s, min(s + batch_size, len(x)))
                    fn(x[ids], y[ids], ids)
        return run

    def fd(chunk: int | None) -> Callable[[], object]:
        return batches(lambda xb, yb, ids: C.probe_terms(model, xb, yb, C.rademacher_probes(ids, probes, shape, 0),
                                                         1e-3, "finite_difference", chunk))

    return {"probe scores, a probe per pass": fd(1), "probe scores, all probes in one pass": fd(None),
            "Gauss-Newton part (a backward pass per class)": batches(lambda xb, yb, ids: C.gauss_newton(model, xb)),
            "residual (2 exact HVPs; skipped where piecewise linear)": batches(
                lambda xb, yb, ids: C.hvp(model, xb, yb, C.rademacher_probes(ids, 2, shape, 1)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cifar_cnn", choices=list(SHAPES))
    ap.add_argument("--norm", nargs="+", default=["batch", "group"], choices=NORMS)
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
    shape = SHAPES[args.model]
    torch.manual_seed(0)
    x = torch.randn(args.n, *shape, device=args.device)
    y = torch.randint(0, 10, (args.n,), device=args.device)

    def timed(fn: Callable[[], object]) -> tuple[object, float]:
        fn()  # warm-up: the same work once untimed
        if args.device == "cuda":
            torch.cuda.synchronize()
        t = clock()
        res = fn()
        if args.device == "cuda":
            torch.cuda.synchronize()
        return res, clock() - t

    print(f"model {args.model}, {args.n} examples, {args.probes} probes, batch {args.batch_size}, {args.device}, "
          f"{torch.get_num_threads()} threads, {args.clock} clock")
    for norm in args.norm:
        torch.manual_seed(0)
        model = build_model(args.model, shape, 10, norm).to(args.device).eval()
        with torch.no_grad():  # BatchNorm's running statistics away from their initial 0 and 1
            model.train()
            model(x)
            model.eval()
        base, t_base = timed(lambda m=model: released_style(m, x, y, args.probes, 1e-3, args.batch_size, 0))
        ours, t_ours = timed(lambda m=model: C.curvature_scores(m, x, y, probes=args.probes,
                                                                batch_size=args.batch_size, device=args.device))
        rho = {name: spearmanr(base[name], ours[name]).statistic for name in base}
        print(f"\n{norm} norm: piecewise linear in its input (eval mode): {C.piecewise_linear(model)}")
        print(f"  released scorer (gradnorm only) {args.n / t_base:8.1f} examples/s")
        print(f"  memcurv, all five scores        {args.n / t_ours:8.1f} examples/s")
        print(f"  speed-up {t_base / t_ours:.2f}x; Spearman of the shared scores: gradnorm {rho['gradnorm']:.4f}, "
              f"hutchinson {rho['hutchinson']:.4f}")
        for name, fn in parts(model, x, y, args.probes, args.batch_size).items():
            _, t = timed(fn)
            print(f"  {name:<58} {t / args.n * 1000:7.3f} ms/example")


if __name__ == "__main__":
    main()
