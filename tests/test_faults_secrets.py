"""Secrets: the API key never reaches an output, cache, log, exception or stderr, even from an echoing server."""
from __future__ import annotations

import logging

import pytest

from motion.core.errors import DataError, redact, run_stage
from motion.text.split import split_unique
from tests.support.hostile_llm import HostileServer
from tests.support.secrets import KEY, files_holding
from tests.support.secrets import llm_split_settings as settings


def test_redact_replaces_every_secret_longest_first():
    assert redact("Bearer abcd1234 and abcd1234", ["abcd1234", "Bearer abcd1234"]) == "*** and ***"
    assert redact("a b c", ["", "a"]) == "a b c"  # empty or tiny secrets protect nothing


def test_echoing_server_leaks_the_key_nowhere(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("LGTM_FAULT_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    captions = ["echo500 a", "echo_reply b", "echo_prose c", "ok d"]
    with HostileServer() as server:
        results, backend_of, report = split_unique(captions, settings(server.url), tmp_path / "cache", progress=False)
        assert {r["auth"] for r in server.requests} == {f"Bearer {KEY}"}  # the key was sent, and echoed back
        for caption in ("echo400 e", "echo401 f"):
            with pytest.raises(DataError) as err:
                split_unique([caption], settings(server.url), tmp_path / "cache", progress=False)
            assert KEY not in str(err.value) and "\n" not in str(err.value)
            (tmp_path / f"error-{caption.split()[0]}.txt").write_text(str(err.value))
    assert backend_of["ok d"] == "llm" and backend_of["echo_reply b"] == "rules (llm failed)"
    assert all(KEY not in str(v) for v in results.values())
    import json

    from motion.core.io import write_json

    write_json(tmp_path / "report.json", report)
    out, err = capfd.readouterr()
    (tmp_path / "stdout.txt").write_text(out)
    (tmp_path / "stderr.txt").write_text(err)
    (tmp_path / "log.txt").write_text("\n".join(r.getMessage() for r in caplog.records))
    assert (tmp_path / "cache" / "split_texts" / "llm.jsonl").is_file()  # the good reply was cached
    assert files_holding(tmp_path, KEY) == []
    assert files_holding(tmp_path, KEY[:12]) == []
    assert json.loads((tmp_path / "report.json").read_text())["llm"]["failed"] == 3


def test_run_stage_redacts_the_message(capsys):
    def fail() -> None:
        raise DataError("http://x", f"server said {KEY}")

    with pytest.raises(SystemExit) as exit_:
        run_stage("split_texts", fail, secrets=[KEY])
    assert KEY not in str(exit_.value.code) and "***" in str(exit_.value.code)
