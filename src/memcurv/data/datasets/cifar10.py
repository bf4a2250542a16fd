"""CIFAR-10 from the official python-pickle batches (torchvision's files and md5 sums), downloaded into
dataset.root when dataset.download is true.  Training ids follow the batch order: CIFAR-10's official order."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memcurv.data.datasets._cifar import load_batches
from memcurv.data.datasets._common import Arrays, Raw, Source

TITLE = "CIFAR-10"
NORMALIZATION = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))  # the released code's constants (PAPER.md)
DOWNLOADS = True
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = True


def load_arrays(root: Path, *, download: bool = False, verify_checksums: bool = True) -> Arrays:
    """The batches in `root` as uint8 (N, 32, 32, 3), labels and the class names of batches.meta."""
    from torchvision.datasets import CIFAR10

    return load_batches(CIFAR10, "cifar10", root, download=download, verify_checksums=verify_checksums)


def read(source: Source) -> Raw:
    return Raw.from_uint8(load_arrays(source.folder, download=source.download,
                                      verify_checksums=source.verify_checksums))


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    return (3, 32, 32), 10


def train_size(options: Mapping[str, Any]) -> int | None:
    return 50_000
