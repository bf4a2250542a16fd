"""Jiang, Zhang, Talwar and Mozer's C-scores (ICML 2021) of CIFAR-10's 50,000 training images, mapped to this
project's example ids: an external per-example reference for the run's memorization and curvature.

A C-score is the expected accuracy on an example of models trained on random subsets of the other examples,
estimated from thousands of models: the held-out half of Feldman and Zhang's memorization score, not memorization
itself (which also needs the models that trained on the example). Low C-score means atypical, mislabeled or
ambiguous: the examples memorization finds. Tables, figures and reports call it "C-score", and compare the run's
scores with 1 - C-score.

The file (`cifar10-cscores-orig-order.npz`, keys `labels` and `scores`) follows CIFAR-10's official training
order. A dataset whose training ids follow that order within each class (CIFAR-10 itself, and CIFAR-10 JPEG
re-encoded, whose file NNNN.jpg of a class is that class's NNNN-th official image) maps by within-class rank: the
example of class c that is the k-th of its class in id order is the k-th official image of class c. Every mapped
label is checked, so a dataset in another order, or another file, stops the job.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

MD5 = "fb902aa1f18832b245ce899c1808d1ca"
CLASSES, PER_CLASS = 10, 5000
FILE = "cifar10-cscores-orig-order.npz"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def read(path: Path, verify_checksum: bool) -> tuple[np.ndarray, np.ndarray]:
    """The file's labels and scores, each checked: the md5, 5,000 labels of each of the 10 classes, scores in [0, 1]."""
    fix = f"copy {FILE} (md5 {MD5}, from pluskid/structural-regularity) there or point memorization.cscores at it"
    if not path.is_file():
        raise FileNotFoundError(f"C-score file {path} not found; {fix}")
    if verify_checksum and _md5(path) != MD5:
        raise ValueError(f"C-score file {path} is damaged or another file (md5 {_md5(path)}, expected {MD5}); {fix}")
    try:
        with np.load(path) as z:
            labels, scores = z["labels"].astype(np.int64), z["scores"].astype(np.float64)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"C-score file {path} cannot be read as an .npz with keys labels and scores ({err}); "
                         f"{fix}") from None
    counts = np.bincount(labels, minlength=CLASSES) if labels.min(initial=0) >= 0 else np.zeros(0)
    if len(labels) != len(scores) or counts.tolist() != [PER_CLASS] * CLASSES:
        raise ValueError(f"C-score file {path} should hold {PER_CLASS} labels of each of {CLASSES} classes with a "
                         f"score each; {fix}")
    if not np.all((scores >= 0) & (scores <= 1)):
        raise ValueError(f"C-score file {path} has scores outside [0, 1]; {fix}")
    return labels, scores


def within_class_rank(labels: np.ndarray) -> np.ndarray:
    """Each example's rank among the examples of its class, in id order (0 for the first of its class)."""
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    return rank


def load_cscores(path: str | Path, labels: np.ndarray, verify_checksum: bool = True) -> np.ndarray:
    """The C-score of each training example, `labels` being the dataset's original (unflipped) training labels in id
    order, its ids following CIFAR-10's official order within each class."""
    official_labels, scores = read(Path(path), verify_checksum)
    labels = np.asarray(labels, dtype=np.int64)
    rank = within_class_rank(labels)
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= CLASSES or rank.max(initial=0) >= PER_CLASS:
        raise ValueError(f"C-scores map CIFAR-10's 10 classes of at most {PER_CLASS} images; this dataset has labels "
                         f"{sorted(set(labels.tolist()))[:12]} and up to {rank.max(initial=0) + 1} images a class")
    by_class = [np.flatnonzero(official_labels == c) for c in range(CLASSES)]
    official = np.array([by_class[c][k] for c, k in zip(labels, rank)], dtype=np.int64)
    wrong = np.flatnonzero(official_labels[official] != labels)
    if len(wrong):  # cannot happen by construction; a guard against a broken mapping
        raise ValueError(f"{len(wrong)} C-score labels differ from the dataset's after mapping (first: id {wrong[0]})")
    return scores[official]
