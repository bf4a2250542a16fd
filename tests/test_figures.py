"""Every figure renders from tables alone, and its CSV holds exactly the numbers it draws."""

import numpy as np
import pandas as pd
import pytest
from synthetic_tables import write_dp_models, write_examples, write_mem_vs_epsilon

from memcurv.analysis import claims
from memcurv.figures import catalogue, render

FIGURES = tuple(catalogue())


def files(folder, name):
    """The table files figure `name` reads, from a folder of tables."""
    return [folder / t for t in catalogue()[name].tables]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    write_dp_models(out, lambda e: 1 - np.exp(-e), lambda e: 0.3 + np.exp(-0.2 * e))
    p = write_examples(out, slope=1.0)
    examples = pd.read_csv(out / "examples.csv")  # C-scores: held-out accuracy, so 1 - C-score follows p
    examples.assign(cscore=np.clip(1 - p + 0.1 * rng.standard_normal(len(p)), 0, 1)).to_csv(out / "examples.csv",
                                                                                           index=False)
    write_mem_vs_epsilon(out, lambda e: 0.0 if e < 1 else 0.2)  # a mean at or below 0 at epsilon 0.5
    np.savez(out / "extremes.npz", images=rng.random((6, 8, 8, 1)), ids=np.arange(6),
             labels=np.array([0, 0, 1, 1, 2, 3]), curvature=np.arange(6.0), mem=np.linspace(0, 1, 6),
             kind=np.array(["low_curvature", "high_curvature"] * 2 + ["most_memorized"] * 2),
             class_names=np.array(["0", "1", "2", "3"]), curvature_column=np.array("curv_trace_out_mean"))
    arms = [("eps1", 1.0, 0.0), ("eps8", 8.0, 0.4), ("nonprivate", np.nan, 3.0)]
    pd.DataFrame([{"arm": a, "private": np.isfinite(e), "epsilon": e, "score": s, "eps_lb": lb, "eps_lb_max": 6.9,
                   "confidence": 0.95, "guesses": 40, "correct": 30}
                  for a, e, lb in arms for s in ("loss", "curvature")]).to_csv(
        out / "audit.csv", index=False)
    pd.DataFrame([{"arm": a, "epsilon": e, "id": i, "mem": rng.uniform(-0.2, 0.6), "bound": 1 - np.exp(-e)}
                  for a, e, _ in arms for i in range(10)]).to_csv(out / "audit_canaries.csv", index=False)
    return out


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_renders(tables, tmp_path, name):
    outs = [tmp_path / f"{name}.{ext}" for ext in ("pdf", "png", "csv")]
    render(name, files(tables, name), *outs, study="unit", options={"fidelity": "corrected"})
    assert all(p.stat().st_size > 0 for p in outs)
    assert not pd.read_csv(outs[2]).empty


def test_memorization_csv_is_the_drawn_summary(tables, tmp_path):
    outs = [tmp_path / f"m.{ext}" for ext in ("pdf", "png", "csv")]
    render("memorization_vs_epsilon", files(tables, "memorization_vs_epsilon"), *outs, study="unit", options={})
    drawn = pd.read_csv(outs[2])
    expected = claims.topk_memorization_intervals(tables / "mem_vs_epsilon_models.npz", "conditional")
    for column in ("epsilon", "mean", "ci_low", "ci_high", "bound"):
        np.testing.assert_allclose(drawn[column], expected[column])  # every epsilon, a mean <= 0 kept too


def test_mem_vs_curvature_draws_published_scores_beside_the_runs(tables, tmp_path):
    examples = pd.read_csv(tables / "examples.csv")
    examples.assign(mem_published=examples["mem"][::-1].to_numpy()).to_csv(tmp_path / "examples.csv", index=False)
    (tmp_path / "subset_scores.npz").write_bytes((tables / "subset_scores.npz").read_bytes())
    outs = [tmp_path / f"f.{ext}" for ext in ("pdf", "png", "csv")]
    render("mem_vs_curvature", files(tmp_path, "mem_vs_curvature"), *outs, study="unit", options={})
    assert set(pd.read_csv(outs[2])["source"]) == {"this run's scores", "published FZ scores"}


@pytest.mark.parametrize("name", ["curvature_vs_epsilon", "mem_vs_curvature", "memorization_vs_epsilon"])
def test_readings_are_drawn_side_by_side_each_from_its_own_columns(tables, tmp_path, name):
    from memcurv.analysis.readings import DEFECTS, READABLE

    dp, examples = pd.read_csv(tables / "dp_models.csv"), pd.read_csv(tables / "examples.csv")
    # the faithful columns made to fall where the corrected ones rise
    dp.assign(curv_gradnorm_mean=1 / (1 + dp["epsilon"])).to_csv(tmp_path / "dp_models.csv", index=False)
    examples.assign(curv_gradnorm_mean_in_max=1 - examples["mem"]).to_csv(tmp_path / "examples.csv", index=False)
    for name_ in ("subset_scores.npz", "mem_vs_epsilon_models.npz"):
        (tmp_path / name_).write_bytes((tables / name_).read_bytes())
    faithful = {k: DEFECTS[k][1] for k in READABLE}
    outs = [tmp_path / f"{name}.{ext}" for ext in ("pdf", "png", "csv")]
    render(name, files(tmp_path, name), *outs, study="unit",
           options={"readings": {"corrected": {}, "read faithful": faithful}})
    drawn = pd.read_csv(outs[2])
    assert list(drawn["reading"].unique()) == ["corrected", "read faithful"]
    own, other = (drawn[drawn["reading"] == r] for r in ("corrected", "read faithful"))
    if name == "memorization_vs_epsilon":  # faithful: |unconditional| per example has a noise floor above 0
        assert own["mean"].iloc[0] == 0 < 0.05 < other["mean"].iloc[0]
    else:
        x = "epsilon" if name == "curvature_vs_epsilon" else "mem"
        y = "mean" if name == "curvature_vs_epsilon" else "curvature"
        assert np.corrcoef(own[x], own[y])[0, 1] > 0 > np.corrcoef(other[x], other[y])[0, 1]
        assert set(other["curvature_column"]) == {"curv_gradnorm_mean" if x == "epsilon" else
                                                  "curv_gradnorm_mean_in_max"}


def test_unknown_figure_is_an_error(tables, tmp_path):
    with pytest.raises(ValueError, match="unknown figure"):
        render("nope", [tables / "dp_models.csv"], tmp_path / "a.pdf", tmp_path / "a.png", tmp_path / "a.csv",
               study="u", options={})


def test_a_figure_refuses_tables_it_does_not_read(tables, tmp_path):
    outs = [tmp_path / f"a.{ext}" for ext in ("pdf", "png", "csv")]
    with pytest.raises(ValueError, match=r"reads the tables \['dp_models.csv'\], got \['examples.csv'\]"):
        render("loss_vs_epsilon", [tables / "examples.csv"], *outs, study="u", options={})


@pytest.mark.parametrize("name", FIGURES)
def test_axis_labels_and_legends_are_words_not_column_names(tables, name):
    import matplotlib.pyplot as plt

    fig, _ = catalogue()[name].plot({t: tables / t for t in catalogue()[name].tables}, "unit",
                                    {"fidelity": "corrected"})
    try:
        texts = [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]
        texts += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        texts += [fig._suptitle.get_text()] if fig._suptitle else []
        assert not [t for t in texts if "curv_" in t or "+ seeds" in t], texts
    finally:
        plt.close(fig)


def test_columns_are_described_in_words():
    from memcurv.analysis.readings import describe

    assert describe("curv_gauss_newton_sum_out_mean") == ("Gauss-Newton part tr JᵀAJ, per-example loss, "
                                                          "mean over models without it")
    assert describe("test_curv_trace_sum").endswith("(test set)") and describe("mem") == "mem"


def test_extremes_row_labels_are_wrapped_to_a_row_and_digits_named_as_classes():
    from memcurv.figures.extremes import _class

    assert _class("3") == "class 3"
    assert _class("goldfish") == "goldfish"
    wrapped = _class("European fire salamander")
    assert wrapped.replace("\n", " ") == "European fire salamander"
    assert max(len(line) for line in wrapped.splitlines()) <= 14


def _drawn_text(fig, monkeypatch) -> list:
    """(text, its box in pixels) of every text the figure draws (not the ones matplotlib keeps undrawn)."""
    from matplotlib.text import Text

    drawn, draw = [], Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))
        return draw(self, renderer)

    monkeypatch.setattr(Text, "draw", record)
    fig.canvas.draw()
    monkeypatch.setattr(Text, "draw", draw)
    return drawn


def _overlaps(drawn: list) -> list[tuple[str, str]]:
    from itertools import combinations

    return [(a.get_text(), b.get_text()) for (a, ba), (b, bb) in combinations(drawn, 2)
            if min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > 1 and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > 1]


@pytest.mark.parametrize("name", FIGURES)
def test_no_text_of_a_figure_overlaps_another(tables, tmp_path, monkeypatch, name):
    """Every figure as a study draws it (both readings side by side, the dataset in the title): no two texts it
    draws overlap (a label run into a neighbouring panel's, a note over the axis labels)."""
    import matplotlib.pyplot as plt

    from memcurv.analysis.readings import DEFECTS, READABLE
    from memcurv.figures import table_paths

    figure = catalogue()[name]
    views = {"corrected": {}, "read faithful": {k: DEFECTS[k][1] for k in READABLE}}
    fig, _ = figure.plot(table_paths(figure, files(tables, name)), "imagenet_cpu",
                         {"fidelity": "corrected", "readings": views, "dataset": "Tiny ImageNet-200"})
    try:
        assert _overlaps(_drawn_text(fig, monkeypatch)) == []
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", ["curvature_vs_epsilon", "loss_vs_epsilon"])
def test_a_failed_fit_says_so_inside_its_panel(tmp_path, monkeypatch, name):
    """Three epsilons are too few for a three-parameter loss curve: the figure says the fit failed, wrapped inside
    its panel, over no axis label."""
    import matplotlib.pyplot as plt

    from memcurv.figures import table_paths

    write_dp_models(tmp_path, lambda e: 1 - np.exp(-e), lambda e: 0.3 + np.exp(-0.2 * e))
    dp = pd.read_csv(tmp_path / "dp_models.csv")
    dp[dp["epsilon"].isin([0.5, 1.0, 2.0])].to_csv(tmp_path / "dp_models.csv", index=False)
    figure = catalogue()[name]
    fig, _ = figure.plot(table_paths(figure, files(tmp_path, name)), "unit", {"fidelity": "corrected"})
    try:
        drawn = _drawn_text(fig, monkeypatch)
        failed = [(t, box) for t, box in drawn if "fit failed" in t.get_text()]
        assert failed and _overlaps(drawn) == []
        for text, box in failed:
            panel = text.axes.get_window_extent()
            assert panel.x0 <= box.x0 and box.x1 <= panel.x1, text.get_text()
    finally:
        plt.close(fig)


def test_accuracy_intervals_stay_within_0_and_100_percent(tmp_path):
    write_dp_models(tmp_path, lambda e: 1.0, lambda e: 1.0)
    dp = pd.read_csv(tmp_path / "dp_models.csv")
    rng = np.random.default_rng(0)
    dp.assign(test_acc=np.clip(0.02 + 0.05 * rng.standard_normal(len(dp)), 0, 1)).to_csv(tmp_path / "dp_models.csv",
                                                                                      index=False)
    outs = [tmp_path / f"a.{ext}" for ext in ("pdf", "png", "csv")]
    render("accuracy_vs_epsilon", files(tmp_path, "accuracy_vs_epsilon"), *outs, study="unit", options={})
    drawn = pd.read_csv(outs[2])
    assert (drawn["ci_low"] >= 0).all() and (drawn["ci_high"] <= 1).all()
