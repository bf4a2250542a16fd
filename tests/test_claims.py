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
    def cond(low, high):
        return claims.Condition("x", Interval(0.5 * (low + high), low, high, 0.95, 100), ">", 0.0)

    assert claims.judge([cond(0.1, 0.3)]) == claims.HOLDS
    assert claims.judge([cond(0.1, 0.3), cond(-0.3, -0.1)]) == claims.FAILS
    assert claims.judge([cond(-0.1, 0.3), cond(0.1, 0.2)]) == claims.INCONCLUSIVE


def test_claims_hold_on_tables_shaped_like_the_theory(tmp_path):
    write_dp_models(tmp_path, lambda e: (1 + 0.2 * np.exp(-0.5 * e)) * 2 * (1 - np.exp(-e)),
                    lambda e: 1 + 0.2 * np.exp(-0.5 * e))
    write_examples(tmp_path, slope=3.0)
    write_mem_vs_epsilon(tmp_path, lambda e: 0.5 * theory.mem_bound(e) * 0.5)
    judged = {c.key: c for c in claims.check_claims(tmp_path)}
    assert {k: c.verdict for k, c in judged.items()} == dict.fromkeys(judged, claims.HOLDS)
    rho = judged["curvature_memorization"].numbers["conditions"][0]
    assert 0.3 < rho["low"] < rho["estimate"] < rho["high"]
    readings = judged["curvature_memorization"].numbers["readings"]
    assert {(r["score"], r["aggregation"]) for r in readings} == {(s, a) for s in SCORES
                                                                  for a in ("out_mean", "in_mean", "in_max")}
    assert all(r["reliability"] > 0.5 for r in readings)  # curvature follows a planted propensity in every model
    assert [r["score"] for r in judged["epsilon_curvature"].numbers["readings"]] == list(SCORES)
    assert "curvature_cscore" not in judged  # no C-scores in these tables


def test_claims_fail_where_the_data_disagrees_and_are_inconclusive_where_it_cannot_tell(tmp_path):
    write_dp_models(tmp_path, lambda e: 1 / (1 + e), lambda e: 1 + 0.01 * e)  # curvature falls, loss rises
    write_examples(tmp_path, slope=0.0)  # curvature unrelated to memorization
    write_mem_vs_epsilon(tmp_path, lambda e: 0.9)  # above 1 - e^-eps at eps 0.5 and 1
    judged = {c.key: c for c in claims.check_claims(tmp_path)}
    assert judged["epsilon_curvature"].verdict == claims.FAILS
    assert judged["loss_epsilon"].verdict == claims.FAILS
    assert judged["epsilon_memorization"].verdict == claims.FAILS
    assert judged["curvature_memorization"].verdict == claims.INCONCLUSIVE


def test_link2_fails_on_a_falling_fit_that_d_and_r2_alone_would_pass(tmp_path):
    """Curvature that is eq. 16's shape with a steeply falling loss: d > 0 and a near-perfect R², but the fitted curve
    falls from the smallest epsilon to the largest; the rise condition catches it (digits' fit fell from 13 to 3)."""
    loss = lambda e: 0.2 + 5 * np.exp(-e)  # noqa: E731
    write_dp_models(tmp_path, lambda e: loss(e) * 2.0 * (1 - np.exp(-e)), loss, noise=0.01)
    claim = claims.check_claims(tmp_path)[1]
    conditions = {c["name"]: c for c in claim.numbers["conditions"]}
    assert conditions["eq. 16 d"]["passes"] and conditions["eq. 16 R²"]["passes"]
    rise = conditions["eq. 16 fit's rise, largest ε minus smallest"]
    assert rise["high"] < 0 and claim.verdict == claims.FAILS


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


def test_link3_says_where_it_can_fail_and_fails_where_a_planted_top_k_crosses_the_bound(tmp_path):
    """Non-private models memorize the top-k at 0.9: the bound 1 - e^-eps lies below that up to eps ~2.3, so only
    there can the check fail; a DP top-k planted above the bound at small epsilon fails it, example by example too."""
    eps = [0.1, 0.25, 0.5, 1.0, 10.0, 50.0]
    write_mem_vs_epsilon(tmp_path, lambda e: 0.6 if e < 1 else 0.05, k=30, models=32, control=0.9, eps=eps)
    claim = claims.check_claims(tmp_path)[2]
    per = pd.DataFrame(claim.numbers["per_epsilon"]).set_index("epsilon")
    assert per["can_fail"].tolist() == [True, True, True, True, False, False]
    assert claim.numbers["epsilons_that_can_fail"] == [0.1, 0.25, 0.5, 1.0]
    np.testing.assert_allclose(per["nonprivate_mean"], 0.9, atol=0.08)
    assert claim.verdict == claims.FAILS  # 0.6 lies above the bounds 0.10, 0.22 and 0.39
    assert per.loc[0.1, "share_above_bound"] > 0.5 and per.loc[10.0, "share_above_bound"] == 0


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
    rho = Interval(0.02, -0.01, 0.05, 0.95, 200)  # half-width 0.03 at 5,000 examples
    assert claims.examples_to_decide(rho, 5000) == pytest.approx(5000 * (0.03 / 0.02) ** 2)
    assert claims.examples_to_decide(Interval(0.0, -0.1, 0.1, 0.95, 200), 100) == float("inf")


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
