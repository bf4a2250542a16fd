"""Many non-private models trained at once: parameters stacked along a model axis, one vmapped
forward and backward per step (torch.func).

Each model keeps its own initialisation (seed), its own subset and its own batch order, exactly
as :func:`memcurv.training.train.train` would draw them; SGD, momentum, weight decay and Adam act
elementwise, so stacking changes only the speed, not what each model learns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from memcurv.settings import TrainSettings
from memcurv.training.train import lr_scheduler, make_optimizer


def train_ensemble(
    build: Callable[[], torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    subsets: Sequence[torch.Tensor],
    seeds: Sequence[int],
    settings: TrainSettings,
    *,
    device: torch.device | str = "cpu",
) -> list[torch.nn.Module]:
    """Train one model per (subset, seed) on x[subset]; all subsets must have the same size."""
    if len(subsets) != len(seeds) or not subsets:
        raise ValueError("train_ensemble needs one seed per subset and at least one subset")
    sizes = {len(s) for s in subsets}
    if len(sizes) != 1:
        raise ValueError(f"ensemble subsets must share one size, got sizes {sorted(sizes)}")
    device = torch.device(device)
    s = settings
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build().to(device))
    params, buffers = stack_module_state(models)
    template = build().to("meta")
    stacked = list(params.values())
    optimizer = make_optimizer(stacked, s)
    scheduler = lr_scheduler(optimizer, s)
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    subsets = [torch.as_tensor(sub) for sub in subsets]

    def loss_one(p: dict, b: dict, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(template, (p, b), (xb,)), yb)

    batched_loss = vmap(loss_one, in_dims=(0, 0, 0, 0), randomness="different")
    for _ in range(s.epochs):
        orders = torch.stack([sub[torch.randperm(len(sub), generator=g)] for sub, g in zip(subsets, gens)])
        for idx in orders.split(s.batch_size, dim=1):
            xb, yb = x[idx].to(device), y[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            batched_loss(params, buffers, xb, yb).sum().backward()
            optimizer.step()
        scheduler.step()
    _unstack({**params, **buffers}, models)
    return models


@torch.no_grad()
def _unstack(stacked: dict[str, torch.Tensor], models: Sequence[torch.nn.Module]) -> None:
    """Copy model i's slice of the stacked parameters and buffers into model i: the buffers too, since training
    updates them in place (BatchNorm's running statistics)."""
    for i, model in enumerate(models):
        for name, tensor in chain(model.named_parameters(), model.named_buffers()):
            tensor.copy_(stacked[name][i])
