"""Architectures: shapes, Opacus compatibility, double backward for curvature."""

import pytest
import torch
from opacus.validators import ModuleValidator

from memcurv.training.models import build_model


@pytest.mark.parametrize("name, shape", [("small_cnn", (1, 8, 8)), ("small_cnn", (3, 32, 32)),
                                         ("cifar_cnn", (3, 32, 32)), ("resnet18", (3, 32, 32)),
                                         ("resnet50", (3, 32, 32))])
def test_models_shape_and_opacus_validation(name, shape):
    model = build_model(name, shape, 7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)
    assert ModuleValidator.validate(model, strict=False) == []
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


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
