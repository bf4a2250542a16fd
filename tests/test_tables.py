"""Table builders of memcurv.jobs on hand-made shards: what each column holds."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memcurv import config, io
from memcurv.estimators import memorization
from memcurv.estimators.score_reduction import SCORES
from memcurv.jobs import dp_models, extremes, mem_vs_epsilon, subset_models, toolkit

# --- Helpers of the builders' unit tests ---------------------------------------------------------------

N_TRAIN = 40  # the synthetic dataset's training examples in every config here
DP_BATCH = 16  # the released DP scorer's batch in these configs: 40 examples score in batches of 16, 16 and 8
DP_BATCH_OF_EXAMPLE = np.repeat([16, 16, 8], [16, 16, 8])  # the batch size each example's mean reading divides by


def _raw(**sections: dict) -> dict:
    """The unit tests' study config before validation; `sections` replace whole top-level sections."""
    return {"study": "tables", "dataset": {"name": "synthetic", "options": {"n_train": N_TRAIN, "n_test": 10}},
            "memorization": {"num_models": 4, "models_per_job": 4, "train": {"batch_size": 8}},
            "train": {"batch_size": 8}, "mem_vs_epsilon": {"top_k": 4}, **sections}


def _cfg(curvature_models: int | None) -> dict:
    raw = _raw()
    raw["memorization"]["curvature_models"] = curvature_models
    return config.validate(raw)


def _mem_by_hand(masks: np.ndarray, scores: np.ndarray) -> list[float]:
    """Conditional memorization of each column: mean score of the models holding it minus that of the others."""
    return [float(np.mean(s[m]) - np.mean(s[~m])) for m, s in zip(np.asarray(masks, bool).T, np.asarray(scores).T)]


def test_examples_table_averages_curvature_over_the_scored_models_only(tmp_path):
    cfg, n, k = _cfg(2), 40, 4
    rng = np.random.default_rng(0)
    masks = memorization.subset_masks(n, range(k), 0.7, 0)
    correct = rng.integers(0, 2, (k, n)).astype(bool)
    curv = {s: rng.normal(size=(k, n)).astype(np.float32) for s in SCORES}
    for values in curv.values():
        values[2:] = np.nan  # models 2 and 3 were not scored (curvature_models = 2)
    shard = tmp_path / "shard0.npz"
    io.write_npz(shard, models=np.arange(k), masks=masks, correct=correct, prob=correct.astype(np.float32),
                 test_acc=np.array([0.5, 0.6, 0.7, 0.8]), **{f"curv_{s}": v for s, v in curv.items()})
    subset_models.examples_table(cfg, [shard], tmp_path / "examples.csv", tmp_path / "subset_models.csv",
                            tmp_path / "subset_scores.npz")

    table = pd.read_csv(tmp_path / "examples.csv")
    want = memorization.aggregate_by_membership(masks[:2], curv["trace"][:2].astype(np.float64))
    np.testing.assert_allclose(table["curv_trace_sum_out_mean"], want["out_mean"], rtol=1e-6)
    np.testing.assert_allclose(table["curv_trace_sum_in_max"], want["in_max"], rtol=1e-6)
    np.testing.assert_allclose(table["mem"], memorization.memorization(masks, correct).mem)  # all four models
    assert (table["n_curvature_models"] == 2).all()
    assert table["curvature_column"].iloc[0] == "curv_trace_sum_out_mean"

    models = pd.read_csv(tmp_path / "subset_models.csv")
    assert models["curvature_scored"].tolist() == [True, True, False, False]
    assert models["test_acc"].tolist() == [0.5, 0.6, 0.7, 0.8]

    with np.load(tmp_path / "subset_scores.npz") as z:  # what the claims' bootstrap resamples
        np.testing.assert_array_equal(z["masks"], masks)
        np.testing.assert_array_equal(z["score"], correct.astype(np.float32))
        np.testing.assert_array_equal(z["curv_trace"], curv["trace"][:2])
        assert z["scored"].tolist() == [True, True, False, False] and int(z["released_batch_size"]) == 1024
    assert (models["train_size"] == 28).all()
    assert io.read_json(io.provenance_path(tmp_path / "subset_models.csv"))["dataset"] == "synthetic"


def test_batch_mean_reading_divides_by_the_released_scorers_batch_sizes():
    """The released code scores DP models in batches of 128 and subset models in batches of 1,024 (defect 2):
    the faithful reading of 1,300 examples divides by those batches' sizes, the last one ragged."""
    cfg, n = _cfg(None), 1300
    scores = {s: np.full(n, 6.0) for s in SCORES}
    dp = toolkit.every_reading(cfg, scores, "dp_models")
    sub = toolkit.every_reading(cfg, scores, "memorization")
    last_dp, last_sub = 1300 - 10 * 128, 1300 - 1024  # 20 and 276 examples in the last batch
    np.testing.assert_allclose(dp["trace", "mean"], [6 / 128] * 1280 + [6 / last_dp] * last_dp)
    np.testing.assert_allclose(sub["trace", "mean"], [6 / 1024] * 1024 + [6 / last_sub] * last_sub)
    np.testing.assert_allclose(sub["sqnorm", "mean"][0], 6 / 1024**2)
    np.testing.assert_array_equal(dp["trace", "sum"], scores["trace"])


# --- dp_models_table -----------------------------------------------------------------------------------

DP_MODELS = [(2.0, 1), (1.0, 1), (2.0, 0), (1.0, 0)]  # (epsilon, seed), given out of order


def _dp_models_table(tmp_path, fidelity: str) -> tuple[pd.DataFrame, dict, dict]:
    """The DP models' table of four fabricated models in two shards (one an epsilon): (table, metrics and curvature
    by (epsilon, seed))."""
    rng = np.random.default_rng(5)
    shards, metrics, curvature = {}, {}, {}
    for i, (eps, seed) in enumerate(DP_MODELS):
        m = {"target_epsilon": eps, "seed": seed, "noise_multiplier": 3.0 / eps, "epsilon": eps * 0.99,
             "sample_rate": 0.2, "steps": 50 + i, "seconds": 10.0 + i, "train_loss": 1.0 + i, "train_acc": 0.5 + i / 10,
             "test_loss": 2.0 + i, "test_acc": 0.4 + i / 10, "fidelity": fidelity, "provenance": {}}
        curv = {**{s: (rng.random(N_TRAIN) * (i + 1)).astype(np.float32) for s in SCORES},
                **{f"test_{s}": (rng.random(10) + 5 * i).astype(np.float32) for s in SCORES}}
        shards.setdefault(eps, []).append((m, curv))
        metrics[eps, seed], curvature[eps, seed] = m, {k: v.astype(np.float64) for k, v in curv.items()}
    folders = []
    for eps, models in shards.items():
        folders.append(tmp_path / f"eps{eps}")
        io.write_json(folders[-1] / "metrics.json", [m for m, _ in models])
        io.write_npz(folders[-1] / "curvature.npz", epsilons=np.array([m["target_epsilon"] for m, _ in models]),
                     seeds=np.array([m["seed"] for m, _ in models]),
                     ids=np.arange(N_TRAIN), **{k: np.stack([c[k] for _, c in models]) for k in models[0][1]})
    cfg = config.validate(_raw(fidelity=fidelity, curvature={"released_batch_size": {"dp_models": DP_BATCH}}))
    dp_models.dp_models_table(cfg, folders, tmp_path / "dp_models.csv")
    return pd.read_csv(tmp_path / "dp_models.csv"), metrics, curvature


def test_dp_models_table_holds_each_models_metrics_and_mean_curvature_under_both_reductions(tmp_path):
    """One row per (epsilon, seed), sorted; its metrics; the mean of each score summed and divided by its batch."""
    table, metrics, curvature = _dp_models_table(tmp_path, "corrected")
    assert list(zip(table["epsilon"], table["seed"])) == [(1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)]
    assert (table["study"] == "tables").all() and (table["fidelity"] == "corrected").all()
    power = {"trace": 1, "gauss_newton": 1, "hutchinson": 1, "sqnorm": 2, "gradnorm": 1}  # ||Hv||^2: 1/B squared
    for row in table.itertuples():
        m, c = metrics[row.epsilon, row.seed], curvature[row.epsilon, row.seed]
        assert row.epsilon_spent == m["epsilon"] and row.noise_multiplier == pytest.approx(m["noise_multiplier"])
        for key in ("sample_rate", "steps", "seconds", "train_loss", "train_acc", "test_loss", "test_acc"):
            assert getattr(row, key) == pytest.approx(m[key]), key
        for s in SCORES:
            assert getattr(row, f"curv_{s}_sum") == pytest.approx(c[s].mean(), rel=1e-6)
            assert getattr(row, f"curv_{s}_mean") == pytest.approx((c[s] / DP_BATCH_OF_EXAMPLE ** power[s]).mean(),
                                                                   rel=1e-6)
            assert getattr(row, f"test_curv_{s}_sum") == pytest.approx(c[f"test_{s}"].mean(), rel=1e-6)
        assert row.curvature_column == "curv_trace_sum" and row.curvature == row.curv_trace_sum

    prov = io.read_json(io.provenance_path(tmp_path / "dp_models.csv"))
    assert prov["rows"] == 4 and prov["dataset"] == "synthetic" and prov["fidelity"] == "corrected"
    assert prov["resolved_defects"]["curvature_score"] == "trace" and len(prov["config_hash"]) == 16


def test_dp_models_table_reads_the_released_gradnorm_batch_mean_under_fidelity_faithful(tmp_path):
    table, _, curvature = _dp_models_table(tmp_path, "faithful")
    assert (table["curvature_column"] == "curv_gradnorm_mean").all() and (table["fidelity"] == "faithful").all()
    want = [(curvature[e, s]["gradnorm"] / DP_BATCH_OF_EXAMPLE).mean() for e, s in zip(table["epsilon"], table["seed"])]
    np.testing.assert_allclose(table["curvature"], want, rtol=1e-6)
    assert io.read_json(io.provenance_path(tmp_path / "dp_models.csv"))["fidelity"] == "faithful"


def test_dp_models_table_refuses_metrics_without_their_curvature(tmp_path):
    _dp_models_table(tmp_path, "corrected")
    shard = tmp_path / "eps1.0"
    io.write_json(shard / "metrics.json", io.read_json(shard / "metrics.json")[:1])  # one seed's metrics of two
    with pytest.raises(ValueError, match=r"metrics of \(epsilon, seed\) \[\(1.0, 1\)\] but curvature of "
                                         r"\[\(1.0, 1\), \(1.0, 0\)\]"):
        dp_models.dp_models_table(_cfg(None), [shard], tmp_path / "short.csv")


# --- mem_vs_epsilon_table ------------------------------------------------------------------------------

TOPK = np.array([7, 2, 5])  # the top-k, in the topk file's order
EXAMPLES = pd.DataFrame({"id": range(10), "label": np.arange(10) % 3, "mem": np.arange(10) / 10})
# DP subset models (rows) x top-k examples (columns) at epsilon 1 and 8: inclusion, correctness, true-label probability
EPS1_MASKS = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1]], bool)
EPS1_CORRECT = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1], [1, 1, 1]], bool)
EPS1_PROB = np.array([[0.9, 0.8, 0.2], [0.7, 0.4, 0.6], [0.1, 0.2, 0.5], [0.3, 0.6, 0.9]], np.float32)
EPS8_MASKS = np.array([[0, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 1]], bool)
EPS8_CORRECT = np.array([[0, 1, 1], [1, 1, 0], [1, 1, 1], [0, 0, 1]], bool)
EPS8_PROB = (0.25 + 0.5 * EPS8_CORRECT).astype(np.float32)


ARRAYS = {1.0: (EPS1_MASKS, EPS1_CORRECT, EPS1_PROB), 8.0: (EPS8_MASKS, EPS8_CORRECT, EPS8_PROB)}


def _write_dp_subset_shard(path, models: list[tuple[float, int]]) -> Path:
    """A shard of the epsilon x model grid holding `models`, (epsilon, model) pairs, with their rows of ARRAYS."""
    masks, correct, prob = (np.stack([ARRAYS[eps][i][k] for eps, k in models]) for i in range(3))
    eps = np.array([e for e, _ in models])
    io.write_npz(path, epsilons=eps, models=np.array([k for _, k in models]), masks=masks, topk=TOPK,
                 correct=correct, prob=prob, epsilon_spent=eps * 0.99)
    return path


@pytest.mark.parametrize("score, mem, unconditional", [
    # worked by hand from the arrays above: mean over including models - mean over excluding ones, and
    # (sum over including - sum over excluding) / models
    ("correctness", [0.5, 0, 0.5, 2 / 3, 0.5, 0.5], [0.25, 0, 0.25, 0.5, 0.25, 0.25]),
    ("probability", [0.6, 0, 0.4, 1 / 3, 0.25, 0.25], [0.3, 0, 0.2, 0.375, 0.125, 0.125]),
])
def test_mem_vs_epsilon_table_memorization_of_the_topk_per_epsilon(tmp_path, score, mem, unconditional):
    """Models grouped by epsilon and ordered by model, however the grid was sharded (given out of order, one shard
    across both epsilons), memorization of the chosen score."""
    EXAMPLES.to_csv(tmp_path / "examples.csv", index=False)
    shards = [_write_dp_subset_shard(tmp_path / "b.npz", [(8.0, 0), (8.0, 1)]),
              _write_dp_subset_shard(tmp_path / "c.npz", [(1.0, 2), (1.0, 3), (8.0, 2), (8.0, 3)]),
              _write_dp_subset_shard(tmp_path / "a.npz", [(1.0, 0), (1.0, 1)])]
    raw = _raw()
    raw["memorization"]["score"] = score
    mem_vs_epsilon.mem_vs_epsilon_table(config.validate(raw), tmp_path / "examples.csv", shards,
                                  tmp_path / "mem_vs_epsilon.csv", tmp_path / "models.npz")

    table = pd.read_csv(tmp_path / "mem_vs_epsilon.csv")
    assert table["epsilon"].tolist() == [1, 1, 1, 8, 8, 8] and table["id"].tolist() == [7, 2, 5] * 2
    assert table["label"].tolist() == [1, 2, 2] * 2  # the examples table's labels of ids 7, 2 and 5
    np.testing.assert_allclose(table["baseline_mem"], [0.7, 0.2, 0.5] * 2)  # and their subset-model memorization
    np.testing.assert_allclose(table["mem"], mem, atol=1e-6)
    np.testing.assert_allclose(table["mem_unconditional"], unconditional, atol=1e-6)
    assert table["n_in"].tolist() == [2, 2, 2, 3, 2, 2] and table["n_out"].tolist() == [2, 2, 2, 1, 2, 2]
    assert io.read_json(io.provenance_path(tmp_path / "mem_vs_epsilon.csv"))["rows"] == 6

    chosen = {"correctness": (EPS1_CORRECT, EPS8_CORRECT), "probability": (EPS1_PROB, EPS8_PROB)}[score]
    with np.load(tmp_path / "models.npz") as z:
        assert z["epsilons"].tolist() == [1.0, 8.0]
        np.testing.assert_array_equal(z["masks"], np.stack([EPS1_MASKS, EPS8_MASKS]))
        assert z["prob"].dtype == np.float32 and "control_masks" not in z.files  # no control shard given
        np.testing.assert_array_equal(z["correct"], np.stack([EPS1_CORRECT, EPS8_CORRECT]))
        np.testing.assert_array_equal(z["prob"], np.stack([EPS1_PROB, EPS8_PROB]).astype(np.float32))
    np.testing.assert_allclose(table["mem"][:3], _mem_by_hand(EPS1_MASKS, chosen[0]), atol=1e-6)


# --- write_topk ------------------------------------------------------------------------------------------

def test_topk_picks_the_most_memorized_ids_skipping_nan_and_breaking_ties_by_lower_id(tmp_path):
    examples = tmp_path / "examples.csv"
    pd.DataFrame({"id": range(8), "label": [0, 1, 2, 3, 4, 0, 1, 2],
                  "mem": [0.2, np.nan, 0.9, 0.5, 0.9, 0.1, 0.5, 0.0],
                  "mem_published": [0.3, 0.8, np.nan, 0.1, 0.0, 0.95, 0.2, 0.4]}).to_csv(examples, index=False)
    published = {"published_scores": "any/path.npz", "num_models": 4, "models_per_job": 4, "train": {"batch_size": 8}}
    for topk_source, want in (("run", {"ids": [2, 4, 3], "source": "mem", "mem": [0.9, 0.9, 0.5], "labels": [2, 4, 3]}),
                              ("published", {"ids": [5, 1, 7], "source": "mem_published", "mem": [0.95, 0.8, 0.4],
                                             "labels": [0, 1, 2]})):
        cfg = config.validate(_raw(memorization=published, mem_vs_epsilon={"top_k": 3, "topk_source": topk_source}))
        subset_models.write_topk(cfg, examples, tmp_path / "topk.json")
        assert io.read_json(tmp_path / "topk.json") == want, topk_source


# --- write_extremes ------------------------------------------------------------------------------------

def test_extremes_are_each_class_lowest_and_highest_curvature_and_the_most_memorized_without_nan(tmp_path):
    figures = {"extremes_classes": 2, "extremes_per_class": 2, "most_memorized": 3}
    cfg = config.validate(_raw(figures=figures))
    ds = toolkit.dataset(cfg)
    rng = np.random.default_rng(3)
    labels, curv, mem = ds.y_train.numpy(), rng.permutation(N_TRAIN).astype(float), rng.permutation(N_TRAIN) / N_TRAIN
    dropped = [int(np.flatnonzero(labels == 0)[np.argmin(curv[labels == 0])]), int(np.argmax(mem))]
    curv[dropped] = np.nan  # class 0's lowest curvature and the most memorized example: not scored
    table = pd.DataFrame({"id": range(N_TRAIN), "label": labels, "mem": mem, "curvature": curv,
                          "curvature_column": "curv_trace_sum_out_mean"})
    table.to_csv(tmp_path / "examples.csv", index=False)
    extremes.write_extremes(cfg, tmp_path / "examples.csv", tmp_path / "extremes.npz")

    kept = np.isfinite(curv)
    with np.load(tmp_path / "extremes.npz") as z:
        ids, kind = z["ids"], z["kind"]
        assert kind.tolist() == ["low_curvature"] * 2 + ["high_curvature"] * 2 + ["low_curvature"] * 2 + \
            ["high_curvature"] * 2 + ["most_memorized"] * 3
        for c, part in ((0, slice(0, 4)), (1, slice(4, 8))):  # classes 0 and 1, the first two
            by_curv = np.flatnonzero(kept & (labels == c))[np.argsort(curv[kept & (labels == c)])]
            assert sorted(ids[part][:2]) == sorted(by_curv[:2]) and sorted(ids[part][2:]) == sorted(by_curv[-2:])
        assert ids[8:].tolist() == np.flatnonzero(kept)[np.argsort(-mem[kept])][:3].tolist()
        assert not set(dropped) & set(ids.tolist())
        np.testing.assert_array_equal(z["labels"], labels[ids])
        np.testing.assert_array_equal(z["curvature"], curv[ids])
        np.testing.assert_array_equal(z["mem"], mem[ids])
        np.testing.assert_allclose(z["images"], ds.images(ids))
        assert z["images"].shape == (11, 8, 8, 1)
        assert z["class_names"].tolist() == list(ds.classes) and str(z["curvature_column"]) == "curv_trace_sum_out_mean"


# --- write_subset_masks --------------------------------------------------------------------------------

def _subset_masks(tmp_path, num_models: int, seed: int) -> np.ndarray:
    memorization_section = {"num_models": num_models, "models_per_job": 5, "subset_ratio": 0.33, "seed": seed,
                            "train": {"batch_size": 8}}
    out = tmp_path / f"masks_{num_models}_{seed}.npz"
    subset_models.write_subset_masks(config.validate(_raw(memorization=memorization_section)), out)
    with np.load(out) as z:
        return z["masks"]


def test_subset_masks_hold_round_ratio_n_examples_each_and_are_reproducible(tmp_path):
    masks = _subset_masks(tmp_path, 5, 3)
    assert masks.shape == (5, N_TRAIN) and masks.dtype == bool
    assert masks.sum(1).tolist() == [13] * 5  # round(0.33 * 40)
    assert len({row.tobytes() for row in masks}) == 5  # every model draws its own subset
    np.testing.assert_array_equal(_subset_masks(tmp_path / "again", 5, 3), masks)
    np.testing.assert_array_equal(_subset_masks(tmp_path, 3, 3), masks[:3])  # more models never change the first
    assert not np.array_equal(_subset_masks(tmp_path, 5, 4), masks)


# --- jobs.audit.audit_tables -----------------------------------------------------------------------------

CANARIES, AUDIT_MODELS = 10, 8


def _audit_shard(path, arm: str, models: range, masks: np.ndarray, loss: np.ndarray, correct: np.ndarray,
                 spent: float) -> Path:
    rng = np.random.default_rng(len(path.name))
    io.write_npz(path, arm=np.array(arm), models=np.array(list(models)), masks=masks[models.start:models.stop],
                 correct=correct[models.start:models.stop], prob=correct[models.start:models.stop] * 0.5 + 0.25,
                 loss=loss[models.start:models.stop], curvature=rng.random((len(models), CANARIES)),
                 test_acc=np.linspace(0.5, 0.8, AUDIT_MODELS)[models.start:models.stop],
                 epsilon_spent=np.linspace(spent / 2, spent, AUDIT_MODELS)[models.start:models.stop])
    return path


def test_audit_tables_bound_each_arm_on_its_later_models_and_give_each_canarys_memorization(tmp_path):
    """Shards of an arm put in model order (selection = models 0-3); bounds, canary memorization and its bound."""
    from memcurv.estimators import audit_bound
    from memcurv.jobs import audit

    rng = np.random.default_rng(11)
    masks = np.stack([rng.permutation(CANARIES) < CANARIES // 2 for _ in range(AUDIT_MODELS)])  # 5 IN per model
    ids, labels = np.arange(3, 3 + 3 * CANARIES, 3), np.arange(CANARIES) % 5
    io.write_npz(tmp_path / "canaries.npz", ids=ids, labels=labels, canary_labels=(labels + 1) % 5, masks=masks)
    in_low = np.where(masks, 0.1, 2.0)
    loss = np.concatenate([in_low[:4], 2.1 - in_low[4:]])  # IN has low loss on models 0-3 and high on 4-7
    correct = rng.random(masks.shape) < 0.5
    shards = [_audit_shard(tmp_path / "eps1_b.npz", "eps1", range(4, 8), masks, loss, correct, 0.97),
              _audit_shard(tmp_path / "eps1_a.npz", "eps1", range(4), masks, loss, correct, 0.97),
              _audit_shard(tmp_path / "np.npz", "nonprivate", range(8), masks, loss, masks, np.nan)]
    cfg = config.validate(_raw(audit={"epsilons": [1], "canaries": CANARIES, "num_models": AUDIT_MODELS,
                                      "models_per_job": 4, "guess_fractions": [0.5]}))
    audit.audit_tables(cfg, tmp_path / "canaries.npz", shards, tmp_path / "audit.csv",
                       tmp_path / "audit_canaries.csv")

    bounds = pd.read_csv(tmp_path / "audit.csv").set_index(["arm", "score"])
    assert bounds.index.tolist() == [(a, s) for a in ("eps1", "nonprivate") for s in audit.ATTACK_SCORES]
    assert bounds["private"].tolist() == [True] * 3 + [False] * 3
    assert bounds.loc["eps1", "epsilon"].eq(1).all() and bounds.loc["nonprivate", "epsilon"].isna().all()
    assert bounds.loc["eps1", "epsilon_spent"].eq(0.97).all()  # the largest any model spent
    np.testing.assert_allclose(bounds["test_acc"], 0.65)  # the mean over the arm's models
    assert bounds["delta"].eq(1e-5).all() and bounds["confidence"].eq(0.95).all()
    assert (bounds["canaries"] == 10).all() and (bounds["models"] == 8).all()
    assert (bounds["models_selection"] == 4).all() and (bounds["models_evaluation"] == 4).all()
    assert (bounds["slots"] == 40).all()
    loss_attack = bounds.loc[("eps1", "loss")]  # chosen on models 0-3 (lower loss is IN), wrong on models 4-7
    assert loss_attack["direction"] == "lower is IN" and loss_attack["guesses"] == 40
    assert loss_attack["correct"] == 0 and loss_attack["eps_lb"] == 0
    perfect = bounds.loc[("nonprivate", "memorization")]  # correct exactly when included
    assert perfect["direction"] == "higher is IN" and perfect["correct"] == perfect["guesses"] == 40
    assert perfect["precision"] == 1 and perfect["eps_lb"] == pytest.approx(
        audit_bound.epsilon_lower_bound(40, 40, 40, 1e-5, 0.95)) and perfect["eps_lb"] > 2

    canaries = pd.read_csv(tmp_path / "audit_canaries.csv")
    dp, control = canaries[canaries["arm"] == "eps1"], canaries[canaries["arm"] == "nonprivate"]
    assert dp["id"].tolist() == ids.tolist() and dp["label"].tolist() == labels.tolist()
    assert dp["canary_label"].tolist() == ((labels + 1) % 5).tolist()
    np.testing.assert_allclose(dp["mem"], _mem_by_hand(masks, correct))
    assert (dp["n_in"] == masks.sum(0)).all() and (dp["n_out"] == 8 - masks.sum(0)).all()
    np.testing.assert_allclose(dp["bound"], 1 - np.exp(-1.0))
    assert (control["mem"] == 1).all() and control["bound"].isna().all() and control["epsilon"].isna().all()


# --- The catalogue (memcurv.tables) --------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def test_each_tables_file_name_is_spelled_once_in_src_and_workflow_its_declaration():
    """Everything else names a table through the catalogue, so a renamed or added table is one edit."""
    from memcurv import tables

    files = [p for p in (*(REPO / "src").rglob("*"), *(REPO / "workflow").rglob("*"), REPO / "Snakefile")
             if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
             and not any(part.endswith(".egg-info") for part in p.parts)]
    texts = {str(p.relative_to(REPO)): p.read_text(errors="replace") for p in files}
    for name in tables.CATALOGUE:
        places = [rel for rel, text in texts.items() for _ in re.finditer(rf"(?<![\w.]){re.escape(name)}", text)]
        assert places == ["src/memcurv/tables.py"], (name, places)


def test_each_table_is_written_by_the_verb_and_option_it_declares():
    from memcurv import cli, tables

    for table in tables.CATALOGUE.values():
        assert table.verb in cli.VERBS, table.name
        assert table.option in [flag for flag, _ in cli.VERBS[table.verb].options], table.name
        assert table.description and table.columns, table.name


def test_curvature_columns_follow_one_scheme():
    from memcurv.tables import DP_MODELS, EXAMPLES, curvature_column, declared

    assert curvature_column("trace") == "curv_trace"
    assert curvature_column("gauss_newton", "sum") == "curv_gauss_newton_sum"
    assert curvature_column("gradnorm", "mean", "in_max") == "curv_gradnorm_mean_in_max"
    assert curvature_column("sqnorm", "sum", test=True) == "test_curv_sqnorm_sum"
    with pytest.raises(ValueError, match="needs its loss reduction"):
        curvature_column("trace", aggregation="out_mean")
    assert declared(EXAMPLES, "curv_trace_sum_out_mean") and declared(EXAMPLES, "cscore")
    assert declared(DP_MODELS, "test_curv_trace_sum") and not declared(DP_MODELS, "mem")
