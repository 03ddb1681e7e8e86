"""Network calls: timeout_s bounds whole requests, every reply shape is handled, degenerate replies and
corrupt cache records are never used."""
from __future__ import annotations

import json
import math
import time

import pytest

from motion.core.settings import build
from motion.text.cache import JsonCache
from motion.text.llm import (
    ChatClient,
    LLMConfig,
    RetryableError,
    llm_cache_key,
    retry_after_seconds,
    split_captions_llm,
)
from tests.support.hostile_llm import GOOD, HostileServer
from tests.support.params import real_params


def config(url: str, **kw) -> LLMConfig:
    # a generous timeout: a busy 2-core CI machine must not turn good local replies into timeouts
    return build(LLMConfig, {**real_params()["split_texts"]["llm"], "base_url": url, "model": "m",
                             "api_key_env": "", "timeout_s": 10.0, "max_retries": 0, "backoff_s": 0.01,
                             "max_backoff_s": 0.05, "concurrency": 1, **kw})


def ask(server: HostileServer, caption: str, **kw) -> str:
    client = ChatClient(config(server.url, **kw))
    try:
        return client.complete([{"role": "user", "content": f"Description: {caption}"}])
    finally:
        client.close()


@pytest.mark.parametrize("behaviour", ["drip", "drip_headers"])
def test_timeout_bounds_the_whole_request_against_a_drip(behaviour):
    with HostileServer() as server:
        start = time.monotonic()
        with pytest.raises(RetryableError, match="timed out after 1 s"):
            ask(server, behaviour, timeout_s=1.0)
        assert time.monotonic() - start < 6.0  # the drip would go on forever; a bound, not a speed target


def test_list_of_parts_content_is_read():
    with HostileServer() as server:
        assert json.loads(ask(server, "parts")) == GOOD


@pytest.mark.parametrize("behaviour, words", [
    ("null", "content is null"), ("number", "content is int"), ("object", "content is dict"),
    ("empty", "content is empty"), ("nested_body", "not a chat completion"), ("no_choices", "not a chat completion"),
    ("message_list", "message is list"), ("huge", "larger than"),
])
def test_odd_reply_shapes_are_retryable_errors(behaviour, words):
    with HostileServer() as server:
        with pytest.raises(RetryableError, match=words):
            ask(server, behaviour)


@pytest.mark.parametrize("value, expected", [
    ("2", 2.0), ("0", 0.0), ("-5", None), ("nan", None), ("inf", None), ("", None), ("soon", None),
    ("Wed, 21 Oct 2015 07:27:00 GMT", None),  # in the past
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
])
def test_retry_after_values(value, expected):
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    got = retry_after_seconds(value, now=now)
    assert got == expected or (expected is not None and got is not None and math.isclose(got, expected))


@pytest.mark.parametrize("caption", ["retry:-5", "retry:nan", "retry:Wed, 21 Oct 2015 07:28:00 GMT", "retry:1e308"])
def test_odd_retry_after_still_retries_quickly(tmp_path, caption):
    with HostileServer() as server:
        start = time.monotonic()
        results, failures, _ = split_captions_llm([caption], config(server.url, max_retries=2),
                                                  JsonCache(tmp_path / "c.jsonl"), progress=False)
    assert failures == {} and results[caption]["left_arm"]["action"] == "wave"
    assert time.monotonic() - start < 8.0  # not the 1e308 s or date the server asked for


@pytest.mark.parametrize("behaviour, words", [
    ("idle", "every part is idle"), ("nested_content", "invalid reply"), ("null", "content is null"),
])
def test_degenerate_replies_are_failures_and_never_cached(tmp_path, behaviour, words):
    cache = JsonCache(tmp_path / "c.jsonl")
    with HostileServer() as server:
        results, failures, counts = split_captions_llm([behaviour], config(server.url), cache, progress=False)
    assert results == {} and words in failures[behaviour] and counts["failed"] == 1
    assert len(cache) == 0 and not (tmp_path / "c.jsonl").exists()


def test_a_reply_with_a_10_mb_part_text_is_refused(tmp_path):
    cache = JsonCache(tmp_path / "c.jsonl")
    with HostileServer() as server:
        results, failures, _ = split_captions_llm(["huge"], config(server.url), cache, progress=False)
    assert "huge" in failures and len(cache) == 0


@pytest.mark.parametrize("record", [
    {}, [], "text", 3, None, {"left_arm": "x" * 1000}, {"tail": {"action": "wag", "text": "wags"}},
    {"head": {"action": "idle", "text": "does nothing"}},
    {"left_arm": {"action": "wave", "text": 7}},
])
def test_corrupt_cache_records_are_discarded_and_refetched(tmp_path, record):
    cfg = None
    with HostileServer() as server:
        cfg = config(server.url)
        cache = JsonCache(tmp_path / "c.jsonl")
        cache.put(llm_cache_key(cfg, "ok"), record)
        results, failures, counts = split_captions_llm(["ok"], cfg, JsonCache(tmp_path / "c.jsonl"), progress=False)
        assert len(server.requests) == 1
    assert failures == {} and counts["requested"] == 1 and results["ok"]["left_arm"]["action"] == "wave"
    assert JsonCache(tmp_path / "c.jsonl").get(llm_cache_key(cfg, "ok")) == results["ok"]


def test_a_valid_cache_record_is_used_without_a_request(tmp_path):
    with HostileServer() as server:
        cfg = config(server.url)
        split_captions_llm(["ok"], cfg, JsonCache(tmp_path / "c.jsonl"), progress=False)
        _, _, counts = split_captions_llm(["ok"], cfg, JsonCache(tmp_path / "c.jsonl"), progress=False)
        assert len(server.requests) == 1 and counts["cached"] == 1


def test_corrupt_feature_cache_shards_are_discarded_and_recomputed(tmp_path):
    import numpy as np

    from motion.text.cache import ArrayCache

    cache = ArrayCache(tmp_path / "emb")
    cache.add(["a", "b"], [np.ones((2, 4)), np.ones((1, 4))], np.ones((2, 3)))
    cache.add(["c"], [np.ones((3, 4))], np.ones((1, 3)))
    shards = sorted((tmp_path / "emb").glob("shard-*.npz"))
    shards[0].write_bytes(shards[0].read_bytes()[:100])  # torn
    with np.load(shards[1]) as z:
        data = {k: z[k] for k in z.files}
    np.savez(shards[1], **{**data, "offsets": np.array([0, 99])})  # offsets past the tokens
    reopened = ArrayCache(tmp_path / "emb")
    assert len(reopened) == 0 and not list((tmp_path / "emb").glob("shard-*.npz"))
