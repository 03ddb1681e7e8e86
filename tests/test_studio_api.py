"""The studio's HTTP API: the bounded device queue, input errors, downloads and path handling, the CLI."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from motion.core.parts import PART_NAMES
from tests.support.params import write_params
from tests.support.studio import patch_encoder, serve_workspace, shared_workspace
from tools.studio.engine import Engine, GenerationSettings, SampleResult, SplitResult
from tools.studio.jobs import Busy, DeviceWorker, user_message
from tools.studio.server import Studio, make_server, safe_child

CAPTION = "a person waves the right hand"


def call(base: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """(status, decoded JSON or bytes) of a GET (body None) or POST."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            status, payload, ctype = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        status, payload, ctype = err.code, err.read(), err.headers["Content-Type"]
    return status, json.loads(payload) if ctype and ctype.startswith("application/json") else payload


def wait_job(base: str, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    end = time.time() + timeout
    while time.time() < end:
        _, job = call(base, f"/api/jobs/{job_id}")
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("job did not finish")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Studio]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_encoder(monkeypatch)
        params = shared_workspace(tmp_path_factory)
        with serve_workspace(params, tmp_path_factory.mktemp("api_out"), video=False) as (base, studio):
            yield base, studio


# ----------------------------------------------------------------------------- the queue

class BlockingEngine:
    """An engine whose generations wait for a release, recording how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.splitter = "rules"

    def split(self, caption: str, backend: str | None = None) -> SplitResult:
        return SplitResult({p: caption for p in PART_NAMES}, "none")

    def describe(self) -> dict[str, Any]:
        return {"models": [{"name": "fake", "window": 40, "guidance": False}], "default_model": "fake",
                "samplers": ["ddim"], "defaults": {"sampler": "ddim", "steps": 3, "guidance_scale": 1.0},
                "splitter": "rules", "splitters": ["rules"], "encoders": ["whole_body"], "search": False,
                "skeleton": {}}

    def generate(self, settings: GenerationSettings, out_dir: Path, on_step: Any, on_sample: Any,
                 video: bool = True) -> list[SampleResult]:
        for step in range(settings.steps):
            on_step(step + 1, settings.steps)
        assert self.release.wait(30)
        return []


def test_one_job_at_a_time_and_a_full_queue_says_busy(tmp_path: Path) -> None:
    engine = BlockingEngine()
    studio = Studio(engine, tmp_path, queue_capacity=1, reports={})  # type: ignore[arg-type]
    server = make_server(studio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = {"caption": CAPTION, "frames": 20}
        status, first = call(base, "/api/generate", body)
        assert status == 202 and first["status"] in ("queued", "running")
        end = time.time() + 10
        while studio.worker.get(first["id"]).status != "running" and time.time() < end:
            time.sleep(0.01)
        status, second = call(base, "/api/generate", body)  # waits in the one queue slot
        assert status == 202
        status, third = call(base, "/api/generate", body)
        assert status == 503 and third["error"].startswith("busy, retry")
        assert len(list(tmp_path.iterdir())) == 2  # the refused request left no folder behind
        assert call(base, f"/api/jobs/{second['id']}")[1]["status"] == "queued"
        assert call(base, f"/api/jobs/{first['id']}")[1]["step"] == 3
        engine.release.set()
        assert wait_job(base, first["id"])["status"] == "done" and wait_job(base, second["id"])["status"] == "done"
        assert studio.worker.max_running == 1
        assert [g["status"] for g in call(base, "/api/gallery")[1]] == ["done", "done"]
    finally:
        engine.release.set()
        server.shutdown()
        server.server_close()


def test_worker_survives_failures_and_hides_internal_errors() -> None:
    worker = DeviceWorker(capacity=2)

    def broken(job: Any) -> None:
        raise RuntimeError("secret internal detail")

    bad = worker.submit("generate", broken)
    user = worker.submit("generate", lambda job: int("not a number"))
    assert bad.finished.wait(5) and user.finished.wait(5)
    assert bad.status == "failed" and "secret" not in bad.error and bad.error.startswith("internal error")
    assert user.status == "failed" and "invalid literal" in user.error
    good = worker.submit("generate", lambda job: 42)
    assert good.finished.wait(5) and good.result == 42
    with pytest.raises(ValueError):
        DeviceWorker(capacity=0)
    assert user_message(KeyError("no such part")) == "no such part"


def test_full_worker_raises_busy() -> None:
    gate = threading.Event()
    worker = DeviceWorker(capacity=1)
    worker.submit("generate", lambda job: gate.wait(10))
    time.sleep(0.2)
    worker.submit("generate", lambda job: None)
    with pytest.raises(Busy, match="busy, retry"):
        worker.submit("search", lambda job: None)
    gate.set()


# ----------------------------------------------------------------------------- generation and errors

def test_generate_through_the_api(served: tuple[str, Studio], tmp_path: Path) -> None:
    from tests.oracles.bvh_reader import read_bvh

    base, studio = served
    status, info = call(base, "/api/info")
    assert status == 200 and info["models"][0]["window"] == 40 and info["search"] is True
    assert info["skeleton"]["parents"][0] == -1 and len(info["skeleton"]["part_of"]) == 22
    assert [r["name"] for r in info["reports"]] == ["evaluate"]
    status, split = call(base, "/api/split", {"caption": CAPTION})
    assert status == 200 and split["backend"] == "rules" and "wave" in split["parts"]["right_arm"]
    parts = split["parts"] | {"left_leg": ""}
    status, job = call(base, "/api/generate", {"caption": CAPTION, "parts": parts, "seconds": 1.5,
                                               "sampler": "ddim", "steps": 4, "seed": 7, "samples": 2})
    assert status == 202
    job = wait_job(base, job["id"])
    assert job["status"] == "done" and job["step"] == job["total"] == 8
    assert [s["frames"] for s in job["samples"]] == [30, 30]
    files = job["samples"][1]["files"]
    assert sorted(files) == ["features.npy", "joints.npy", "motion.bvh", "parts.json"]  # --no-video studio
    status, saved = call(base, files["parts.json"])
    assert status == 200 and saved["seed"] == 8 and saved["parts"]["left_leg"] == "does nothing"
    status, bvh = call(base, files["motion.bvh"])
    (tmp_path / "m.bvh").write_bytes(bvh)
    assert read_bvh(tmp_path / "m.bvh")[3].shape == (30, 22, 3)
    status, motion = call(base, job["samples"][0]["motion"])
    joints = np.load(studio.out_root / job["generation"] / "sample_0" / "joints.npy")
    assert motion["frames"] == 30 and np.allclose(motion["joints"], joints, atol=1e-3)
    status, found = call(base, "/api/search", {"text": "someone kicks with the left leg", "encoder": "left_leg",
                                               "k": 3})
    assert status == 200 and len(found["results"]) == 3
    assert len({r["motion_id"] for r in found["results"]}) == 3 and all(r["part_text"] for r in found["results"])
    status, played = call(base, f"/api/dataset/{found['results'][0]['seg_id']}")
    assert status == 200 and np.asarray(played["joints"]).shape[1:] == (22, 3)


BAD_REQUESTS = [
    ({"caption": "   "}, "caption is empty"),
    ({"caption": "x" * 301}, "limit is 300"),
    ({"caption": CAPTION, "frames": 41}, "outside 1..40"),
    ({"caption": CAPTION, "frames": 0}, "outside 1..40"),
    ({"caption": CAPTION, "seconds": 2.5}, "outside 0.05..2"),
    ({"caption": CAPTION, "frames": "ten"}, "must be a number"),
    ({"caption": CAPTION, "frames": 12.5}, "whole number"),
    ({"caption": CAPTION, "sampler": "euler"}, "unknown sampler 'euler'"),
    ({"caption": CAPTION, "steps": 0}, "number of steps 0 is outside 1..1000"),
    ({"caption": CAPTION, "samples": 9}, "outside 1..4"),
    ({"caption": CAPTION, "guidance_scale": "nan"}, "guidance scale"),
    ({"caption": CAPTION, "parts": {"torso": "y" * 201}}, "torso text is 201 characters long; the limit is 200"),
    ({"caption": CAPTION, "parts": {"tail": "wags"}}, "unknown body part 'tail'"),
    ({"caption": CAPTION, "parts": "head"}, "must be an object"),
    ({"caption": CAPTION, "model": "nope"}, "unknown model 'nope'"),
    ({"caption": 5}, "caption must be text"),
    ([1, 2], "must be a JSON object"),
]


@pytest.mark.parametrize("body,message", BAD_REQUESTS)
def test_bad_input_gets_one_clear_line(served: tuple[str, Studio], body: Any, message: str) -> None:
    status, answer = call(served[0], "/api/generate", body)
    assert status == 400 and message in answer["error"], answer
    assert "Traceback" not in answer["error"] and "\n" not in answer["error"]


def test_other_bad_requests(served: tuple[str, Studio]) -> None:
    base, _ = served
    assert call(base, "/api/generate", raw=b"{not json")[1]["error"] == "the request body is not valid JSON"
    status, answer = call(base, "/api/generate", raw=b" " * (70 * 1024))
    assert status == 400 and "limit is 65536" in answer["error"]
    assert "unknown splitter" in call(base, "/api/split", {"caption": CAPTION, "splitter": "gpt"})[1]["error"]
    assert "unknown encoder" in call(base, "/api/search", {"text": "kick", "encoder": "tail"})[1]["error"]
    assert "search text is empty" in call(base, "/api/search", {"text": ""})[1]["error"]
    assert call(base, "/api/jobs/nope")[0] == 404 and call(base, "/api/nothing")[0] == 404
    assert call(base, "/api/nothing", {})[0] == 404


def test_guidance_needs_a_model_trained_with_text_dropout(served: tuple[str, Studio]) -> None:
    from tools.studio.forms import generation_settings
    from tools.studio.jobs import UserError

    info = served[1].info()
    assert generation_settings({"caption": CAPTION, "guidance_scale": 2.5}, info).guidance_scale == 2.5
    without = info | {"models": [m | {"guidance": False} for m in info["models"]]}
    with pytest.raises(UserError, match="guidance needs scale 1"):
        generation_settings({"caption": CAPTION, "guidance_scale": 2.5}, without)


def test_llm_splitter_down_falls_back_to_the_rules(served: tuple[str, Studio]) -> None:
    from dataclasses import replace

    config = served[1].engine.config
    llm = replace(config.split.llm, base_url="http://127.0.0.1:9/v1", api_key_env="NO_KEY", max_retries=3,
                  timeout_s=2)
    engine = Engine(replace(config, split=replace(config.split, backend="llm", llm=llm)))
    result = engine.split(CAPTION)
    assert result.backend == "rules" and "fell back to the rules" in result.note
    assert "wave" in result.parts["right_arm"] and set(result.parts) == set(PART_NAMES)
    none = engine.split(CAPTION, "none")
    assert set(none.parts.values()) == {CAPTION}


# ----------------------------------------------------------------------------- paths

def test_downloads_stay_inside_the_output_folder(served: tuple[str, Studio], tmp_path: Path) -> None:
    base, studio = served
    _, job = call(base, "/api/generate", {"caption": CAPTION, "frames": 10, "steps": 2})
    job = wait_job(base, job["id"])
    gid = job["generation"]
    assert call(base, f"/files/{gid}/0/motion.bvh")[0] == 200
    secret = tmp_path / "secret.txt"
    secret.write_text("not for download")
    (studio.out_root / gid / "sample_0" / "parts.json").unlink()
    (studio.out_root / gid / "sample_0" / "parts.json").symlink_to(secret)  # a link out of the folder
    for path in (f"/files/{gid}/0/parts.json", f"/files/{gid}/0/..%2f..%2fsecret.txt", f"/files/{gid}/0/../../x",
                 f"/files/{gid}/0/%2e%2e", f"/files/{gid}/..%2fsample_0/motion.bvh", f"/files/{gid}/0/other.txt",
                 "/files/g9999/0/motion.bvh", f"/files/{gid}/7/motion.bvh", "/files/..%2f..%2fetc/0/passwd",
                 f"/api/motion/{gid}/..%2f0", "/static/..%2fserver.py", "/static/server.py",
                 "/reports/evaluate/..%2f..%2fparams.yaml", "/reports/evaluate/../params.yaml",
                 "/reports/secrets/report.md", "/api/dataset/..%2f000001_0", "/api/dataset/999999_0"):
        status, answer = call(base, path)
        assert status == 404, path
        assert b"not for download" not in (answer if isinstance(answer, bytes) else json.dumps(answer).encode())
    status, report = call(base, "/reports/evaluate/report.md")
    assert status == 200 and report.startswith(b"# Evaluation")
    with urllib.request.urlopen(base + "/reports/evaluate/report.md") as response:
        assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    assert safe_child(tmp_path, "a", "..") is None and safe_child(tmp_path, "a/b") is None
    assert safe_child(tmp_path, "a", "b") == (tmp_path / "a" / "b").resolve()


def test_page_headers_forbid_other_origins(served: tuple[str, Studio]) -> None:
    with urllib.request.urlopen(served[0] + "/") as response:
        page = response.read().decode()
        csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
    assert "http" not in page.replace('lang="en"', "")  # no absolute URL: nothing from outside
    static = Path(__file__).parents[1] / "tools" / "studio" / "static"
    for name in ("studio.js", "viewer.js", "studio.css"):
        text = (static / name).read_text()
        assert "http://" not in text and "https://" not in text and "innerHTML" not in text, name


# ----------------------------------------------------------------------------- the command

def test_command_says_run_make_repro_when_models_are_missing(tmp_path: Path) -> None:
    from tools.studio.__main__ import build_parser, main

    params = write_params(tmp_path, {"paths.lgtm": str(tmp_path / "lgtm"), "paths.features": str(tmp_path / "f")})
    with pytest.raises(SystemExit, match=r"lgtm/config.json is missing: run make repro first"):
        main(["--params", str(params), "--port", "0"])
    assert build_parser().parse_args([]).host == "127.0.0.1"
    with pytest.raises(SystemExit, match="NAME=FOLDER"):
        main(["--params", str(params), "--model", "official"])


def test_model_folders_are_selectable(served: tuple[str, Studio], tmp_path: Path) -> None:
    import shutil

    from tools.studio.engine import find_models

    studio = served[1]
    lgtm = studio.engine.config.trained.lgtm
    official = tmp_path / "official" / "lgtm"
    assert "official" not in find_models(lgtm, tmp_path / "official")
    shutil.copytree(lgtm, official)
    models = find_models(lgtm, tmp_path / "official", {"mine": "x/y"})
    assert list(models) == ["pipeline", "official", "mine"] and models["official"] == official
    engine = Engine(studio.engine.config, {"pipeline": lgtm, "copy": official, "broken": tmp_path / "none"})
    info = engine.describe()
    assert [m["name"] for m in info["models"]] == ["pipeline", "copy", "broken"]
    assert info["models"][1]["window"] == 40 and "run make repro first" in info["models"][2]["error"]
    assert engine.load("copy").window == 40 and "copy" in engine._loaded and "pipeline" not in engine._loaded
    with pytest.raises(ValueError, match="unknown model"):
        engine.load("nope")


def test_other_sites_and_rebound_host_names_are_refused(served: tuple[str, Studio]) -> None:
    base = served[0]
    port = base.rsplit(":", 1)[1]
    for headers in ({"Origin": "http://evil.example"}, {"Host": f"evil.example:{port}"},
                    {"Origin": "null"}):
        request = urllib.request.Request(base + "/api/generate", data=json.dumps({"caption": CAPTION}).encode(),
                                         headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request)
        assert err.value.code == 403, headers
    same = urllib.request.Request(base + "/api/info", headers={"Origin": base, "Host": f"localhost:{port}"})
    with pytest.raises(urllib.error.HTTPError):  # Origin must match the Host the page was loaded from
        urllib.request.urlopen(same)
    ok = urllib.request.Request(base + "/api/info", headers={"Origin": f"http://localhost:{port}",
                                                               "Host": f"localhost:{port}"})
    assert urllib.request.urlopen(ok).status == 200
