"""The architectures: one module per architecture, and the catalogue of them that the config schema, the GPU memory
estimates (memcurv.jobs.resources), `memcurv.training.models.build_model` and the tests all read.

An architecture module (its file name is the model's config name) declares:

- `build(input_shape, num_classes, norm) -> torch.nn.Module`: the network for images of `input_shape` (C, H, W),
  its normalisation layers chosen by role (`norm`: group, batch or none; memcurv.training.models.norm_layer);
- `parameter_count(input_shape, num_classes) -> int`: its number of parameters, by arithmetic (a test compares it
  with the built network's);
- `SAVED_MB_PER_PIXEL`: MB autograd saves for the backward pass per input image and input pixel (H x W) in fp32,
  measured with torch.autograd.graph.saved_tensors_hooks (tests/test_gpu_jobs.py measures it again);
- `TITLE`: one line on what it is and what it is for (the schema's description of `model` lists them).

Adding an architecture is adding its module here, nothing else.  Nothing here imports torch at import time (a
module's `build` imports it): the workflow reads the catalogue while it parses the Snakefile.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FIELDS = ("build", "parameter_count", "SAVED_MB_PER_PIXEL", "TITLE")
Shape = tuple[int, int, int]


@dataclass(frozen=True)
class Architecture:
    name: str
    title: str
    build: Callable[[Shape, int, str], Any]
    parameter_count: Callable[[Shape, int], int]
    saved_mb_per_pixel: float


def _architecture(name: str, module: Any) -> Architecture:
    """A module's declarations; one that misses any is refused, naming what it misses."""
    missing = [f for f in FIELDS if not hasattr(module, f)]
    if missing:
        raise TypeError(f"architecture module {module.__name__} does not declare {missing} "
                        "(see memcurv.training.architectures)")
    return Architecture(name, module.TITLE, module.build, module.parameter_count, float(module.SAVED_MB_PER_PIXEL))


def catalogue() -> dict[str, Architecture]:
    """Every architecture module of this package, by name, in name order."""
    return {info.name: _architecture(info.name, importlib.import_module(f"{__name__}.{info.name}"))
            for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name) if not info.name.startswith("_")}


def architecture(name: str) -> Architecture:
    archs = catalogue()
    if name not in archs:
        raise ValueError(f"unknown model {name!r}; choose one of {tuple(archs)}")
    return archs[name]


def conv_stack_parameters(input_shape: Shape, widths: tuple[int, ...], shrink: int, num_classes: int) -> int:
    """Parameters of a plain CNN: 3x3 convs (each with a bias and a two-parameter normalisation per channel), then
    one linear layer on the image shrunk `shrink` times."""
    c, h, w = input_shape
    convs = sum(cin * cout * 9 + 3 * cout for cin, cout in zip((c, *widths), widths))
    return convs + (widths[-1] * (h // shrink) * (w // shrink) + 1) * num_classes


def resnet_parameters(input_shape: Shape, num_classes: int, body: int, stem: tuple[int, int], features: int) -> int:
    """Parameters of a ResNet: `body` apart from the first convolution (`stem`: output channels, kernel size,
    no bias) and the last linear layer (on `features` inputs)."""
    out, k = stem
    return body + input_shape[0] * out * k * k + (features + 1) * num_classes
