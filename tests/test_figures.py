"""Every figure renders from tables alone, and its CSV holds exactly the numbers it draws."""

import numpy as np
import pandas as pd
import pytest

from memcurv import theory
from memcurv.figures import FIGURES, render

EPS = [0.5, 1.0, 5.0, 10.0, 50.0, 100.0]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    pd.DataFrame([{"epsilon": e, "seed": s, "curv_trace_sum": 1 - np.exp(-e) + 0.05 * rng.standard_normal(),
                   "curv_gradnorm_mean": 0.01 * np.exp(-e), "test_loss": 0.3 + np.exp(-0.2 * e), "train_acc": 0.9,
                   "test_acc": 0.8} for e in EPS for s in range(3)]).to_csv(out / "dp_models.csv", index=False)
    mem = rng.random(500)
    pd.DataFrame({"mem": mem, "curv_trace_sum_out_mean": mem + 0.1 * rng.standard_normal(500),
                  "curv_gradnorm_mean_in_max": 1 - mem}).to_csv(out / "examples.csv", index=False)
    pd.DataFrame({"epsilon": np.repeat([1.0, 10.0, 50.0], 4), "id": np.tile(np.arange(4), 3),
                  "mem": [-0.1, 0.0, -0.2, 0.1] + [0.2] * 8, "mem_unconditional": 0.0}).to_csv(
        out / "mem_vs_epsilon.csv", index=False)
    np.savez(out / "extremes.npz", images=rng.random((6, 8, 8, 1)), ids=np.arange(6), labels=np.array([0, 0, 1, 1, 2, 3]),
             curvature=np.arange(6.0), mem=np.linspace(0, 1, 6),
             kind=np.array(["low_curvature", "high_curvature"] * 2 + ["most_memorized"] * 2),
             class_names=np.array(["0", "1", "2", "3"]), curvature_column=np.array("curv_trace_out_mean"))
    arms = [("eps1", 1.0, 0.0), ("eps8", 8.0, 0.4), ("nonprivate", np.nan, 3.0)]
    pd.DataFrame([{"arm": a, "private": np.isfinite(e), "epsilon": e, "score": s, "eps_lb": lb, "confidence": 0.95,
                   "guesses": 40, "correct": 30} for a, e, lb in arms for s in ("loss", "curvature")]).to_csv(
        out / "audit.csv", index=False)
    pd.DataFrame([{"arm": a, "epsilon": e, "id": i, "mem": rng.uniform(-0.2, 0.6), "bound": 1 - np.exp(-e)}
                  for a, e, _ in arms for i in range(10)]).to_csv(out / "audit_canaries.csv", index=False)
    return out


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_renders(tables, tmp_path, name):
    outs = [tmp_path / f"{name}.{ext}" for ext in ("pdf", "png", "csv")]
    render(name, tables, *outs, study="unit", options={"fidelity": "corrected"})
    assert all(p.stat().st_size > 0 for p in outs)
    assert not pd.read_csv(outs[2]).empty


def test_memorization_csv_is_the_drawn_summary(tables, tmp_path):
    outs = [tmp_path / f"m.{ext}" for ext in ("pdf", "png", "csv")]
    render("memorization_vs_epsilon", tables, *outs, study="unit", options={})
    drawn = pd.read_csv(outs[2])
    expected = theory.topk_memorization_per_epsilon(pd.read_csv(tables / "mem_vs_epsilon.csv"))
    np.testing.assert_allclose(drawn["mean"], expected["mean"])
    assert drawn["mean"].iloc[0] < 0  # a negative mean is kept in the data, not silently dropped


def test_mem_vs_curvature_draws_published_scores_beside_the_runs(tables, tmp_path):
    examples = pd.read_csv(tables / "examples.csv")
    examples.assign(mem_published=examples["mem"][::-1].to_numpy()).to_csv(tmp_path / "examples.csv", index=False)
    outs = [tmp_path / f"f.{ext}" for ext in ("pdf", "png", "csv")]
    render("mem_vs_curvature", tmp_path, *outs, study="unit", options={})
    assert set(pd.read_csv(outs[2])["source"]) == {"this run's scores", "published FZ scores"}


@pytest.mark.parametrize("name", ["curvature_vs_epsilon", "mem_vs_curvature", "memorization_vs_epsilon"])
def test_readings_are_drawn_side_by_side_each_from_its_own_columns(tables, tmp_path, name):
    from memcurv.config import DEFECTS, READABLE

    faithful = {k: DEFECTS[k][1] for k in READABLE}
    outs = [tmp_path / f"{name}.{ext}" for ext in ("pdf", "png", "csv")]
    render(name, tables, *outs, study="unit", options={"readings": {"corrected": {}, "read faithful": faithful}})
    drawn = pd.read_csv(outs[2])
    assert list(drawn["reading"].unique()) == ["corrected", "read faithful"]
    own, other = (drawn[drawn["reading"] == r] for r in ("corrected", "read faithful"))
    if name == "memorization_vs_epsilon":  # faithful: |unconditional| (all 0 here) instead of conditional
        assert (other["mean"] == 0).all() and (own["mean"] != 0).any()
    else:  # the faithful columns were built to fall where the corrected ones rise
        x = "epsilon" if name == "curvature_vs_epsilon" else "mem"
        y = "mean" if name == "curvature_vs_epsilon" else "curvature"
        assert np.corrcoef(own[x], own[y])[0, 1] > 0 > np.corrcoef(other[x], other[y])[0, 1]
        assert set(other["curvature_column"]) == {"curv_gradnorm_mean" if x == "epsilon" else
                                                  "curv_gradnorm_mean_in_max"}


def test_unknown_figure_is_an_error(tables, tmp_path):
    with pytest.raises(ValueError, match="unknown figure"):
        render("nope", tables, tmp_path / "a.pdf", tmp_path / "a.png", tmp_path / "a.csv", study="u", options={})
