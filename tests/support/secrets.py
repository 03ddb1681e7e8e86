"""A fake API key, split settings that send it to a test LLM server, and a grep for it in written files."""
from __future__ import annotations

from pathlib import Path

from motion.core.settings import build
from motion.text.split import SplitSettings
from tests.support.params import real_params

KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
KEY_ENV = "LGTM_FAULT_KEY"


def llm_split_settings(url: str, on_failure: str = "rules") -> SplitSettings:
    """The project's split_texts settings with the LLM backend at ``url`` and the key read from $LGTM_FAULT_KEY."""
    section = real_params()["split_texts"]
    llm = {**section["llm"], "base_url": url, "model": "m", "api_key_env": KEY_ENV, "timeout_s": 2.0,
           "max_retries": 1, "backoff_s": 0.01, "max_backoff_s": 0.05, "concurrency": 2}
    return build(SplitSettings, {**section, "backend": "llm", "on_failure": on_failure, "llm": llm})


def files_holding(folder: Path, secret: str) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``secret``."""
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
