"""End to end on a tiny copy of the project: `dvc repro`, the Prefect server and UI API, and a sweep."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.workspace import dvc, env_with_venv, make_workspace

pytestmark = pytest.mark.slow

DATA_TARGET = "features"  # the data stages: download -> poses -> features


def test_repro_builds_data_stages_then_is_a_noop(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    dvc("repro", DATA_TARGET, cwd=ws)
    assert (ws / "data/features/Mean.npy").is_file()
    assert json.loads(dvc("status", "--json", DATA_TARGET, cwd=ws)) == {}
    again = dvc("repro", DATA_TARGET, cwd=ws)
    assert "up to date" in again.lower() or "didn't change" in again.lower(), again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, body: dict | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_flow_against_a_real_prefect_server(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = env_with_venv()
    env.update(PREFECT_HOME=str(tmp_path / "prefect_home"), PREFECT_API_URL=api,
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            try:
                if _api(f"{api}/health") is True:
                    break
            except OSError:
                pass
            assert server.poll() is None, "prefect server exited"
            assert time.time() < deadline, "prefect server did not start in 180 s"
            time.sleep(1)
        command = [sys.executable, "-m", "pipelines.flow", "--workspace", str(ws), "--target", DATA_TARGET]
        result = subprocess.run(command, cwd=ws, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        flow_runs = _api(f"{api}/flow_runs/filter", {})
        assert len(flow_runs) == 1 and flow_runs[0]["state_type"] == "COMPLETED"
        task_runs = _api(f"{api}/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_runs[0]["id"]]}}})
        states = {t["name"]: t["state_type"] for t in task_runs}
        assert states == {"download": "COMPLETED", "poses": "COMPLETED", "features": "COMPLETED"}, states
        assert json.loads(dvc("status", "--json", DATA_TARGET, cwd=ws)) == {}
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def test_two_point_sweep_with_the_dvc_queue(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    for n in (12, 20):
        dvc("exp", "run", "--queue", "-S", f"download.synthetic.num_motions={n}", DATA_TARGET, cwd=ws)
    dvc("queue", "start", "-j", "1", cwd=ws)
    deadline = time.time() + 900
    while True:
        status = dvc("queue", "status", cwd=ws)
        if "Queued" not in status and "Running" not in status:
            break
        assert time.time() < deadline, status
        time.sleep(5)
    assert status.count("Success") == 2, status
    shown = json.loads(dvc("exp", "show", "--json", cwd=ws))
    values = set()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                params = rev["data"]["params"]["params.yaml"]["data"]
                metrics = rev["data"]["metrics"]["metrics/data.json"]["data"]
                values.add((params["download"]["synthetic"]["num_motions"], metrics["clips"]))
    assert {v[0] for v in values} == {12, 20}, values
    assert len({v[1] for v in values}) == 2, values


TINY_TRAINING = {
    "tmr.train.epochs": 2,
    "lgtm.train.max_steps": 20,
    "lgtm.train.val_every": 10,
    "lgtm.train.checkpoint_every": 10,
    "lgtm.runs": {"lgtm": {"variant": "lgtm", "seed": 0}, "lgtm_seed1": {"variant": "lgtm", "seed": 1},
                  "baseline": {"variant": "baseline", "seed": 0}},
    "evaluate.variants": ["lgtm", "baseline"],
    "evaluate.replications": 2,
    "evaluate.curve.items": 8,
    "evaluate.curve.reference": "ddim_20",
    "evaluate.curve.points": [{"name": "ddim_20", "sampler": "ddim", "steps": 20},
                              {"name": "dpmsolver_5", "sampler": "dpmsolver++", "steps": 5}],
    "prompt_study.samples": 2,
}


def test_whole_pipeline_on_a_tiny_config(tmp_path):
    ws = make_workspace(tmp_path / "ws", overrides=TINY_TRAINING)
    dvc("repro", cwd=ws, timeout=1800)
    assert json.loads(dvc("status", "--json", cwd=ws)) == {}
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=ws))
    files = next(iter(metrics.values()))["data"]
    names = {Path(f).name for f in files}
    assert {"data.json", "tmr.json", "lgtm.json", "evaluate.json", "prompt_study.json"} <= names, names
    evaluate = json.loads((ws / "metrics/evaluate.json").read_text())
    assert {"real", "lgtm", "baseline", "tmr", "curve"} <= set(evaluate)
    results = json.loads((ws / "data/evaluate/results.json").read_text())
    assert list(results["spaces"]) == ["evaluator", "tmr"] and sorted(results["units"]["lgtm"]) == [
        "lgtm/r0", "lgtm/r1", "lgtm_seed1/r0", "lgtm_seed1/r1"]
    # train_tmr@<name> trains an evaluator beside every conditioner: the part metrics cover all seven encoders
    assert "head.similarity" in evaluate["lgtm"] and "right_arm.similarity" in evaluate["lgtm"]
    trained = sorted(p.name for p in (ws / "data/tmr").iterdir())
    assert sorted(p.name for p in (ws / "data/evaluator").iterdir()) == trained
    assert (ws / "data/prompt_study/report.html").is_file()
    assert list((ws / "data/prompt_study/videos").glob("*.mp4"))
    assert (ws / "data/evaluate/report.md").read_text().count("|") > 10
