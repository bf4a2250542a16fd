"""Which curvature design makes link 1 readable: each estimator's reliability, agreement and cost, on real images.

    python benchmarks/curvature_reliability.py [--root ../shared/data] [--models 16] [--cache <folder>]

Trains K subset models as config/cifar10_cpu.yaml does (cifar_cnn on 70% of 5,000 CIFAR-10 JPEG images, Adam,
15 epochs), keeps snapshots at two earlier epochs, and scores every training example under each model with:

- the paper's Hutchinson trace on finite differences (h = 1e-3), probe by probe, and the squared norm ||Hv||^2;
- the Hutchinson trace on exact Hessian-vector products (double backward), probe by probe;
- the trace by the Hessian's structure (memcurv.estimators.curvature's `trace`): the Gauss-Newton part exactly, and the
  residual's Hutchinson terms probe by probe; also at the earlier snapshots (curvature averaged along training, as
  Garg and Roy 2023 average over epochs).

Then it prints, for the per-example mean over the models that left the example out (Thm 5.1's quantity, link 1's
corrected aggregation): the split-half reliability (memcurv.analysis.reliability) at K models and at fewer models and
probes; the K a reliability of 0.6 would take (Spearman-Brown); the Spearman correlation with memorization (from
all K models) and with 1 - C-score (Jiang et al., from thousands of models); and each estimator's CPU seconds per
1,000 examples and model. Per-model scores are cached in --cache, so a rerun only prints.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from memcurv.analysis.bootstrap import spearman
from memcurv.analysis.cscores import load_cscores
from memcurv.analysis.reliability import split_half
from memcurv.data.loading import load_dataset
from memcurv.estimators.curvature import full_fp32, gauss_newton, hvp, probe_terms, rademacher_probes
from memcurv.estimators.memorization import aggregate_by_membership, memorization, subset_masks
from memcurv.seeds import model_seed
from memcurv.settings import TrainSettings
from memcurv.training.models import build_model
from memcurv.training.train import evaluate, train

SETTINGS = TrainSettings(epochs=15, batch_size=64, optimizer="adam", lr=2e-3, momentum=0.0)
SNAPSHOTS = (5, 10)  # earlier epochs scored too; the final one is 15
BATCH = 64


HVP_PROBES = 4  # double backward costs about 5 finite-difference probes each on a CPU: the exact-HVP trace gets 4


def _score_batch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, probes: int,
                 residual_probes: int, timings: dict[str, float]) -> dict[str, np.ndarray]:
    """Per probe: the finite-difference and exact-HVP Hutchinson terms, ||Hv||^2; the exact Gauss-Newton trace and
    the residual's Hutchinson terms."""
    out = {}
    v = rademacher_probes(ids, probes, tuple(x.shape[1:]), 0)
    start = time.process_time()
    fd = probe_terms(model, x, y, v, 1e-3, "finite_difference")
    timings["finite difference"] += time.process_time() - start
    out["fd_trace"], out["fd_sqnorm"] = fd["hutchinson"], fd["sqnorm"]
    start = time.process_time()
    vflat = v[:, :HVP_PROBES].reshape(len(x), HVP_PROBES, -1)
    out["hvp_trace"] = (vflat * hvp(model, x, y, v[:, :HVP_PROBES])).sum(-1)
    timings["exact HVP"] += time.process_time() - start
    out.update(_trace_terms(model, x, y, ids, residual_probes, timings))
    return {k: t.detach().numpy() for k, t in out.items()}


def _trace_terms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ids: torch.Tensor, residual_probes: int,
                 timings: dict[str, float]) -> dict[str, torch.Tensor]:
    """The exact Gauss-Newton trace and, per residual probe, vᵀHv - (Jv)ᵀA(Jv) (the terms of
    memcurv.estimators.curvature._trace)."""
    start = time.process_time()
    jac, a = gauss_newton(model, x)
    gn = (a * (jac @ jac.transpose(1, 2))).sum((1, 2))
    timings["Gauss-Newton part"] += time.process_time() - start
    start = time.process_time()
    v = rademacher_probes(ids, residual_probes, tuple(x.shape[1:]), 1)
    vflat = v.reshape(len(x), residual_probes, -1)
    jv = torch.einsum("bcd,bpd->bpc", jac, vflat)
    residual = (vflat * hvp(model, x, y, v)).sum(-1) - torch.einsum("bpc,bce,bpe->bp", jv, a, jv)
    timings["residual"] += time.process_time() - start
    return {"gn_trace": gn, "residual": residual}


def _score(model: torch.nn.Module, ds, probes: int, residual_probes: int, full: bool) -> tuple[dict, dict]:
    timings = dict.fromkeys(("finite difference", "exact HVP", "Gauss-Newton part", "residual"), 0.0)
    parts = []
    model.eval()
    with full_fp32():
        for start in range(0, len(ds.y_train), BATCH):
            sl = slice(start, start + BATCH)
            x, y, ids = ds.x_train[sl], ds.y_train[sl], ds.ids[sl]
            parts.append(_score_batch(model, x, y, ids, probes, residual_probes, timings) if full
                         else {k: t.detach().numpy() for k, t in _trace_terms(model, x, y, ids, residual_probes,
                                                                                timings).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, timings


def _model(k: int, masks: np.ndarray, ds, args: argparse.Namespace, cache: Path) -> dict[str, np.ndarray]:
    """Train model k (or read its scores from the cache) and score it at the end and at the snapshots."""
    path = cache / f"model{k}.npz"
    if path.exists():
        with np.load(path) as z:
            return {key: z[key] for key in z.files}
    snapshots = {}
    idx = torch.from_numpy(np.flatnonzero(masks[k]))
    torch.manual_seed(model_seed(0, k))
    model = build_model("cifar_cnn", ds.input_shape, ds.num_classes)

    def snapshot(epoch: int, net: torch.nn.Module) -> None:
        if epoch in SNAPSHOTS:
            snapshots[epoch] = {name: t.clone() for name, t in net.state_dict().items()}

    model, _ = train(model, ds.x_train[idx], ds.y_train[idx], SETTINGS, seed=model_seed(0, k), on_epoch=snapshot)
    result, timings = _score(model, ds, args.probes, args.residual_probes, full=True)
    result["correct"] = evaluate(model, ds.x_train, ds.y_train)["correct"]
    result.update({f"seconds {name}": np.array(t) for name, t in timings.items()})
    for epoch, state in snapshots.items():
        model.load_state_dict(state)
        terms, _ = _score(model, ds, args.probes, args.residual_probes, full=False)
        result[f"trace_epoch{epoch}"] = terms["gn_trace"] + terms["residual"].mean(1)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **result)
    return result


def _row(name: str, values: np.ndarray, masks: np.ndarray, mem: np.ndarray, cscore: np.ndarray,
         ks: list[int]) -> str:
    """Reliability at each K (the first K models), the K for 0.6, Spearman with memorization and 1 - C-score."""
    out = aggregate_by_membership(masks, values)["out_mean"]
    rel = [split_half(masks[:k], values[:k], "out_mean") for k in ks]
    r = rel[-1]
    need = ks[-1] * 0.6 * (1 - r) / (r * 0.4) if 0 < r < 1 else float("nan")
    cells = "".join(f"{x:8.3f}" for x in rel)
    return f"{name:44s}{cells}{need:9.0f}{spearman(out, mem):9.3f}{spearman(out, 1 - cscore):9.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="../shared/data", help="folder of cifar10-jpeg.tar.gz and the C-scores")
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--probes", type=int, default=10)
    ap.add_argument("--residual-probes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("results/benchmarks/curvature_reliability"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset("cifar10_jpeg", root=args.root, cache_dir="resources/cache", train_per_class=500,
                      test_per_class=10)
    cscore = load_cscores(Path(args.root) / "cifar10-cscores-orig-order.npz", ds.y_train.numpy())
    masks = subset_masks(len(ds.y_train), range(args.models), 0.7, 0)
    runs = [_model(k, masks, ds, args, args.cache) for k in range(args.models)]
    z = {key: np.stack([r[key] for r in runs]) for key in runs[0]}
    mem = memorization(masks, z["correct"].astype(float)).mem
    _report(z, masks, mem, cscore, args)


def _report(z: dict[str, np.ndarray], masks: np.ndarray, mem: np.ndarray, cscore: np.ndarray,
            args: argparse.Namespace) -> None:
    ks = [k for k in (4, 8, 16, 32) if k < args.models] + [args.models]
    print(f"{args.models} cifar_cnn subset models on 5,000 CIFAR-10 (JPEG) images; per-example mean over the models "
          f"that left the example out. Memorization's own split-half reliability: "
          f"{split_half(masks, z['correct'].astype(float), 'in_minus_out'):.3f}; its Spearman with 1 - C-score: "
          f"{spearman(mem, 1 - cscore):.3f}")
    print(f"{'estimator':44s}" + "".join(f"{'rel K=' + str(k):>8s}" for k in ks) + f"{'K @0.6':>9s}{'ρ mem':>9s}"
          f"{'ρ 1-cs':>9s}")
    trace = {r: z["gn_trace"] + z["residual"][:, :, :r].mean(2) for r in range(1, args.residual_probes + 1)}
    rows = [(f"Hutchinson, finite difference, {p} probes", z["fd_trace"][:, :, :p].mean(2)) for p in (1, 2, 5, 10)
            if p <= args.probes]
    rows += [(f"||Hv||^2, finite difference, {args.probes} probes", z["fd_sqnorm"].mean(2)),
             (f"Hutchinson, exact HVP, {HVP_PROBES} probes", z["hvp_trace"].mean(2)),
             ("Gauss-Newton part (exact)", z["gn_trace"])]
    rows += [(f"trace: Gauss-Newton + residual, {r} probe(s)", t) for r, t in trace.items()]
    rows += [("residual alone (the network's own curvature)", z["residual"].mean(2)),
             (f"trace averaged over epochs {', '.join(map(str, SNAPSHOTS))}, 15",
              (z[f"trace_epoch{SNAPSHOTS[0]}"] + z[f"trace_epoch{SNAPSHOTS[1]}"] + trace[args.residual_probes]) / 3)]
    for name, values in rows:
        print(_row(name, values.astype(np.float64), masks, mem, cscore, ks))
    seconds = {k.removeprefix("seconds "): float(v.mean()) for k, v in z.items() if k.startswith("seconds ")}
    per = 1000 / masks.shape[1]
    print("CPU seconds per 1,000 examples and model: " + ", ".join(
        f"{name} {t * per:.2f}" + (f" ({args.probes} probes)" if name == "finite difference" else
                                   f" ({HVP_PROBES} probes)" if name == "exact HVP" else
                                   f" ({args.residual_probes} probes)" if name == "residual" else "")
        for name, t in seconds.items()))


if __name__ == "__main__":
    main()
