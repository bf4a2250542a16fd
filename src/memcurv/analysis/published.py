"""Feldman and Zhang's published memorization scores (e.g. `cifar100_infl_matrix.npz`), mapped to this
project's example ids.

The published arrays follow TensorFlow Datasets' order of the training set, not torchvision's: using
them as torchvision indices without a mapping is defect 6 of the released code.  A mapping is therefore
an explicit input (`index_map`: the project id of each published example), and every label is checked.
``mapping="identity"`` reproduces the defect (published index i read as id i, labels unchecked; the
mismatches are counted in the log).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
MAPPINGS = ("mapped", "identity")


def load_published_memorization(path: str | Path, labels: np.ndarray, index_map: str | Path | None = None,
                                mapping: str = "mapped") -> np.ndarray:
    """Published scores per project id (NaN where none was published).

    ``mapped``: fails with a message naming the mismatch when the published labels (`tr_labels`) disagree
    with the dataset's labels under `index_map`; without one the orders are assumed equal, which is
    checked the same way.  ``identity``: the released code's reading, index i is id i, `index_map` unused."""
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown index mapping {mapping!r}; choose one of {MAPPINGS}")
    labels = np.asarray(labels)
    with np.load(path) as z:
        missing = {"tr_mem", "tr_labels"} - set(z.files)
        if missing:
            raise ValueError(f"{path} lacks {sorted(missing)}: not a Feldman-Zhang score file")
        mem, published_labels = z["tr_mem"].astype(float), z["tr_labels"].astype(int)
    if mapping == "identity":
        if len(mem) != len(labels):
            raise ValueError(f"{len(mem)} published scores for {len(labels)} examples: identity order impossible")
        wrong = int((labels != published_labels).sum())
        log.warning("published scores read in their own order (defect 6): %d of %d labels differ", wrong, len(mem))
        return mem
    ids = np.arange(len(mem)) if index_map is None else np.load(index_map).astype(int)
    if len(ids) != len(mem):
        raise ValueError(f"index map has {len(ids)} entries for {len(mem)} published scores")
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= len(labels) or len(np.unique(ids)) != len(ids):
        raise ValueError(f"index map must name distinct ids in [0, {len(labels)})")
    wrong = np.flatnonzero(labels[ids] != published_labels)
    if len(wrong):
        raise ValueError(
            f"{len(wrong)} of {len(ids)} published labels differ from the dataset's under "
            f"{'the index map' if index_map is not None else 'the identity order'} (first at published index "
            f"{wrong[0]}: {published_labels[wrong[0]]} vs {labels[ids[wrong[0]]]}); the published order is "
            f"TFDS's, so give memorization.published_index_map (the project id of each published example)")
    out = np.full(len(labels), np.nan)
    out[ids] = mem
    return out
