"""Atomic outputs and provenance."""

import subprocess

import pytest

from memcurv import io


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    out = tmp_path / "table.csv"
    with pytest.raises(RuntimeError):
        with io.atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_git_state_ignores_regenerated_figures_but_not_code(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for path in ("src/a.py", "figures/s/f.csv", "paper/s.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("1")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (tmp_path / "figures/s/f.csv").write_text("2")
    (tmp_path / "paper/s.md").write_text("2")
    assert io.git_state(tmp_path)["dirty"] is False
    (tmp_path / "src/a.py").write_text("2")
    assert io.git_state(tmp_path)["dirty"] is True


def test_provenance_sits_beside_its_result(tmp_path):
    assert io.provenance_path(tmp_path / "t.csv") == tmp_path / "t.csv.provenance.json"
