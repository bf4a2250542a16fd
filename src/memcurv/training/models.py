"""The layers the architectures (memcurv.training.architectures) are built of, and `build_model`, which builds one
by name with its normalisation layers chosen by role (`norm`):

- ``group``: GroupNorm, which Opacus needs for per-example gradients (every DP model; Opacus's ModuleValidator.fix
  gives the same);
- ``batch``: BatchNorm, as in the networks the paper measured link 1 on (Feldman and Zhang's SmallInception and
  ResNet-50, scored by calc_curv_fz_models.py): non-private subset models only. Scored in eval mode, its statistics
  are the running ones, so a score never depends on which examples share a batch, and the network is piecewise
  linear in its input: the input Hessian under cross-entropy is exactly its Gauss-Newton part;
- ``none``: no normalisation (an ablation arm; piecewise linear too).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memcurv.training.architectures import architecture

NORMS = ("group", "batch", "none")


def norm_layer(norm: str, channels: int, groups: int) -> nn.Module:
    """The normalisation of one block of `channels`: GroupNorm with `groups` groups, BatchNorm, or none."""
    if norm == "group":
        return nn.GroupNorm(groups, channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {norm!r}; choose one of {NORMS}")


class MaxPool2x2(nn.Module):
    """``nn.MaxPool2d(2)`` with the same values and gradients, faster on small CPU images: PyTorch's CPU kernel
    takes 2.7 ms for 512 x 16 planes of 8x8 (60 times a ReLU of the same tensor), a fifth of an 8x8 training
    step (benchmarks/max_pool.py).  Each window's maximum is found with elementwise comparisons of its four
    strided corners, ties going to the first in row-major order as the kernel's do, and gathered from the input:
    so a gradient reaches exactly the element max_pool2d sends it to, and double backward (exact Hessian-vector
    products) works as for max_pool2d.  A NaN in a window need not propagate, unlike max_pool2d's."""

    piecewise_linear = True  # memcurv.estimators.curvature.piecewise_linear: no curvature of its own

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":  # GPU kernels are fast: one launch, not seven
            return F.max_pool2d(x, 2)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # an odd last row or column is dropped, as max_pool2d does
        x = x[..., :h, :w]
        width = x.shape[-1]
        with torch.no_grad():
            a, b, c, d = x[..., ::2, ::2], x[..., ::2, 1::2], x[..., 1::2, ::2], x[..., 1::2, 1::2]
            right_top, right_bottom = (b > a).long(), (d > c).long()
            bottom = (torch.maximum(c, d) > torch.maximum(a, b)).long()
            corner = (torch.arange(0, h, 2, device=x.device)[:, None] * width
                      + torch.arange(0, w, 2, device=x.device))
            index = corner + right_top + bottom * (width + right_bottom - right_top)
        return x.flatten(-2).gather(-1, index.flatten(-2)).unflatten(-1, (h // 2, w // 2))


def resnet_norm(norm: str) -> Any:
    """The ResNets' norm_layer: GroupNorm(32) is what opacus.validators.ModuleValidator.fix gives."""
    return lambda channels: norm_layer(norm, channels, min(32, channels))


def residual_blocks() -> tuple[type, type]:
    """torchvision's ResNet blocks with the residual sum out of place: Opacus's backward hooks forbid
    modifying a hooked module's output in place (``out += identity``)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck  # imported here: a second of start-up

    class Basic(BasicBlock):
        piecewise_linear = True  # as torchvision's block: memcurv.estimators.curvature.piecewise_linear

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class Bottle(Bottleneck):
        piecewise_linear = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    return Basic, Bottle


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, norm: str = "group") -> nn.Module:
    """Architecture `name` (a module of memcurv.training.architectures) with `norm` normalisation layers."""
    if norm not in NORMS:
        raise ValueError(f"unknown normalisation {norm!r}; choose one of {NORMS}")
    model = architecture(name).build(tuple(input_shape), num_classes, norm)
    for module in model.modules():  # in-place ReLUs break Opacus hooks and double backward
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return model
