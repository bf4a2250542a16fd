"""torchvision's ResNet-50 (ImageNet's stem), GroupNorm(32) where private."""

from __future__ import annotations

from typing import Any

from memcurv.training.architectures import Shape, resnet_parameters

TITLE = "resnet50: torchvision's ResNet-50 (ImageNet)"
SAVED_MB_PER_PIXEL = 1.72e-3


def build(input_shape: Shape, num_classes: int, norm: str) -> Any:
    from torch import nn
    from torchvision.models.resnet import ResNet

    from memcurv.training.models import residual_blocks, resnet_norm

    model = ResNet(residual_blocks()[1], [3, 4, 6, 3], num_classes=num_classes, norm_layer=resnet_norm(norm))
    if input_shape[0] != 3:
        model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def parameter_count(input_shape: Shape, num_classes: int) -> int:
    return resnet_parameters(input_shape, num_classes, body=23_498_624, stem=(64, 7), features=2048)
