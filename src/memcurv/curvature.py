"""Per-example input loss curvature with Rademacher probes (Hutchinson).

Curv(z) = tr(H) with H the Hessian of the loss with respect to the input x.  Two ways to get H v:

- ``finite_difference`` (the paper's): H v ~ (grad L(x + h v) - grad L(x)) / h.  The unperturbed
  gradient is computed once per batch and all probes of a batch go through the model in one pass.
- ``hvp``: the exact Hessian-vector product by double backward.

Three scores per example, each the mean over probes (names fixed for every method):

- ``trace``:    v^T H v, the Hutchinson estimate of tr(H) (what the theory is about);
- ``sqnorm``:   ||H v||^2 (the paper's eq. 14, ||grad diff||^2 / h^2);
- ``gradnorm``: ||grad diff|| ~ h ||H v|| (what the released code plots).

Probes are a pure function of (seed, example id, probe index, number of probes), so a score never depends on
the batch size or on the example's position in the batch (scoring with more probes draws new ones). Scores
are computed in full fp32: TF32, which PyTorch uses for cuDNN convolutions by default, keeps 10 mantissa
bits, so its rounding error in each gradient (~5e-4 of it) is as large as the finite difference (h = 1e-3 of
it) being measured; bf16 is worse still. Losses are per-example (sum-reduced). The released code's
batch-mean loss (defect 2) only scales each example's input gradient by 1/B, B the size of its batch, so
:func:`reduce_scores` derives those scores exactly from these: one computation serves both readings. A batch
that runs out of GPU memory is scored again at half the size (memcurv.resources.run_in_batches): the scores
are the same, and the mean reading divides by the batch size of the released scorer
(``curvature.released_batch_size``), whatever batches computed the scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from memcurv.resources import run_in_batches

SCORES = ("trace", "sqnorm", "gradnorm")
METHODS = ("finite_difference", "hvp")
REDUCTIONS = ("sum", "mean")
# Power of the batch size each score scales with under a batch-mean loss (gradients scale with 1/B).
_MEAN_POWER = {"trace": 1, "sqnorm": 2, "gradnorm": 1}

_MASK64 = (1 << 64) - 1


def _signed(c: int) -> int:
    """A 64-bit constant as the two's-complement int64 torch stores."""
    return c - (1 << 64) if c >= 1 << 63 else c


_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)
_GOLDEN = _signed(0x9E3779B97F4A7C15)


def _mix(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64-style finaliser on int64 tensors (logical shifts emulated by masking)."""
    z = z ^ ((z >> 30) & ((1 << 34) - 1))
    z = z * _MIX1
    z = z ^ ((z >> 27) & ((1 << 37) - 1))
    z = z * _MIX2
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def rademacher_probes(ids: torch.Tensor, probes: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Probes in {-1, +1} of shape (len(ids), probes, *shape), a function of (seed, id, probe index, probes) only."""
    d = math.prod(shape)
    ids = ids.to(torch.int64).cpu()
    counter = (ids[:, None, None] * probes + torch.arange(probes)[None, :, None]) * d + torch.arange(d)[None, None, :]
    key = _mix(torch.tensor(_signed((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64)).reshape(1))
    bits = (_mix(counter * _GOLDEN + key) >> 40) & 1
    return (bits * 2 - 1).to(torch.float32).reshape(len(ids), probes, *shape)


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y, reduction="sum")


def _batch_scores(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    v: torch.Tensor,
    h: float,
    method: str,
) -> dict[str, torch.Tensor]:
    """Scores for one batch; v has shape (B, P, *input_shape)."""
    b, p = v.shape[:2]
    flat_v = v.reshape(b * p, *x.shape[1:])
    y_rep = y.repeat_interleave(p)
    if method == "finite_difference":
        x0 = x.detach().requires_grad_(True)
        (g0,) = torch.autograd.grad(_loss(model, x0, y), x0)
        xp = (x.detach().repeat_interleave(p, dim=0) + h * flat_v).requires_grad_(True)
        (gp,) = torch.autograd.grad(_loss(model, xp, y_rep), xp)
        diff = gp.reshape(b, p, -1) - g0.reshape(b, 1, -1)
        vflat = flat_v.reshape(b, p, -1)
        trace = (vflat * diff).sum(-1) / h
        sqnorm = diff.pow(2).sum(-1) / h**2
        gradnorm = diff.norm(dim=-1)
    else:
        xr = x.detach().repeat_interleave(p, dim=0).requires_grad_(True)
        (g,) = torch.autograd.grad(_loss(model, xr, y_rep), xr, create_graph=True)
        (hv,) = torch.autograd.grad(g, xr, grad_outputs=flat_v)
        hv = hv.reshape(b, p, -1)
        trace = (flat_v.reshape(b, p, -1) * hv).sum(-1)
        sqnorm = hv.pow(2).sum(-1)
        gradnorm = h * hv.norm(dim=-1)
    return {"trace": trace.mean(1), "sqnorm": sqnorm.mean(1), "gradnorm": gradnorm.mean(1)}


@contextmanager
def full_fp32() -> Iterator[None]:
    """IEEE fp32 for convolutions and matmuls inside (no TF32 on GPUs); the previous settings after."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


def curvature_scores(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    ids: torch.Tensor | None = None,
    probes: int = 10,
    h: float = 1e-3,
    method: str = "finite_difference",
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-example curvature scores (see module docstring) of ``model`` in eval mode on (x, y).

    ``ids`` are the examples' stable ids (default: their positions); they fix each example's probes.
    ``batch_size`` counts examples; one forward pass holds ``batch_size * probes`` inputs (fewer after an
    out-of-memory error: see the module docstring).
    """
    if method not in METHODS:
        raise ValueError(f"unknown curvature method {method!r}; choose one of {METHODS}")
    if probes < 1 or h <= 0 or batch_size < 1:
        raise ValueError("curvature needs probes >= 1, h > 0 and batch_size >= 1")
    ids = torch.arange(len(x)) if ids is None else ids
    was_training = model.training
    model.eval()
    out = {name: np.empty(len(x), dtype=np.float64) for name in SCORES}
    bar = tqdm(total=len(x), desc="curvature", disable=None if progress else True, leave=False)

    def score(sl: slice) -> None:
        xb, yb = x[sl].to(device), y[sl].to(device)
        v = rademacher_probes(ids[sl], probes, tuple(x.shape[1:]), seed).to(device=device, dtype=xb.dtype)
        for name, val in _batch_scores(model, xb, yb, v, h, method).items():
            out[name][sl] = val.detach().double().cpu().numpy()
        bar.update(sl.stop - sl.start)

    try:
        with full_fp32():
            run_in_batches(len(x), batch_size, score, "curvature")
    finally:
        bar.close()
        model.train(was_training)
    return out


def batch_sizes(n: int, batch_size: int) -> np.ndarray:
    """Size of the batch each of n examples falls in when scored in order, `batch_size` at a time."""
    sizes = np.full(n, batch_size, dtype=np.int64)
    sizes[n - n % batch_size:] = n % batch_size or batch_size
    return sizes


def reduce_scores(scores: dict[str, np.ndarray], reduction: str, batch_size: int) -> dict[str, np.ndarray]:
    """Per-example scores (last axis: examples) under a loss `reduction`.  ``sum`` returns them as they are;
    ``mean`` gives what a batch-mean loss over batches of `batch_size` in example order would have (defect 2):
    each score divided by its batch's size (squared for ``sqnorm``), the last, smaller batch inflated as in
    the released code."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown loss_reduction {reduction!r}; choose one of {REDUCTIONS}")
    if reduction == "sum":
        return dict(scores)
    sizes = batch_sizes(np.shape(next(iter(scores.values())))[-1], batch_size).astype(np.float64)
    return {name: np.asarray(v) / sizes ** _MEAN_POWER[name] for name, v in scores.items()}
