"""Atomic outputs and provenance."""

import errno
import os
import stat
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from memcurv import io


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    out = tmp_path / "table.csv"
    with pytest.raises(RuntimeError):
        with io.atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("free, says_disk_full", [(0, True), (10 << 30, False)])
def test_a_write_that_fails_on_a_full_disk_says_so(tmp_path, monkeypatch, free, says_disk_full):
    # torch.save on a full disk raises RuntimeError("[enforce fail at inline_container.cc] unexpected pos ...")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda _path: SimpleNamespace(free=free))
    with pytest.raises((OSError, RuntimeError)) as raised:
        with io.atomic_path(tmp_path / "run" / "model.pt") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("unexpected pos 35261248 vs 35261136")
    if says_disk_full:
        assert raised.value.errno == errno.ENOSPC and "run" in str(raised.value) and "model.pt" in str(raised.value)
        assert "unexpected pos" in str(raised.value.__cause__)
    else:
        assert type(raised.value) is RuntimeError
    assert list((tmp_path / "run").iterdir()) == []


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


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_outputs_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert io.current_umask() == umask
        io.write_json(tmp_path / "a.json", {"a": 1})
        io.write_npz(tmp_path / "b.npz", x=np.zeros(2))
        with io.atomic_path(tmp_path / "c.pt") as tmp:
            tmp.write_bytes(b"weights")
    finally:
        os.umask(old)
    for name in ("a.json", "b.npz", "c.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_damaged_or_truncated_npz_is_named_with_the_fix(tmp_path):
    """numpy's own errors name no file and suggest allow_pickle=True; read_npz names the file, says it is damaged
    and how to rebuild it, for a truncated file, a file that is not one, and a table without a key asked for."""
    from memcurv.jobs.toolkit import load_shards

    good = tmp_path / "shard0.npz"
    io.write_npz(good, masks=np.ones((2, 3), bool), correct=np.zeros((2, 3)))
    assert set(io.read_npz(good)) == {"masks", "correct"}
    truncated = tmp_path / "shard1.npz"
    truncated.write_bytes(good.read_bytes()[:40])
    junk = tmp_path / "shard2.npz"
    junk.write_text("not an npz")
    for path in (truncated, junk):
        with pytest.raises(io.DamagedFile, match=f"{path} is damaged .*delete it and rerun"):
            load_shards([good, path], ("masks",))
    with pytest.raises(io.DamagedFile, match="shard0.npz is damaged \\(it has no topk\\)"):
        io.read_npz(good, ("topk",))
    with pytest.raises(FileNotFoundError):
        io.read_npz(tmp_path / "missing.npz")
