"""Per-example input loss curvature: the trace of the input Hessian H of the loss, and the probe scores of the paper.

Five scores per example (names fixed for every method):

- ``trace``:      tr(H), split by the Hessian's structure.  Under cross-entropy, H = JᵀAJ + R with J the Jacobian of
                  the logits, A = diag(p) - ppᵀ and R the network's own curvature (sum over classes of (p - y)_c times
                  the Hessian of logit c).  The Gauss-Newton part's trace tr(A JJᵀ) is computed exactly, one
                  vector-Jacobian product per class; R's trace by Hutchinson with exact Hessian-vector products
                  (``residual_probes`` of them).  For a network that is piecewise linear in its input (ReLU,
                  max-pool, convolutions, linear layers, BatchNorm in eval mode: `piecewise_linear`) R is zero: the
                  trace is the exact Gauss-Newton part and no residual probes are spent; GroupNorm's own curvature
                  adds a residual, which the probes estimate without bias.  The split costs a backward pass per
                  class: with many classes (``split_trace=False``) the trace is Hutchinson with ``residual_probes``
                  exact HVPs instead.
- ``gauss_newton``: tr(JᵀAJ), the trace's Gauss-Newton part alone (exact; never negative; NaN without the split);
- ``hutchinson``: the paper's estimator of tr(H), the mean over probes of vᵀHv with Rademacher v;
- ``sqnorm``:     ||H v||^2 (the paper's eq. 14, ||grad diff||^2 / h^2);
- ``gradnorm``:   ||grad diff|| ~ h ||H v|| (what the released code plots).

The probe scores get H v one of two ways (``method``):

- ``finite_difference`` (the paper's): H v ~ (grad L(x + h v) - grad L(x)) / h.  The unperturbed gradient is
  computed once per batch; on a GPU all probes of a batch go through the model in one pass, on a CPU one probe's
  batch at a time (a pass of B x P inputs outgrows a CPU's caches; benchmarks/curvature.py times both).  On a ReLU
  network the step h v crosses activation kinks, whose gradient jumps divided by h swamp the Hessian (measured on
  CIFAR-10 by benchmarks/curvature_reliability.py): these scores then measure how much the gradient jumps, not H.
- ``hvp``: the exact Hessian-vector product by double backward.

Probes are a pure function of (seed, example id, probe index, number of probes), so a score never depends on
the batch size or on the example's position in the batch (scoring with more probes draws new ones). Scores
are computed in full fp32: TF32, which PyTorch uses for cuDNN convolutions by default, keeps 10 mantissa
bits, so its rounding error in each gradient (~5e-4 of it) is as large as the finite difference (h = 1e-3 of
it) being measured; bf16 is worse still. Losses are per-example (sum-reduced). The released code's
batch-mean loss (defect 2) only scales each example's input gradient by 1/B, B the size of its batch, so
memcurv.estimators.score_reduction derives those scores exactly from these: one computation serves both
readings. A batch that runs out of GPU memory is scored again at half the size
(memcurv.estimators.batches.run_in_batches): the scores are the same, and the mean reading divides by the batch size
of the released scorer (``curvature.released_batch_size``), whatever batches computed the scores.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from memcurv.estimators.batches import run_in_batches
from memcurv.estimators.score_reduction import SCORES

METHODS = ("finite_difference", "hvp")
_RESIDUAL_SEED = 1  # the residual's probes are drawn apart from the probe scores' (seed + this)

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


def probe_terms(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    v: torch.Tensor,
    h: float,
    method: str,
    chunk: int | None = None,
) -> dict[str, torch.Tensor]:
    """Each probe's term of the probe scores (hutchinson, sqnorm, gradnorm) of one batch, (B, P) each, whose means
    over the probes are the scores; v has shape (B, P, *input_shape). The probes go through the model `chunk` at a
    time (all at once by default): each example's terms are its own whatever the chunk."""
    b, p = v.shape[:2]
    chunk = p if chunk is None else chunk
    if method == "finite_difference":
        x0 = x.detach().requires_grad_(True)
        (g0,) = torch.autograd.grad(_loss(model, x0, y), x0)
        g0 = g0.reshape(b, 1, -1)
    terms = []
    for start in range(0, p, chunk):
        vc = v[:, start:start + chunk]
        pc = vc.shape[1]
        flat_v = vc.reshape(b * pc, *x.shape[1:])
        vflat = vc.reshape(b, pc, -1)
        if method == "finite_difference":
            xp = (x.detach().repeat_interleave(pc, dim=0) + h * flat_v).requires_grad_(True)
            (gp,) = torch.autograd.grad(_loss(model, xp, y.repeat_interleave(pc)), xp)
            diff = gp.reshape(b, pc, -1) - g0
            terms.append(((vflat * diff).sum(-1) / h, diff.pow(2).sum(-1) / h**2, diff.norm(dim=-1)))
        else:
            hv = hvp(model, x, y, vc)
            terms.append(((vflat * hv).sum(-1), hv.pow(2).sum(-1), h * hv.norm(dim=-1)))
    return {name: torch.cat(parts, 1) for name, parts in zip(("hutchinson", "sqnorm", "gradnorm"), zip(*terms))}


def hvp(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact H v (double backward) for each of the P probes of each example: shape (B, P, d)."""
    b, p = v.shape[:2]
    xr = x.detach().repeat_interleave(p, dim=0).requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(model, xr, y.repeat_interleave(p)), xr, create_graph=True)
    (hv,) = torch.autograd.grad(g, xr, grad_outputs=v.reshape(b * p, *x.shape[1:]))
    return hv.detach().reshape(b, p, -1)


def gauss_newton(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, A) of each example: the Jacobian of the logits w.r.t. the input, (B, C, d), one vector-Jacobian product
    per class; and A = diag(p) - ppᵀ, (B, C, C), the Hessian of cross-entropy w.r.t. the logits (whatever the label).
    The input Hessian's Gauss-Newton part is JᵀAJ."""
    x0 = x.detach().requires_grad_(True)
    logits = model(x0)
    classes = logits.shape[1]
    jac = torch.stack([torch.autograd.grad(logits[:, c].sum(), x0, retain_graph=c < classes - 1)[0].flatten(1)
                       for c in range(classes)], 1)
    p = logits.detach().softmax(1)
    return jac, torch.diag_embed(p) - p[:, :, None] * p[:, None, :]


# Modules that keep a network piecewise linear in its input (in eval mode): layers that are linear or piecewise linear
# elementwise, and containers that only chain them. A module class may say so itself with `piecewise_linear = True`
# (memcurv.training.models.MaxPool2x2); anything else (GroupNorm, attention, a block whose forward is unknown) counts
# as curved, and its residual is estimated.
_PIECEWISE_LINEAR = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear, torch.nn.ReLU,
                     torch.nn.LeakyReLU, torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.AvgPool2d,
                     torch.nn.AdaptiveAvgPool2d, torch.nn.Flatten, torch.nn.Identity, torch.nn.Dropout,
                     torch.nn.Sequential)
# torchvision's ResNets chain only these (and add a block's input to its output): named, not imported, here
_PIECEWISE_LINEAR_NAMES = {"torchvision.models.resnet.ResNet", "torchvision.models.resnet.BasicBlock",
                           "torchvision.models.resnet.Bottleneck"}


def piecewise_linear(model: torch.nn.Module) -> bool:
    """Whether `model`, in its present mode, is piecewise linear in its input, so that the input Hessian of the
    cross-entropy is exactly its Gauss-Newton part JᵀAJ: every module one of _PIECEWISE_LINEAR, a BatchNorm in eval
    mode (an affine map of its running statistics), torchvision's ResNet and its blocks, or a class that declares
    `piecewise_linear = True`."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            if module.training:
                return False
        elif not (type(module) in _PIECEWISE_LINEAR or getattr(type(module), "piecewise_linear", False)
                  or f"{type(module).__module__}.{type(module).__qualname__}" in _PIECEWISE_LINEAR_NAMES):
            return False
    return True


def _trace(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor | None,
           split: bool = True, exact: bool = False) -> dict[str, torch.Tensor]:
    """tr(H) of each example: tr(JᵀAJ) = tr(A JJᵀ) exactly, plus Hutchinson on the residual R = H - JᵀAJ with the
    residual probes v, (B, R, *input_shape): vᵀRv = vᵀHv - (Jv)ᵀA(Jv); where the network is piecewise linear in its
    input (`exact`), R is zero and the trace the exact part, with no residual probes spent. Returns the trace and its
    exact part; without the `split`, the trace is Hutchinson with v on H itself, and the exact part NaN."""
    if exact and split:
        jac, a = gauss_newton(model, x)
        gn = (a * (jac @ jac.transpose(1, 2))).sum((1, 2))
        return {"trace": gn, "gauss_newton": gn}
    vflat = v.reshape(*v.shape[:2], -1)
    vhv = (vflat * hvp(model, x, y, v)).sum(-1)
    if not split:
        return {"trace": vhv.mean(1), "gauss_newton": torch.full_like(vhv[:, 0], float("nan"))}
    jac, a = gauss_newton(model, x)
    exact = (a * (jac @ jac.transpose(1, 2))).sum((1, 2))
    jv = torch.einsum("bcd,bpd->bpc", jac, vflat)
    residual = vhv - torch.einsum("bpc,bce,bpe->bp", jv, a, jv)
    return {"trace": exact + residual.mean(1), "gauss_newton": exact}


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
    residual_probes: int = 2,
    split_trace: bool = True,
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
    out-of-memory error: see the module docstring).  The trace costs one backward pass per class (with
    ``split_trace``) and ``residual_probes`` double-backward passes per example.
    """
    if method not in METHODS:
        raise ValueError(f"unknown curvature method {method!r}; choose one of {METHODS}")
    if probes < 1 or residual_probes < 1 or h <= 0 or batch_size < 1:
        raise ValueError("curvature needs probes >= 1, residual_probes >= 1, h > 0 and batch_size >= 1")
    ids = torch.arange(len(x)) if ids is None else ids
    was_training = model.training
    model.eval()
    exact = piecewise_linear(model)
    out = {name: np.empty(len(x), dtype=np.float64) for name in SCORES}
    bar = tqdm(total=len(x), desc="curvature", disable=None if progress else True, leave=False)

    def score(sl: slice) -> None:
        xb, yb = x[sl].to(device), y[sl].to(device)
        shape = tuple(x.shape[1:])
        v = rademacher_probes(ids[sl], probes, shape, seed).to(device=device, dtype=xb.dtype)
        terms = probe_terms(model, xb, yb, v, h, method, chunk=1 if xb.device.type == "cpu" else None)
        scores = {name: values.mean(1) for name, values in terms.items()}
        v = None if exact and split_trace else rademacher_probes(
            ids[sl], residual_probes, shape, seed + _RESIDUAL_SEED).to(device=device, dtype=xb.dtype)
        scores.update(_trace(model, xb, yb, v, split_trace, exact))
        for name, val in scores.items():
            out[name][sl] = val.detach().double().cpu().numpy()
        bar.update(sl.stop - sl.start)

    try:
        with full_fp32():
            run_in_batches(len(x), batch_size, score, "curvature")
    finally:
        bar.close()
        model.train(was_training)
    return out
