"""Table builders of memcurv.pipeline on hand-made shards: what each column holds."""

import numpy as np
import pandas as pd

from memcurv import config, io, memorization, pipeline


def _cfg(curvature_models: int | None) -> dict:
    synthetic = {"name": "synthetic", "options": {"n_train": 40, "n_test": 10}}
    return config.validate({"study": "tables", "dataset": synthetic,
                            "memorization": {"num_models": 4, "models_per_job": 4, "curvature_models": curvature_models,
                                             "train": {"batch_size": 8}},
                            "train": {"batch_size": 8}, "mem_vs_epsilon": {"top_k": 4}})


def test_examples_table_averages_curvature_over_the_scored_models_only(tmp_path):
    cfg, n, k = _cfg(2), 40, 4
    rng = np.random.default_rng(0)
    masks = memorization.subset_masks(n, range(k), 0.7, 0)
    correct = rng.integers(0, 2, (k, n)).astype(bool)
    curv = {s: rng.normal(size=(k, n)).astype(np.float32) for s in ("trace", "sqnorm", "gradnorm")}
    for values in curv.values():
        values[2:] = np.nan  # models 2 and 3 were not scored (curvature_models = 2)
    shard = tmp_path / "shard0.npz"
    io.write_npz(shard, models=np.arange(k), masks=masks, correct=correct, prob=correct.astype(np.float32),
                 test_acc=np.array([0.5, 0.6, 0.7, 0.8]), **{f"curv_{s}": v for s, v in curv.items()})
    pipeline.examples_table(cfg, [shard], tmp_path / "examples.csv", tmp_path / "subset_models.csv",
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
    scores = {s: np.full(n, 6.0) for s in ("trace", "sqnorm", "gradnorm")}
    dp = pipeline.every_reading(cfg, scores, "dp_models")
    sub = pipeline.every_reading(cfg, scores, "memorization")
    last_dp, last_sub = 1300 - 10 * 128, 1300 - 1024  # 20 and 276 examples in the last batch
    np.testing.assert_allclose(dp["curv_trace_mean"], [6 / 128] * 1280 + [6 / last_dp] * last_dp)
    np.testing.assert_allclose(sub["curv_trace_mean"], [6 / 1024] * 1024 + [6 / last_sub] * last_sub)
    np.testing.assert_allclose(sub["curv_sqnorm_mean"][0], 6 / 1024**2)
    np.testing.assert_array_equal(dp["curv_trace_sum"], scores["trace"])
