"""The fitted forms recover planted parameters; binning and claims follow PAPER.md's definitions."""

import numpy as np
import pandas as pd
import pytest

from memcurv.analysis import theory

EPS = np.array([0.5, 1, 2, 5, 10, 20, 50, 100], dtype=float)


def test_mem_bound_values():
    np.testing.assert_allclose(theory.mem_bound([0.0, 1.0, np.log(2)]), [0.0, 1 - np.exp(-1), 0.5])


def test_loss_fit_recovers_planted_parameters():
    fit = theory.fit_loss_vs_epsilon(EPS, 0.3 + 2.0 * np.exp(-0.4 * EPS))
    assert fit.params == pytest.approx({"a": 0.3, "b": 2.0, "c": 0.4}, rel=1e-4)
    assert fit.r2 == pytest.approx(1.0)
    assert set(fit.to_dict()) == {"formula", "params", "stderr", "r2", "n", "degenerate"}
    assert fit.degenerate() is None


def test_eq16_fit_recovers_planted_parameters():
    loss = theory.fit_loss_vs_epsilon(EPS, 0.3 + 2.0 * np.exp(-0.4 * EPS))
    curv = (0.3 + 2.0 * np.exp(-0.4 * EPS)) * 5.0 * (1 - np.exp(-EPS)) + 0.7
    fit = theory.fit_curvature_vs_epsilon(EPS, curv, loss)
    assert fit.params == pytest.approx({"d": 5.0, "e": 0.7}, rel=1e-3)
    np.testing.assert_allclose(fit.predict(EPS), curv, rtol=1e-3)


def test_fits_need_more_points_than_parameters():
    with pytest.raises(ValueError, match="more than 3 points"):
        theory.fit_loss_vs_epsilon(EPS[:3], EPS[:3])


def test_binning_drops_negative_and_unit_scores():
    mem = np.array([-0.1, 0.0, 0.01, 0.03, 0.5, 0.999, 1.0, np.nan])
    curv = np.array([9.0, 1.0, 3.0, 5.0, 7.0, 8.0, 9.0, 9.0])
    bins = theory.bin_memorization(mem, curv)
    assert bins["count"].tolist() == [2, 1, 1, 1]
    assert bins["curvature"].tolist() == [2.0, 5.0, 7.0, 8.0]
    assert bins["bin_low"].to_numpy() == pytest.approx([0.0, 0.02, 0.5, 0.98])


def test_linear_and_subpopulation_fits_recover_planted_lines():
    mem = np.linspace(0.01, 0.97, 30)
    count = np.arange(30, 0, -1).astype(float)
    line = theory.fit_mem_vs_curvature_linear(mem, 4 * mem + 1)
    assert line.params == pytest.approx({"slope": 4, "intercept": 1})
    sub = theory.fit_subpopulation_bound(mem, count, (mem - 0.05) / (0.2 * np.sqrt(count)))
    assert sub.params == pytest.approx({"p1": 0.2, "c1": 0.05}, rel=1e-4)


def _dp_table(curv_of_eps, loss_of_eps, seeds=3):
    rng = np.random.default_rng(0)
    rows = [{"epsilon": e, "seed": s, "curvature": curv_of_eps(e) + 0.01 * rng.standard_normal(),
             "test_loss": loss_of_eps(e), "test_acc": 0.5, "train_acc": 0.5} for e in EPS for s in range(seeds)]
    table = pd.DataFrame(rows)
    return table.assign(curv_trace_sum=table["curvature"], curv_gradnorm_mean=table["curvature"])


def test_faithful_seed_average_divides_by_the_number_of_epsilons():
    dp = _dp_table(lambda e: 1.0, lambda e: 1.0)
    fixed = theory.curvature_per_epsilon(dp, "mean")
    faithful = theory.curvature_per_epsilon(dp, "faithful")
    np.testing.assert_allclose(faithful["mean"], fixed["mean"] * 3 / len(EPS))


def test_released_eq15_fit_is_non_negative_least_squares_of_mem_sqrt_m_and_m():
    """The released notebooks fit curvature ~ w mem sqrt(m) + w' m with w, w' >= 0: exact data give the weights
    back; data that least squares would fit with a negative w' get w' = 0."""
    mem, count = np.array([0.1, 0.3, 0.5, 0.7, 0.9]), np.array([400.0, 200.0, 90.0, 40.0, 10.0])
    fit = theory.fit_subpopulation_released(mem, count, 2.0 * mem * np.sqrt(count) + 0.5 * count)
    assert fit.params == pytest.approx({"w": 2.0, "w_count": 0.5}) and fit.r2 == pytest.approx(1.0)
    falling = theory.fit_subpopulation_released(mem, count, 2.0 * mem * np.sqrt(count) - 0.01 * count)
    assert falling.params["w_count"] == 0.0 and falling.params["w"] > 0
    bins = pd.DataFrame({"mem": mem, "count": count, "curvature": 2.0 * mem * np.sqrt(count) + 0.5 * count})
    assert theory.fit_binned(bins, "released")["subpopulation"].formula.startswith("w mem sqrt(m_sub)")
    assert theory.fit_binned(bins, "paper")["subpopulation"].formula == "(mem - c1) / (p1 sqrt(m_sub))"
