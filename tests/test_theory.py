"""The fitted forms recover planted parameters; binning and claims follow PAPER.md's definitions."""

import numpy as np
import pandas as pd
import pytest

from memcurv import theory

EPS = np.array([0.5, 1, 2, 5, 10, 20, 50, 100], dtype=float)


def test_mem_bound_values():
    np.testing.assert_allclose(theory.mem_bound([0.0, 1.0, np.log(2)]), [0.0, 1 - np.exp(-1), 0.5])


def test_loss_fit_recovers_planted_parameters():
    fit = theory.fit_loss_vs_epsilon(EPS, 0.3 + 2.0 * np.exp(-0.4 * EPS))
    assert fit.params == pytest.approx({"a": 0.3, "b": 2.0, "c": 0.4}, rel=1e-4)
    assert fit.r2 == pytest.approx(1.0)
    assert set(fit.to_dict()) == {"formula", "params", "stderr", "r2", "n"}


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


def test_faithful_memorization_takes_absolute_unconditional_scores():
    table = pd.DataFrame({"epsilon": [1.0, 1.0], "id": [0, 1], "mem": [0.4, -0.2],
                          "mem_unconditional": [0.2, -0.1]})
    assert theory.topk_memorization_per_epsilon(table)["mean"].item() == pytest.approx(0.1)
    assert theory.topk_memorization_per_epsilon(table, "faithful")["mean"].item() == pytest.approx(0.15)


def _write_tables(tmp_path, dp, examples=None, mem=None):
    dp.to_csv(tmp_path / "dp_models.csv", index=False)
    if examples is not None:
        examples.to_csv(tmp_path / "examples.csv", index=False)
    if mem is not None:
        mem.to_csv(tmp_path / "mem_vs_epsilon.csv", index=False)


def test_claims_hold_on_data_shaped_like_the_theory(tmp_path):
    rng = np.random.default_rng(1)
    mem_scores = rng.random(2000)
    examples = pd.DataFrame({"mem": mem_scores, "curv_trace_sum_out_mean": 3 * mem_scores + rng.standard_normal(2000),
                             "curv_gradnorm_mean_in_max": -mem_scores})
    mem = pd.DataFrame({"epsilon": np.repeat([1.0, 10.0], 5), "id": np.tile(np.arange(5), 2),
                        "mem": [0.1] * 5 + [0.5] * 5, "mem_unconditional": [0.05] * 5 + [0.25] * 5})
    _write_tables(tmp_path, _dp_table(lambda e: (1 + 0.2 * np.exp(-0.5 * e)) * 2 * (1 - np.exp(-e)),
                                      lambda e: 1 + 0.2 * np.exp(-0.5 * e)),
                  examples, mem)
    claims = {c.key: c for c in theory.check_claims(tmp_path)}
    assert {k: c.verdict for k, c in claims.items()} == dict.fromkeys(claims, theory.HOLDS)
    assert claims["epsilon_memorization"].numbers["fraction_below_bound"] == 1.0
    assert claims["curvature_memorization"].numbers["spearman_rho"] > 0.5
    faithful = theory.check_claims(tmp_path, {"curvature_score": "gradnorm", "loss_reduction": "mean",
                                              "curvature_aggregation": "in_max"})
    assert faithful[0].verdict == theory.FAILS  # the same run judged under another curvature column
    assert faithful[0].numbers["curvature_column"] == "curv_gradnorm_mean_in_max"


def test_claims_fail_or_are_not_run_when_the_data_disagrees(tmp_path):
    mem = pd.DataFrame({"epsilon": [1.0, 10.0], "id": [0, 0], "mem": [0.9, 0.5], "mem_unconditional": [0.4, 0.2]})
    _write_tables(tmp_path, _dp_table(lambda e: -np.log(e + 1), lambda e: np.log(e + 1)), mem=mem)
    claims = {c.key: c for c in theory.check_claims(tmp_path)}
    assert claims["curvature_memorization"].verdict == theory.NOT_RUN
    assert claims["epsilon_curvature"].verdict == theory.FAILS
    assert claims["loss_epsilon"].verdict == theory.FAILS
    assert claims["epsilon_memorization"].verdict == theory.FAILS  # 0.9 > 1 - e^-1
    assert claims["epsilon_memorization"].numbers["fraction_below_bound"] == 0.5


def test_too_few_memorization_bins_is_a_verdict_not_a_crash(tmp_path):
    examples = pd.DataFrame({"mem": [0.0, 0.0, 0.01, 0.5], "curv_trace_sum_out_mean": [1.0, 2.0, 3.0, 4.0]})
    examples.to_csv(tmp_path / "examples.csv", index=False)
    claim = theory.check_claims(tmp_path)[0]
    assert claim.verdict == theory.FAILS and "error" in claim.numbers["linear_fit"]
