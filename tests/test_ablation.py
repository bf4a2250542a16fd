"""The normalisation ablation's page and figure from planted link-1 tables: each arm judged by link 1's criterion."""

import json

import pandas as pd
from synthetic_tables import write_examples

from memcurv.report import ablation


def test_the_ablation_judges_every_arm_and_draws_them_side_by_side(tmp_path):
    """Two arms: curvature that follows memorization (holds), and curvature that does not (does not hold); each
    arm's normalisation comes from its own tables."""
    arms = {"tracks": tmp_path / "tracks", "flat": tmp_path / "flat"}
    for tables, slope in zip(arms.values(), (3.0, 0.0)):
        tables.mkdir()
        write_examples(tables, slope=slope, n=1000)
    models = pd.read_csv(arms["flat"] / "subset_models.csv")
    models.assign(norm="group").to_csv(arms["flat"] / "subset_models.csv", index=False)
    ablation.main(["--arm", f"tracks={arms['tracks']}", "--arm", f"flat={arms['flat']}",
                   "--out", str(tmp_path / "ablation.md"), "--figure", str(tmp_path / "ablation")])
    numbers = json.loads((tmp_path / "ablation.json").read_text())["arms"]
    assert numbers["tracks"]["verdict"] == "holds" and numbers["flat"]["verdict"] == "does not hold"
    assert numbers["tracks"]["norm"] == "batch" and numbers["flat"]["norm"] == "group"
    page = (tmp_path / "ablation.md").read_text()
    assert "| tracks | 32 with BatchNorm" in page and "| flat | 32 with GroupNorm" in page
    drawn = pd.read_csv(tmp_path / "ablation.csv")
    assert set(drawn["arm"]) == {"tracks", "flat"} and len(drawn) == 2 * len(ablation.DRAWN)
    assert (tmp_path / "ablation.png").stat().st_size > 0 and (tmp_path / "ablation.pdf").stat().st_size > 0
