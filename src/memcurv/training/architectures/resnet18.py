"""The CIFAR ResNet-18 of the released code: 3x3 stride-1 stem, no max-pool, GroupNorm(32) where private."""

from __future__ import annotations

from typing import Any

from memcurv.training.architectures import Shape, resnet_parameters

TITLE = "resnet18: the released code's CIFAR ResNet-18 (3x3 stride-1 stem, no max-pool)"
SAVED_MB_PER_PIXEL = 4.6e-3


def build(input_shape: Shape, num_classes: int, norm: str) -> Any:
    from torch import nn
    from torchvision.models.resnet import ResNet

    from memcurv.training.models import residual_blocks, resnet_norm

    model = ResNet(residual_blocks()[0], [2, 2, 2, 2], num_classes=num_classes, norm_layer=resnet_norm(norm))
    model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def parameter_count(input_shape: Shape, num_classes: int) -> int:
    return resnet_parameters(input_shape, num_classes, body=11_167_104, stem=(64, 3), features=512)
