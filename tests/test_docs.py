"""The front door and the docs behind it: the README's two commands, its length, its generated results, every link
resolving, and the commands the docs give that are cheap enough to try (dry runs)."""

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from memcurv.report import summary

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_a_front_door_with_exactly_two_setup_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert blocks[:2] == ['python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && snakemake '
                          '--cores all\n', ". .venv/bin/activate && python -m pytest\n"]


def test_committed_results_pages_are_generated_from_the_reports():
    """The README's results block and docs/results.md are what `python -m memcurv.report.summary` writes from
    paper/*.json: a number edited by hand, or a report regenerated without them, fails here."""
    reports = summary.studies(REPO / "paper")
    assert len(reports) >= 2
    readme = (REPO / "README.md").read_text()
    assert summary.readme(readme, reports) == readme
    assert summary.page(reports) == (REPO / "docs" / "results.md").read_text()


def test_a_number_changed_in_a_report_changes_the_generated_pages():
    reports = summary.studies(REPO / "paper")
    decided = reports[0]["claims"][0]["numbers"]["deciding"]
    before = summary.results_table(reports)
    decided["estimate"] += 0.5
    assert summary.results_table(reports) != before


def test_the_summary_shows_the_deciding_condition_and_merges_a_study_with_the_same_tables():
    """A cell shows the condition that decided its verdict, not the criterion's first statistic; a study whose claim
    has another's numbers (the audit overlays the default study) says so instead of repeating them, and its own
    result (the audit) has a row of its own."""
    claim = {"key": "k", "title": "T", "verdict": "does not hold", "numbers": {"deciding": {
        "kind": "interval", "name": "ρ", "estimate": 0.05, "low": 0.02, "high": 0.09, "side": ">", "threshold": 0.3,
        "rule": "clears", "passes": False, "fails": True}, "conditions": []}}
    other = {**claim, "verdict": "holds"}
    reports = [{"study": "a", "dataset": "A", "claims": [claim], "claims_read_faithful": [other]},
               {"study": "b", "dataset": "A", "claims": [claim], "claims_read_faithful": [other],
                "audit": {"verdict": "audit consistent with the accountant", "max_ratio_lb_to_accountant": 0.03,
                          "control_verdict": "negative control detected", "control_best_eps_lb": 6.0}}]
    table = summary.results_table(reports)
    assert "**does not hold**: ρ 0.05 [0.02, 0.09], needs > 0.3; read faithful: holds" in table
    assert "as `a` (the same tables)" in table and "**audit consistent with the accountant**" in table
    reports[1]["claims"] = [{**claim, "numbers": {**claim["numbers"], "deciding": {
        **claim["numbers"]["deciding"], "estimate": 0.06}}}]
    assert "as `a`" not in summary.results_table(reports)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if not re.match(r"[a-z]+://", target):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


SETUP = 2  # the README's first two blocks: the set-up commands, which CI runs itself (.ci/run)
COMMAND = r"(?:snakemake|memcurv |python -m memcurv|python benchmarks/|export )"


def _shown_commands() -> list[tuple[str, str]]:
    """Every command the docs show: each line of a ```bash block (past the README's set-up blocks) and each inline
    code span that starts like one."""
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)[SETUP if page.name == "README.md" else 0:]
        lines = [shlex.join(shlex.split(line, comments=True)) for b in blocks for line in b.splitlines()]
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        found += [(page.name, c) for c in [*lines, *re.findall(rf"`({COMMAND}[^`]*)`", prose)] if c]
    return found


def _in_workflow(variable: str) -> bool:
    """The variable is read by the workflow (a line of workflow/ that is not a comment names it)."""
    return any(variable in line and not line.lstrip().startswith("#")
               for path in (REPO / "workflow").rglob("*") if path.is_file() for line in path.read_text().splitlines())


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600, **kw)


@pytest.mark.parametrize("page, command", _shown_commands(), ids=lambda c: c)
def test_every_command_the_docs_show_runs(page, command, tmp_path):
    """Each command a page shows is real, run as far as a test can: `snakemake` lines plan (a dry run), except
    what needs a cluster or a GPU or the HTML report, which test_slurm.py and test_workflow.py run; memcurv verbs run
    (with a placeholder, their --help; `reproduce` into a temporary folder); the summary checks the committed pages
    (--check); the ablation rewrites the committed page, in a temporary folder, to the same text; a benchmark exists
    and takes the options shown (its --help); an exported variable is one the workflow reads."""
    argv = shlex.split(command)
    where = f"{page}: {command}"
    if argv[0] == "export":
        assert _in_workflow(argv[1].split("=")[0]), where
    elif argv[0] == "snakemake":
        if "--workflow-profile" in argv or any("report" in a for a in argv):
            pytest.skip("the SLURM profile and the HTML report run in test_slurm.py and test_workflow.py")
        res = _run("-m", *argv, "--dry-run", "--quiet", "rules")
        assert res.returncode == 0, f"{where}\n{res.stderr[-2000:]}"
    elif argv[0] == "python" and argv[1].startswith("benchmarks/"):
        script, options = REPO / argv[1], [a for a in argv[2:] if a.startswith("--")]
        assert script.is_file(), where
        if options:  # a script without options may have no --help: it would run
            help_text = _run(str(script), "--help").stdout
            assert all(o in help_text for o in options), where
    else:
        module = argv[2] if argv[0] == "python" else "memcurv"
        args = argv[3:] if argv[0] == "python" else argv[1:]
        committed = None  # a page the command rewrites, written to tmp_path instead and compared
        if module == "memcurv.report.summary":
            args = [*args, "--check"]
        elif any("<" in a for a in args) or not any(a.startswith("--") for a in args):  # a placeholder, or a bare
            args = [a for a in args[:1] if "<" not in a] + ["--help"]  # verb or module named: it is there
        elif module == "memcurv" and args[0] == "reproduce":
            args[args.index("--out") + 1] = str(tmp_path)
        elif module == "memcurv.report.ablation":
            committed = REPO / args[args.index("--out") + 1]
            args[args.index("--out") + 1] = str(tmp_path / committed.name)
            args[args.index("--figure") + 1] = str(tmp_path / "figure")
        res = _run("-m", module, *args)
        assert res.returncode == 0, f"{where}\n{res.stderr[-2000:]}"
        if committed:
            assert (tmp_path / committed.name).read_text() == committed.read_text(), where


def test_numbers_quoted_from_benchmarks_are_in_their_committed_outputs():
    """docs quote a benchmark's output in a ```text <file> block: each quoted line must be in that file verbatim, so
    a number in the docs is one a committed run printed."""
    quoted = 0
    for page in PAGES:
        for source, block in re.findall(r"```text (\S+)\n(.*?)```", page.read_text(), re.S):
            output = (REPO / source).read_text()
            for line in block.splitlines():
                assert line in output, f"{page.name} quotes {line!r}, which {source} does not print"
                quoted += 1
    assert quoted > 0


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                target = getattr(target, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_module_the_docs_name_exists():
    """A page that sends a reader to `memcurv.x` after x moved (the refactor moved most modules) fails here."""
    named = {m for page in PAGES for m in re.findall(r"`(memcurv(?:\.\w+)+)`", page.read_text())}
    assert named
    assert [m for m in sorted(named) if not _resolves(m)] == []


def test_the_library_pages_example_runs_and_import_memcurv_stays_cheap():
    """docs/library.md's example runs as written, from the public names of `memcurv`; importing memcurv alone loads
    neither torch nor Opacus (the workflow imports it while it parses)."""
    code = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "library.md").read_text(), re.S)
    assert len(code) == 1
    subprocess.run([sys.executable, "-c", code[0]], check=True, capture_output=True, text=True, timeout=300)
    probe = "import sys, memcurv; print('torch' in sys.modules, 'opacus' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]
    import memcurv

    assert set(memcurv.API) <= set(dir(memcurv)) | set(memcurv.__all__)
