"""Curvature estimators against an exact input-Hessian trace on a tiny smooth model."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from memcurv.curvature import curvature_scores, rademacher_probes


def _tiny_model(d: int = 6, k: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 16), torch.nn.Softplus(), torch.nn.Linear(16, k))


def _data(n: int = 7, d: int = 6, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 1, d, generator=g), torch.randint(0, k, (n,), generator=g)


def _exact_traces(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    traces = []
    for xi, yi in zip(x, y):
        hess = torch.autograd.functional.hessian(
            lambda z: F.cross_entropy(model(z.unsqueeze(0)), yi.unsqueeze(0), reduction="sum"), xi
        )
        d = xi.numel()
        traces.append(torch.diagonal(hess.reshape(d, d)).sum().item())
    return np.array(traces)


def test_probes_are_rademacher_and_independent_of_batching():
    ids = torch.arange(50)
    v = rademacher_probes(ids, 8, (3, 4, 4), seed=3)
    assert set(v.unique().tolist()) == {-1.0, 1.0}
    assert abs(v.mean().item()) < 0.05
    assert torch.equal(v[17:23], rademacher_probes(ids[17:23], 8, (3, 4, 4), seed=3))
    assert not torch.equal(v, rademacher_probes(ids, 8, (3, 4, 4), seed=4))
    flat = v.reshape(50 * 8, -1)
    corr = flat @ flat.T / flat.shape[1]
    off = corr[~torch.eye(len(flat), dtype=torch.bool)]
    assert abs(off.mean().item()) < 0.01
    assert abs(off.std().item() * flat.shape[1] ** 0.5 - 1) < 0.1  # independent signs: std 1/sqrt(d)
    assert off.abs().max() < 1  # no two probes equal


def test_hvp_hutchinson_trace_matches_exact_hessian_trace():
    model, (x, y) = _tiny_model(), _data()
    exact = _exact_traces(model, x, y)
    est = curvature_scores(model, x, y, probes=4000, method="hvp", batch_size=7)["trace"]
    np.testing.assert_allclose(est, exact, rtol=0.05, atol=0.05 * np.abs(exact).mean())


def test_finite_difference_agrees_with_exact_hvp_on_same_probes():
    model, (x, y) = _tiny_model(), _data()
    fd = curvature_scores(model, x, y, probes=16, method="finite_difference", h=1e-3)
    hvp = curvature_scores(model, x, y, probes=16, method="hvp", h=1e-3)
    for name in ("trace", "sqnorm", "gradnorm"):
        np.testing.assert_allclose(fd[name], hvp[name], rtol=0.02, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("method", ["finite_difference", "hvp"])
def test_scores_do_not_depend_on_batch_size_or_order(method):
    model, (x, y) = _tiny_model().double(), _data(n=11)
    x = x.double()  # float64 so that only the batching, not rounding noise, could make a difference
    ids = torch.arange(11)
    ref = curvature_scores(model, x, y, ids=ids, probes=5, method=method, batch_size=11)
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    for bs in (1, 3, 4):
        other = curvature_scores(model, x[perm], y[perm], ids=ids[perm], probes=5, method=method, batch_size=bs)
        for name in ref:
            np.testing.assert_allclose(other[name], ref[name][perm.numpy()], rtol=1e-9, atol=1e-12)


def test_mean_reduction_reproduces_batch_size_scaling():
    model, (x, y) = _tiny_model(), _data(n=8)
    summed = curvature_scores(model, x, y, probes=4, batch_size=4, method="hvp")
    mean = curvature_scores(model, x, y, probes=4, batch_size=4, method="hvp", loss_reduction="mean")
    np.testing.assert_allclose(mean["trace"], summed["trace"] / 4, rtol=1e-5)
    np.testing.assert_allclose(mean["sqnorm"], summed["sqnorm"] / 16, rtol=1e-5)


def test_bad_arguments_raise():
    model, (x, y) = _tiny_model(), _data()
    with pytest.raises(ValueError, match="method"):
        curvature_scores(model, x, y, method="nope")
    with pytest.raises(ValueError, match="loss_reduction"):
        curvature_scores(model, x, y, loss_reduction="max")
