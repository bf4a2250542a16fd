"""The official CIFAR python-pickle archives, read for the two CIFAR modules.  File names and md5 sums come from
torchvision's dataset classes, so there is one source of truth for them; each module passes its class."""

from __future__ import annotations

import pickle
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memcurv.data.datasets._common import Arrays, Raw, Source, md5


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unpickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle with str keys; the official files are Python 2 pickles (bytes keys)."""
    with path.open("rb") as f:
        entry = pickle.load(f, encoding="bytes")
    return {_text(k): v for k, v in entry.items()}


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _unpickle(path)
    labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
    x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64)


def load_batches(cls: Any, name: str, root: Path, *, download: bool = False, verify_checksums: bool = True) -> Arrays:
    """CIFAR from `root`/<torchvision base folder> as uint8 (N, 32, 32, 3); training ids follow the batch order.
    `cls` is torchvision's class (it knows the folder, file names, md5 sums and how to download); `name` is the
    dataset's config name, for the errors."""
    folder = Path(root) / cls.base_folder
    files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]

    def missing() -> list[str]:
        return [f for f, _ in files if not (folder / f).is_file()]

    def not_found(absent: list[str]) -> FileNotFoundError:
        return FileNotFoundError(
            f"{name} files {absent} not found in {folder}. Set dataset.download: true on a machine with "
            f"internet, or extract the python version archive from https://www.cs.toronto.edu/~kriz/cifar.html "
            f"into {root}.")

    if missing() and download:
        try:
            cls(str(root), train=True, download=True)
        except Exception as err:  # network or extraction failure: report it with the same advice
            raise not_found(missing()) from err
    if missing():
        raise not_found(missing())
    if verify_checksums:
        for f, digest in files:
            if md5(folder / f) != digest:
                raise ValueError(f"checksum mismatch for {folder / f}: not the official {name} file "
                                 f"(set dataset.verify_checksums: false for fabricated or test files)")

    def split(entries: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*(_batch(folder / f) for f, _ in entries))
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = split(cls.train_list)
    x_test, y_test = split(cls.test_list)
    classes = tuple(_text(c) for c in _unpickle(folder / cls.meta["filename"])[cls.meta["key"]])
    return x_train, y_train, x_test, y_test, classes


@dataclass(frozen=True)
class Cifar:
    """One CIFAR dataset, for its module to declare what the catalogue reads (memcurv.data.datasets): torchvision's
    class for it (by name: torchvision is imported only when the files are read), the dataset's config name, its
    number of classes, title and normalisation, and whether its training ids follow CIFAR-10's official order."""
    torchvision_class: str
    name: str
    num_classes: int
    title: str
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    follows_cifar10_order: bool

    @property
    def constants(self) -> tuple[Any, ...]:
        """TITLE, NORMALIZATION, DOWNLOADS, SLOW_TO_DECODE and FOLLOWS_CIFAR10_ORDER: downloaded, quick to decode."""
        return self.title, self.normalization, True, False, self.follows_cifar10_order

    def load_arrays(self, root: Path, *, download: bool = False, verify_checksums: bool = True) -> Arrays:
        """The files in `root` as uint8 (N, 32, 32, 3), labels and the class names of the meta file."""
        cls = getattr(importlib.import_module("torchvision.datasets"), self.torchvision_class)
        return load_batches(cls, self.name, root, download=download, verify_checksums=verify_checksums)

    def read(self, source: Source) -> Raw:
        return Raw.from_uint8(self.load_arrays(source.folder, download=source.download,
                                               verify_checksums=source.verify_checksums))

    def input_dims(self, options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
        return (3, 32, 32), self.num_classes

    def train_size(self, options: Mapping[str, Any]) -> int | None:
        return 50_000
