"""Data loss: output locations are checked before any stage writes, failed or killed writers lose nothing,
and one writer at a time holds the workspace."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from motion.core.errors import DataError
from motion.core.io import atomic_dir
from motion.core.workspace import WorkspaceBusy, check_output_paths, clean_stale_temps, output_lock, workspace_lock
from tests.support.params import real_params

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = {"amass": "data/raw/amass", "annotations": "data/raw/annotations", "assets": "data/raw/assets",
           "poses": "data/poses", "texts": "data/texts", "metrics": "metrics", "cache": "data/cache"}


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A git checkout with tracked prompts/ and metrics/ files, like the repository."""
    root = tmp_path / "ws"
    (root / "prompts").mkdir(parents=True)
    (root / "prompts" / "study.yaml").write_text("prompts: []\n")
    (root / "metrics").mkdir()
    (root / "metrics" / "data.json").write_text("{}\n")
    (root / "data").mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "prompts", "metrics"], cwd=root, check=True)
    return root


def check(root: Path, **changes: str) -> None:
    check_output_paths({**OUTPUTS, **changes}, "data/cache", root, in_place=("metrics",),
                       persistent={"download.amass_remote.download_dir": "data/downloads/amass"})


def test_the_repository_settings_pass():
    params = real_params()
    check_output_paths(params["paths"], params["paths"]["cache"], REPO_ROOT, in_place=("metrics",),
                       persistent={"download.amass_remote.download_dir":
                                   params["download"]["amass_remote"]["download_dir"],
                                   "download.assets.cache_dir": params["download"]["assets"]["cache_dir"]})


@pytest.mark.parametrize("key, value, words", [
    ("texts", "{outside}", "outside the workspace"),          # an existing folder outside the repo
    ("texts", "../elsewhere", "outside the workspace"),
    ("assets", "data/cache", "persistent folder of cache"),   # would wipe the LLM/text cache
    ("assets", "data", "persistent folder of cache"),          # contains the cache
    ("assets", "data/cache/llm", "persistent folder of cache"),
    ("assets", "prompts", "git-tracked file prompts/study.yaml"),
    ("poses", ".", "workspace root"),
    ("poses", "", "not a folder path"),
    ("poses", "data/texts/poses", "and paths.texts (data/texts) overlap"),  # inside another output
    ("texts", "data/raw", "paths.amass (data/raw/amass) and"),             # holds another output
    ("poses", ".git/poses", "overlaps .git/"),
    ("poses", "data/downloads", "download.amass_remote.download_dir"),
    ("metrics", "data/poses", "paths.poses (data/poses) and paths.metrics"),
])
def test_dangerous_output_locations_are_refused_naming_the_key(workspace, tmp_path, key, value, words):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    with pytest.raises(DataError) as err:
        check(workspace, **{key: value.format(outside=outside)})
    message = str(err.value)
    assert f"paths.{key}" in message and words in message and "\n" not in message
    assert (outside / "precious.txt").read_text() == "keep me"


def test_a_symlink_out_of_the_workspace_is_seen_through(workspace, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (workspace / "data" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="outside the workspace"):
        check(workspace, texts="data/link/texts")


def test_stale_temporaries_of_a_killed_writer_are_removed_live_ones_kept(tmp_path):
    out = tmp_path / "data" / "poses"
    out.mkdir(parents=True)
    (out / "old.npy").write_text("previous")
    legacy = tmp_path / "data" / ".poses.k2j3h4_x.tmp"         # the naming of earlier versions
    dead = tmp_path / "data" / ".poses.999999999-abcd.tmp"      # a pid that cannot exist
    dead_old = tmp_path / "data" / ".poses.999999999.old"
    live = tmp_path / "data" / f".poses.{os.getpid()}-live.tmp"  # another writer that is still running
    other = tmp_path / "data" / ".features.999999999-abcd.tmp"  # another output's temporaries: not ours
    dotted = tmp_path / "data" / f".poses.b.{os.getpid()}-live.tmp"  # output "poses.b" of a live writer
    legacy_old = tmp_path / "data" / ".poses.old"
    for folder in (legacy, dead, dead_old, live, other, dotted, legacy_old):
        folder.mkdir()
        (folder / "x").write_text("partial")
    assert sorted(p.name for p in clean_stale_temps(out)) == sorted([legacy.name, dead.name, dead_old.name,
                                                                     legacy_old.name])
    assert live.exists() and other.exists() and dotted.exists() and (out / "old.npy").exists()
    dotted.rename(tmp_path / "data" / ".poses.b.999999999-gone.tmp")
    live.rename(tmp_path / "data" / ".poses.999999998-live.tmp")
    with atomic_dir(out) as tmp:  # the next run cleans up before it starts
        (tmp / "new.npy").write_text("new")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        ".features.999999999-abcd.tmp", ".poses.b.999999999-gone.tmp", "poses"]
    assert [p.name for p in out.iterdir()] == ["new.npy"]


def test_a_failed_writer_leaves_the_previous_output(tmp_path):
    out = tmp_path / "raw" / "amass"
    with atomic_dir(out) as tmp:
        (tmp / "a.npz").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "a.npz").write_text("half")
            raise RuntimeError("download failed")
    assert (out / "a.npz").read_text() == "v1"
    assert sorted(p.name for p in out.parent.iterdir()) == ["amass"]


def test_a_failed_download_stage_keeps_every_previous_output(tmp_path, monkeypatch):
    from motion.data.download import sources

    amass, annotations = tmp_path / "raw" / "amass", tmp_path / "raw" / "annotations"
    sources.make_synthetic(4, 0, amass, annotations)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    def broken(*args, **kwargs):
        raise DataError("synthetic", "generator failed")

    monkeypatch.setattr("motion.data.synthetic.generate_dataset", broken)
    with pytest.raises(DataError):
        sources.make_synthetic(4, 0, amass, annotations)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


HOLDER = textwrap.dedent("""
    import sys, time
    from motion.core.workspace import workspace_lock
    with workspace_lock(sys.argv[1], "poses", wait_s=0):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(root: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), str(seconds)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_refuses_with_a_message_naming_the_holder(tmp_path):
    proc = _hold(tmp_path, 30)
    try:
        with pytest.raises(WorkspaceBusy) as err:
            with workspace_lock(tmp_path, "features", wait_s=0):
                pass
        assert f"pid {proc.pid} (poses)" in str(err.value) and "\n" not in str(err.value)
    finally:
        proc.kill()
        proc.wait()
    with workspace_lock(tmp_path, "features", wait_s=0):  # a killed holder leaves no stale lock
        pass


def test_a_second_writer_waits_for_the_first(tmp_path):
    proc = _hold(tmp_path, 1.0)
    start = time.monotonic()
    with workspace_lock(tmp_path, "features", wait_s=20):
        waited = time.monotonic() - start
    proc.wait()
    assert 0.3 < waited < 15


def test_output_locks_serialise_writers_of_one_output_only(tmp_path):
    with output_lock(tmp_path / "data" / "poses", "poses", wait_s=0):
        with output_lock(tmp_path / "data" / "features", "features", wait_s=0):  # another output: no wait
            pass
        with pytest.raises(WorkspaceBusy, match=r"poses: in use by pid \d+ \(poses\)"):
            with output_lock(tmp_path / "data" / "poses", "poses", wait_s=0.3):
                pass
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".features.lock", ".poses.lock"]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (the stages' output locks aside: they name the last writer)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


def test_a_failed_dvc_repro_keeps_the_previous_outputs_of_the_stage(tmp_path):
    """DVC deletes a stage's outputs before running it unless they are ``persist``: the data stages' are, and
    the stage replaces them atomically, so a failing `dvc repro download` leaves data/raw as it was."""
    from tests.support.workspace import env_with_venv, make_workspace

    root = make_workspace(tmp_path / "ws")
    env = env_with_venv()
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "repro", "download"], cwd=root, env=env, check=True, capture_output=True)
    before = _tree(root / "data" / "raw")
    assert any(name.startswith("amass/") for name in before)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["download"].update(source="amass_local", humanml3d_dir=str(tmp_path / "missing"))
    params["download"]["amass_local"]["archive_dir"] = str(tmp_path / "missing")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = subprocess.run([*dvc, "repro", "download"], cwd=root, env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "download: " in failed.stderr and "missing" in failed.stderr
    assert _tree(root / "data" / "raw") == before
