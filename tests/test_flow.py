"""The Prefect flow over a small real DVC project: concurrency, skipping, and a clean `dvc status`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

STAGE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    name, out = sys.argv[1], sys.argv[2]
    start = time.time()
    time.sleep(float(os.environ.get("STAGE_SLEEP", "8")))
    ins = [open(p).read() for p in sys.argv[3:]]
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump({"name": name, "start": start, "end": time.time(), "inputs": ins}, f)
    """
)


def _run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def dvc_project(tmp_path: Path) -> Path:
    """A git+DVC workspace with two independent stages and one that joins them."""
    (tmp_path / "stage.py").write_text(STAGE_SCRIPT)
    (tmp_path / "dvc.yaml").write_text(textwrap.dedent(
        """
        stages:
          left:
            cmd: python stage.py left out/left.json
            deps: [stage.py]
            outs: [out/left.json]
          right:
            cmd: python stage.py right out/right.json
            deps: [stage.py]
            outs: [out/right.json]
            meta: {gpu: true}
          join:
            cmd: python stage.py join out/join.json out/left.json out/right.json
            deps: [stage.py, out/left.json, out/right.json]
            outs: [out/join.json]
        """
    ))
    _run(["git", "init", "-q"], tmp_path)
    _run([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], tmp_path)
    return tmp_path


@pytest.fixture
def prefect_harness(tmp_path_factory, monkeypatch):
    """An isolated Prefect home and a throwaway local API."""
    home = tmp_path_factory.mktemp("prefect_home")
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_flow_runs_independent_stages_concurrently_and_leaves_dvc_clean(dvc_project, prefect_harness, monkeypatch):
    from pipelines.dag import load_dag
    from pipelines.flow import rebuild

    nodes = {n.name: n for n in load_dag(dvc_project)}
    assert nodes["join"].upstream == ("left", "right") and nodes["right"].gpu

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    results = rebuild(workspace=str(dvc_project), gpu_slots=1)
    assert results == {"left": "ran", "right": "ran", "join": "ran"}

    left = json.loads((dvc_project / "out/left.json").read_text())
    right = json.loads((dvc_project / "out/right.json").read_text())
    join = json.loads((dvc_project / "out/join.json").read_text())
    assert left["start"] < right["end"] and right["start"] < left["end"], "independent stages did not overlap"
    assert join["start"] >= max(left["end"], right["end"])

    status = _run([sys.executable, "-m", "dvc", "status", "--json"], dvc_project)
    assert json.loads(status) == {}
    assert "join" in (dvc_project / "dvc.lock").read_text()

    again = rebuild(workspace=str(dvc_project), gpu_slots=1)
    assert again == {"left": "skipped", "right": "skipped", "join": "skipped"}


def test_failing_stage_fails_its_task_and_keeps_dvc_consistent(dvc_project, prefect_harness, monkeypatch):
    from pipelines.flow import rebuild

    monkeypatch.setenv("STAGE_SLEEP", "0")
    (dvc_project / "fail.py").write_text("raise SystemExit('right.npz: file is corrupt -- fix: download it again')\n")
    (dvc_project / "dvc.yaml").write_text((dvc_project / "dvc.yaml").read_text().replace(
        "python stage.py right out/right.json", "python fail.py"))
    with pytest.raises(Exception, match="right failed.*right.npz: file is corrupt"):
        rebuild(workspace=str(dvc_project), gpu_slots=1)
    status = json.loads(_run([sys.executable, "-m", "dvc", "status", "--json"], dvc_project))
    assert "right" in status and "left" not in status  # left ran and was committed; right is still due


def test_a_stage_whose_params_changed_while_it_ran_is_not_recorded(dvc_project, prefect_harness, monkeypatch):
    from pipelines.flow import rebuild

    monkeypatch.setenv("STAGE_SLEEP", "0")
    (dvc_project / "params.yaml").write_text("x: 1\n")
    (dvc_project / "edit.py").write_text(
        "import pathlib, sys\n"
        "seen = pathlib.Path('params.yaml').read_text().split()[-1]\n"
        "with open('runs.txt', 'a') as runs: runs.write(seen + '\\n')\n"
        "pathlib.Path('params.yaml').write_text('x: 2\\n')  # a user edits params.yaml while the stage runs\n"
        "pathlib.Path(sys.argv[1]).parent.mkdir(exist_ok=True)\n"
        "pathlib.Path(sys.argv[1]).write_text('{}')\n")
    (dvc_project / "dvc.yaml").write_text((dvc_project / "dvc.yaml").read_text().replace(
        "cmd: python stage.py left out/left.json\n    deps: [stage.py]",
        "cmd: python edit.py out/left.json\n    deps: [edit.py]\n    params: [x]"))
    results = rebuild(workspace=str(dvc_project), targets=["left"], gpu_slots=1)
    # The first attempt was refused (params changed under it); the task's retry ran on the new value
    # and recorded that: dvc.lock never pairs x: 1 outputs with x: 2.
    assert results == {"left": "ran"}
    assert (dvc_project / "runs.txt").read_text().split() == ["1", "2"]
    lock = yaml.safe_load((dvc_project / "dvc.lock").read_text())
    assert lock["stages"]["left"]["params"]["params.yaml"]["x"] == 2
    assert "left" not in json.loads(_run([sys.executable, "-m", "dvc", "status", "--json"], dvc_project))


def test_a_second_flow_in_one_workspace_is_refused_naming_the_first(dvc_project, prefect_harness):
    from motion.core.workspace import WorkspaceBusy, workspace_lock
    from pipelines.flow import rebuild

    with workspace_lock(dvc_project, "prefect flow lgtm-pipeline", wait_s=0):
        with pytest.raises(WorkspaceBusy, match=r"in use by pid \d+ \(prefect flow lgtm-pipeline\)"):
            rebuild(workspace=str(dvc_project), gpu_slots=1)
    assert not (dvc_project / "out").exists()  # the refused flow ran nothing


LEAKY_STAGE = textwrap.dedent(
    """
    import json, os, sys
    from motion.core.errors import run_stage
    from motion.core.settings import build
    from motion.text.split import SplitSettings, split_unique

    cfg = json.load(open("split.json"))
    settings = build(SplitSettings, cfg["settings"])

    def body():
        results, backend_of, report = split_unique(cfg["captions"], settings, "cache", progress=False)
        print("report", json.dumps(report), "results", results, flush=True)
        split_unique(["echo401 f"], settings, "cache", progress=False)  # the endpoint refuses: a DataError

    run_stage("split_texts", body, secrets=[os.environ["LGTM_FAULT_KEY"]])
    """
)


def test_an_echoing_llm_endpoint_leaks_the_key_nowhere_in_the_prefect_database(dvc_project, prefect_harness,
                                                                                monkeypatch, tmp_path_factory):
    """The flow logs every stage line and keeps failure messages in its database: none may hold the key."""
    import os

    from pipelines.flow import rebuild
    from tests.support.hostile_llm import HostileServer
    from tests.support.secrets import KEY, files_holding
    from tests.support.secrets import llm_split_settings as settings

    monkeypatch.setenv("LGTM_FAULT_KEY", KEY)
    (dvc_project / "leaky.py").write_text(LEAKY_STAGE)
    (dvc_project / "dvc.yaml").write_text(textwrap.dedent(
        """
        stages:
          split:
            cmd: python leaky.py
            deps: [leaky.py]
            outs: [out/never.json]
        """))
    with HostileServer() as server:
        split = settings(server.url)
        from motion.core.settings import to_dict

        (dvc_project / "split.json").write_text(json.dumps({
            "settings": to_dict(split), "captions": ["echo500 a", "echo_reply b", "echo_prose c", "ok d"]}))
        with pytest.raises(Exception, match=r"split failed .*\*\*\*|split failed") as err:
            rebuild(workspace=str(dvc_project), gpu_slots=1)
        assert {r["auth"] for r in server.requests} == {f"Bearer {KEY}"}  # sent, and echoed back by the server
    assert KEY not in str(err.value)
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url.get_secret_value()
    database = Path(url.split(":///", 1)[1])  # the harness's throwaway SQLite database (logs, task states)
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))  # + -wal, -shm
    assert b"the endpoint refused the API key" in stored  # the failure message and logs are in there
    for folder in (database.parent, Path(os.environ["PREFECT_HOME"]), dvc_project):
        assert files_holding(folder, KEY) == [] and files_holding(folder, KEY[:12]) == [], folder
