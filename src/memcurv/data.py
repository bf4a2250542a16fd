"""Datasets by name, as normalised in-memory tensors with stable example ids.

An example's id is its index in the dataset's canonical order; every per-example array of the
project is indexed by it.  Whole datasets are held in memory (CIFAR: about 0.6 GB as float32);
ImageNet is therefore loaded at a reduced resolution and optionally a class subset.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memcurv.settings import DatasetConfig

DATASETS = ("digits", "synthetic", "cifar10", "cifar10_jpeg", "cifar100", "imagenet")
DOWNLOADABLE = ("cifar10", "cifar100")  # fetched through torchvision when dataset.download is true

NORMALIZATION = {  # the released code's constants (PAPER.md) and ImageNet's usual ones
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar10_jpeg": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # CIFAR-10's own, not re-fitted
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


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
    ground_truth: dict[str, np.ndarray] = field(default_factory=dict)  # synthetic: planted ids by kind

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


def _normalised(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                classes: tuple[str, ...], mean: tuple[float, ...] | None = None,
                std: tuple[float, ...] | None = None, ground_truth: dict[str, np.ndarray] | None = None) -> Dataset:
    """Dataset from images in [0, 1] shaped (N, H, W, C); mean/std default to the training split's."""
    if mean is None or std is None:
        mean = tuple(float(m) for m in x_train.mean(axis=(0, 1, 2)))
        std = tuple(float(s) for s in x_train.std(axis=(0, 1, 2)))
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(((x.astype(np.float32) - m) / s).transpose(0, 3, 1, 2).copy())

    return Dataset(name, to_tensor(x_train), torch.as_tensor(y_train, dtype=torch.long), to_tensor(x_test),
                   torch.as_tensor(y_test, dtype=torch.long), len(classes), classes, mean, std, ground_truth or {})


def _digits(seed: int, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), a seeded stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"dataset option test_fraction must lie in (0, 1), got {test_fraction}")
    d = load_digits()
    x = (d.images / 16.0)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target, test_size=test_fraction, random_state=seed,
                                              stratify=d.target)
    return _normalised("digits", x_tr, y_tr, x_te, y_te, tuple(str(i) for i in range(10)))


def _synthetic(seed: int, n_train: int = 1000, n_test: int = 500, num_classes: int = 5,
               image_shape: tuple[int, int, int] | list[int] = (1, 8, 8), prototypes_per_class: int = 3,
               atypical_fraction: float = 0.03, mislabeled_fraction: float = 0.03, noise: float = 0.15) -> Dataset:
    """A planted long tail.  Typical examples are noisy copies of a few prototypes per class; each
    atypical example is a singleton sub-population around its own prototype; mislabeled examples
    are typical images given another class's label.  Only a model that saw an atypical or
    mislabeled example can get it right: they are the memorized ones by construction."""
    if num_classes < 2 or prototypes_per_class < 1 or n_train < num_classes or n_test < 1:
        raise ValueError("synthetic needs num_classes >= 2, prototypes_per_class >= 1, n_train >= num_classes")
    n_atyp, n_mis = round(atypical_fraction * n_train), round(mislabeled_fraction * n_train)
    if n_atyp + n_mis >= n_train:
        raise ValueError("synthetic atypical_fraction + mislabeled_fraction must leave typical examples")
    rng = np.random.default_rng(seed)
    c, h, w = image_shape
    protos = rng.random((num_classes, prototypes_per_class, h, w, c))

    def typical(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, num_classes, n)
        which = rng.integers(0, prototypes_per_class, n)
        return protos[labels, which] + noise * rng.standard_normal((n, h, w, c)), labels

    x_tr, y_tr = typical(n_train)
    order = rng.permutation(n_train)
    atypical, mislabeled = np.sort(order[:n_atyp]), np.sort(order[n_atyp:n_atyp + n_mis])
    x_tr[atypical] = rng.random((n_atyp, h, w, c)) + noise * rng.standard_normal((n_atyp, h, w, c))
    y_tr[mislabeled] = (y_tr[mislabeled] + rng.integers(1, num_classes, n_mis)) % num_classes
    x_te, y_te = typical(n_test)
    return _normalised("synthetic", np.clip(x_tr, 0, 1), y_tr, np.clip(x_te, 0, 1), y_te,
                       tuple(f"class {i}" for i in range(num_classes)),
                       ground_truth={"atypical": atypical, "mislabeled": mislabeled})


def _cifar(name: str, root: Path, download: bool, verify_checksums: bool) -> Dataset:
    from memcurv.real_data import load_cifar

    x_tr, y_tr, x_te, y_te, classes = load_cifar(name, root, download=download, verify_checksums=verify_checksums)
    mean, std = NORMALIZATION[name]
    return _normalised(name, x_tr / 255.0, y_tr, x_te / 255.0, y_te, classes, mean, std)


def _cifar10_jpeg(root: Path, verify_checksums: bool, cache_dir: Path | None,
                  train_per_class: int | None = None, test_per_class: int | None = None) -> Dataset:
    from memcurv.real_data import load_cifar10_jpeg

    x_tr, y_tr, x_te, y_te, classes = load_cifar10_jpeg(root, verify_checksums=verify_checksums, cache_dir=cache_dir,
                                                        train_per_class=train_per_class,
                                                        test_per_class=test_per_class)
    mean, std = NORMALIZATION["cifar10_jpeg"]
    return _normalised("cifar10_jpeg", x_tr / 255.0, y_tr, x_te / 255.0, y_te, classes, mean, std)


def _imagenet(root: Path, **options: Any) -> Dataset:
    from memcurv.real_data import load_image_folder

    x_tr, y_tr, x_te, y_te, classes = load_image_folder(root, **options)
    mean, std = NORMALIZATION["imagenet"]
    return _normalised("imagenet", x_tr / 255.0, y_tr, x_te / 255.0, y_te, classes, mean, std)


def needs_download(dataset: DatasetConfig) -> bool:
    """Whether a study's dataset is fetched from the internet before jobs read it."""
    return dataset.download and dataset.name in DOWNLOADABLE


def fetch(dataset: DatasetConfig, out: str | Path) -> None:
    """Download a study's dataset (its config section) into its root where missing, check its files (md5) and
    write `out`, a record of what was fetched: the workflow runs this once, where there is internet, before
    any job reads the dataset."""
    from memcurv.io import write_json
    from memcurv.real_data import load_cifar

    name, root = dataset.name, Path(dataset.root or "resources/data")
    if not needs_download(dataset):
        raise ValueError(f"dataset {name} with download {dataset.download} is not fetched from the internet")
    x_train, _, x_test, _, classes = load_cifar(name, root, download=True, verify_checksums=dataset.verify_checksums)
    write_json(out, {"dataset": name, "root": str(root), "verified_checksums": dataset.verify_checksums,
                     "train": len(x_train), "test": len(x_test), "classes": list(classes)})


def load_dataset(name: str, *, root: str | Path | None = None, download: bool = False,
                 verify_checksums: bool = True, seed: int = 0, cache_dir: str | Path | None = None,
                 **options: Any) -> Dataset:
    """The dataset `name`; `options` are the dataset's own (e.g. test_fraction, n_train, resolution).
    `cache_dir` keeps decoded images of datasets stored compressed (cifar10_jpeg) for later loads."""
    builders = {"digits": _digits, "synthetic": _synthetic, "imagenet": _imagenet, "cifar10_jpeg": _cifar10_jpeg}
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if name in ("cifar10", "cifar100"):
        if options:
            raise ValueError(f"dataset {name} takes no options, got {sorted(options)}")
        return _cifar(name, Path(root or "resources/data"), download, verify_checksums)
    fixed = {"seed", "root", "options", "verify_checksums", "cache_dir"}
    accepted = set(inspect.signature(builders[name]).parameters) - fixed
    if name == "imagenet":
        accepted = {"resolution", "classes", "max_per_class"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for dataset {name}; valid: {sorted(accepted)}")
    if name == "cifar10_jpeg":
        return _cifar10_jpeg(Path(root or "resources/data"), verify_checksums,
                             None if cache_dir is None else Path(cache_dir), **options)
    if name == "imagenet":
        if root is None:
            raise ValueError("dataset imagenet needs dataset.root: a folder with train/ and val/ class folders")
        return _imagenet(Path(root), **options)
    return builders[name](seed, **options)
