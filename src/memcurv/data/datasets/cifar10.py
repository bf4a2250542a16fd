"""CIFAR-10 from the official python-pickle batches (torchvision's files and md5 sums), downloaded into
dataset.root when dataset.download is true.  Training ids follow the batch order: CIFAR-10's official order."""

from __future__ import annotations

from memcurv.data.datasets._cifar import Cifar

CIFAR = Cifar("CIFAR10", "cifar10", 10, "CIFAR-10",
              ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # the released code's normalisation (PAPER.md)
              follows_cifar10_order=True)
TITLE, NORMALIZATION, DOWNLOADS, SLOW_TO_DECODE, FOLLOWS_CIFAR10_ORDER = CIFAR.constants
load_arrays, read, input_dims, train_size = CIFAR.load_arrays, CIFAR.read, CIFAR.input_dims, CIFAR.train_size
