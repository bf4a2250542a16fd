"""Stacked (vmapped) ensembles learn exactly what the same models learn one after another."""

import pytest
import torch

from memcurv.settings import TrainSettings
from memcurv.training.ensemble import train_ensemble
from memcurv.training.train import train


def _build() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.GroupNorm(2, 4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3),
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_ensemble_matches_sequential_training(optimizer):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 1, 6, 6, generator=g), torch.randint(0, 3, (60,), generator=g)
    s = TrainSettings(epochs=3, batch_size=16, optimizer=optimizer, lr=0.05, momentum=0.9, weight_decay=1e-4)
    subsets = [torch.randperm(60, generator=g)[:40] for _ in range(3)]
    seeds = [11, 12, 13]
    stacked = train_ensemble(_build, x, y, subsets, seeds, s)
    for sub, seed, got in zip(subsets, seeds, stacked):
        torch.manual_seed(seed)
        want, _ = train(_build(), x[sub], y[sub], s, seed=seed)
        for (name, a), b in zip(want.state_dict().items(), got.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)


def test_ensemble_rejects_unequal_subsets():
    x, y = torch.randn(10, 1, 6, 6), torch.randint(0, 3, (10,))
    with pytest.raises(ValueError, match="one size"):
        train_ensemble(_build, x, y, [torch.arange(5), torch.arange(6)], [0, 1], TrainSettings(epochs=1))


def test_ensemble_models_get_their_trained_buffers():
    """vmapped BatchNorm updates its running statistics in the stacked buffers; each model must get its own back."""
    def build() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                   torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 1, 6, 6, generator=g), torch.randint(0, 3, (60,), generator=g)
    s = TrainSettings(epochs=2, batch_size=16, lr=0.05)
    subsets = [torch.randperm(60, generator=g)[:40] for _ in range(2)]
    stacked = train_ensemble(build, x, y, subsets, [1, 2], s)
    for sub, seed, got in zip(subsets, [1, 2], stacked):
        torch.manual_seed(seed)
        want, _ = train(build(), x[sub], y[sub], s, seed=seed)
        assert got[1].num_batches_tracked.item() == 2 * 3  # 40 examples in batches of 16, for 2 epochs
        for (name, a), b in zip(want.state_dict().items(), got.state_dict().values()):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
