"""Architectures by name.  All use GroupNorm, never BatchNorm, so Opacus computes per-example
gradients and a score never depends on which examples share a batch."""

from __future__ import annotations


from torch import nn

MODELS = ("small_cnn", "resnet18", "resnet50")


def _small_cnn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """About 10k parameters: small enough to train hundreds on a CPU, >= 95% on digits."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * (h // 2) * (w // 2), num_classes),
    )


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels), channels)  # what opacus.validators.ModuleValidator.fix gives


def _cifar_resnet18(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The CIFAR ResNet-18 of the released code: 3x3 stride-1 stem, no max-pool, GroupNorm(32)."""
    from torchvision.models import resnet18  # imported here: a second of start-up the small models skip

    model = resnet18(num_classes=num_classes, norm_layer=_group_norm)
    model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def _resnet50(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    from torchvision.models import resnet50

    model = resnet50(num_classes=num_classes, norm_layer=_group_norm)
    if input_shape[0] != 3:
        model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


_BUILDERS = {"small_cnn": _small_cnn, "resnet18": _cifar_resnet18, "resnet50": _resnet50}


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
    model = _BUILDERS[name](tuple(input_shape), num_classes)
    for module in model.modules():  # in-place ReLUs break Opacus hooks and double backward
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return model
