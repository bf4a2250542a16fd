"""The datasets: one module per dataset, and the catalogue of them that the config checks, the resource estimates,
`memcurv.data.loading.load_dataset` and the workflow all read.

A dataset module (its file name is the dataset's config name) declares:

- `read(source, **options) -> Raw`: the reader; its keyword-only parameters are the dataset's options
  (`dataset.options`), checked by name here and by value in the reader, each with a one-line error naming it.
  It returns images in [0, 1], labels and class names, example ids being the rows' order (`_common.Raw`);
- `NORMALIZATION`: per-channel (mean, std), or None to fit them on the training split (generated data);
- `input_dims(options) -> ((C, H, W), number of classes)`, known without loading anything;
- `train_size(options) -> int | None`: the training-set size where it is fixed or follows from the options
  (None where only the files tell), for config checks before any job starts;
- `TITLE`: how tables, figures and reports name it;
- `DOWNLOADS`: fetched from the internet when dataset.download is true (once, by the workflow's download job);
- `SLOW_TO_DECODE`: the workflow submits its light jobs rather than running them where Snakemake runs;
- `FOLLOWS_CIFAR10_ORDER`: within each class, training ids follow CIFAR-10's official training order, so scores
  published in that order map by within-class rank.

Adding a dataset is adding its module here, nothing else; `_`-prefixed modules are shared helpers.  Nothing here
imports torch: the workflow reads the catalogue while it parses the Snakefile.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from memcurv.data.datasets._common import Raw, Source

__all__ = ["DatasetSpec", "Raw", "Source", "catalogue", "check_options", "spec", "title", "train_size"]

FIELDS = ("read", "NORMALIZATION", "input_dims", "train_size", "TITLE", "DOWNLOADS", "SLOW_TO_DECODE",
          "FOLLOWS_CIFAR10_ORDER")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    read: Callable[..., Raw]
    options: tuple[str, ...]  # the reader's keyword-only parameters
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None  # None: fitted on the training split
    input_dims: Callable[[Mapping[str, Any]], tuple[tuple[int, int, int], int]]
    train_size: Callable[[Mapping[str, Any]], int | None]
    downloads: bool
    slow_to_decode: bool
    follows_cifar10_order: bool


def _spec(name: str, module: Any) -> DatasetSpec:
    """A module's declarations; one that misses any is refused, naming what it misses."""
    missing = [f for f in FIELDS if not hasattr(module, f)]
    if missing:
        raise TypeError(f"dataset module {module.__name__} does not declare {missing} (see memcurv.data.datasets)")
    options = tuple(p.name for p in inspect.signature(module.read).parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY)
    return DatasetSpec(name, module.TITLE, module.read, options, module.NORMALIZATION, module.input_dims,
                       module.train_size, bool(module.DOWNLOADS), bool(module.SLOW_TO_DECODE),
                       bool(module.FOLLOWS_CIFAR10_ORDER))


def catalogue() -> dict[str, DatasetSpec]:
    """Every dataset module of this package, by name, in name order."""
    specs = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            specs[info.name] = _spec(info.name, importlib.import_module(f"{__name__}.{info.name}"))
    return specs


def spec(name: str) -> DatasetSpec:
    specs = catalogue()
    if name not in specs:
        raise ValueError(f"unknown dataset {name!r}; choose one of {tuple(specs)}")
    return specs[name]


def check_options(name: str, options: Mapping[str, Any]) -> DatasetSpec:
    """The dataset's spec, once its options are all ones its reader takes (their values are the reader's)."""
    s = spec(name)
    if not s.options and options:
        raise ValueError(f"dataset {name} takes no options, got {sorted(options)}")
    unknown = sorted(set(options) - set(s.options))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for dataset {name}; valid: {sorted(s.options)}")
    return s


def title(name: str) -> str:
    """How tables, figures and reports name the dataset."""
    return spec(name).title


def train_size(name: str, options: Mapping[str, Any]) -> int | None:
    """The training-set size under these options where it is known without reading the data's files."""
    return check_options(name, options).train_size(options)
