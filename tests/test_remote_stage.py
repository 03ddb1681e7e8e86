"""The scale-out path: a stage run in another workspace comes back through DVC's run-cache."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pipelines.remote_stage import restore_from_run_cache, run_stage_here

pytestmark = pytest.mark.slow


def _run(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stage_run_elsewhere_is_restored_without_running(tmp_path):
    remote = tmp_path / "dvc-remote"
    main = tmp_path / "main"
    main.mkdir()
    (main / "train.py").write_text(textwrap.dedent(
        """
        import json, os, pathlib
        runs = pathlib.Path(os.environ["RUN_LOG"])
        runs.write_text(runs.read_text() + "ran\\n" if runs.exists() else "ran\\n")
        pathlib.Path("model").mkdir(exist_ok=True)
        pathlib.Path("model/weights.json").write_text(json.dumps({"w": 42}))
        """))
    (main / "dvc.yaml").write_text("stages:\n  train:\n    cmd: python train.py\n    deps: [train.py]\n"
                                   "    outs: [model]\n    meta: {gpu: true}\n")
    _run(["git", "init", "-q"], main)
    _run(["git", "config", "user.email", "t@e.st"], main)
    _run(["git", "config", "user.name", "t"], main)
    for args in (["init", "-q"], ["config", "core.analytics", "false"], ["remote", "add", "-d", "shared", str(remote)]):
        _run([sys.executable, "-m", "dvc", *args], main)
    _run(["git", "add", "-A"], main)
    _run(["git", "commit", "-qm", "project"], main)
    worker = tmp_path / "worker"
    _run(["git", "clone", "-q", str(main), str(worker)], tmp_path)
    rev = _run(["git", "rev-parse", "HEAD"], main).strip()

    run_log = tmp_path / "runs.txt"
    import os

    os.environ["RUN_LOG"] = str(run_log)
    try:
        run_stage_here("train", rev, worker)  # on the GPU machine
        assert run_log.read_text() == "ran\n"
        restore_from_run_cache("train", main)  # back home: restored, not rerun
    finally:
        del os.environ["RUN_LOG"]
    assert run_log.read_text() == "ran\n"
    assert json.loads((main / "model/weights.json").read_text()) == {"w": 42}
    status = _run([sys.executable, "-m", "dvc", "status", "--json"], main)
    assert json.loads(status) == {}
