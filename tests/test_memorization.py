"""Feldman-Zhang estimator: exact values on planted scores, and ranking on planted data."""

import numpy as np
import pytest

from memcurv.estimators.memorization import (
    aggregate_by_membership,
    memorization,
    subset_masks,
    top_k,
    topk_subset_masks,
)


def test_subset_masks_sizes_seeding_and_prefix_stability():
    masks = subset_masks(100, range(20), 0.7, seed=5)
    assert masks.shape == (20, 100) and (masks.sum(1) == 70).all()
    np.testing.assert_array_equal(masks, subset_masks(100, range(20), 0.7, seed=5))
    np.testing.assert_array_equal(masks[:7], subset_masks(100, range(7), 0.7, seed=5))  # more models keep old ones
    np.testing.assert_array_equal(masks[10:], subset_masks(100, range(10, 20), 0.7, seed=5))  # shards
    assert not np.array_equal(masks, subset_masks(100, range(20), 0.7, seed=6))
    with pytest.raises(ValueError, match="ratio"):
        subset_masks(10, range(2), 1.0, seed=0)


def test_topk_subset_masks_take_half_the_topk_and_ratio_of_others():
    top = np.array([3, 9, 11, 40])
    masks = topk_subset_masks(50, top, range(30), 0.7, seed=1)
    assert (masks[:, top].sum(1) == 2).all()
    others = np.setdiff1d(np.arange(50), top)
    assert (masks[:, others].sum(1) == round(0.7 * 46)).all()
    inclusion = masks[:, top].mean(0)
    assert inclusion.min() > 0.2 and inclusion.max() < 0.8  # each top-k example in about half the models


def test_poisson_topk_subset_masks_draw_each_example_in_independently():
    """Poisson subsets: sizes vary, each other example is in a fraction `ratio` of the models and each top-k example
    in half; seeded per model like the fixed design; an unknown design is refused."""
    top = np.arange(0, 400, 4)
    masks = topk_subset_masks(400, top, range(200), 0.7, seed=1, design="poisson")
    others = np.setdiff1d(np.arange(400), top)
    assert len(set(masks[:, others].sum(1))) > 5  # sizes vary from model to model
    assert abs(masks[:, others].mean() - 0.7) < 0.01 and abs(masks[:, top].mean() - 0.5) < 0.02
    np.testing.assert_array_equal(masks[50:60], topk_subset_masks(400, top, range(50, 60), 0.7, 1, "poisson"))
    with pytest.raises(ValueError, match="subset design"):
        topk_subset_masks(400, top, range(2), 0.7, 1, "swap")


def test_conditional_estimate_on_planted_scores():
    rng = np.random.default_rng(0)
    masks = rng.random((400, 3)) < 0.7
    # example 0: always right (typical); 1: right only when included (memorized); 2: right half the time
    scores = np.stack([np.ones(400), masks[:, 1].astype(float), (np.arange(400) % 2).astype(float)], 1)
    res = memorization(masks, scores)
    assert res.mem[0] == 0 and res.mem[1] == 1
    assert abs(res.mem[2]) < 0.15
    np.testing.assert_array_equal(res.n_in + res.n_out, 400)
    # the released unconditional variant shrinks a fully memorized example to the inclusion rate
    unc = memorization(masks, scores, estimator="unconditional")
    assert unc.mem[1] == pytest.approx(masks[:, 1].mean())


def test_never_excluded_gives_nan_and_topk_skips_it():
    masks = np.array([[True, True, False], [True, False, True]])
    scores = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    res = memorization(masks, scores)
    assert np.isnan(res.mem[0])
    assert list(top_k(res.mem, 2)) == [1, 2]  # tie broken by lower id
    with pytest.raises(ValueError, match="top_k"):
        top_k(res.mem, 3)
    with pytest.raises(ValueError, match="K x N"):
        memorization(masks, scores[:, :2])


def test_aggregate_by_membership():
    masks = np.array([[True, False], [False, False], [True, True]])
    vals = np.array([[1.0, 5.0], [3.0, 7.0], [2.0, 9.0]])
    agg = aggregate_by_membership(masks, vals)
    np.testing.assert_allclose(agg["in_mean"], [1.5, 9.0])
    np.testing.assert_allclose(agg["out_mean"], [3.0, 6.0])
    np.testing.assert_allclose(agg["in_max"], [2.0, 9.0])


def test_subset_models_find_the_planted_atypical_and_mislabeled_examples():
    """Train real subset models on `synthetic`: planted examples must rank on top, typical ones near 0."""
    import torch
    from sklearn.metrics import roc_auc_score

    from memcurv.data.loading import load_dataset
    from memcurv.settings import TrainSettings
    from memcurv.training.ensemble import train_ensemble
    from memcurv.training.models import build_model
    from memcurv.training.train import evaluate

    ds = load_dataset("synthetic", n_train=400, atypical_fraction=0.04, mislabeled_fraction=0.04)
    masks = subset_masks(len(ds.y_train), range(24), 0.7, seed=0)
    models = train_ensemble(lambda: build_model("small_cnn", ds.input_shape, ds.num_classes), ds.x_train, ds.y_train,
                            [torch.from_numpy(np.flatnonzero(m)) for m in masks], list(range(24)),
                            TrainSettings(epochs=25, batch_size=32, lr=0.05, momentum=0.9))
    correct = np.stack([evaluate(m, ds.x_train, ds.y_train)["correct"] for m in models])
    mem = memorization(masks, correct).mem
    planted = np.zeros(len(mem), dtype=bool)
    planted[np.concatenate(list(ds.ground_truth.values()))] = True
    ok = np.isfinite(mem)
    assert roc_auc_score(planted[ok], mem[ok]) >= 0.9
    assert np.nanmean(mem[~planted]) < 0.05
    assert np.nanmean(mem[planted]) > 0.5
