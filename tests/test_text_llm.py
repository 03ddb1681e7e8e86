"""The LLM backend against a scripted chat-completions server on 127.0.0.1 (no internet)."""
from __future__ import annotations

import pytest

from motion.core.parts import PART_NAMES
from motion.core.settings import convert
from motion.data.captions import IDLE
from motion.text.cache import JsonCache
from motion.text.llm import EndpointError, LLMConfig, build_messages, llm_cache_key, split_captions_llm
from motion.text.schema import SchemaError, parse_reply
from tests.support.llm import FakeServer
from tests.support.params import settings_with


def config(url: str, **kw) -> LLMConfig:
    """The real params' LLM settings pointed at the scripted server, with short timeouts and retries."""
    changes = {"base_url": url, "model": "test-model", "api_key_env": "LGTM_TEST_KEY", "timeout_s": 0.5,
               "max_retries": 3, "backoff_s": 0.01, "concurrency": 3, **kw}
    settings = settings_with({f"split_texts.llm.{k}": v for k, v in changes.items()}, stage="split_texts")
    return convert(LLMConfig, settings.split_texts.llm)


def test_parse_reply_handles_fences_synonyms_and_rejects_bad_replies():
    out = parse_reply('Output: ```json\n{"left_hand": {"action": "Wave", "text": " waves  twice"}}\n```')
    assert out["left_arm"] == {"action": "wave", "text": "waves twice"}
    assert tuple(out) == PART_NAMES and out["head"] == IDLE
    for bad in ("no json here", '{"tail": {"action": "a", "text": "b"}}', '{"head": {"action": "nod"}}',
                '{"head": {"action": "nod", "text": "nods", "speed": 2}}', "[1, 2]", '{"head": {"action": 3'):
        with pytest.raises(SchemaError):
            parse_reply(bad)


def test_messages_end_with_the_caption():
    messages = build_messages("a person jumps")
    assert messages[0]["role"] == "system"
    assert messages[-1] == {"role": "user", "content": "Description: a person jumps"}


def test_retries_recover_from_429_500_timeouts_and_malformed_replies(tmp_path, monkeypatch):
    monkeypatch.setenv("LGTM_TEST_KEY", "secret-123")
    script = {"a": ["http429", "ok"], "b": ["http503", "http500", "ok"], "c": ["sleep", "ok"],
              "d": ["garbage", "fenced"], "e": ["unknown_key", "missing_field", "ok"], "f": ["ok"]}
    with FakeServer(script) as server:
        results, failures, counts = split_captions_llm(list("abcdeff"), config(server.url),
                                                       JsonCache(tmp_path / "c.jsonl"), progress=False)
    assert failures == {}
    assert sorted(results) == list("abcdef")
    assert all(r["left_arm"]["action"] == "wave" and r["head"] == IDLE for r in results.values())
    assert counts == {"unique": 6, "cached": 0, "requested": 6, "failed": 0}
    assert {r["auth"] for r in server.requests} == {"Bearer secret-123"}
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    assert server.requests[0]["body"]["model"] == "test-model"


def test_cache_makes_reruns_free_and_resumes_interrupted_runs(tmp_path):
    cache_path = tmp_path / "c.jsonl"
    with FakeServer({}) as server:
        split_captions_llm(["a", "b"], config(server.url), JsonCache(cache_path), progress=False)
        assert len(server.requests) == 2
        # a run killed while writing leaves a torn last line: it is ignored, not fatal
        with open(cache_path, "a") as f:
            f.write('{"key": "torn", "val')
        results, failures, counts = split_captions_llm(["a", "b", "c"], config(server.url), JsonCache(cache_path),
                                                       progress=False)
        assert [r["caption"] for r in server.requests[2:]] == ["c"]
        assert counts["cached"] == 2 and counts["requested"] == 1 and sorted(results) == ["a", "b", "c"]
        # another model or prompt is another key
        assert llm_cache_key(config(server.url), "a") != llm_cache_key(config(server.url, model="other"), "a")
    assert len(JsonCache(cache_path)) == 3


def test_failures_are_reported_not_dropped_nor_cached(tmp_path):
    with FakeServer({"bad": ["garbage"], "down": ["http500"]}) as server:
        cache = JsonCache(tmp_path / "c.jsonl")
        results, failures, counts = split_captions_llm(["ok", "bad", "down"], config(server.url, max_retries=2),
                                                       cache, progress=False)
    assert sorted(results) == ["ok"] and sorted(failures) == ["bad", "down"]
    assert "invalid reply" in failures["bad"] and "HTTP 500" in failures["down"]
    assert counts["failed"] == 2 and len(cache) == 1
    assert sum(r["caption"] == "bad" for r in server.requests) == 3  # first try + 2 retries


def test_rejected_key_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv("LGTM_TEST_KEY", raising=False)
    with FakeServer({"a": ["http401"]}) as server:
        with pytest.raises(EndpointError, match="LGTM_TEST_KEY"):
            split_captions_llm(["a"], config(server.url), JsonCache(tmp_path / "c.jsonl"), progress=False)
    assert server.requests[0]["auth"] is None  # no key in the environment: no header


def test_unreachable_endpoint_is_a_recorded_failure(tmp_path):
    with FakeServer({}) as server:
        url = server.url
    _, failures, _ = split_captions_llm(["a"], config(url, max_retries=1), JsonCache(tmp_path / "c.jsonl"),
                                        progress=False)
    assert "connection failed" in failures["a"]
