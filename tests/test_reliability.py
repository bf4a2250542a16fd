"""Split-half reliability on planted data: identical halves give 1, independent noise about 0, and a signal in
noise the Spearman-Brown value its variances predict."""

import numpy as np

from memcurv.analysis import reliability


def _masks(models: int, n: int) -> np.ndarray:
    return np.random.default_rng(0).random((models, n)) < 0.7


def test_every_model_agreeing_gives_reliability_one():
    masks = _masks(16, 300)
    values = np.tile(np.random.default_rng(1).standard_normal(300), (16, 1))  # each model gives the same values
    for aggregation in ("out_mean", "in_mean", "in_max"):
        assert reliability.split_half(masks, values, aggregation) > 0.999


def test_independent_noise_gives_reliability_near_zero():
    masks = _masks(16, 2000)
    values = np.random.default_rng(2).standard_normal((16, 2000))
    assert abs(reliability.split_half(masks, values, "out_mean")) < 0.1


def test_signal_in_noise_gives_the_spearman_brown_value():
    """Per model: signal (variance 1) + noise (variance 4); an example's mean over the ~5 excluding models of a half
    has noise variance 4 / 5 * ..., so the halves correlate at 1 / (1 + 4 / m) with m models out, per half."""
    models, n = 32, 3000
    masks = _masks(models, n)
    rng = np.random.default_rng(3)
    values = rng.standard_normal(n) + 2.0 * rng.standard_normal((models, n))
    m_half = 0.3 * models / 2  # models per half that leave an example out
    r_half = 1 / (1 + 4 / m_half)
    got = reliability.split_half(masks, values, "out_mean")
    assert abs(got - 2 * r_half / (1 + r_half)) < 0.06


def test_memorization_reliability_and_too_few_models():
    masks = _masks(40, 1000)
    rng = np.random.default_rng(4)
    propensity = rng.random(1000)
    correct = masks | (rng.random((40, 1000)) > propensity)
    assert reliability.split_half(masks, correct.astype(float), "in_minus_out") > 0.5
    assert np.isnan(reliability.split_half(masks[:1], correct[:1].astype(float), "out_mean"))
    assert reliability.spearman_brown(0.5) == 2 / 3
