"""CIFAR-100 (fine labels) from the official python-pickle files (torchvision's files and md5 sums), downloaded
into dataset.root when dataset.download is true.  Training ids follow the file's order."""

from __future__ import annotations

from memcurv.data.datasets._cifar import Cifar

CIFAR = Cifar("CIFAR100", "cifar100", 100, "CIFAR-100",
              ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),  # the released code's normalisation (PAPER.md)
              follows_cifar10_order=False)
TITLE, NORMALIZATION, DOWNLOADS, SLOW_TO_DECODE, FOLLOWS_CIFAR10_ORDER = CIFAR.constants
load_arrays, read, input_dims, train_size = CIFAR.load_arrays, CIFAR.read, CIFAR.input_dims, CIFAR.train_size
