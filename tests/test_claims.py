"""Claims judged with bootstrap intervals: coverage on known answers, three-way verdicts on planted tables,
every reading side by side, and label noise found by memorization."""

import numpy as np
import pandas as pd
import pytest
from synthetic_tables import write_dp_models, write_examples, write_mem_vs_epsilon

from memcurv.analysis import bootstrap, claims, theory
from memcurv.analysis.bootstrap import CORRELATION, UNBOUNDED, Interval, spearman
from memcurv.data.label_noise import flip_labels
from memcurv.data.loading import load_dataset
from memcurv.estimators import memorization
from memcurv.estimators.score_reduction import SCORES


def _coverage(draw, truth, statistic, n, simulations, replicates, groups=None, limits=UNBOUNDED) -> float:
    rng, hits = np.random.default_rng(7), 0
    groups = np.zeros(n) if groups is None else groups
    for _ in range(simulations):
        data = draw(rng)
        (ci,) = bootstrap.seed_intervals(lambda idx: statistic(data, idx), groups, (limits,), replicates)
        hits += ci.low <= truth <= ci.high
    return hits / simulations


def test_spearman_is_scipys_to_the_bit():
    """The bootstrap's Spearman skips scipy's checks and p-value, not its arithmetic: ties, NaN pairs and sizes from 3
    up give scipy's value exactly (a reordered sum would differ in the last bits, and a rerun's report with it)."""
    from scipy import stats

    rng = np.random.default_rng(5)
    for n in (3, 5, 8, 40, 1437):
        x, y = rng.integers(0, 6, n).astype(float), rng.standard_normal(n) + rng.integers(0, 3, n)
        x[rng.random(n) < 0.1] = np.nan
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
            assert spearman(x, y) == stats.spearmanr(x[ok], y[ok]).statistic
    assert np.isnan(spearman(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("values", [[3.0, 1.0, 2.0], [2.0, 2.0, 1.0, 2.0, 5.0, 1.0], [True, False, True], [7] * 4,
                                    [1.0, np.nan, 0.0], list(np.random.default_rng(1).integers(0, 9, 300))])
def test_rank_is_scipys_rankdata(values):
    from scipy import stats

    np.testing.assert_array_equal(bootstrap.rank(np.array(values)), stats.rankdata(values))


def test_spearman_interval_covers_the_true_value_at_its_nominal_rate():
    """Bivariate normal with correlation 0.5: the population Spearman is (6 / pi) asin(0.25)."""
    cov = [[1, 0.5], [0.5, 1]]
    truth = 6 / np.pi * np.arcsin(0.25)
    rate = _coverage(lambda rng: rng.multivariate_normal([0, 0], cov, 80), truth,
                     lambda d, idx: spearman(d[idx, 0], d[idx, 1]), 80, simulations=150, replicates=300,
                     limits=CORRELATION)
    assert 0.88 <= rate <= 0.995, rate


def test_stratified_interval_of_a_mean_covers_at_its_nominal_rate():
    """Seeds resampled within each epsilon: the interval of one epsilon's mean over 20 seeds covers its mean."""
    groups = np.repeat([1.0, 10.0], 20)
    rate = _coverage(lambda rng: rng.normal(2.0, 1.0, 40), 2.0, lambda d, idx: d[idx][groups[idx] == 1.0].mean(), 40,
                     simulations=200, replicates=300, groups=groups)
    assert 0.88 <= rate <= 0.995, rate


def test_resampled_membership_at_unit_weights_is_the_plain_estimate():
    rng = np.random.default_rng(0)
    masks, values = rng.random((12, 30)) < 0.6, rng.standard_normal((12, 30))
    got = memorization.resampled_membership(masks, values, np.ones((1, 12)))
    plain = memorization.aggregate_by_membership(masks, values)
    for key in plain:
        np.testing.assert_allclose(got[key][0], plain[key])
    np.testing.assert_allclose(got["in_minus_out"][0], memorization.memorization(masks, values).mem)


def test_three_way_judgement():
    def cond(low, high, rule=claims.CLEARS):
        return claims.Condition("x", Interval(0.5 * (low + high), low, high, 0.95, 100), ">", 0.0, rule)

    assert claims.judge([cond(0.1, 0.3)]) == claims.HOLDS
    assert claims.judge([cond(0.1, 0.3), cond(-0.3, -0.1)]) == claims.FAILS
    assert claims.judge([cond(-0.1, 0.3), cond(0.1, 0.2)]) == claims.INCONCLUSIVE
    # "not against": only an interval wholly on the wrong side fails; one that straddles passes
    assert claims.judge([cond(0.1, 0.3), cond(-0.1, 0.3, claims.NOT_AGAINST)]) == claims.HOLDS
    assert claims.judge([cond(0.1, 0.3), cond(-0.3, -0.1, claims.NOT_AGAINST)]) == claims.FAILS

    def test(p):
        return claims.FitTest("lack of fit", theory.LackOfFit(1.0, p, 3, 12), 0.05)

    assert claims.judge([cond(0.1, 0.3), test(0.2)]) == claims.HOLDS
    assert claims.judge([cond(0.1, 0.3), test(0.01)]) == claims.FAILS
    assert claims.judge([cond(0.1, 0.3), test(np.nan)]) == claims.INCONCLUSIVE  # a test that cannot be run


def test_the_deciding_condition_is_the_one_that_failed_or_straddled():
    conditions = [{"name": "a", "passes": True, "fails": False}, {"name": "b", "passes": False, "fails": False},
                  {"name": "c", "passes": False, "fails": True}]
    assert claims.deciding(conditions, claims.FAILS)["name"] == "c"
    assert claims.deciding(conditions, claims.INCONCLUSIVE)["name"] == "b"
    assert claims.deciding(conditions[:1], claims.HOLDS)["name"] == "a"


def test_claims_hold_on_tables_shaped_like_the_theory(tmp_path):
    write_dp_models(tmp_path, lambda e: (1 + 0.2 * np.exp(-0.5 * e)) * 2 * (1 - np.exp(-e)),
                    lambda e: 1 + 0.2 * np.exp(-0.5 * e))
    write_examples(tmp_path, slope=3.0)
    write_mem_vs_epsilon(tmp_path, lambda e: 0.5 * theory.mem_bound(e) * 0.5)
    judged = {c.key: c for c in claims.check_claims(tmp_path)}
    assert {k: c.verdict for k, c in judged.items()} == dict.fromkeys(judged, claims.HOLDS)
    rho = judged["curvature_memorization"].numbers["conditions"][0]
    assert claims.Judging().min_effect < rho["low"] < rho["estimate"] < rho["high"]
    readings = judged["curvature_memorization"].numbers["readings"]
    assert {(r["score"], r["aggregation"]) for r in readings} == {(s, a) for s in SCORES
                                                                  for a in ("out_mean", "in_mean", "in_max")}
    assert all(r["reliability"] > 0.5 for r in readings)  # curvature follows a planted propensity in every model
    assert {r["verdict"] for r in readings if r["aggregation"] == "out_mean"} == {claims.HOLDS}
    corrected = judged["curvature_memorization"].numbers["corrected_for_reliability"]
    assert corrected["estimate"] > rho["estimate"]  # both measures noisy: corrected for it, the correlation is larger
    link2 = judged["epsilon_curvature"].numbers
    assert [r["score"] for r in link2["readings"]] == list(SCORES)
    assert {r["verdict"] for r in link2["readings"]} == {claims.HOLDS}
    assert link2["conditions"][2]["kind"] == "test" and link2["conditions"][2]["p_value"] >= 0.05
    assert "curvature_cscore" not in judged  # no C-scores in these tables


def _judged(tmp_path, key):
    return {c.key: c for c in claims.check_claims(tmp_path)}[key]


# --- Link 1: an effect of interest, not merely a correlation that excludes 0 ---------------------------

def test_a_small_correlation_with_a_tight_interval_does_not_hold(tmp_path):
    """3,000 examples whose curvature barely follows memorization: ρ about 0.05 with an interval above 0 (which
    "held" before), below the smallest effect of interest: the claim does not hold."""
    write_examples(tmp_path, slope=0.04, n=3000)
    claim = _judged(tmp_path, "curvature_memorization")
    rho = claim.numbers["conditions"][0]
    assert 0.02 < rho["estimate"] < 0.1 and 0 < rho["low"] and rho["high"] < claims.Judging().min_effect, rho
    assert claim.verdict == claims.FAILS and claim.numbers["deciding"]["name"] == rho["name"]


def test_link1_is_inconclusive_where_its_interval_straddles_the_effect_of_interest(tmp_path):
    write_examples(tmp_path, slope=0.6, n=60, models=16)
    claim = _judged(tmp_path, "curvature_memorization")
    rho = claim.numbers["conditions"][0]
    assert rho["low"] < claims.Judging().min_effect < rho["high"] and claim.verdict == claims.INCONCLUSIVE
    assert claim.numbers["examples_to_decide"] > 60  # a wider study would decide it


def test_a_binned_slope_significantly_negative_fails_link1_though_the_correlation_clears(tmp_path):
    """Curvature that rises with memorization for most examples and collapses for the most memorized (digits_noise's
    shape): the rank correlation clears 0.3, the line through the paper's binned means falls."""
    write_examples(tmp_path, slope=0, curve=lambda p: np.where(p < 0.9, 3 * p, -30.0), n=1000, models=64, noise=0.5)
    claim = _judged(tmp_path, "curvature_memorization")
    rho, slope = claim.numbers["conditions"]
    assert rho["passes"] and slope["high"] < 0 and slope["fails"]
    assert claim.verdict == claims.FAILS and claim.numbers["deciding"] == slope


def test_the_binned_slope_is_the_linear_fit_through_the_bins():
    rng = np.random.default_rng(3)
    mem, curv = rng.random(500) * 1.1 - 0.05, rng.standard_normal(500) + 2 * rng.random(500)
    bins = theory.bin_memorization(mem, curv)
    assert theory.binned_slope(mem, curv) == pytest.approx(theory.fit_mem_vs_curvature_linear(
        bins["mem"], bins["curvature"]).params["slope"], rel=1e-12)
    assert np.isnan(theory.binned_slope(np.array([0.1, 0.5]), np.array([1.0, 2.0])))


def test_correction_for_attenuation():
    rho = Interval(0.3, 0.2, 0.4, 0.95, 100)
    got = claims.disattenuated(rho, 0.5, 0.5)
    assert got == pytest.approx({"estimate": 0.6, "low": 0.4, "high": 0.8})
    assert claims.disattenuated(Interval(0.6, 0.5, 0.7, 0.95, 100), 0.25, 0.5)["high"] == 1.0  # clipped
    assert np.isnan(claims.disattenuated(rho, 0.0, 0.9)["estimate"])


# --- Link 2 and the loss: effect size, rise, and the fitted curve's shape -------------------------------

def test_link2_and_the_loss_do_not_hold_where_the_data_disagree(tmp_path):
    write_dp_models(tmp_path, lambda e: 1 / (1 + e), lambda e: 1 + 0.01 * e)  # curvature falls, loss rises
    assert _judged(tmp_path, "epsilon_curvature").verdict == claims.FAILS
    assert _judged(tmp_path, "loss_epsilon").verdict == claims.FAILS


def test_link2_and_the_loss_are_inconclusive_where_the_seeds_are_too_noisy_to_tell(tmp_path):
    write_dp_models(tmp_path, lambda e: 1 + 0.1 * (1 - np.exp(-e)), lambda e: 1 - 0.05 * np.log(e), seeds=3, noise=0.5,
                    loss_noise=0.3)
    for key in ("epsilon_curvature", "loss_epsilon"):
        claim = _judged(tmp_path, key)
        assert claim.verdict == claims.INCONCLUSIVE, (key, claim.numbers["conditions"])
        assert not any(c["fails"] for c in claim.numbers["conditions"])


def test_a_fit_that_misses_a_rising_curves_shape_fails_the_lack_of_fit_test(tmp_path):
    """Curvature that keeps rising with log epsilon where eq. 16 saturates: the correlation and the fitted curve's rise
    clear their thresholds and the fit's R² passes 0.5 (the old criterion), but the curve misses the seeds' means by
    far more than their spread: the lack-of-fit test fails the claim."""
    write_dp_models(tmp_path, lambda e: 1 + np.log(e), lambda e: 0.2 + 5 * np.exp(-e), noise=0.02)
    claim = _judged(tmp_path, "epsilon_curvature")
    rho, rise, test = claim.numbers["conditions"]
    assert rho["passes"] and rise["passes"] and claim.numbers["eq16_fit"]["r2"] > 0.5
    assert test["p_value"] < 0.05 and claim.verdict == claims.FAILS and claim.numbers["deciding"] == test


def test_link2_fails_on_a_falling_fit(tmp_path):
    """Curvature of eq. 16's shape with a steeply falling loss: d > 0 and a near-perfect R², but the fitted curve
    falls from the smallest epsilon to the largest; the rise condition catches it (digits' fit fell from 13 to 3)."""
    loss = lambda e: 0.2 + 5 * np.exp(-e)  # noqa: E731
    write_dp_models(tmp_path, lambda e: loss(e) * 2.0 * (1 - np.exp(-e)), loss, noise=0.01)
    claim = _judged(tmp_path, "epsilon_curvature")
    assert claim.numbers["eq16_fit"]["params"]["d"] > 0 and claim.numbers["eq16_fit"]["r2"] > 0.9
    rise = next(c for c in claim.numbers["conditions"] if c["name"].startswith("eq. 16 fit's rise"))
    assert rise["high"] < 0 and claim.verdict == claims.FAILS


def test_lack_of_fit_f_test_by_hand():
    """Two groups of three around means 1 and 3, a curve through 1.5 and 2.5: F = (3 * 0.25 * 2 / 1) / (SS_pe / 4)."""
    groups = np.array([1, 1, 1, 2, 2, 2])
    y = np.array([0.9, 1.0, 1.1, 2.8, 3.0, 3.2])
    got = theory.lack_of_fit(groups, y, lambda g: np.where(g == 1, 1.5, 2.5), params=1)
    pure = 0.02 + 0.08
    assert got.f == pytest.approx((3 * 0.25 * 2 / 1) / (pure / 4))
    from scipy import stats
    assert got.p_value == pytest.approx(stats.f.sf(got.f, 1, 4))
    assert np.isnan(theory.lack_of_fit(groups, y, lambda g: g, params=2).p_value)  # no df left for the lack of fit


def test_degenerate_fits_are_flagged():
    def fit(params, stderr, r2):
        return theory.Fit("f", params, stderr, r2, 10, lambda *a: a[0])

    assert fit({"p1": 1.4e6, "c1": 1.0}, {"p1": 2.3e12, "c1": 0.1}, 0.3).degenerate().startswith("p1")
    assert "worse than a flat line" in fit({"d": 1.0}, {"d": 0.1}, -2.5).degenerate()
    assert fit({"d": -0.005}, {"d": 0.6}, 0.0).degenerate() is None  # d near 0 is a result: d ≈ 0


# --- Link 3: the design's bound, tested where it can fail ------------------------------------------------

def test_the_bound_matches_the_subsets_design():
    """Poisson subsets differ by adding an example: 1 - e^-eps (up to delta); fixed-size ones by a swap: group
    privacy gives (2 eps, (1 + e^eps) delta) and 1 - e^-2eps."""
    eps = np.array([0.1, 1.0])
    np.testing.assert_allclose(theory.design_mem_bound(eps, 0.0, "poisson"), 1 - np.exp(-eps))
    np.testing.assert_allclose(theory.design_mem_bound(eps, 0.0, "fixed"), 1 - np.exp(-2 * eps))
    e, d = theory.adjacent_privacy(eps, 1e-5, "fixed")
    np.testing.assert_allclose(d, (1 + np.exp(eps)) * 1e-5)
    np.testing.assert_allclose(theory.design_mem_bound(eps, 1e-5, "poisson"), 1 - np.exp(-eps) * (1 - 1e-5))


@pytest.mark.parametrize("subsets, bound", [("poisson", lambda e: 1 - np.exp(-e)),
                                            ("fixed", lambda e: 1 - np.exp(-2 * e)),
                                            (None, lambda e: 1 - np.exp(-2 * e))])
def test_link3_judges_against_the_bound_of_the_recorded_design(tmp_path, subsets, bound):
    """A memorization of 0.15 at epsilon 0.1 lies above 1 - e^-0.1 = 0.095 but below 1 - e^-0.2 = 0.18: the
    Poisson design's claim fails there, the fixed design's does not (files without the key: fixed, as drawn)."""
    write_mem_vs_epsilon(tmp_path, lambda e: 0.15, k=200, models=64, eps=[0.1, 1.0], subsets=subsets)
    per = claims.topk_memorization_intervals(tmp_path / "mem_vs_epsilon_models.npz", "conditional", delta=0.0)
    np.testing.assert_allclose(per["bound"], bound(per["epsilon"].to_numpy()))
    claim = _judged(tmp_path, "epsilon_memorization")
    assert claim.numbers["design"] == (subsets or "fixed")
    low_eps = claim.numbers["conditions"][0]
    assert low_eps["name"].endswith("ε = 0.1")
    assert low_eps["fails"] if subsets == "poisson" else low_eps["passes"], low_eps


def test_link3_cannot_fail_where_the_models_own_accuracy_lies_below_the_bound(tmp_path):
    """DP models that get the top-k right only 20% of the time when trained on them: memorization cannot exceed that,
    so at every epsilon whose bound lies above P_in's interval the check cannot fail; with none left it is
    inconclusive, whatever the non-private control memorizes."""
    eps = [0.05, 0.5, 1.0, 10.0]
    write_mem_vs_epsilon(tmp_path, lambda e: 0.05, k=50, models=16, eps=eps, p_in=0.2, control=0.9)
    per = pd.DataFrame(_judged(tmp_path, "epsilon_memorization").numbers["per_epsilon"]).set_index("epsilon")
    np.testing.assert_allclose(per["p_in"], 0.2, atol=0.05)
    assert per["can_fail"].tolist() == list(per["p_in_ci_high"] > per["bound"]) == [True, False, False, False]
    assert (per["nonprivate_mean"] > per["bound"]).tolist() == [True, True, True, False]  # the old rule: 3 can fail
    write_mem_vs_epsilon(tmp_path, lambda e: 0.05, k=50, models=16, eps=eps[1:], p_in=0.2)
    claim = _judged(tmp_path, "epsilon_memorization")
    assert claim.verdict == claims.INCONCLUSIVE and claim.numbers["deciding"] == claims.CANNOT_FAIL
    assert claim.numbers["epsilons_that_can_fail"] == []


def test_link3_holds_fails_and_is_inconclusive(tmp_path):
    eps = [0.1, 0.5, 1.0, 10.0]
    write_mem_vs_epsilon(tmp_path, lambda e: 0.02, k=200, models=64, eps=eps, subsets="poisson")
    assert _judged(tmp_path, "epsilon_memorization").verdict == claims.HOLDS
    write_mem_vs_epsilon(tmp_path, lambda e: 0.6, k=200, models=64, eps=eps, subsets="poisson")
    assert _judged(tmp_path, "epsilon_memorization").verdict == claims.FAILS
    write_mem_vs_epsilon(tmp_path, lambda e: 0.09, k=20, models=8, eps=eps, subsets="poisson")
    claim = _judged(tmp_path, "epsilon_memorization")
    assert claim.verdict == claims.INCONCLUSIVE, claim.numbers["conditions"]
    assert claim.numbers["models_to_decide"]["0.1"] > 8  # the report says how many models would decide it


def test_models_to_decide_link3():
    mem = Interval(0.035, -0.035, 0.105, 0.95, 400)  # half-width 0.07, 0.06 below the bound 0.095, at 20 models
    assert claims.models_to_decide(mem, 20, 0.095) == pytest.approx(20 * (0.07 / 0.06) ** 2)
    assert claims.models_to_decide(Interval(0.095, 0.0, 0.19, 0.95, 400), 20, 0.095) == float("inf")


def test_the_direct_dp_test_is_at_most_zero_under_dp_and_positive_where_memorization_breaks_it(tmp_path):
    """P_in <= e^eps P_out + delta: models at memorization 0.02 satisfy it at eps 1 (gap well below 0); models at 0.6
    break it at eps 0.1 (P_in 1, P_out 0.4: the gap's interval lies above 0)."""
    write_mem_vs_epsilon(tmp_path, lambda e: 0.02 if e > 0.5 else 0.6, k=200, models=64, eps=[0.1, 1.0],
                         subsets="poisson")
    per = claims.topk_memorization_intervals(tmp_path / "mem_vs_epsilon_models.npz", "conditional").set_index("epsilon")
    assert per.loc[0.1, "dp_gap_ci_low"] > 0 and per.loc[1.0, "dp_gap_ci_high"] < 0
    np.testing.assert_allclose(per["dp_gap"], per["p_in"] - np.exp(per.index) * per["p_out"] - 1e-5)


def test_missing_tables_are_not_run(tmp_path):
    assert {c.verdict for c in claims.check_claims(tmp_path)} == {claims.NOT_RUN}


def test_label_flips_are_seeded_recorded_and_change_only_the_flipped_labels():
    ds = load_dataset("digits")
    a, b, other = (flip_labels(ds, 0.05, seed) for seed in (3, 3, 4))
    ids = a.ground_truth["flipped"]
    assert len(ids) == round(0.05 * len(ds.y_train)) and np.array_equal(ids, b.ground_truth["flipped"])
    assert not np.array_equal(ids, other.ground_truth["flipped"])
    changed = np.flatnonzero((a.y_train != ds.y_train).numpy())
    np.testing.assert_array_equal(changed, ids)  # every flipped label moved to another class, no other moved
    assert flip_labels(ds, 0.0, 3) is ds
    with pytest.raises(ValueError, match="label_noise"):
        flip_labels(ds, 1.0, 0)


def test_flipped_labels_are_found_by_memorization(tmp_path):
    write_examples(tmp_path, slope=0.0, flipped=20)
    judged = claims.check_claims(tmp_path)[0]
    auroc = {r["column"]: r["auroc_flipped"] for r in judged.numbers["readings"]}
    assert auroc["mem"]["low"] > 0.85 and auroc["curv_trace_sum_out_mean"]["low"] < 0.5 < auroc[
        "curv_trace_sum_out_mean"]["high"]  # memorization finds them; curvature unrelated to p does not


def test_auroc_by_ranks_is_sklearns():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    positive, score = rng.random(200) < 0.2, np.round(rng.standard_normal(200), 1)  # ties
    score[positive] += 0.5
    assert claims.auroc(positive, score) == pytest.approx(roc_auc_score(positive, score))
    score[:5] = np.nan
    assert claims.auroc(positive, score) == pytest.approx(roc_auc_score(positive[5:], score[5:]))
    assert np.isnan(claims.auroc(np.zeros(5, bool), np.arange(5.0)))


def test_faithful_memorization_averages_absolute_unconditional_scores(tmp_path):
    """Defect 4: |mean(s * mask) - mean(s * (1 - mask))| over all models, about half the true score at r = 0.5."""
    write_mem_vs_epsilon(tmp_path, lambda e: 0.6, models=64)
    fixed = claims.topk_memorization_intervals(tmp_path / "mem_vs_epsilon_models.npz", "conditional")
    faithful = claims.topk_memorization_intervals(tmp_path / "mem_vs_epsilon_models.npz", "faithful")
    np.testing.assert_allclose(fixed["mean"], 0.6, atol=0.1)
    np.testing.assert_allclose(faithful["mean"], 0.3, atol=0.07)


def test_too_few_memorization_bins_leave_the_fits_as_errors_not_a_crash(tmp_path):
    write_examples(tmp_path, slope=3.0)
    table = pd.read_csv(tmp_path / "examples.csv")
    table.assign(mem=np.where(table["mem"] > 0.5, 0.01, 0.0)).to_csv(tmp_path / "examples.csv", index=False)
    claim = claims.check_claims(tmp_path)[0]  # one bin of width 0.02 holds every example
    assert "error" in claim.numbers["linear_fit"] and "error" in claim.numbers["subpopulation_fit"]
    assert claim.verdict in (claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE)


def test_a_resample_without_models_gives_nan_not_an_error():
    masks, values = np.ones((3, 4), bool), np.ones((3, 4))
    got = memorization.resampled_membership(masks, values, np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    assert np.isnan(got["in_max"][0]).all() and np.isnan(got["in_mean"][0]).all()
    np.testing.assert_array_equal(got["in_max"][1], 1.0)


def test_faithful_link3_reads_the_true_label_probability(tmp_path):
    """The released calc_private_memorization.py: |mean(p * in) - mean(p * out)| of the softmax probability p."""
    masks = np.array([[[1, 0], [0, 1], [1, 1], [0, 0]]], dtype=bool)
    prob = np.array([[[0.9, 0.3], [0.2, 0.8], [0.7, 0.6], [0.1, 0.5]]], dtype=np.float32)
    np.savez(tmp_path / "m.npz", epsilons=np.array([1.0]), masks=masks, correct=prob > 0.5, prob=prob)
    got = claims.topk_memorization_intervals(tmp_path / "m.npz", "faithful", "probability")
    by_hand = np.mean([abs((0.9 + 0.7) - (0.2 + 0.1)) / 4, abs((0.8 + 0.6) - (0.3 + 0.5)) / 4])
    assert got["mean"].iloc[0] == pytest.approx(by_hand)
    correct = claims.topk_memorization_intervals(tmp_path / "m.npz", "faithful", "correctness")
    assert correct["mean"].iloc[0] == pytest.approx(np.mean([abs(2 - 0) / 4, abs(2 - 0) / 4]))  # 0/1 instead


def test_an_inconclusive_link1_says_how_many_examples_would_decide_it():
    rho = Interval(0.32, 0.29, 0.35, 0.95, 200)  # half-width 0.03 at 5,000 examples, 0.02 from the effect of interest
    assert claims.examples_to_decide(rho, 5000, 0.3) == pytest.approx(5000 * (0.03 / 0.02) ** 2)
    assert claims.examples_to_decide(Interval(0.3, 0.2, 0.4, 0.95, 200), 100, 0.3) == float("inf")


def test_replicates_at_a_bound_give_an_interval_from_their_quantiles_not_one_spanning_the_range():
    """An AUROC whose resamples sometimes put every positive last (exactly 0, as trace out-mean did for the flipped
    labels of digits_noise): clipped onto the atanh line, those replicates made the interval [0.000003, 0.999].
    Read from the replicates' quantiles it stays near them; without replicates at a bound nothing changes."""
    rng = np.random.default_rng(0)
    spread = np.clip(rng.normal(0.055, 0.03, 1000), 0.001, 1)
    at_zero = spread.copy()
    at_zero[:46] = 0.0  # 4.6%: more than the 2.5% below the interval
    ci = bootstrap.interval(0.057, at_zero, limits=claims.AUROC)
    assert ci.low < 1e-6 and 0.09 < ci.high < 0.2, ci
    few = spread.copy()
    few[:5] = 0.0  # 0.5%: the lower end stays above the bound
    ci = bootstrap.interval(0.057, few, limits=claims.AUROC)
    assert 0.0 < ci.low < 0.05 and ci.high < 0.2, ci
    line = np.arctanh(2 * spread - 1)
    half = 1.959963984540054 * np.std(line, ddof=1)
    want = (np.tanh(np.arctanh(2 * 0.057 - 1) + np.array([-half, half])) + 1) / 2
    ci = bootstrap.interval(0.057, spread, limits=claims.AUROC)
    np.testing.assert_allclose([ci.low, ci.high], want, rtol=1e-9)
