"""Architectures: shapes, Opacus compatibility, double backward for curvature."""

import pytest
import torch
from opacus.validators import ModuleValidator

from memcurv.training.models import MaxPool2x2, build_model


@pytest.mark.parametrize("name, shape", [("small_cnn", (1, 8, 8)), ("small_cnn", (3, 32, 32)),
                                         ("cifar_cnn", (3, 32, 32)), ("resnet18", (3, 32, 32)),
                                         ("resnet50", (3, 32, 32))])
def test_models_shape_and_opacus_validation(name, shape):
    model = build_model(name, shape, 7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)
    assert ModuleValidator.validate(model, strict=False) == []
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name, shape", [("small_cnn", (1, 8, 8)), ("cifar_cnn", (3, 32, 32)),
                                         ("resnet18", (3, 32, 32))])
def test_normalisation_is_chosen_by_role(name, shape):
    """GroupNorm by default (every DP model), BatchNorm or none for the non-private subset models; the same
    parameters otherwise, and an unknown choice named."""
    kinds = {norm: {type(m) for m in build_model(name, shape, 7, norm).modules()}
             for norm in ("group", "batch", "none")}
    assert torch.nn.GroupNorm in kinds["group"] and torch.nn.BatchNorm2d not in kinds["group"]
    assert torch.nn.BatchNorm2d in kinds["batch"] and torch.nn.GroupNorm not in kinds["batch"]
    assert not kinds["none"] & {torch.nn.GroupNorm, torch.nn.BatchNorm2d}
    with pytest.raises(ValueError, match="normalisation"):
        build_model(name, shape, 7, "layer")


def test_cifar_resnet18_is_the_released_architecture():
    model = build_model("resnet18", (3, 32, 32), 10)
    assert 11.1e6 < sum(p.numel() for p in model.parameters()) < 11.3e6
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert all(m.num_groups == 32 for m in model.modules() if isinstance(m, torch.nn.GroupNorm))


def test_double_backward_through_small_cnn():
    model = build_model("small_cnn", (1, 8, 8), 10)
    x = torch.randn(3, 1, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 2, 3])), x,
                               create_graph=True)
    (hv,) = torch.autograd.grad(g, x, grad_outputs=torch.ones_like(x))
    assert hv.abs().sum() > 0


def test_unknown_model_is_an_error():
    with pytest.raises(ValueError, match="vgg"):
        build_model("vgg", (3, 32, 32), 10)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("mode", ["hooks", "ew", "ghost"])
def test_resnets_train_privately_with_every_grad_sample_mode(name, mode):
    from memcurv.settings import TrainSettings
    from memcurv.training.train import PrivacySettings, train

    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 3
    model, metrics = train(build_model(name, (3, 32, 32), 3), x, y, TrainSettings(epochs=1, batch_size=4), seed=0,
                           privacy_settings=PrivacySettings(noise_multiplier=1.0, accountant="rdp",
                                                            grad_sample_mode=mode))
    assert metrics["steps"] == 2 and all(torch.isfinite(p).all() for p in model.parameters())


def _pool_grads(pool: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled values, the input gradient of a random linear function of them)."""
    x = x.clone().requires_grad_(True)
    out = pool(x)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    return out.detach(), torch.autograd.grad((out * weights).sum(), x)[0]


@pytest.mark.parametrize("shape", [(5, 3, 8, 8), (2, 4, 7, 9), (1, 2, 32, 32)])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_2x2_has_max_pool2d_values_and_gradients(shape, ties):
    """Bit for bit, with ties (small integers: most windows hold equal values) routed to the first element as
    max_pool2d routes them; a pool that splits a tie's gradient (torch.maximum) fails the same check."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 3, shape, generator=g).float() if ties else torch.randn(shape, generator=g)
    ours, reference = _pool_grads(MaxPool2x2(), x), _pool_grads(torch.nn.MaxPool2d(2), x)
    assert torch.equal(ours[0], reference[0]) and torch.equal(ours[1], reference[1])

    class SplitsTies(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            z = z[..., : z.shape[-2] // 2 * 2, : z.shape[-1] // 2 * 2]
            return torch.maximum(torch.maximum(z[..., ::2, ::2], z[..., ::2, 1::2]),
                                 torch.maximum(z[..., 1::2, ::2], z[..., 1::2, 1::2]))

    splitting = _pool_grads(SplitsTies(), x)
    assert torch.equal(splitting[0], reference[0]) and torch.equal(splitting[1], reference[1]) != ties


def test_max_pool_2x2_keeps_hessian_vector_products_and_vmap():
    """Exact HVPs (double backward) and vmapped stacked training see the same numbers as with max_pool2d."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.GroupNorm(2, 4), torch.nn.Tanh())
    head = torch.nn.Linear(4 * 4 * 4, 10)
    x, v, y = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))

    def hvp(pool: torch.nn.Module) -> torch.Tensor:
        xr = x.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(head(pool(net(xr)).flatten(1)), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xr, create_graph=True)
        return torch.autograd.grad(grad, xr, v)[0]

    assert torch.equal(hvp(MaxPool2x2()), hvp(torch.nn.MaxPool2d(2)))
    stacked = torch.randn(3, 5, 4, 8, 8)
    assert torch.equal(torch.func.vmap(MaxPool2x2())(stacked), torch.func.vmap(torch.nn.MaxPool2d(2))(stacked))


def test_the_architectures_registry_is_what_the_config_accepts_and_refuses_an_incomplete_module():
    from types import SimpleNamespace

    from memcurv.config import schema
    from memcurv.training import architectures

    assert schema()["properties"]["model"]["enum"] == list(architectures.catalogue()) == sorted(
        ["small_cnn", "cifar_cnn", "resnet18", "resnet50"])
    description = schema()["properties"]["model"]["description"]
    assert all(a.title in description for a in architectures.catalogue().values())
    with pytest.raises(TypeError, match=r"does not declare \['SAVED_MB_PER_PIXEL'\]"):
        architectures._architecture("half", SimpleNamespace(__name__="half", build=None, parameter_count=None,
                                                            TITLE="half"))
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", (3, 32, 32), 10)
