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

import datetime
import email.utils
import json
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import httpx
from tqdm import tqdm

from motion.core.errors import redact
from motion.text.cache import JsonCache, cache_key
from motion.text.schema import PartAnnotation, SchemaError, active_parts, parse_reply, validate_part_annotation

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


MAX_REPLY_BYTES = 1 << 20  # a chat completion for one caption is a few hundred bytes; more is a broken server
MAX_PART_TEXT_CHARS = 400  # longer than any caption: a part text past this is not a split


@dataclass
class ChatClient:
    """A thin chat-completions client over httpx (one connection pool shared by threads).

    ``timeout_s`` bounds each whole request (connect, headers and body), not each read, so a server
    that drips bytes cannot stretch a call. The API key is never part of any message: every text that
    comes back from the server is redacted before it enters an error.
    """

    config: LLMConfig
    _http: httpx.Client = field(init=False, repr=False)
    _secrets: tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
            self._secrets = (key, f"Bearer {key}")
        self._http = httpx.Client(base_url=self.config.base_url.rstrip("/") + "/", headers=headers,
                                  timeout=self.config.timeout_s)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def redact(self, text: str) -> str:
        """``text`` without the API key."""
        return redact(text, self._secrets)

    def _post(self, body: dict[str, Any], deadline: float) -> tuple[int, httpx.Headers, bytes]:
        """POST and read the reply (at most MAX_REPLY_BYTES) before ``deadline`` (time.monotonic)."""
        with self._http.stream("POST", "chat/completions", json=body) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise RetryableError(f"reply is larger than {MAX_REPLY_BYTES} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("deadline")
            return response.status_code, response.headers, b"".join(chunks)

    def _post_within(self, body: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        """``_post`` in a helper thread, given up on once ``timeout_s`` has passed (a header drip included)."""
        timeout = self.config.timeout_s
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["reply"] = self._post(body, time.monotonic() + timeout)
            except BaseException as err:  # noqa: BLE001 - handed to the caller below
                outcome["error"] = err

        worker = threading.Thread(target=call, name="llm-request", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():  # the worker ends at its own deadline check or read timeout
            raise httpx.ReadTimeout("deadline")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["reply"]

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One chat completion; returns the reply text or raises RetryableError / EndpointError."""
        body: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                "temperature": self.config.temperature, "max_tokens": self.config.max_tokens}
        if self.config.json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            status, headers, raw = self._post_within(body)
        except httpx.TimeoutException:
            raise RetryableError(f"timed out after {self.config.timeout_s:g} s") from None
        except httpx.TransportError as err:
            raise RetryableError(self.redact(f"connection failed: {err}")) from None
        text = self.redact(raw[:200].decode("utf-8", "replace"))
        if status == 429 or status >= 500 or status == 408:
            raise RetryableError(f"HTTP {status}: {text[:120]}", retry_after_seconds(headers.get("retry-after")))
        if status in (401, 403):
            raise EndpointError(f"HTTP {status} from {self.config.base_url}: the endpoint refused the API key "
                                f"-- set ${self.config.api_key_env}")
        if status >= 400:
            raise EndpointError(f"HTTP {status} from {self.config.base_url}: {text} "
                                f"-- check split_texts.llm.base_url and model")
        content = reply_content(raw)
        if any(secret in content for secret in self._secrets):
            raise RetryableError("reply echoes the API key back; not used")
        return content


def reply_content(raw: bytes) -> str:
    """The assistant text of a chat-completion body; RetryableError for any other shape.

    ``content`` may be a string or a list of parts (``[{"type": "text", "text": ...}]``); null
    (a refusal or a tool call), numbers, objects and bodies nested too deeply to parse are rejected.
    """
    try:
        reply = json.loads(raw)
        message = reply["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise RetryableError(f"reply is not a chat completion: {raw[:120].decode('utf-8', 'replace')!r}") from None
    if not isinstance(message, dict):
        raise RetryableError(f"reply message is {type(message).__name__}, not an object")
    content = message.get("content")
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type", "text") == "text"]
        if not texts or not all(isinstance(t, str) for t in texts):
            raise RetryableError("reply content is a list without text parts")
        content = "".join(texts)
    if not isinstance(content, str):
        raise RetryableError(f"reply content is {'null' if content is None else type(content).__name__}, not text")
    if not content.strip():
        raise RetryableError("reply content is empty")
    return content


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date); None when absent or unusable.

    Negative, NaN and infinite values and unparsable dates are ignored (the normal backoff applies).
    """
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def backoff_delay(attempt: int, config: LLMConfig, retry_after: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential with jitter, or the server's Retry-After."""
    if retry_after is not None:
        return min(retry_after, config.max_backoff_s)
    return min(config.backoff_s * 2 ** (attempt - 1), config.max_backoff_s) * (0.5 + random.random() / 2)


def check_split(annotation: PartAnnotation) -> PartAnnotation:
    """``annotation`` unless it is degenerate: SchemaError when every part is idle or a text is absurdly long."""
    if not active_parts(annotation):
        raise SchemaError("every part is idle (an empty split)")
    for part, entry in annotation.items():
        if len(entry["text"]) > MAX_PART_TEXT_CHARS or len(entry["action"]) > MAX_PART_TEXT_CHARS:
            raise SchemaError(f"{part} text is longer than {MAX_PART_TEXT_CHARS} characters")
    return annotation


def cached_split(value: Any) -> PartAnnotation | None:
    """A cached split if it still passes the schema and :func:`check_split`, else None (refetch it)."""
    try:
        annotation = check_split(validate_part_annotation(value))
    except (SchemaError, AttributeError, TypeError, KeyError):
        return None
    return annotation if annotation == value else None


def split_caption_llm(client: ChatClient, caption: str) -> PartAnnotation:
    """Split one caption, retrying transient failures and schema violations; raises the last error."""
    config = client.config
    last: Exception | None = None
    for attempt in range(config.max_retries + 1):
        if attempt:
            time.sleep(backoff_delay(attempt, config, getattr(last, "retry_after", None)))
        try:
            return check_split(parse_reply(client.complete(build_messages(caption))))
        except (SchemaError, RecursionError) as err:
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
        hit = cached_split(cache.get(llm_cache_key(config, caption)))
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
