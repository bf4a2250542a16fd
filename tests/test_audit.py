"""The DP audit: its bound against known values and simulated DP mechanisms, and on a tiny digits study the
acceptance of issue 16 (the non-private control certifies more than 2, DP at epsilon 1 less than 1)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from memcurv import config
from memcurv.estimators import audit_bound
from memcurv.jobs import audit, reads
from memcurv.jobs.study import calibrate
from memcurv.report import audit_section, replication
from memcurv.settings import TrainSettings
from memcurv.training.train import PrivacySettings, train


def test_clopper_pearson_lower_matches_known_values():
    assert audit_bound.clopper_pearson_lower(0, 10, 0.05) == 0.0
    assert audit_bound.clopper_pearson_lower(10, 10, 0.05) == pytest.approx(0.05 ** 0.1)  # alpha^(1/n)
    # a 95% two-sided interval's lower end
    assert audit_bound.clopper_pearson_lower(5, 10, 0.025) == pytest.approx(0.187086, abs=1e-6)
    assert audit_bound.clopper_pearson_lower(50, 100, 0.025) == pytest.approx(0.398321, abs=1e-6)


def test_bound_of_perfect_guesses_is_the_logit_of_alpha_to_the_one_over_r():
    for r in (20, 100, 400):
        p = 0.05 ** (1 / r)
        assert audit_bound.epsilon_lower_bound(r, r, 10 * r, 0.0, 0.95) == pytest.approx(math.log(p / (1 - p)))
    assert audit_bound.epsilon_lower_bound(100, 100, 1000, 0.0, 0.95) == pytest.approx(3.49297, abs=1e-5)


def test_delta_term_only_lowers_the_bound_and_vanishes_with_delta():
    no_delta = audit_bound.epsilon_lower_bound(400, 330, 2000, 0.0, 0.95)
    assert audit_bound.epsilon_lower_bound(400, 330, 2000, 1e-12, 0.95) == pytest.approx(no_delta, abs=1e-6)
    assert audit_bound.epsilon_lower_bound(400, 330, 2000, 1e-5, 0.95) < no_delta
    assert audit_bound.p_value(1.0, 400, 330, 2000, 1e-5) > audit_bound.p_value(1.0, 400, 330, 2000, 0.0)
    assert audit_bound.epsilon_lower_bound(100, 50, 200, 1e-5, 0.95) == 0.0  # a coin's accuracy certifies nothing


def test_bound_is_valid_and_nearly_tight_on_randomized_response():
    """Randomized response is exactly eps-DP in each slot: the bound exceeds eps in at most 5% of audits, and with
    many slots it comes close to eps."""
    eps, slots, rng = 1.0, 400, np.random.default_rng(0)
    keep = math.exp(eps) / (1 + math.exp(eps))
    bounds = []
    for _ in range(200):
        correct = int((rng.random(slots) < keep).sum())  # every slot guessed: the released bit
        bounds.append(audit_bound.epsilon_lower_bound(slots, correct, slots, 1e-5, 0.95))
    assert np.mean(np.array(bounds) > eps) <= 0.05
    assert audit_bound.epsilon_lower_bound(20_000, round(keep * 20_000), 20_000, 0.0, 0.95) > 0.9


def test_guesses_take_the_extremes_and_break_ties_without_the_inclusions():
    score = np.array([0.0, 5.0, 1.0, 1.0, 3.0])
    tiebreak = np.array([0.1, 0.2, 0.9, 0.3, 0.5])
    assert audit_bound.guess(score, tiebreak, 2, 1).tolist() == [-1, 1, 0, 0, 1]
    # of the tied 1.0s, the lower tiebreak
    assert audit_bound.guess(score, tiebreak, 0, 2).tolist() == [-1, 0, 0, -1, 0]
    with pytest.raises(ValueError):
        audit_bound.guess(score, tiebreak, 3, 3)


def test_attack_chosen_on_held_out_models_certifies_nothing_from_noise():
    rng = np.random.default_rng(1)
    included = rng.random((16, 50)) < 0.5
    cfg = config.validate({"audit": {}}).audit
    result = audit_bound.audit_score(rng.normal(size=(16, 50)), included, rng.random((16, 50)), 8, cfg, 1e-5)
    assert result["eps_lb"] == 0.0 and result["slots"] == 400 and result["models_evaluation"] == 8
    assert result["eps_lb_max"] == audit_bound.largest_certifiable(400, 1e-5, 0.95)


def test_an_audit_can_certify_only_so_much_whatever_the_guesses():
    """Every guess right on 3,200 slots certifies about 6.9 (the review's figure): above it an audit has no power;
    more slots certify more, and no count of right guesses on those slots certifies more than all of them."""
    most = audit_bound.largest_certifiable(3200, 1e-5, 0.95)
    assert 6.5 < most < 7.3
    assert audit_bound.largest_certifiable(400, 1e-5, 0.95) < most < audit_bound.largest_certifiable(32_000, 1e-5, 0.95)
    assert all(audit_bound.epsilon_lower_bound(r, v, 3200, 1e-5, 0.95) <= most for r, v in ((3200, 3100), (1000, 1000)))


def test_a_fixed_schedule_sets_the_poisson_rate_and_steps_whatever_the_data_size():
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 2, (40,))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    _, metrics = train(model, x, y, TrainSettings(epochs=2, batch_size=10), seed=0, schedule=(0.2, 6),
                       privacy_settings=PrivacySettings(noise_multiplier=1.0, accountant="rdp",
                                                         grad_sample_mode="hooks"))
    assert metrics["sample_rate"] == 0.2 and metrics["steps"] == 6


@pytest.fixture(scope="module")
def tiny_audit(tmp_path_factory):
    """A tiny audit on digits: 50 canaries, 8 models per arm (4 choose the attack, 4 give the bound), DP at eps 1
    trained as the default study trains its DP models, and the non-private control."""
    out = tmp_path_factory.mktemp("audit")
    cfg = config.validate({
        "study": "tiny_audit", "dataset": {"name": "digits"}, "device": "cpu", "curvature": {"probes": 2},
        "train": {"epochs": 15, "batch_size": 256, "optimizer": "sgd", "lr": 2.0, "momentum": 0.0},
        "privacy": {"accountant": "prv"},
        "audit": {"enabled": True, "epsilons": [1], "canaries": 50, "num_models": 8, "models_per_job": 8}})
    torch.set_num_threads(1)
    # each job sees the config as its verb does (memcurv.jobs.reads): reading an undeclared section fails
    calibrate(reads.restrict(cfg, "calibrate", "audit"), "audit", [1], out / "noise.json")
    audit.write_canaries(reads.restrict(cfg, "audit-canaries"), out / "canaries.npz")
    shards = [out / f"{arm}.npz" for arm in audit.arms(cfg)]
    for arm, shard in zip(audit.arms(cfg), shards):
        audit.train_audit_shard(reads.restrict(cfg, "train-audit"), arm, out / "canaries.npz", out / "noise.json", 0,
                                shard)
    tables = out / "tables"
    audit.audit_tables(reads.restrict(cfg, "audit-table"), out / "canaries.npz", shards, tables / "audit.csv",
                       tables / "audit_canaries.csv")
    return cfg, tables


def test_negative_control_certifies_above_2_and_dp_at_epsilon_1_stays_below_1(tiny_audit):
    _, tables = tiny_audit
    bounds = pd.read_csv(tables / "audit.csv")
    assert set(bounds["score"]) == set(audit.ATTACK_SCORES) and (bounds["confidence"] == 0.95).all()
    control, dp = bounds[~bounds["private"]], bounds[bounds["private"]]
    assert control["eps_lb"].max() > 2
    assert (dp["eps_lb"] < 1).all() and (dp["epsilon_spent"] <= 1).all()
    assert (bounds["slots"] == 4 * 50).all()  # the bound counts the evaluation models' slots only


def test_canary_memorization_and_the_report_section(tiny_audit, tmp_path):
    cfg, tables = tiny_audit
    canaries = pd.read_csv(tables / "audit_canaries.csv")
    dp = canaries[canaries["arm"] == "eps1"]
    assert (dp["label"] != dp["canary_label"]).all() and (dp["n_in"] + dp["n_out"] == 8).all()
    assert dp["bound"].iloc[0] == pytest.approx(1 - math.exp(-1))
    assert canaries.loc[canaries["arm"] == "nonprivate", "mem"].mean() > dp["mem"].mean()
    lines, numbers = audit_section.report_section(tables, tmp_path / "audit.png", cfg.audit.control_epsilon)
    assert numbers["verdict"] == audit_section.CONSISTENT
    assert numbers["control_verdict"] == audit_section.CONTROL_DETECTED
    assert any(audit_section.CONSISTENT in line for line in lines)
    assert replication.audit_section is audit_section  # the study report adds it when the audit's tables exist
