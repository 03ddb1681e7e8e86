"""Concurrency faults: params.yaml edited while a stage runs, a killed ``dvc`` leaving its stage running,
two writers of one output (stages.entry, motion.core.process)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from motion.core.process import is_wrapper_shell, read_process
from stages.entry import declared_outputs, secret_values, stage_main
from stages.settings import load_settings
from tests.support.workspace import REPO_ROOT, env_with_venv


@pytest.fixture
def params_dir(tmp_path: Path, monkeypatch) -> Path:
    """A folder holding this project's params.yaml and dvc.yaml, as the working folder."""
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LGTM_PARAMS", raising=False)
    return tmp_path


def _edit(path: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load(path.read_text())
    params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_declared_param_edited_while_the_stage_runs_fails_the_stage_naming_the_key(params_dir):
    def body(settings):
        _edit(params_dir / "params.yaml", "features", "feet_threshold", 0.5)  # the user edits mid-run
        return "done"

    with pytest.raises(SystemExit) as exit_:
        stage_main("features", body)
    message = str(exit_.value)
    assert message.startswith("features: ") and "\n" not in message
    assert "features.feet_threshold changed while features ran" in message and "rerun features" in message


def test_an_undeclared_param_edited_mid_run_does_not_fail_the_stage(params_dir):
    def body(settings):
        _edit(params_dir / "params.yaml", "evaluate", "batch_size", 3)  # features does not read evaluate
        return "done"

    assert stage_main("features", body) == "done"


def test_a_params_file_broken_mid_run_fails_the_stage(params_dir):
    def body(settings):
        (params_dir / "params.yaml").write_text("features: [\n")

    with pytest.raises(SystemExit, match=r"^features: params.yaml: changed while features ran and no longer"):
        stage_main("features", body)


def test_expected_errors_in_the_body_are_one_line_with_secrets_redacted(params_dir, monkeypatch):
    from motion.core.errors import DataError

    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")

    def body(settings):
        raise DataError("reply.json", "the endpoint said: bad key sk-very-secret-value", "check the key")

    with pytest.raises(SystemExit) as exit_:
        stage_main("split_texts", body)
    assert "sk-very-secret-value" not in str(exit_.value) and "***" in str(exit_.value)


def test_secret_values_come_from_the_env_vars_the_settings_name(params_dir, monkeypatch):
    monkeypatch.setenv("AMASS_PASSWORD", "hunter2-long")
    monkeypatch.delenv("AMASS_TOKEN", raising=False)
    assert "hunter2-long" in secret_values(load_settings())


def test_declared_outputs_resolve_the_dvc_yaml_variables(params_dir):
    settings = load_settings()
    assert declared_outputs("poses", settings, params_dir / "dvc.yaml") == [Path(settings.paths.poses)]
    assert declared_outputs("train_tmr@head", settings, params_dir / "dvc.yaml") == [
        Path(settings.paths.tmr) / "head", Path(settings.paths.evaluator) / "head"]
    assert declared_outputs("train_lgtm", settings, params_dir / "dvc.yaml") == [Path(settings.paths.lgtm)]


def test_a_second_writer_of_a_stage_output_is_refused_while_the_first_runs(params_dir):
    from motion.core.workspace import output_lock

    settings = load_settings()
    with output_lock(Path(settings.paths.poses), "stage poses", wait_s=0):
        with pytest.raises(SystemExit, match=r"^poses: .*poses.lock: stage poses: in use by pid \d+"):
            stage_main("poses", lambda s: pytest.fail("the body must not run"))


# ----------------------------------------------------------------------------- no orphan stage

WATCHED = textwrap.dedent("""
    import os, sys, time
    from motion.core.process import stop_with_driver
    sys.stderr = open(sys.argv[1] + ".log", "w", buffering=1)  # the watcher's message, for a failing assertion
    stop_with_driver(poll_s=0.1, grace_s=5)
    try:  # the pid file appears inside the try: an interrupt right after it is still handled
        open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])  # whole, never read half-written
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        open(sys.argv[1] + ".interrupted", "w").write("yes")
        raise
""")


def _gone(pid: int) -> bool:
    info = read_process(pid)
    if info is None:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _kill_and_wait_for_the_end_of(parent: subprocess.Popen, pid_file: Path, seconds: float, message: str) -> None:
    """Wait for the child that writes its pid to ``pid_file``, SIGKILL ``parent``, then wait for the child to end."""
    _wait_for(pid_file)
    child = int(pid_file.read_text())
    assert not _gone(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + seconds
    while not _gone(child):
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


@needs_proc
def test_wrapper_shells_are_skipped_when_finding_the_driver(tmp_path):
    """python (the driver) -> sh -c -> python: the inner process's driver is the outer python, not sh."""
    probe = "from motion.core.process import find_driver; print(find_driver().pid)"
    inner = f"{sys.executable} -c '{probe}'"
    outer = f"import os, subprocess; print(os.getpid(), flush=True); subprocess.run({['sh', '-c', inner]!r})"
    out = subprocess.run([sys.executable, "-c", outer], capture_output=True, text=True, cwd=REPO_ROOT,
                         env=env_with_venv(), check=True)
    outer_pid, driver = map(int, out.stdout.split())
    assert driver == outer_pid
    assert is_wrapper_shell(read_process(os.getpid())) is False


@needs_proc
def test_killing_dvc_stops_its_stage(tmp_path):
    """SIGKILL to `dvc repro` (no chance to clean up) still ends the stage it started, through the shell, with
    its cleanup, even when it was started with SIGINT ignored (a background job of a script, or a test run)."""
    (tmp_path / "watched.py").write_text(WATCHED)
    (tmp_path / "dvc.yaml").write_text(textwrap.dedent(f"""
        stages:
          long:
            cmd: {sys.executable} watched.py {tmp_path / 'pid'}
            deps: [watched.py]
            outs: [never.txt]
    """))
    env = {**env_with_venv(), "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], cwd=tmp_path, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=tmp_path, check=True,
                   env=env)
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731 - as `dvc repro &` in a script
    dvc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "long"], cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                           preexec_fn=ignore_sigint)
    try:
        _kill_and_wait_for_the_end_of(dvc, tmp_path / "pid", 20, "the stage outlived dvc")
        log = (tmp_path / "pid.log").read_text() if (tmp_path / "pid.log").exists() else "(no log)"
        assert (tmp_path / "pid.interrupted").exists(), log  # stopped as by Ctrl-C: its cleanup ran
    finally:
        try:
            os.killpg(dvc.pid, signal.SIGKILL)  # the orphaned `sh -c` wrapper, if still there
        except ProcessLookupError:
            pass


POOLED = textwrap.dedent("""
    import os, sys, time
    from motion.core.process import side_by_side

    def work(path):
        open(path, "w").write(str(os.getpid()))
        while True:
            time.sleep(0.05)

    if __name__ == "__main__":
        with side_by_side(1) as pool:
            pool.submit(work, sys.argv[1]).result()
""")


@needs_proc
def test_killing_a_stage_stops_its_side_by_side_workers(tmp_path):
    """SIGKILL to a stage that trains runs side by side still ends its worker processes."""
    (tmp_path / "pooled.py").write_text(POOLED)
    env = {**env_with_venv(), "PYTHONPATH": str(REPO_ROOT)}
    stage = subprocess.Popen([sys.executable, "pooled.py", str(tmp_path / "pid")], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # the worker waits out stop_with_driver's grace period (30 s) on its dead pool queue
        _kill_and_wait_for_the_end_of(stage, tmp_path / "pid", 45, "the worker outlived its stage")
    finally:
        try:
            os.killpg(stage.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
