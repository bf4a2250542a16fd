"""Two conv blocks, about 10k parameters: small enough to train hundreds on a CPU, >= 95% on the 8x8 digit images."""

from __future__ import annotations

from typing import Any

from memcurv.training.architectures import Shape, conv_stack_parameters

TITLE = "small_cnn: two conv blocks, about 10k parameters (the default study's 8x8 images)"
SAVED_MB_PER_PIXEL = 2.5e-4
WIDTHS, SHRINK = (16, 32), 2


def build(input_shape: Shape, num_classes: int, norm: str) -> Any:
    from torch import nn

    from memcurv.training.models import MaxPool2x2, norm_layer

    c, h, w = input_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), norm_layer(norm, 16, 4), nn.ReLU(), MaxPool2x2(),
        nn.Conv2d(16, 32, 3, padding=1), norm_layer(norm, 32, 8), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * (h // SHRINK) * (w // SHRINK), num_classes),
    )


def parameter_count(input_shape: Shape, num_classes: int) -> int:
    return conv_stack_parameters(input_shape, WIDTHS, SHRINK, num_classes)
