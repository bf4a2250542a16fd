"""What channels-last memory and reduced precision do to the numbers the study rests on, and to DP step time.

    python benchmarks/precision.py [--model small_cnn|resnet18] [--batch 64] [--device cpu|cuda]

Each variant is compared with IEEE fp32 in NCHW memory on the same model, batch and probes:

- per-example gradients (torch.func, the quantity DP-SGD clips): the median and largest relative error
  ||g - g_fp32|| / ||g_fp32|| over the batch;
- finite-difference curvature (trace, h = 1e-3): Spearman against fp32 and the median relative error;
- a DP training step of memcurv.training.train.train under each train.precision (bf16 under Opacus hooks, since
  autocast fails under ew).

Variants: channels_last; bf16 autocast; on a GPU also tf32 convolutions (PyTorch's default there). The
workflow keeps curvature in IEEE fp32 because of what this prints; training's arithmetic is train.precision.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch.func import functional_call, grad, vmap

# probe_terms is the estimator without curvature_scores' fp32 guard: what the guard prevents is measured here.
from memcurv.estimators.curvature import full_fp32, probe_terms, rademacher_probes
from memcurv.settings import TrainSettings
from memcurv.training.models import build_model
from memcurv.training.train import PrivacySettings, train


@contextmanager
def tf32_convs() -> Iterator[None]:
    """PyTorch's GPU default: TF32 for cuDNN convolutions, IEEE fp32 matmuls."""
    with full_fp32():
        torch.backends.cudnn.conv.fp32_precision = "tf32"
        yield


def bf16_autocast(device: str) -> Callable[[], AbstractContextManager]:
    @contextmanager
    def ctx() -> Iterator[None]:
        with full_fp32(), torch.autocast(device, dtype=torch.bfloat16):
            yield
    return ctx


def per_example_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, p, (xi[None],)).float(), yi[None])

    g = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([v.flatten(1).float() for v in g.values()], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small_cnn", choices=["small_cnn", "resnet18"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--probes", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="DP steps timed per variant")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = args.device
    shape = (1, 8, 8) if args.model == "small_cnn" else (3, 32, 32)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, *shape, generator=g).to(dev)
    y = torch.randint(0, 10, (args.batch,), generator=g).to(dev)
    torch.manual_seed(0)
    model = build_model(args.model, shape, 10).to(dev).eval()
    v = rademacher_probes(torch.arange(args.batch), args.probes, shape, seed=0).to(dev)

    variants: dict[str, tuple[Callable[[], AbstractContextManager], bool]] = {  # name: (numeric context, channels_last)
        "fp32": (full_fp32, False),
        "channels_last": (full_fp32, True),
        "bf16 autocast": (bf16_autocast(dev), False),
    }
    if dev == "cuda":
        variants["tf32 convs"] = (tf32_convs, False)

    def measure(ctx: Callable[[], AbstractContextManager], channels_last: bool) -> tuple[torch.Tensor, np.ndarray]:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        m, xb = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)
        with ctx():
            grads = per_example_grads(m, xb, y)
            trace = probe_terms(m, xb, y, v, 1e-3, "finite_difference")["hutchinson"].mean(1)
        model.to(memory_format=torch.contiguous_format)
        return grads, trace.detach().double().cpu().numpy()

    base_grads, base_trace = measure(*variants["fp32"])
    print(f"model {args.model}, batch {args.batch}, {args.probes} probes, {dev}; errors relative to IEEE fp32, NCHW")
    print(f"{'variant':<15}{'grad err median':>16}{'grad err max':>14}{'curv Spearman':>15}{'curv err median':>17}")
    for name, (ctx, cl) in variants.items():
        if name == "fp32":
            continue
        grads, trace = measure(ctx, cl)
        err = ((grads - base_grads).norm(dim=1) / base_grads.norm(dim=1)).cpu()
        curv_err = np.median(np.abs(trace - base_trace) / np.abs(base_trace))
        print(f"{name:<15}{err.median():16.2e}{err.max():14.2e}{spearmanr(trace, base_trace)[0]:15.4f}{curv_err:17.2e}")

    n = args.batch * args.steps
    xt, yt = torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)

    def step_time(precision: str, channels_last: bool, mode: str) -> float:
        """Seconds per DP step of memcurv's training loop, which sets its own arithmetic (train.precision)."""
        s = TrainSettings(epochs=1, batch_size=args.batch, lr=0.1, channels_last=channels_last, precision=precision)
        privacy = PrivacySettings(noise_multiplier=1.0, accountant="rdp", grad_sample_mode=mode)
        for data in ((xt[: 2 * args.batch], yt[: 2 * args.batch]), (xt, yt)):  # warm-up, then timed
            torch.manual_seed(0)
            start = time.perf_counter()
            train(build_model(args.model, shape, 10), *data, s, privacy_settings=privacy, device=dev)
            if dev == "cuda":
                torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.steps

    # (train.precision, channels_last, grad_sample_mode); bf16 autocast fails under ew, so it runs under hooks,
    # beside fp32 under hooks for a like-for-like ratio
    steps = {"fp32 ew": ("fp32", False, "ew"), "channels_last ew": ("fp32", True, "ew"),
             "fp32 hooks": ("fp32", False, "hooks"), "bf16 hooks": ("bf16", False, "hooks")}
    if dev == "cuda":
        steps["tf32 ew"] = ("tf32", False, "ew")
    print("DP step time (memcurv.training.train, train.precision) relative to fp32 under ew:")
    base = step_time(*steps["fp32 ew"])
    for name, setting in steps.items():
        t = base if name == "fp32 ew" else step_time(*setting)
        print(f"{name:<18}{t:10.4f} s/step  {base / t:.2f}x speed")

if __name__ == "__main__":
    main()
