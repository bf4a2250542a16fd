"""Curvature estimators against an exact input-Hessian trace on a tiny smooth model; out-of-memory retries."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from memcurv.estimators.curvature import (_trace, curvature_scores, full_fp32, piecewise_linear, probe_terms,
                                          rademacher_probes)
from memcurv.estimators.score_reduction import batch_sizes, reduce_scores
from memcurv.training.models import MaxPool2x2, build_model


def _tiny_model(d: int = 6, k: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 16), torch.nn.Softplus(), torch.nn.Linear(16, k))


def _data(n: int = 7, d: int = 6, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 1, d, generator=g), torch.randint(0, k, (n,), generator=g)


class MemoryLimited(torch.nn.Module):
    """A model that fails like a small GPU: `error` on any forward pass of more than `limit` inputs."""

    def __init__(self, model: torch.nn.Module, limit: int,
                 error: Callable[[str], Exception] = torch.cuda.OutOfMemoryError):
        super().__init__()
        self.model, self.limit, self.error, self.sizes = model, limit, error, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise self.error(f"CUDA out of memory. Tried to allocate {len(x)} inputs")
        return self.model(x)


def _exact_traces(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    traces = []
    for xi, yi in zip(x, y):
        hess = torch.autograd.functional.hessian(
            lambda z: F.cross_entropy(model(z.unsqueeze(0)), yi.unsqueeze(0), reduction="sum"), xi
        )
        d = xi.numel()
        traces.append(torch.diagonal(hess.reshape(d, d)).sum().item())
    return np.array(traces)


def test_scores_are_computed_without_tf32_and_the_settings_are_restored():
    """On a GPU, PyTorch runs fp32 convolutions in TF32 by default: too coarse for a finite difference at h = 1e-3."""
    seen = []
    model = _tiny_model()
    model.register_forward_hook(lambda *_: seen.append(
        (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)))
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    try:
        conv.fp32_precision, matmul.fp32_precision = "tf32", "tf32"
        curvature_scores(model, *_data(), probes=2)
        assert seen and set(seen) == {("ieee", "ieee")}
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
        with pytest.raises(RuntimeError), full_fp32():
            raise RuntimeError("an error inside still restores the settings")
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


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
    est = curvature_scores(model, x, y, probes=4000, method="hvp", batch_size=7)["hutchinson"]
    np.testing.assert_allclose(est, exact, rtol=0.05, atol=0.05 * np.abs(exact).mean())


def _relu_cnn(norm: bool) -> torch.nn.Module:
    """A piecewise-linear CNN (conv, ReLU, max-pool, linear), with a GroupNorm whose curvature adds a residual."""
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(2, 4, 3, padding=1), *([torch.nn.GroupNorm(2, 4)] if norm else []), torch.nn.ReLU(),
              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 3)]
    return torch.nn.Sequential(*layers).double()


def _image_data(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.randn(n, 2, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def test_trace_of_a_piecewise_linear_network_is_its_exact_gauss_newton_trace():
    """Without normalisation, H = JᵀAJ almost everywhere: the trace is exact with a single residual probe."""
    model, (x, y) = _relu_cnn(norm=False), _image_data()
    exact = _exact_traces(model, x, y)
    scores = curvature_scores(model, x, y, probes=2, residual_probes=1, batch_size=4)
    np.testing.assert_allclose(scores["trace"], exact, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scores["gauss_newton"], exact, rtol=1e-9, atol=1e-12)


def test_trace_with_a_normalisation_layer_is_unbiased_and_its_gauss_newton_part_is_not_the_trace():
    model, (x, y) = _relu_cnn(norm=True), _image_data()
    exact = _exact_traces(model, x, y)
    scores = curvature_scores(model, x, y, probes=2, residual_probes=3000, batch_size=6)
    np.testing.assert_allclose(scores["trace"], exact, rtol=0.05, atol=0.02 * np.abs(exact).mean())
    assert np.abs(scores["gauss_newton"] - exact).max() > 0.1 * np.abs(exact).mean()  # GroupNorm's curvature
    assert (scores["gauss_newton"] >= 0).all()  # JᵀAJ is positive semi-definite


def _batch_norm_cnn() -> torch.nn.Module:
    """The piecewise-linear CNN with a BatchNorm, its running statistics moved off 0 and 1 by a few training-mode
    passes, then in eval mode: an affine map of its input, as the paper's subset models are scored."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                MaxPool2x2(), torch.nn.Flatten(), torch.nn.Linear(16, 3)).double()
    with torch.no_grad():
        for _ in range(3):
            model(3 * torch.randn(32, 2, 4, 4, dtype=torch.float64) + 1)
    return model.eval()


def test_batch_norm_in_eval_mode_has_no_residual_and_its_trace_is_the_exact_hessian_trace():
    """BatchNorm in eval mode is affine: the network stays piecewise linear, the residual R = H - JᵀAJ is zero to
    float precision (measured with exact Hessian-vector products, the path GroupNorm takes), and the scorer's trace,
    which then spends no residual probes, is the exact input-Hessian trace."""
    model, (x, y) = _batch_norm_cnn(), _image_data()
    assert piecewise_linear(model)
    v = rademacher_probes(torch.arange(len(x)), 8, tuple(x.shape[1:]), 3).double()
    split = _trace(model, x, y, v, split=True, exact=False)
    residual = split["trace"] - split["gauss_newton"]
    assert np.abs(residual.detach().numpy()).max() < 1e-12 * np.abs(split["gauss_newton"].detach().numpy()).max()
    exact = _exact_traces(model, x, y)
    scores = curvature_scores(model, x, y, probes=2, batch_size=4)
    np.testing.assert_allclose(scores["trace"], exact, rtol=1e-9, atol=1e-12)
    assert (scores["trace"] >= 0).all()


def test_batch_norm_scores_do_not_depend_on_which_examples_share_a_batch():
    """Scored in eval mode, a BatchNorm model uses its running statistics: every score of an example is the same
    alone, in a batch of 3 or of all 11, in any order, even if the model was left in training mode."""
    model, (x, y) = _batch_norm_cnn(), _image_data(11)
    ids = torch.arange(11)
    ref = curvature_scores(model, x, y, ids=ids, probes=3, batch_size=11)
    model.train()
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    for bs in (1, 3):
        other = curvature_scores(model, x[perm], y[perm], ids=ids[perm], probes=3, batch_size=bs)
        for name in ref:
            np.testing.assert_allclose(other[name], ref[name][perm.numpy()], rtol=1e-9, atol=1e-12, err_msg=name)
    assert model.training  # its mode given back


@pytest.mark.parametrize("build, linear", [
    (lambda: build_model("cifar_cnn", (3, 32, 32), 10, "batch").eval(), True),
    (lambda: build_model("cifar_cnn", (3, 32, 32), 10, "batch").train(), False),  # batch statistics: curved
    (lambda: build_model("small_cnn", (1, 8, 8), 10, "none"), True),
    (lambda: build_model("small_cnn", (1, 8, 8), 10, "group"), False),
    (_tiny_model, False),  # Softplus
])
def test_piecewise_linearity_is_read_from_the_modules(build, linear):
    assert piecewise_linear(build()) is linear


def test_torchvisions_resnet_in_eval_mode_is_piecewise_linear_and_has_no_residual():
    """The library page scores a torchvision ResNet-18: named piecewise linear, its residual measured with exact
    Hessian-vector products is zero to float precision (float64), as for the small BatchNorm CNN."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).double().eval()
    assert piecewise_linear(model) and not piecewise_linear(model.train())
    model.eval()
    x, y = torch.randn(2, 3, 16, 16, dtype=torch.float64), torch.tensor([0, 3])
    v = rademacher_probes(torch.arange(2), 4, (3, 16, 16), 0).double()
    split = _trace(model, x, y, v, split=True, exact=False)
    residual = (split["trace"] - split["gauss_newton"]).detach().abs().max()
    assert residual < 1e-9 * split["gauss_newton"].detach().abs().max()


def test_probes_in_chunks_give_the_same_terms():
    model, (x, y) = _relu_cnn(norm=True), _image_data()
    v = rademacher_probes(torch.arange(len(x)), 5, tuple(x.shape[1:]), 0).double()
    whole = probe_terms(model, x, y, v, 1e-3, "finite_difference")
    for chunk in (1, 2):
        parts = probe_terms(model, x, y, v, 1e-3, "finite_difference", chunk)
        for name in whole:
            np.testing.assert_allclose(parts[name].detach(), whole[name].detach(), rtol=1e-9, atol=1e-12)


def test_finite_difference_agrees_with_exact_hvp_on_same_probes():
    model, (x, y) = _tiny_model(), _data()
    fd = curvature_scores(model, x, y, probes=16, method="finite_difference", h=1e-3)
    hvp = curvature_scores(model, x, y, probes=16, method="hvp", h=1e-3)
    for name in ("hutchinson", "sqnorm", "gradnorm"):
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


def test_mean_reduced_reading_equals_a_batch_mean_loss_computed_directly():
    """Defect 2 as the released code computes it: one batch-mean loss per batch, the finite-difference
    gradient of the whole batch at once; the last batch (3 of 11) is smaller and inflated."""
    model, (x, y) = _tiny_model().double(), _data(n=11)
    x, h, bs, probes = x.double(), 1e-3, 4, 3
    v = rademacher_probes(torch.arange(11), probes, tuple(x.shape[1:]), seed=0).double()
    direct = {"hutchinson": np.zeros(11), "sqnorm": np.zeros(11), "gradnorm": np.zeros(11)}
    for start in range(0, 11, bs):
        sl = slice(start, start + bs)
        for p in range(probes):
            grads = []
            for xin in (x[sl], x[sl] + h * v[sl, p]):
                xin = xin.clone().requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(model(xin), y[sl]), xin)  # mean over the batch
                grads.append(g.flatten(1))
            diff = (grads[1] - grads[0]).numpy()
            direct["hutchinson"][sl] += (v[sl, p].flatten(1).numpy() * diff).sum(1) / h / probes
            direct["sqnorm"][sl] += (diff ** 2).sum(1) / h**2 / probes
            direct["gradnorm"][sl] += np.linalg.norm(diff, axis=1) / probes
    reading = reduce_scores(curvature_scores(model, x, y, probes=probes, h=h, batch_size=bs), "mean", bs)
    for name in direct:
        np.testing.assert_allclose(reading[name], direct[name], rtol=1e-6, err_msg=name)


def test_batch_sizes_of_a_ragged_last_batch():
    np.testing.assert_array_equal(batch_sizes(11, 4), [4] * 8 + [3] * 3)
    np.testing.assert_array_equal(batch_sizes(8, 4), [4] * 8)
    np.testing.assert_array_equal(batch_sizes(3, 8), [3] * 3)


def test_bad_arguments_raise():
    model, (x, y) = _tiny_model(), _data()
    with pytest.raises(ValueError, match="method"):
        curvature_scores(model, x, y, method="nope")
    with pytest.raises(ValueError, match="loss_reduction"):
        reduce_scores({"trace": np.ones(3)}, "max", 2)


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError, RuntimeError])  # some kernels raise a plain one
def test_out_of_memory_halves_the_batch_and_gives_identical_scores(error, caplog):
    model, (x, y) = _tiny_model().double(), _data(n=11)
    x, probes, bs = x.double(), 3, 8
    ref = curvature_scores(model, x, y, probes=probes, batch_size=bs)
    limited = MemoryLimited(model, limit=2 * probes, error=error)  # at most 2 examples x 3 probes fit
    scores = curvature_scores(limited, x, y, probes=probes, batch_size=bs)
    at_two = curvature_scores(model, x, y, probes=probes, batch_size=2)  # where the retries ended
    for name in ref:
        np.testing.assert_array_equal(scores[name], at_two[name], err_msg=name)
        np.testing.assert_allclose(scores[name], ref[name], rtol=1e-9, atol=1e-12, err_msg=name)  # float64 rounding
    assert max(limited.sizes) > limited.limit and "out of GPU memory at batch 8" in caplog.text
    # the batch-mean reading (defect 2) divides by the configured batch, whatever batch the retry used
    for name, values in reduce_scores(scores, "mean", bs).items():
        np.testing.assert_allclose(values, reduce_scores(ref, "mean", bs)[name], rtol=1e-9, atol=1e-12)


def test_other_errors_and_out_of_memory_at_batch_one_are_raised():
    model, (x, y) = _tiny_model(), _data()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        curvature_scores(MemoryLimited(model, 0, lambda msg: RuntimeError("shape mismatch")), x, y, probes=2)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        curvature_scores(MemoryLimited(model, limit=1), x, y, probes=2)  # one example's 2 probes never fit


def test_without_the_split_the_trace_is_hutchinson_on_exact_hvps():
    """With hundreds of classes a backward pass per class costs too much: split_trace=False estimates the whole
    trace from the residual probes, without bias, and leaves the Gauss-Newton part NaN."""
    model, (x, y) = _relu_cnn(norm=True), _image_data()
    exact = _exact_traces(model, x, y)
    scores = curvature_scores(model, x, y, probes=2, residual_probes=3000, split_trace=False, batch_size=6)
    np.testing.assert_allclose(scores["trace"], exact, rtol=0.1, atol=0.05 * np.abs(exact).mean())
    assert np.isnan(scores["gauss_newton"]).all()
