"""The workflow end to end on config/smoke.yaml, its rerun behaviour, config errors and resumption."""

import html
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from memcurv.config import validate
from memcurv.figures import study_figures

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--configfile", str(SMOKE), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    res = snakemake(workdir)
    assert res.returncode == 0, res.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_smoke_study_builds_every_figure(smoke_run):
    for name in study_figures(validate(yaml.safe_load(SMOKE.read_text()))):
        for ext in ("pdf", "png", "csv"):
            path = smoke_run / "figures" / "smoke" / f"{name}.{ext}"
            assert path.stat().st_size > 0, path
    for table in ("dp_models.csv", "examples.csv", "mem_vs_epsilon.csv"):
        assert (smoke_run / "results" / "smoke" / "tables" / table).stat().st_size > 0
    metrics = json.loads((smoke_run / "results" / "smoke" / "dp" / "shard0" / "metrics.json").read_text())[0]
    assert metrics["seed"] == 0
    assert 0 < metrics["epsilon"] <= 1 and metrics["provenance"]["config_hash"]
    dp_table = json.loads((smoke_run / "results" / "smoke" / "tables" / "dp_models.csv.provenance.json").read_text())
    assert dp_table["config_hash"] == metrics["provenance"]["config_hash"]  # DP models and their table read alike
    assert not any((smoke_run / "results" / "smoke" / "resume").glob("*"))  # progress dropped once written


@pytest.mark.slow
def test_every_table_the_smoke_study_writes_is_declared_with_its_columns(smoke_run):
    """The catalogue (memcurv.tables) holds every table a run writes, with the columns (or arrays) it has."""
    from memcurv import tables

    folder = smoke_run / "results" / "smoke" / "tables"
    written = {p.name for p in folder.iterdir() if not p.name.endswith(".provenance.json")}
    assert written == set(tables.CATALOGUE) - set(tables.names(tables.AUDIT_TABLES))  # the smoke study runs no audit
    for name in written:
        table = tables.CATALOGUE[name]
        if name.endswith(".csv"):
            columns = list(pd.read_csv(folder / name, nrows=1).columns)
        else:
            with np.load(folder / name) as z:
                columns = z.files
        assert [c for c in columns if not tables.declared(table, c)] == [], name
        required = [c for c in table.columns if "{" not in c and not c.endswith("(optional)")]
        assert set(required) <= set(columns), name


@pytest.mark.slow
def test_smoke_report_gives_a_verdict_for_every_claim(smoke_run):
    report = (smoke_run / "paper" / "smoke.md").read_text()
    numbers = json.loads((smoke_run / "paper" / "smoke.json").read_text())
    assert [c["key"] for c in numbers["claims"]] == ["curvature_memorization", "epsilon_curvature",
                                                     "epsilon_memorization", "loss_epsilon"]
    for claim in numbers["claims"]:
        assert claim["verdict"] in ("holds", "does not hold", "inconclusive", "not run")
        assert f"**{claim['verdict']}**" in report
    assert "../figures/smoke/mem_vs_curvature.png" in report and "config hash" in report
    examples = pd.read_csv(smoke_run / "results" / "smoke" / "tables" / "examples.csv")
    assert (examples["planted"] == "flipped").sum() == 15 and "AUROC for flipped labels" in report


@pytest.mark.slow
def test_a_failing_report_job_keeps_the_last_good_report(smoke_run, tmp_path):
    """The report is written under results/ and copied to paper/: a report job that fails on a damaged table leaves
    the committed report and its numbers as they were, and its log names the file and the fix."""
    from memcurv.tables import MEM_VS_EPSILON_MODELS

    run = tmp_path / "run"
    shutil.copytree(smoke_run, run, symlinks=True)
    report, numbers = run / "paper" / "smoke.md", run / "paper" / "smoke.json"
    before = report.read_text(), numbers.read_text()
    table = run / "results" / "smoke" / "tables" / MEM_VS_EPSILON_MODELS.name
    table.write_bytes(b"not an npz")
    res = snakemake(run, "-p", "paper/smoke.md")  # a flag first: after --configfile a path would be a config
    assert res.returncode != 0
    assert (report.read_text(), numbers.read_text()) == before
    log = (run / "logs" / "smoke" / "report.log").read_text()
    assert f"{table.relative_to(run)} is damaged" in log and "delete it and rerun" in log


def test_archived_tables_recompute_every_figure_and_number_of_the_report(smoke_run, tmp_path):
    """The tables behind the report are archived beside it; `reproduce` redraws every figure from them without
    training and finds the report's numbers; a changed table is found out."""
    archive = smoke_run / "paper" / "smoke"
    assert (archive / "config.yaml").exists() and (archive / "tables" / "subset_scores.npz").exists()
    cmd = [sys.executable, "-m", "memcurv", "reproduce", "--config", str(archive / "config.yaml"), "--tables",
           str(archive / "tables"), "--out", str(tmp_path / "again")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=smoke_run, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "every number of paper/smoke.json recomputed" in res.stdout
    for name in study_figures(validate(yaml.safe_load(SMOKE.read_text()))):
        assert (tmp_path / "again" / "figures" / "smoke" / f"{name}.png").stat().st_size > 0
    changed = tmp_path / "changed"
    changed.mkdir()
    for table in (archive / "tables").iterdir():
        changed.joinpath(table.name).write_bytes(table.read_bytes())
    dp = pd.read_csv(changed / "dp_models.csv")
    dp.assign(test_loss=dp["test_loss"][::-1].to_numpy()).to_csv(changed / "dp_models.csv", index=False)
    cmd[cmd.index("--tables") + 1] = str(changed)
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=smoke_run, timeout=600)
    assert res.returncode == 0 and "numbers differ from paper/smoke.json" in res.stdout, res.stdout[-2000:]


def _words(html_or_text: str) -> str:
    """Text as a reader sees it: tags dropped, entities decoded, white space folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", html_or_text)).split())


@pytest.mark.slow
def test_html_report_shows_every_figure_with_its_caption_read_from_the_validated_config(smoke_run):
    """`snakemake --report` on the smoke study: every figure is in the HTML with its caption, whose values come from
    the validated config (smoke.yaml names no fidelity, no subset ratio: the schema's defaults fill them in)."""
    import jinja2

    res = snakemake(smoke_run, "--report", str(smoke_run / "report.html"))
    assert res.returncode == 0, res.stderr[-3000:]
    page = (smoke_run / "report.html").read_text()
    cfg = validate(yaml.safe_load(SMOKE.read_text())).as_dict()
    for name in study_figures(validate(yaml.safe_load(SMOKE.read_text()))):
        entry = re.search(rf'"figures/smoke/{name}\.png": \{{"name": "{name}\.png".*?"caption": ("(?:[^"\\]|\\.)*")',
                          page)
        assert entry, name
        caption = jinja2.Template((REPO / "workflow" / "report" / f"{name}.rst").read_text()).render(
            snakemake=SimpleNamespace(config=cfg))
        assert _words(json.loads(entry.group(1))) == _words(caption), name
    assert "study <strong>smoke</strong>, fidelity <strong>corrected</strong>" in page
    assert "&quot;confidence&quot;: 0.95" in page  # the configuration shown has every default filled in


@pytest.mark.slow
def test_rerun_is_a_no_op_and_a_deleted_figure_rebuilds_alone(smoke_run):
    res = snakemake(smoke_run, "--dry-run")
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr
    (smoke_run / "figures" / "smoke" / "loss_vs_epsilon.png").unlink()
    res = snakemake(smoke_run, "--dry-run")
    jobs = {line.split()[0] for line in res.stdout.splitlines() if line.strip().endswith(" 1")}
    assert jobs == {"figure_loss_vs_epsilon", "all"}, res.stdout
    assert "total" in res.stdout and "train_" not in res.stdout


# The verb whose job writes each table with provenance (memcurv.jobs.reads declares what each verb reads).
TABLE_VERBS = {"dp_models.csv": "dp-table", "examples.csv": "examples", "subset_models.csv": "examples",
               "mem_vs_epsilon.csv": "mem-eps-table"}


def assert_tables_name_their_settings(workdir: Path) -> None:
    """Every table's provenance hash is the hash of the settings its verb's jobs read, as their settings file holds
    them (results/<study>/settings/<verb>.yaml)."""
    from memcurv import io

    provenance = sorted((workdir / "results" / "smoke" / "tables").glob("*.provenance.json"))
    assert {p.name.removesuffix(".provenance.json") for p in provenance} == set(TABLE_VERBS)
    for path in provenance:
        verb = TABLE_VERBS[path.name.removesuffix(".provenance.json")]
        settings = yaml.safe_load((workdir / "results" / "smoke" / "settings" / f"{verb}.yaml").read_text())
        assert json.loads(path.read_text())["config_hash"] == io.config_hash(settings), path.name


def test_every_table_names_the_settings_that_made_it(smoke_run):
    assert_tables_name_their_settings(smoke_run)


def planned_jobs(workdir: Path, *configfiles: Path) -> set[str]:
    res = snakemake(workdir, "--dry-run", "--configfile", str(SMOKE), *map(str, configfiles))
    assert res.returncode == 0, res.stderr[-2000:]
    return {line.split()[1].rstrip(":") for line in res.stdout.splitlines() if line.startswith("rule ")}


FIGURE_RULES = {f"figure_{name}" for name in study_figures(validate(yaml.safe_load(SMOKE.read_text())))}
ALWAYS = {"resolved_config", "report", "publish_report", "archive_tables"}  # the report and its archive read all


@pytest.mark.parametrize(
    "change, reruns",
    [
        ("figures: {most_memorized: 4}", {"job_settings", *FIGURE_RULES, "extremes"}),  # extremes picks the examples
        ("claims: {min_effect: 0.2}", set()),
        ("mem_vs_epsilon: {seed: 7}", {"job_settings", "calibrate_noise", "top_k", "train_dp_subset_models",
                                       "train_topk_control_models", "mem_vs_epsilon_table",
                                       "figure_memorization_vs_epsilon"}),
    ],
)
def test_a_changed_setting_reruns_only_the_jobs_that_read_it(smoke_run, tmp_path, change, reruns):
    """A figure option reruns figures, a claim threshold the report alone, a memorization-vs-epsilon setting its
    models and what reads them: the jobs a dry run plans beyond those it plans unchanged."""
    (tmp_path / "change.yaml").write_text(change + "\n")
    unchanged = planned_jobs(smoke_run)
    assert planned_jobs(smoke_run, tmp_path / "change.yaml") - unchanged - {"all"} == (reruns | ALWAYS) - unchanged


@pytest.mark.parametrize(
    "override, message",
    [
        ("bogus_key: 1", "config key <top level>: Additional properties are not allowed ('bogus_key'"),
        ("dp_models: {epsilons: [0, 1]}", "config key dp_models.epsilons.0: 0 is less than or equal to the minimum"),
        ("memorization: {subset_ratio: 1.5}", "config key memorization.subset_ratio: 1.5 is greater than"),
        ("dataset: {name: mnist}", "config key dataset.name: 'mnist' is not one of"),
        ("model: vgg", "config key model: 'vgg' is not one of"),
        ("mem_vs_epsilon: {top_k: 100000}",
         "config key mem_vs_epsilon.top_k = 100000 exceeds the 300 training examples"),
        ("mem_vs_epsilon: {topk_source: published}", "needs memorization.published_scores"),
        ("{train: {channels_last: true}, privacy: {grad_sample_mode: hooks}}",
         "config key train.channels_last needs privacy.grad_sample_mode in ('ew', 'functorch'), not 'hooks'"),
        ("train: {precision: bf16}", "config key train.precision = bf16 needs privacy.grad_sample_mode"),
    ],
)
def test_bad_config_stops_before_any_job_with_one_line_naming_the_key(tmp_path, override, message):
    """Overrides come from a config file: `--config` would read nested values as strings (Snakemake's BaseLoader),
    and fail every case on its type."""
    (tmp_path / "override.yaml").write_text(override + "\n")
    res = snakemake(tmp_path, "--configfile", str(SMOKE), str(tmp_path / "override.yaml"))
    assert res.returncode != 0
    assert message in res.stdout + res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_second_invocation_cannot_change_the_config_a_running_study_reads(tmp_path):
    """The resolved config is written by a rule, not while the workflow is parsed: a second `snakemake` on the same
    study with another config (curvature.probes changed) while a job runs is refused (by Snakemake's lock, or before
    it by the running job's outputs being marked incomplete) and writes nothing, and every table of the first run
    comes from the first run's own config; a dry run writes nothing."""
    from memcurv.jobs import reads

    dry = snakemake(tmp_path / "dry", "--dry-run")
    assert dry.returncode == 0 and not (tmp_path / "dry" / "results").exists()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
           "--configfile", str(SMOKE)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resolved = tmp_path / "results" / "smoke" / "config.yaml"
    deadline = time.time() + 600
    while not (resolved.exists() and any((tmp_path / "logs" / "smoke").rglob("train_*/*.log"))):
        assert first.poll() is None and time.time() < deadline, "the study ended before a training job started"
        time.sleep(0.2)
    before = resolved.read_text()
    (tmp_path / "probes.yaml").write_text("curvature: {probes: 3}\n")
    second = snakemake(tmp_path, "--configfile", str(SMOKE), str(tmp_path / "probes.yaml"))
    refused = (second.stdout + second.stderr).lower()  # Snakemake's lock, or (checked first) the running job's
    assert second.returncode != 0 and ("lock" in refused or "incomplete" in refused)  # outputs marked incomplete
    assert resolved.read_text() == before
    assert first.wait(timeout=900) == 0
    assert resolved.read_text() == before
    assert_tables_name_their_settings(tmp_path)
    for verb in set(TABLE_VERBS.values()):  # and those are the first run's own
        settings = yaml.safe_load((tmp_path / "results" / "smoke" / "settings" / f"{verb}.yaml").read_text())
        assert settings == reads.restrict(validate(yaml.safe_load(before)), verb).as_dict()


def test_killed_training_job_resumes_and_matches_uninterrupted_run(tmp_path):
    """A DP shard of two models (one seed at two epsilons) killed while training its second: the rerun keeps the
    first model and resumes the second from its epoch checkpoint, and writes what an uninterrupted run writes."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("study: resume\ndataset: {name: digits}\ndevice: cpu\ncurvature: {probes: 2}\n"
                   "train: {epochs: 30, batch_size: 128, lr: 2.0, momentum: 0.5}\nprivacy: {accountant: rdp}\n"
                   "dp_models: {epsilons: [5, 10], seeds: [0], models_per_job: 2}\n")  # a shard across epsilons
    cli = [sys.executable, "-m", "memcurv"]
    noise = tmp_path / "noise.json"
    subprocess.run([*cli, "calibrate", "--config", cfg, "--experiment", "dp_models", "--epsilons", "5", "10",
                    "--out", noise], check=True, capture_output=True)

    def train(out: Path, resume: Path) -> subprocess.Popen:
        return subprocess.Popen([*cli, "train-dp", "--config", cfg, "--shard", "0", "--noise", noise,
                                 "--out-dir", out, "--resume", resume, "--threads", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    assert train(tmp_path / "full", tmp_path / "full-progress").wait(timeout=300) == 0
    resume = tmp_path / "killed-progress"
    proc = train(tmp_path / "killed", resume)
    while not (resume / "eps10_seed0_epoch.pt").exists():
        assert proc.poll() is None, "the shard ended before its second model's first epoch checkpoint"
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert (resume / "eps5_seed0.pt").exists() and not (tmp_path / "killed" / "metrics.json").exists()
    rerun = train(tmp_path / "killed", resume)
    log, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and "eps5_seed0: kept from an interrupted run" in log and "resumed from" in log
    assert not resume.exists()  # removed once the shard is written
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    for key in ("target_epsilon", "seed", "train_loss", "train_acc", "test_loss", "test_acc", "epsilon", "steps"):
        assert [m[key] for m in resumed] == [m[key] for m in full], key
    with np.load(tmp_path / "full" / "curvature.npz") as a, np.load(tmp_path / "killed" / "curvature.npz") as b:
        assert sorted(a.files) == sorted(b.files) and a["trace"].shape[0] == 2
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        _scored_as_saved(cfg, tmp_path / "full" / "models.pt", a)


def _scored_as_saved(cfg: Path, models: Path, curvature) -> None:
    """Each model of a DP shard's models.pt, loaded alone, gives the curvature its job wrote."""
    import torch

    from memcurv import config
    from memcurv.jobs import toolkit

    study = config.load(cfg)
    ds = toolkit.dataset(study)
    saved = torch.load(models, weights_only=True)
    assert [(m["epsilon"], m["seed"]) for m in saved["models"]] == list(zip(curvature["epsilons"], curvature["seeds"]))
    for i, m in enumerate(saved["models"]):
        model = toolkit.model_from_state(study, ds, m["state_dict"], torch.device("cpu"))
        for score, values in toolkit.dataset_curvature(study, model, ds, torch.device("cpu")).items():
            np.testing.assert_array_equal(values, curvature[score][i], err_msg=f"model {i} {score}")


def _shard_config():
    from memcurv import config

    return config.validate({"study": "shard", "dataset": {"name": "digits"}, "device": "cpu",
                            "curvature": {"probes": 2},
                            "memorization": {"num_models": 3, "models_per_job": 3, "stacked": False,
                                             "train": {"epochs": 2, "batch_size": 128, "lr": 0.05}}})


def test_killed_shard_job_keeps_its_finished_models_and_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    from memcurv.jobs import subset_models

    cfg, masks = _shard_config(), tmp_path / "masks.npz"
    subset_models.write_subset_masks(cfg, masks)
    subset_models.train_subset_shard(cfg, masks, 0, tmp_path / "full.npz")
    real_train, trained = subset_models.train, []

    def train(*args, **kwargs):
        trained.append(kwargs["desc"])
        if trained == ["subset model 0", "subset model 1"]:
            raise RuntimeError("killed while training the second model")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(subset_models, "train", train)
    resume = tmp_path / "progress"
    with pytest.raises(RuntimeError, match="killed"):
        subset_models.train_subset_shard(cfg, masks, 0, tmp_path / "killed.npz", resume)
    assert (resume / "model0.pt").exists() and not (tmp_path / "killed.npz").exists()
    trained.clear()
    subset_models.train_subset_shard(cfg, masks, 0, tmp_path / "killed.npz", resume)
    assert trained == ["subset model 1", "subset model 2"]  # model 0 was not trained again
    assert not resume.exists()
    with np.load(tmp_path / "full.npz") as full, np.load(tmp_path / "killed.npz") as resumed:
        assert sorted(full.files) == sorted(resumed.files)
        for key in full.files:
            np.testing.assert_array_equal(full[key], resumed[key], err_msg=key)


def test_grid_shards_take_the_epsilon_by_model_grid_in_order():
    """Shards of 4 of 3 epsilons x 2 seeds: the first spans two epsilons, the last is short; past the end, an error."""
    from memcurv.jobs.toolkit import grid_shard

    assert grid_shard((1.0, 2.0, 5.0), 2, 4, 0) == [(1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)]
    assert grid_shard((1.0, 2.0, 5.0), 2, 4, 1) == [(5.0, 0), (5.0, 1)]
    with pytest.raises(ValueError, match="outside the 2 shards of 6 models"):
        grid_shard((1.0, 2.0, 5.0), 2, 4, 2)


def test_a_damaged_kept_model_is_set_aside_and_computed_again(tmp_path, caplog):
    """A finished model's file that cannot be read (truncated) is moved to <name>.pt.damaged with a warning naming
    it, and the model computed again, instead of blocking every rerun of the job."""
    from memcurv.jobs import toolkit

    (tmp_path / "model0.pt").write_bytes(b"not a checkpoint")
    with caplog.at_level("WARNING", logger="memcurv.jobs.toolkit"):
        got = toolkit.resumable(tmp_path, "model0", lambda epoch: {"test_acc": np.array(0.5)})
    assert got["test_acc"] == 0.5 and "model0.pt is damaged" in caplog.text
    assert (tmp_path / "model0.pt.damaged").exists() and (tmp_path / "model0.pt").exists()


def test_resumable_gives_back_what_it_kept(tmp_path):
    """A finished model's results read back from the resume folder equal what was computed: numpy arrays as numpy
    (0-d, bool, float32, a strided view), tensors as tensors, numbers and strings as they were (a numpy number as a
    Python one); the model is not computed again."""
    import torch

    from memcurv.jobs import toolkit

    result = {"test_acc": np.array(0.5), "correct": np.array([True, False]),
              "curv": np.arange(6, dtype=np.float32).reshape(2, 3)[:, ::2],
              "state_dict": {"w": torch.arange(3.0)},
              "metrics": {"epsilon": 1.5, "fidelity": "corrected", "l": [1, 2], "spent": np.float64(0.25)}}
    assert toolkit.resumable(tmp_path, "model0", lambda epoch: result) is result
    kept = toolkit.resumable(tmp_path, "model0", lambda epoch: pytest.fail("a finished model was trained again"))
    assert kept.keys() == result.keys() and kept["metrics"] == result["metrics"]
    assert torch.equal(kept["state_dict"]["w"], result["state_dict"]["w"])
    for key in ("test_acc", "correct", "curv"):
        assert isinstance(kept[key], np.ndarray) and kept[key].dtype == result[key].dtype
        np.testing.assert_array_equal(kept[key], result[key], err_msg=key)
        assert kept[key].shape == result[key].shape


def test_progress_made_under_another_config_is_dropped(tmp_path, caplog):
    from memcurv.jobs import toolkit

    cfg = _shard_config()
    other = replace(cfg, memorization=replace(cfg.memorization, train=replace(cfg.memorization.train, lr=0.1)))
    (toolkit.open_resume(tmp_path / "progress", cfg) / "model0.pt").write_text("a finished model")
    assert (toolkit.open_resume(tmp_path / "progress", cfg) / "model0.pt").exists()  # same config: kept
    with caplog.at_level("WARNING", logger="memcurv.jobs.toolkit"):
        toolkit.open_resume(tmp_path / "progress", other)
    assert not (tmp_path / "progress" / "model0.pt").exists() and "another configuration" in caplog.text


@pytest.mark.parametrize("study, jobs", [
    # 21 epsilons x 10 seeds of DP models (each scored in its job), subset models in shards, 6 epsilons of DP subsets
    ("cifar10", {"train_dp_models": 210, "train_subset_models": 20,
                 "train_dp_subset_models": 24}),
    ("cifar100", {"train_dp_models": 210, "train_subset_models": 20,
                  "train_dp_subset_models": 24}),
    ("imagenet", {"train_dp_models": 210, "train_subset_models": 10,
                  "train_dp_subset_models": 24}),
    # real images on a CPU or a GPU: 6 epsilons x 3 seeds (a job per epsilon on the CPU), 40 or 64 subset models,
    # 2 epsilons x 28 DP subsets (7 a job) and their non-private control on the CPU
    ("cifar10_cpu", {"train_dp_models": 6, "train_subset_models": 10,
                     "train_dp_subset_models": 8, "train_topk_control_models": 4}),
    ("cifar10_gpu", {"train_dp_models": 18, "train_subset_models": 8,
                     "train_dp_subset_models": 6}),
    # Tiny ImageNet on a CPU (20 classes at 32x32; 2 epsilons x 24 DP subsets) and a GPU (200 classes at 64x64)
    ("imagenet_cpu", {"train_dp_models": 6, "train_subset_models": 10,
                      "train_dp_subset_models": 8, "train_topk_control_models": 4, "figure_extremes": 1}),
    ("imagenet_gpu", {"train_dp_models": 8, "train_subset_models": 4,
                      "train_dp_subset_models": 4, "train_topk_control_models": 2}),
])
def test_paper_configs_validate_and_dry_run_to_the_paper_grids(tmp_path, study, jobs):
    cscores = tmp_path / "shared" / "data" / "cifar10-cscores-orig-order.npz"  # ../shared/data seen from work/
    cscores.parent.mkdir(parents=True)
    cscores.touch()  # a dry run only needs the input to exist
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "work"),
           "--cores", "1",
           "--configfile", str(REPO / "config" / f"{study}.yaml"), "--dry-run", "--quiet", "rules"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in res.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert {k: counts[k] for k in jobs} == jobs, res.stdout


@pytest.mark.slow
def test_miniature_cifar10_study_runs_end_to_end_on_fabricated_files(tmp_path):
    from test_real_data import write_cifar10

    write_cifar10(tmp_path / "data", per_batch=20)
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(f"""
dataset: {{root: {tmp_path / 'data'}, download: false, verify_checksums: false}}
device: cpu
train: {{epochs: 1, batch_size: 50, physical_batch_size: 25}}
privacy: {{accountant: rdp}}
curvature: {{probes: 1, batch_size: 50}}
dp_models: {{epsilons: [1, 10], seeds: [10655]}}
memorization: {{num_models: 2, models_per_job: 2, train: {{epochs: 1, batch_size: 50}}}}
mem_vs_epsilon: {{epsilons: [10], num_models: 2, models_per_job: 2, top_k: 10}}
""")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
           "--configfile", str(REPO / "config" / "cifar10.yaml"), str(tiny)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    [metrics] = json.loads((tmp_path / "results/cifar10/dp/shard0/metrics.json").read_text())
    assert metrics["epsilon"] <= 1 and metrics["steps"] == 2  # 100 images, logical batch 50, one epoch
    assert (tmp_path / "figures/cifar10/curvature_vs_epsilon.png").stat().st_size > 0
    assert (tmp_path / "paper/cifar10.md").exists()


def test_a_wrong_c_score_file_stops_the_study_before_any_job_with_its_config_key(tmp_path):
    """The C-scores were checked only after every subset model had trained; the rule that writes the resolved config
    checks every file the config names first: a file with the wrong md5 stops the study there, naming the key,
    and no other job runs."""
    from test_real_data import write_cifar10

    write_cifar10(tmp_path / "data", per_batch=20)
    wrong = tmp_path / "cscores.npz"
    np.savez(wrong, labels=np.repeat(np.arange(10), 5000), scores=np.full(50000, 0.5))
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(f"dataset: {{root: {tmp_path / 'data'}, download: false}}\nmemorization: {{cscores: {wrong}}}\n")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
           "--configfile", str(REPO / "config" / "cifar10.yaml"), str(tiny)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0
    log = (tmp_path / "logs" / "cifar10" / "resolved_config.log").read_text()
    assert "config key memorization.cscores" in log and "md5" in log, log
    assert not (tmp_path / "results" / "cifar10" / "config.yaml").exists()  # removed with the failed job
    assert not any((tmp_path / "logs" / "cifar10").glob("train_*"))  # nothing trained


def test_cli_help_lists_the_verbs():
    out = subprocess.run([sys.executable, "-m", "memcurv", "--help"], capture_output=True, text=True, check=True).stdout
    for verb in ("calibrate", "train-dp", "train-subsets", "examples", "figure"):
        assert verb in out
