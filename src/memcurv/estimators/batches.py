"""Batches that fit the GPU, at run time: a batch of curvature or evaluation that runs out of GPU memory is redone at
half the size, down to one example.  Scores are per example, so they do not change (the estimates that keep jobs
from running out in the first place are the workflow's, memcurv.jobs.resources)."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA out-of-memory error (torch raises OutOfMemoryError; some kernels a RuntimeError saying so)."""
    import torch  # only called from code that runs models, where torch is loaded already

    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error))


def run_in_batches(n: int, batch_size: int, run: Callable[[slice], None], what: str) -> None:
    """Call run(slice) on consecutive slices of range(n), `batch_size` long; a slice that runs out of GPU memory
    is redone at half the size (kept for the rest), down to size 1, where the error is raised.  `run` must keep
    nothing of a slice that fails, and its results must not depend on the slicing."""
    import torch

    start, size = 0, batch_size
    while start < n:
        sl = slice(start, min(start + size, n))
        try:
            run(sl)
        except RuntimeError as error:
            if sl.stop - sl.start == 1 or not is_out_of_memory(error):
                raise
        else:
            start = sl.stop
            continue
        failed = sl.stop - sl.start
        size = failed // 2
        torch.cuda.empty_cache()  # out of the except block: the failed slice's tensors are freed by now
        log.warning("%s: out of GPU memory at batch %d; retrying examples %d.. at batch %d", what, failed, start, size)
