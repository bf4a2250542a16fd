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
    pd.DataFrame([{"epsilon": e, "seed": s, "curvature": 1 - np.exp(-e) + 0.05 * rng.standard_normal(),
                   "test_loss": 0.3 + np.exp(-0.2 * e), "train_acc": 0.9, "test_acc": 0.8, "curvature_score": "trace"}
                  for e in EPS for s in range(3)]).to_csv(out / "dp_models.csv", index=False)
    mem = rng.random(500)
    pd.DataFrame({"mem": mem, "curvature": mem + 0.1 * rng.standard_normal(500),
                  "curvature_column": "curv_trace_out_mean"}).to_csv(out / "examples.csv", index=False)
    pd.DataFrame({"epsilon": np.repeat([1.0, 10.0, 50.0], 4), "id": np.tile(np.arange(4), 3),
                  "mem": [-0.1, 0.0, -0.2, 0.1] + [0.2] * 8, "mem_unconditional": 0.0}).to_csv(
        out / "mem_vs_epsilon.csv", index=False)
    np.savez(out / "extremes.npz", images=rng.random((6, 8, 8, 1)), ids=np.arange(6), labels=np.array([0, 0, 1, 1, 2, 3]),
             curvature=np.arange(6.0), mem=np.linspace(0, 1, 6),
             kind=np.array(["low_curvature", "high_curvature"] * 2 + ["most_memorized"] * 2),
             class_names=np.array(["0", "1", "2", "3"]), curvature_column=np.array("curv_trace_out_mean"))
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


def test_unknown_figure_is_an_error(tables, tmp_path):
    with pytest.raises(ValueError, match="unknown figure"):
        render("nope", tables, tmp_path / "a.pdf", tmp_path / "a.png", tmp_path / "a.csv", study="u", options={})
