"""Splitting captions with a language model behind any OpenAI-compatible chat-completions endpoint.

Works with OpenAI, vLLM, Ollama and llama.cpp servers: ``POST {base_url}/chat/completions``. The
API key is read from an environment variable only (none is sent when it is unset, as local servers
need none). Each reply is validated against the part schema; 429, 5xx, timeouts, dropped
connections and malformed replies are retried with exponential backoff; 401/403/404 stop the run
(the settings are wrong). Results are cached by (backend, model, prompt version, caption), so a
rerun costs nothing and an interrupted run resumes; captions that still fail are returned with
their last error, never dropped.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import httpx
from tqdm import tqdm

from motion.text.cache import JsonCache, cache_key
from motion.text.schema import PartAnnotation, SchemaError, parse_reply

PROMPT_VERSION = "parts-v1"

INSTRUCTIONS = """You label descriptions of human motion for a model that animates six body parts separately.
The parts are: head, torso, left_arm, right_arm, left_leg, right_leg.

Read one description and answer with a JSON object. Its keys are the parts that move; each value is
an object with exactly two string fields:
  "action": the main verb for that part, in its base form (for example "walk", "raise", "nod");
  "text": a short phrase in the third person saying what that part does (for example "walks forward").

Guidelines:
- Leave out every part that stays still.
- Use only the six keys above. Hands, fingers, wrists, elbows and shoulders belong to the arms; feet,
  toes, knees and ankles to the legs; neck, face and eyes to the head; hips, waist, back, chest and
  pelvis to the torso.
- Walking, running, stepping, jumping and turning move both legs and the torso, which carries the
  body through space. Whole-body activities such as dancing or exercising move every part involved.
- Keep left and right exactly as the description says. When it names a limb without a side
  ("raises a hand"), give the action to both sides.
- A body part that is only touched or pointed at does not move by itself.
- When actions follow one another, keep their order in the part's text, joined by "then".
- Reply with the JSON object only: no prose, no code fence."""

EXAMPLES: list[tuple[str, dict[str, dict[str, str]]]] = [
    ("someone steps to the right while clapping twice", {
        "left_arm": {"action": "clap", "text": "claps twice"},
        "right_arm": {"action": "clap", "text": "claps twice"},
        "torso": {"action": "step", "text": "steps to the right"},
        "left_leg": {"action": "step", "text": "steps to the right"},
        "right_leg": {"action": "step", "text": "steps to the right"},
    }),
    ("a man bends forward and touches the floor with his left hand", {
        "torso": {"action": "bend", "text": "bends forward"},
        "left_arm": {"action": "touch", "text": "reaches down and touches the floor"},
    }),
    ("the person shakes their head, then lifts the right knee", {
        "head": {"action": "shake", "text": "shakes from side to side"},
        "right_leg": {"action": "lift", "text": "lifts the knee"},
    }),
]


def build_messages(caption: str) -> list[dict[str, str]]:
    """Chat messages for one caption: instructions, worked examples, then the caption."""
    messages = [{"role": "system", "content": INSTRUCTIONS}]
    for example, answer in EXAMPLES:
        messages.append({"role": "user", "content": f"Description: {example}"})
        messages.append({"role": "assistant", "content": json.dumps(answer)})
    messages.append({"role": "user", "content": f"Description: {caption}"})
    return messages


@dataclass(frozen=True)
class LLMConfig:
    """Endpoint and retry settings (params.yaml ``split_texts.llm``)."""

    base_url: str
    model: str
    api_key_env: str  # the key is read from this environment variable only
    temperature: float
    max_tokens: int
    timeout_s: float
    max_retries: int
    backoff_s: float
    max_backoff_s: float
    concurrency: int
    json_mode: bool


class RetryableError(RuntimeError):
    """A failure worth another try: rate limit, server error, timeout, malformed reply."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EndpointError(RuntimeError):
    """A failure no retry will fix (bad key, unknown model or URL): the run stops."""


@dataclass
class ChatClient:
    """A thin chat-completions client over httpx (one connection pool shared by threads)."""

    config: LLMConfig
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(base_url=self.config.base_url.rstrip("/") + "/", headers=headers,
                                  timeout=self.config.timeout_s)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One chat completion; returns the reply text or raises RetryableError / EndpointError."""
        body: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        if self.config.json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            response = self._http.post("chat/completions", json=body)
        except httpx.TimeoutException:
            raise RetryableError(f"timed out after {self.config.timeout_s:g} s") from None
        except httpx.TransportError as err:
            raise RetryableError(f"connection failed: {err}") from None
        status = response.status_code
        if status == 429 or status >= 500 or status == 408:
            raise RetryableError(f"HTTP {status}: {response.text[:120]}", _retry_after(response))
        if status in (401, 403):
            raise EndpointError(f"HTTP {status} from {self.config.base_url}: the endpoint refused the API key "
                                f"-- set ${self.config.api_key_env}")
        if status >= 400:
            raise EndpointError(f"HTTP {status} from {self.config.base_url}: {response.text[:200]} "
                                f"-- check split_texts.llm.base_url and model")
        try:
            return response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RetryableError(f"reply is not a chat completion: {response.text[:120]!r}") from None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def backoff_delay(attempt: int, config: LLMConfig, retry_after: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential with jitter, or the server's Retry-After."""
    if retry_after is not None:
        return min(retry_after, config.max_backoff_s)
    return min(config.backoff_s * 2 ** (attempt - 1), config.max_backoff_s) * (0.5 + random.random() / 2)


def split_caption_llm(client: ChatClient, caption: str) -> PartAnnotation:
    """Split one caption, retrying transient failures and schema violations; raises the last error."""
    config = client.config
    last: Exception | None = None
    for attempt in range(config.max_retries + 1):
        if attempt:
            time.sleep(backoff_delay(attempt, config, getattr(last, "retry_after", None)))
        try:
            return parse_reply(client.complete(build_messages(caption)))
        except SchemaError as err:
            last = RetryableError(f"invalid reply: {err}")
        except RetryableError as err:
            last = err
    raise RetryableError(f"gave up after {config.max_retries + 1} attempts: {last}")


def llm_cache_key(config: LLMConfig, caption: str) -> str:
    """Cache key of a caption's split: backend, model, prompt version and the caption itself."""
    return cache_key("llm", config.model, PROMPT_VERSION, caption)


def split_captions_llm(captions: list[str], config: LLMConfig, cache: JsonCache,
                       progress: bool = True) -> tuple[dict[str, PartAnnotation], dict[str, str], dict[str, int]]:
    """Split unique captions with bounded concurrency; returns (results, failures, counts).

    Cached captions are not requested again; each new result is cached the moment it arrives.
    ``failures`` maps a caption to its last error. An EndpointError aborts the run (cache kept).
    """
    unique = sorted(set(captions))
    results: dict[str, PartAnnotation] = {}
    todo: list[str] = []
    for caption in unique:
        hit = cache.get(llm_cache_key(config, caption))
        if hit is not None:
            results[caption] = hit
        else:
            todo.append(caption)
    failures: dict[str, str] = {}
    client = ChatClient(config)
    stop = threading.Event()

    def work(caption: str) -> PartAnnotation:
        if stop.is_set():
            raise EndpointError("run stopped")
        return split_caption_llm(client, caption)

    try:
        with ThreadPoolExecutor(max_workers=max(1, config.concurrency)) as pool:
            futures = {pool.submit(work, c): c for c in todo}
            bar = tqdm(as_completed(futures), total=len(futures), desc="split_texts (llm)", disable=not progress)
            for future in bar:
                caption = futures[future]
                try:
                    annotation = future.result()
                except EndpointError:
                    stop.set()
                    for f in futures:
                        f.cancel()
                    raise
                except RetryableError as err:
                    failures[caption] = str(err)
                    continue
                cache.put(llm_cache_key(config, caption), annotation)
                results[caption] = annotation
    finally:
        client.close()
    counts = {"unique": len(unique), "cached": len(unique) - len(todo), "requested": len(todo),
              "failed": len(failures)}
    return results, failures, counts
