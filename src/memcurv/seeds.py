"""Seeds of a study's random streams, each derived from a config seed and a path of indices (a model's index, a
stream's number): a stream depends on what it is for, never on how the work is sharded or in which order it runs."""

from __future__ import annotations

import numpy as np


def stream(seed: int | None, *path: int) -> np.random.Generator:
    """The generator at (seed, *path); seed None draws fresh entropy (the released code's unseeded sampling)."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence([seed, *path]))


def model_seed(seed: int, index: int) -> int:
    """Torch seed of the index-th model of an ensemble."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
