"""Datasets by name, as normalised in-memory tensors with stable example ids.

An example's id is its index in the dataset's canonical order; every per-example array of the
project is indexed by it.  Whole datasets are held in memory (CIFAR: about 0.6 GB as float32);
large image sets are therefore loaded at a reduced resolution and optionally a class subset.
Each dataset is a module of memcurv.data.datasets (its reader, normalisation, title, ...); this module
turns what a reader returns into tensors, the same way for every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memcurv.data import datasets
from memcurv.settings import DatasetConfig


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: torch.Tensor  # float32 (N, C, H, W), normalised with mean/std
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel
    std: tuple[float, ...]
    ground_truth: dict[str, np.ndarray] = field(default_factory=dict)  # generated data: planted ids by kind

    @property
    def ids(self) -> torch.Tensor:
        return torch.arange(len(self.y_train))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def images(self, ids: np.ndarray | torch.Tensor) -> np.ndarray:
        """Training images for display: (M, H, W, C) in [0, 1], normalisation undone."""
        x = self.x_train[torch.as_tensor(ids, dtype=torch.long)]
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def _normalised(name: str, raw: datasets.Raw, normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
                ) -> Dataset:
    """Dataset from a reader's images in [0, 1] shaped (N, H, W, C); mean/std default to the training split's."""
    if normalization is None:
        mean = tuple(float(m) for m in raw.x_train.mean(axis=(0, 1, 2)))
        std = tuple(float(s) for s in raw.x_train.std(axis=(0, 1, 2)))
    else:
        mean, std = normalization
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        # (x - m) / s in place, on a float32 copy, or on the reader's own float32 array (load_dataset owns it): large
        # sets (Tiny ImageNet at 64x64: 1.5 GB) are not copied twice more
        z = x.astype(np.float32, copy=False)
        z -= m
        z /= s
        return torch.from_numpy(z.transpose(0, 3, 1, 2).copy())

    return Dataset(name, to_tensor(raw.x_train), torch.as_tensor(raw.y_train, dtype=torch.long),
                   to_tensor(raw.x_test), torch.as_tensor(raw.y_test, dtype=torch.long), len(raw.classes),
                   raw.classes, mean, std, dict(raw.ground_truth))


def _source(dataset: DatasetConfig, *, download: bool | None = None) -> datasets.Source:
    return datasets.Source(Path(dataset.root) if dataset.root else None,
                           dataset.download if download is None else download, dataset.verify_checksums, dataset.seed)


def needs_download(dataset: DatasetConfig) -> bool:
    """Whether a study's dataset is fetched from the internet before jobs read it."""
    return dataset.download and datasets.spec(dataset.name).downloads


def fetch(dataset: DatasetConfig, out: str | Path) -> None:
    """Download a study's dataset (its config section) into its root where missing, check its files (md5) and
    write `out`, a record of what was fetched: the workflow runs this once, where there is internet, before
    any job reads the dataset."""
    from memcurv.io import write_json

    name, source = dataset.name, _source(dataset, download=True)
    if not needs_download(dataset):
        raise ValueError(f"dataset {name} with download {dataset.download} is not fetched from the internet")
    raw = datasets.check_options(name, dataset.options).read(source, **dataset.options)
    write_json(out, {"dataset": name, "root": str(source.folder), "verified_checksums": dataset.verify_checksums,
                     "train": len(raw.x_train), "test": len(raw.x_test), "classes": list(raw.classes)})


def load_dataset(name: str, *, root: str | Path | None = None, download: bool = False,
                 verify_checksums: bool = True, seed: int = 0, cache_dir: str | Path | None = None,
                 **options: Any) -> Dataset:
    """The dataset `name` (a module of memcurv.data.datasets); `options` are the dataset's own (e.g. test_fraction,
    n_train, resolution).  `cache_dir` keeps decoded images of datasets stored compressed for later loads."""
    spec = datasets.check_options(name, options)
    source = datasets.Source(Path(root) if root else None, download, verify_checksums, seed,
                             None if cache_dir is None else Path(cache_dir))
    return _normalised(name, spec.read(source, **options), spec.normalization)
