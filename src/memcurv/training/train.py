"""One training loop for private (DP-SGD through Opacus) and non-private models.

Private steps use Poisson sampling with rate q = logical batch / N, per-example clipping and
Gaussian noise.  A logical batch is processed in physical chunks whose clipped per-example gradients
are accumulated before the single noisy step, so the physical batch size (memory) never changes
the privacy guarantee.  Non-private training draws shuffled logical batches without replacement.

The arithmetic is a setting (``precision``): TF32 or bf16 autocast make a GPU step about 3x faster than
IEEE fp32 (GPU.md).  DP's guarantee does not depend on it: clipping and noise apply to whatever
gradients are computed.  Curvature is scored in IEEE fp32 whatever training used (memcurv.estimators.curvature).

All randomness (initialisation, sampling, noise) comes from generators seeded by ``seed``; with
``checkpoint_path`` set, the full state is saved after every epoch and a rerun resumes from it.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from memcurv.estimators.batches import run_in_batches
from memcurv.estimators.curvature import full_fp32
from memcurv.io import atomic_path
from memcurv.settings import GRAD_SAMPLE_MODES, TrainSettings, check_arithmetic

if TYPE_CHECKING:  # Opacus is imported where a private run needs it
    from opacus.optimizers import DPOptimizer

log = logging.getLogger(__name__)

# Opacus's backward hooks fire on module outputs when the input needs no gradient: expected, not a problem.
warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)

@dataclass(frozen=True)
class PrivacySettings:
    """DP-SGD's settings for one model: its noise multiplier (calibrated per target epsilon) and the study's
    `privacy` section; the defaults are the schema's (tests/test_settings.py checks)."""
    noise_multiplier: float
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    accountant: str = "prv"
    grad_sample_mode: str = "ew"

    def __post_init__(self) -> None:
        if not self.noise_multiplier > 0:
            raise ValueError(
                f"privacy.noise_multiplier must be > 0, got {self.noise_multiplier}: zero noise is not "
                "private; train without privacy instead"
            )
        if not self.max_grad_norm > 0:
            raise ValueError("privacy.max_grad_norm must be > 0")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise ValueError(f"unknown grad_sample_mode {self.grad_sample_mode!r}; choose one of {GRAD_SAMPLE_MODES}")


def training_precision(precision: str, device: torch.device) -> str:
    """The arithmetic training runs in on `device` (fp32, tf32 or bf16): auto is TF32 on a GPU and IEEE fp32
    elsewhere; a CPU has no TF32, so tf32 there is fp32, and says so."""
    if precision == "auto":
        return "tf32" if device.type == "cuda" else "fp32"
    if precision == "tf32" and device.type != "cuda":
        log.warning("train.precision tf32 on %s, which has no TF32: training in IEEE fp32", device.type)
        return "fp32"
    return precision


@contextmanager
def _fp32_kernels(precision: str) -> Iterator[None]:
    """fp32 convolutions and matmuls in TF32 (precision tf32) or IEEE fp32 (otherwise) inside, rather than
    PyTorch's defaults (TF32 convolutions on a GPU); the previous settings after."""
    with full_fp32():
        if precision == "tf32":
            torch.backends.cudnn.conv.fp32_precision = torch.backends.cuda.matmul.fp32_precision = "tf32"
        yield


def _forward(net: torch.nn.Module, precision: str, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's logits in fp32, its forward pass under bf16 autocast where precision is bf16."""
    def forward(xb: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return net(xb).float()
    return forward


def dp_schedule(n: int, batch_size: int, epochs: int) -> tuple[float, int]:
    """(sampling rate, number of steps) of Poisson-sampled training; calibration and training share it."""
    if batch_size > n:
        raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
    steps_per_epoch = max(1, round(n / batch_size))
    return batch_size / n, epochs * steps_per_epoch


def make_optimizer(params: Iterable[torch.Tensor], settings: TrainSettings) -> torch.optim.Optimizer:
    """The optimizer `settings` names, over `params`: one rule for train and memcurv.training.ensemble."""
    s = settings
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    if s.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)


def lr_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> torch.optim.lr_scheduler.MultiStepLR:
    """The learning rate times lr_gamma at each of the lr_milestones (fractions of the epochs, each at least epoch
    1); stepped once per epoch, by train and memcurv.training.ensemble alike."""
    milestones = sorted({max(1, round(m * settings.epochs)) for m in settings.lr_milestones})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_gamma)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024,
             device: torch.device | str = "cpu") -> dict[str, Any]:
    """Mean loss, accuracy, and per-example correctness and true-label probability, in eval mode.  A batch that
    runs out of GPU memory is redone at half the size (per-example outputs: the results are the same)."""
    was_training = model.training
    model.eval()
    losses, correct, prob = [], [], []

    def batch(sl: slice) -> None:
        xb, yb = x[sl].to(device), y[sl].to(device)
        logits = model(xb).float()
        results = (F.cross_entropy(logits, yb, reduction="none"), logits.argmax(1) == yb,
                   logits.softmax(1).gather(1, yb[:, None])[:, 0])
        for kept, value in zip((losses, correct, prob), results):  # kept only once the whole batch succeeded
            kept.append(value.cpu())

    try:
        run_in_batches(len(x), batch_size, batch, "evaluation")
    finally:
        model.train(was_training)
    loss, corr = torch.cat(losses), torch.cat(correct)
    return {"loss": loss.mean().item(), "acc": corr.float().mean().item(),
            "correct": corr.numpy(), "prob": torch.cat(prob).numpy()}


@dataclass
class _State:
    epoch: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class _Resumable:
    """What a checkpoint holds: a rerun restores it and goes on exactly as the saved run would have."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer  # the plain one under any DP wrapper: its momentum or moments carry over
    scheduler: torch.optim.lr_scheduler.LRScheduler
    data_gen: torch.Generator
    noise_gen: torch.Generator
    state: _State = field(default_factory=_State)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict(), "data_gen": self.data_gen.get_state(),
                        "noise_gen": self.noise_gen.get_state(), "state": asdict(self.state)}, tmp)

    def load(self, saved: dict[str, Any]) -> None:
        """Take the state of a checkpoint `read_checkpoint` read."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.data_gen.set_state(saved["data_gen"])
        self.noise_gen.set_state(saved["noise_gen"])
        self.state = _State(**saved["state"])


@dataclass(frozen=True)
class _Data:
    """The training set, and the physical chunks (a memory limit) each logical batch is processed in."""

    x: torch.Tensor
    y: torch.Tensor
    device: torch.device
    physical_batch_size: int | None

    def chunks(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return idx.split(self.physical_batch_size or len(idx))  # Poisson batches vary in size

    def batch(self, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[chunk].to(self.device), self.y[chunk].to(self.device)


Step = Callable[[torch.Tensor], float]  # one update from a logical batch (indices); returns the batch's summed loss
ChunkBackward = Callable[[torch.Tensor, torch.Tensor], float]  # backward of a chunk's loss; returns the summed loss


def _place(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, channels_last: bool,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Put the model, in train mode, on `device` (and the data too on a GPU), in NHWC memory where asked."""
    if device.type == "cuda":  # CIFAR-sized sets fit on the GPU: no host-to-device copy per batch
        x, y = x.to(device), y.to(device)
    model.to(device).train()
    if channels_last and x.dim() == 4:  # batches indexed from x keep its memory format
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _shuffled_batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A non-private epoch: every example once, in shuffled logical batches drawn without replacement."""
    return list(torch.randperm(n, generator=gen).split(batch_size))


def _poisson_batches(n: int, rate: float, steps: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A private epoch: every example joins each of the `steps` batches independently with probability `rate`."""
    return [torch.nonzero(torch.rand(n, generator=gen) < rate).flatten() for _ in range(steps)]


def _wrap_for_dp(model: torch.nn.Module, s: TrainSettings, p: PrivacySettings, noise_gen: torch.Generator
                 ) -> tuple[torch.nn.Module, DPOptimizer, torch.optim.Optimizer]:
    """(the model wrapped to compute per-example gradients, the DP optimizer that clips them and adds noise from
    `noise_gen`, the plain optimizer inside it, which the scheduler and checkpoints see)."""
    from opacus.grad_sample import GradSampleModuleFastGradientClipping
    from opacus.grad_sample.utils import prepare_module
    from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping

    if p.grad_sample_mode == "ghost":  # clipping happens in the backward pass; the optimizer accumulates, adds noise
        net: torch.nn.Module = GradSampleModuleFastGradientClipping(
            model, max_grad_norm=p.max_grad_norm, use_ghost_clipping=True, loss_reduction="sum")
        dp_optimizer = DPOptimizerFastGradientClipping
    else:
        net = prepare_module(model, p.grad_sample_mode, loss_reduction="sum")
        dp_optimizer = DPOptimizer
    base = make_optimizer(model.parameters(), s)
    optimizer = dp_optimizer(base, noise_multiplier=p.noise_multiplier, max_grad_norm=p.max_grad_norm,
                             expected_batch_size=s.batch_size, loss_reduction="mean", generator=noise_gen)
    return net, optimizer, base


def _non_private_step(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
                      data: _Data) -> Step:
    """Plain steps: the mean loss's gradient, accumulated over the physical chunks, then one update."""
    def step(idx: torch.Tensor) -> float:
        optimizer.zero_grad(set_to_none=True)
        summed = 0.0
        for chunk in data.chunks(idx):
            xb, yb = data.batch(chunk)
            loss = F.cross_entropy(forward(xb), yb, reduction="sum")
            (loss / len(idx)).backward()
            summed += loss.item()
        optimizer.step()
        return summed
    return step


def _clipped_backward(net: torch.nn.Module, optimizer: DPOptimizer,
                      forward: Callable[[torch.Tensor], torch.Tensor], ghost: bool) -> ChunkBackward:
    """The backward pass of a chunk's summed loss that leaves the DP optimizer its per-example gradients: materialised
    (the optimizer's step clips them) or, with ghost clipping, already clipped and summed."""
    from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

    def materialised(xb: torch.Tensor, yb: torch.Tensor) -> float:
        loss = F.cross_entropy(forward(xb), yb, reduction="sum")
        loss.backward()
        return loss.item()

    def ghost_clipped(xb: torch.Tensor, yb: torch.Tensor) -> float:
        # Two passes: the first gives per-example gradient norms, then the optimizer's own
        # zero_grad (which keeps summed_grad after a skipped step) clears p.grad, and the second
        # leaves the sum of this chunk's clipped gradients in p.grad; step() adds it to summed_grad.
        losses = F.cross_entropy(forward(xb), yb, reduction="none")
        DPTensorFastGradientClipping(net, optimizer, losses, "sum").backward()
        return losses.detach().sum().item()

    return ghost_clipped if ghost else materialised


def _private_step(backward: ChunkBackward, optimizer: DPOptimizer, data: _Data) -> Step:
    """DP-SGD steps: each physical chunk's clipped gradients accumulate in the DP optimizer through a skipped step;
    the last chunk's step adds the noise and updates the model."""
    def step(idx: torch.Tensor) -> float:
        chunks = data.chunks(idx)
        optimizer.zero_grad(set_to_none=True)
        summed = 0.0
        for i, chunk in enumerate(chunks):
            summed += backward(*data.batch(chunk))
            last = i == len(chunks) - 1
            optimizer.signal_skip_step(do_skip=not last)
            optimizer.step()
            if not last:
                optimizer.zero_grad(set_to_none=True)
        return summed
    return step


def _epochs(step: Step, draw: Callable[[], list[torch.Tensor]], run: _Resumable, epochs: int, ckpt: Path | None,
            progress: bool, desc: str, on_epoch: Callable[[int, torch.nn.Module], None] | None = None) -> int:
    """Train from the run's epoch to `epochs`, checkpointing after each; returns the empty batches skipped."""
    state, skipped_empty = run.state, 0
    for epoch in tqdm(range(state.epoch, epochs), desc=desc, disable=None if progress else True, leave=False,
                      initial=state.epoch, total=epochs):
        start = time.perf_counter()
        total_loss, seen = 0.0, 0
        for idx in draw():
            if len(idx) == 0:  # possible under Poisson sampling; skipping only over-counts privacy spent
                skipped_empty += 1
                continue
            total_loss += step(idx)
            seen += len(idx)
        run.scheduler.step()
        state.epoch = epoch + 1
        state.seconds += time.perf_counter() - start
        state.history.append({"epoch": state.epoch, "train_loss": total_loss / max(seen, 1),
                              "lr": run.scheduler.get_last_lr()[0]})
        log.info("%s epoch %d/%d loss %.4f (%.1fs)", desc, state.epoch, epochs, total_loss / max(seen, 1),
                 state.seconds)
        if ckpt is not None:
            run.save(ckpt)
        if on_epoch is not None:
            on_epoch(state.epoch, run.model)
    return skipped_empty


def _metrics(s: TrainSettings, p: PrivacySettings | None, sample_rate: float, total_steps: int, arithmetic: str,
             state: _State, skipped_empty: int) -> dict[str, Any]:
    """The run's schedule, arithmetic and history, and for a private run the privacy it spent."""
    metrics: dict[str, Any] = {
        "private": p is not None,
        "epochs": s.epochs,
        "steps": total_steps,
        "sample_rate": sample_rate,
        "precision": arithmetic,
        "seconds": state.seconds,
        "history": state.history,
    }
    if p is not None:
        from memcurv.estimators import privacy  # imports Opacus's accountants: only private runs pay for them

        metrics.update(
            noise_multiplier=p.noise_multiplier,
            max_grad_norm=p.max_grad_norm,
            delta=p.delta,
            accountant=p.accountant,
            epsilon=privacy.epsilon_spent(p.noise_multiplier, sample_rate, total_steps, p.delta, p.accountant),
            skipped_empty_batches=skipped_empty,
        )
    return metrics


def read_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    """An epoch checkpoint, read with weights_only (it runs no code a file holds); a damaged one (a job killed while
    the disk filled, a truncated copy) is moved aside to `<name>.damaged` with a warning, and None returned: the
    model trains from epoch 0 instead of failing at every rerun."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever made it unreadable
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        log.warning("epoch checkpoint %s is damaged (%s: %s): moved to %s; training starts from epoch 0", path,
                    type(e).__name__, e, aside.name)
        return None


def train(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainSettings,
    *,
    privacy_settings: PrivacySettings | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    checkpoint_path: str | os.PathLike | None = None,
    progress: bool = False,
    desc: str = "train",
    schedule: tuple[float, int] | None = None,
    on_epoch: Callable[[int, torch.nn.Module], None] | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train ``model`` in place on (x, y); returns the plain (unwrapped) model and its training metrics.

    With ``privacy_settings`` the run is DP-SGD; the metrics then hold the epsilon actually spent.
    ``schedule`` (sample rate, steps) fixes the Poisson rate and step count instead of deriving them from len(x):
    the accountant's guarantee is for a rate and a step count that do not depend on the data, which a privacy audit
    needs when its training sets differ in size by the canaries drawn in.  ``on_epoch(epoch, model)`` is called
    after each epoch (benchmarks/curvature_reliability.py scores curvature along training with it).
    """
    s, p = settings, privacy_settings
    check_arithmetic(s, p.grad_sample_mode if p is not None else None)
    device = torch.device(device)
    sample_rate, total_steps = schedule or dp_schedule(len(x), s.batch_size, s.epochs)
    x, y = _place(model, x, y, s.channels_last, device)
    data_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    arithmetic = training_precision(s.precision, device)
    data = _Data(x, y, device, s.physical_batch_size)
    if p is None:
        net, optimizer = model, make_optimizer(model.parameters(), s)
        base_opt, step = optimizer, _non_private_step(_forward(net, arithmetic, device), optimizer, data)
        draw = partial(_shuffled_batches, len(x), s.batch_size, data_gen)
    else:
        net, optimizer, base_opt = _wrap_for_dp(model, s, p, noise_gen)
        backward = _clipped_backward(net, optimizer, _forward(net, arithmetic, device), p.grad_sample_mode == "ghost")
        step = _private_step(backward, optimizer, data)
        draw = partial(_poisson_batches, len(x), sample_rate, total_steps // s.epochs, data_gen)

    run = _Resumable(model, base_opt, lr_scheduler(base_opt, s), data_gen, noise_gen)
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        saved = read_checkpoint(ckpt, device)
        if saved is not None:
            run.load(saved)
            log.info("resumed from %s at epoch %d/%d", ckpt, run.state.epoch, s.epochs)
    with _fp32_kernels(arithmetic):
        skipped_empty = _epochs(step, draw, run, s.epochs, ckpt, progress, desc, on_epoch)
    if p is not None:
        net._close()  # removes Opacus's hooks and per-parameter attributes: a plain module again
    return model, _metrics(s, p, sample_rate, total_steps, arithmetic, run.state, skipped_empty)
