"""The command line only parses and dispatches; the figure catalogue is the one list that the command line, the
rules and the tests read, so that a new figure needs its module and its caption, nothing else."""

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_tables import write_dp_models

from memcurv import cli
from memcurv.figures import catalogue
from memcurv.jobs import subset_models

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"

THROWAWAY = '''"""A throwaway figure: test accuracy against epsilon."""

import pandas as pd

from memcurv.figures.style import new_figure

TABLES = ("dp_models.csv",)


def plot(tables, study, options):
    dp = pd.read_csv(tables["dp_models.csv"]).groupby("epsilon", as_index=False)["test_acc"].mean()
    fig, ax = new_figure()
    ax.plot(dp["epsilon"], dp["test_acc"], "o-")
    return fig, dp
'''


@pytest.mark.parametrize("name", list(cli.VERBS))
def test_each_verb_passes_its_options_to_its_job_by_name(name):
    """What the parser gives is exactly what the job takes: no verb restates a job's signature."""
    verb = cli.VERBS[name]
    params = list(inspect.signature(cli._job(verb)).parameters)
    options = [flag.lstrip("-").replace("-", "_") for flag, _ in verb.options]
    assert params[0] == "cfg" and sorted(params[1:]) == sorted(options)


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["masks", "--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"memcurv masks: error: config file {tmp_path / 'missing.yaml'} does not exist"]


def test_a_failure_inside_a_job_prints_its_traceback_and_exits_1(tmp_path, capsys, monkeypatch):
    def out_of_memory(cfg, out):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(subset_models, "write_subset_masks", out_of_memory)
    assert cli.main(["masks", "--config", str(SMOKE), "--out", str(tmp_path / "m.npz")]) == cli.JOB_FAILED
    assert cli.JOB_FAILED != cli.BAD_INPUT == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in out_of_memory" in err
    assert "RuntimeError: CUDA out of memory" in err and not (tmp_path / "m.npz").exists()


def test_abbreviated_options_are_refused():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["calibrate", "--config", "c.yaml", "--experiment", "dp_models",
                                       "--epsilon", "1", "--out", "n.json"])


def test_every_figure_has_a_caption_for_the_snakemake_report():
    for name in catalogue():
        assert (REPO / "workflow" / "report" / f"{name}.rst").read_text().strip(), name


def test_a_new_figure_needs_only_its_module_and_its_caption(tmp_path):
    """A copy of the package and the workflow with one module and one caption added: the workflow schedules the
    figure, and the command line draws it."""
    src, repo = tmp_path / "src", tmp_path / "repo"
    shutil.copytree(REPO / "src" / "memcurv", src / "memcurv", ignore=shutil.ignore_patterns("__pycache__"))
    repo.mkdir()
    for part in ("Snakefile", "workflow", "config"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, repo / part)
    (src / "memcurv" / "figures" / "throwaway.py").write_text(THROWAWAY)
    (repo / "workflow" / "report" / "throwaway.rst").write_text("Test accuracy against epsilon.\n")
    env = {"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}

    dry = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "-d", str(tmp_path / "w"),
                          "--configfile", str(SMOKE), "--cores", "1", "--dry-run", "figures/smoke/throwaway.png"],
                         check=False, capture_output=True, text=True, env=env, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "figure_throwaway" in dry.stdout and "dp_models_table" in dry.stdout

    write_dp_models(tmp_path, lambda e: 1 - (1 + e) ** -1.0, lambda e: 1 / (1 + e))
    outs = [tmp_path / f"throwaway.{ext}" for ext in ("pdf", "png", "csv")]
    drawn = subprocess.run([sys.executable, "-m", "memcurv", "figure", "throwaway", "--config", str(SMOKE),
                            "--tables", str(tmp_path / "dp_models.csv"), "--out-pdf", str(outs[0]),
                            "--out-png", str(outs[1]), "--out-csv", str(outs[2])],
                           check=False, capture_output=True, text=True, env=env, timeout=300)
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert all(p.stat().st_size > 0 for p in outs) and "test_acc" in outs[2].read_text()


@pytest.mark.parametrize("verb", ["figure", "report"])
def test_figure_and_report_jobs_do_not_import_torch(verb):
    """Figures and the report read tables: their jobs, every figure module included, skip torch's import (over a
    second a job, eight jobs a study). A module that imports torch (as the claims once did, through the
    curvature estimator's score names) fails it."""
    script = (f"import sys; from memcurv import cli, figures; cli._job(cli.VERBS[{verb!r}]); figures.catalogue(); "
              "print(sorted(m for m in ('torch', 'opacus') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("text, says", [
    ("", "is empty"),
    ("foo: [1\n", "is not valid YAML (line 2)"),
    ("- study\n- digits\n", "holds a YAML list, not a mapping"),
    ("study: ..\n", "config key study"),
    ("memorizaton: {}\n", "did you mean 'memorization'?"),
    ("memorization: {num_modles: 3}\n", "did you mean 'num_models'?"),
])
def test_a_bad_config_file_is_one_line_naming_it_and_exit_2(tmp_path, capsys, text, says):
    """Malformed YAML, an empty file, a list, a study name that is not a plain identifier (`..` would write into
    the repository's root) and a misspelled key: each one line, naming the file or key, and exit 2."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert cli.main(["validate", "--config", str(path)]) == cli.BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


@pytest.mark.parametrize("epsilons, warns", [([1, 2, 4], True), ([1, 2, 4, 8], False)])
def test_validate_warns_when_the_trend_claims_have_too_few_epsilons(tmp_path, capsys, epsilons, warns):
    path = tmp_path / "c.yaml"
    path.write_text(f"dp_models: {{epsilons: {epsilons}}}\n")
    assert cli.main(["validate", "--config", str(path)]) == 0
    err = capsys.readouterr().err
    assert ("dp_models.epsilons has 3 epsilon(s)" in err and "at least 4" in err and "not run" in err) == warns, err


def _write_a_table_then_fail(cfg, out: Path) -> None:
    import pandas as pd

    from memcurv.jobs.toolkit import write_table

    write_table(pd.DataFrame({"a": [1]}), out, cfg)
    raise RuntimeError("the job fails after writing one of its tables")


def test_a_failed_job_leaves_no_provenance_beside_the_outputs_snakemake_deletes(tmp_path, monkeypatch):
    from memcurv import io

    monkeypatch.setitem(cli.VERBS, "boom", cli.Verb("fails", "test_cli:_write_a_table_then_fail", (cli.OUT,)))
    config = tmp_path / "c.yaml"
    config.write_text("dataset: {name: synthetic}\n")
    out = tmp_path / "table.csv"
    assert cli.main(["boom", "--config", str(config), "--out", str(out)]) == cli.JOB_FAILED
    assert out.exists() and not io.provenance_path(out).exists()  # Snakemake deletes the table; nothing is left
