"""Published Feldman-Zhang scores are mapped to project ids and every label is checked."""

import numpy as np
import pytest

from memcurv.analysis.published import load_published_memorization


@pytest.fixture
def published(tmp_path):
    labels = np.array([3, 1, 4, 1, 5])
    order = np.array([2, 0, 4, 1, 3])  # project id of each published example (a TFDS-like shuffle)
    path = tmp_path / "infl.npz"
    np.savez(path, tr_mem=np.array([0.9, 0.1, 0.5, 0.0, 0.3]), tr_labels=labels[order])
    np.save(tmp_path / "map.npy", order)
    return labels, path, tmp_path / "map.npy"


def test_scores_land_on_the_mapped_ids(published):
    labels, path, index_map = published
    mem = load_published_memorization(path, labels, index_map)
    np.testing.assert_allclose(mem, [0.1, 0.0, 0.9, 0.3, 0.5])


def test_unmapped_tfds_order_fails_loudly(published):
    labels, path, _ = published
    with pytest.raises(ValueError, match="published labels differ.*published_index_map"):
        load_published_memorization(path, labels)


def test_partial_coverage_leaves_nan_and_bad_maps_are_errors(tmp_path):
    path = tmp_path / "infl.npz"
    np.savez(path, tr_mem=np.array([0.7]), tr_labels=np.array([2]))
    np.save(tmp_path / "one.npy", np.array([1]))
    mem = load_published_memorization(path, np.array([0, 2, 0]), tmp_path / "one.npy")
    assert np.isnan(mem[[0, 2]]).all() and mem[1] == 0.7
    np.save(tmp_path / "bad.npy", np.array([7]))
    with pytest.raises(ValueError, match="distinct ids"):
        load_published_memorization(path, np.array([0, 2, 0]), tmp_path / "bad.npy")


def test_identity_mapping_reproduces_the_released_misreading(published, caplog):
    labels, path, index_map = published
    with caplog.at_level("WARNING"):
        mem = load_published_memorization(path, labels, index_map, mapping="identity")
    np.testing.assert_allclose(mem, [0.9, 0.1, 0.5, 0.0, 0.3])  # published order, map ignored
    assert "4 of 5 labels differ" in caplog.text
    with pytest.raises(ValueError, match="index mapping"):
        load_published_memorization(path, labels, mapping="tfds")


def test_topk_follows_the_published_scores_when_asked(tmp_path):
    import pandas as pd

    from memcurv.config import validate
    from memcurv.io import read_json
    from memcurv.jobs.subset_models import write_topk

    examples = tmp_path / "examples.csv"
    pd.DataFrame({"id": range(4), "label": [0, 1, 0, 1], "mem": [0.9, 0.8, 0.1, 0.0],
                  "mem_published": [0.0, 0.1, 0.7, 0.9]}).to_csv(examples, index=False)
    for source, expected in (("run", [0, 1]), ("published", [3, 2])):
        cfg = validate({"memorization": {"published_scores": "infl.npz"},
                        "mem_vs_epsilon": {"top_k": 2, "topk_source": source}})
        write_topk(cfg, examples, tmp_path / "topk.json")
        assert read_json(tmp_path / "topk.json")["ids"] == expected
