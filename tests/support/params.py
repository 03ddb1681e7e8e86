"""Stage tests start from the real ``params.yaml`` and override only what they need.

Overrides are dotted keys (``"tmr.eval.repeats": 2``) that must already exist in params.yaml, so a
test cannot silently set a key the pipeline does not read; a renamed or removed key fails the
test that overrides it, naming the key.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS_FILE = REPO_ROOT / "params.yaml"


def real_params() -> dict[str, Any]:
    """The repository's params.yaml as a fresh nested dict."""
    return yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))


def set_param(params: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the existing key ``a.b.c`` of a nested params dict; KeyError naming it when it does not exist."""
    *head, last = dotted.split(".")
    node = params
    for i, key in enumerate(head):
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"override {dotted!r}: {'.'.join(head[:i + 1])} is not in {PARAMS_FILE.name}")
        node = node[key]
    if not isinstance(node, dict) or last not in node:
        raise KeyError(f"override {dotted!r}: {dotted} is not in {PARAMS_FILE.name}")
    node[last] = copy.deepcopy(value)


MIRRORED = {"lgtm": "runs", "tmr": "tmr", "evaluator": "evaluator"}  # paths.<key> -> models.<value> (trained source)


def with_overrides(overrides: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``params`` (default: the real params.yaml) with the dotted ``overrides`` applied in order.

    Moving ``paths.lgtm`` / ``paths.tmr`` / ``paths.evaluator`` moves ``models.runs`` (and ``models.lgtm``, the same
    run under the new folder) / ``models.tmr`` / ``models.evaluator`` along while the source is trained (they must
    name the same folders there) unless the overrides set them too.
    """
    out = copy.deepcopy(dict(params)) if params is not None else real_params()
    for dotted, value in overrides.items():
        set_param(out, dotted, value)
    if out.get("models", {}).get("source") == "trained":
        for key, model_key in MIRRORED.items():
            if f"paths.{key}" in overrides and f"models.{model_key}" not in overrides:
                out["models"][model_key] = copy.deepcopy(overrides[f"paths.{key}"])
        if "paths.lgtm" in overrides and "models.lgtm" not in overrides:
            out["models"]["lgtm"] = str(Path(overrides["paths.lgtm"]) / Path(out["models"]["lgtm"]).name)
    return out


def write_params(folder: Path, overrides: Mapping[str, Any]) -> Path:
    """Write ``folder/params.yaml``: the real params with ``overrides``; returns its path."""
    path = Path(folder) / "params.yaml"
    path.write_text(yaml.safe_dump(with_overrides(overrides), sort_keys=False), encoding="utf-8")
    return path


def settings_of(params: Mapping[str, Any], stage: str | None = None):
    """The typed settings of a params mapping (a stage's view, as ``load_settings(stage)`` gives, with ``stage``)."""
    from motion.core.settings import stage_view
    from stages.settings import declared_params, parse_settings

    settings = parse_settings(copy.deepcopy(dict(params)), PARAMS_FILE)
    declared = None if stage is None else declared_params(stage, REPO_ROOT / "dvc.yaml", dict(params))
    return settings if stage is None else stage_view(settings, declared, stage)


def settings_with(overrides: Mapping[str, Any], stage: str | None = None):
    """The typed settings of the real params.yaml with dotted ``overrides`` (a stage's view with ``stage``)."""
    return settings_of(with_overrides(overrides), stage)
