"""CIFAR-100 (fine labels) from the official python-pickle files (torchvision's files and md5 sums), downloaded
into dataset.root when dataset.download is true.  Training ids follow the file's order."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memcurv.data.datasets._cifar import load_batches
from memcurv.data.datasets._common import Arrays, Raw, Source

TITLE = "CIFAR-100"
NORMALIZATION = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))  # the released code's constants (PAPER.md)
DOWNLOADS = True
SLOW_TO_DECODE = False
FOLLOWS_CIFAR10_ORDER = False


def load_arrays(root: Path, *, download: bool = False, verify_checksums: bool = True) -> Arrays:
    """The files in `root` as uint8 (N, 32, 32, 3), fine labels and the fine class names of meta."""
    from torchvision.datasets import CIFAR100

    return load_batches(CIFAR100, "cifar100", root, download=download, verify_checksums=verify_checksums)


def read(source: Source) -> Raw:
    return Raw.from_uint8(load_arrays(source.folder, download=source.download,
                                      verify_checksums=source.verify_checksums))


def input_dims(options: Mapping[str, Any]) -> tuple[tuple[int, int, int], int]:
    return (3, 32, 32), 100


def train_size(options: Mapping[str, Any]) -> int | None:
    return 50_000
