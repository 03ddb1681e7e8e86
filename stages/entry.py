"""How every stage's ``main`` runs: ``stage_main("features", run)``.

Around the stage's body (``run(settings)``):
1. the settings are read once (the stage's view of params.yaml, outputs checked for data loss) and the
   values of the stage's declared params are kept as a snapshot;
2. the stage stops when the process that started it dies (``motion.core.process``: no orphan);
3. each output folder the stage declares in dvc.yaml is locked (one writer per output,
   ``motion.core.workspace.output_lock``): a second writer is refused with a message;
4. expected failures (the project's DataError, OS errors on user paths, decode errors) end the process
   with one line naming the file and the fix, secrets redacted (``motion.core.errors.run_stage``);
5. after the body, params.yaml is read again: if a declared value changed while the stage ran, the stage
   fails, so neither ``dvc repro`` nor the Prefect flow records the new params against outputs made from
   the old ones.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from motion.core.errors import DataError, run_stage
from motion.core.process import stop_with_driver
from motion.core.settings import read_yaml, to_dict
from motion.core.workspace import output_lock
from stages.settings import (
    DVC_FILE,
    Settings,
    declared_params,
    dvc_file_for,
    params_file,
    parse_settings,
    settings_or_exit,
)

_MISSING = object()
_VARIABLE = re.compile(r"\$\{\s*([A-Za-z0-9_.]+)\s*\}")


def _lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def declared_values(stage: str, path: Path, settings: Settings | None = None) -> dict[str, Any]:
    """The values (profile applied) of the params keys ``stage`` declares: of ``settings``, else read from ``path``."""
    raw = read_yaml(path)
    tree = to_dict(settings if settings is not None else parse_settings(raw, path))
    return {key: _lookup(tree, key) for key in sorted(declared_params(stage, dvc_file_for(path), raw))}


def changed_keys(before: Any, after: Any, key: str) -> list[str]:
    """The dotted leaf keys under ``key`` whose values differ between two plain settings trees."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [leaf for k in sorted(set(before) | set(after))
                for leaf in changed_keys(before.get(k, _MISSING), after.get(k, _MISSING), f"{key}.{k}")]
    return [] if before == after else [key]


def check_params_unchanged(stage: str, path: Path, snapshot: dict[str, Any]) -> None:
    """Refuse (DataError) when a declared param of ``stage`` differs from ``snapshot`` (edited mid-run)."""
    try:
        now = declared_values(stage, path)
    except DataError as error:
        raise DataError(path, f"changed while {stage} ran and no longer reads ({error})",
                        f"fix the file, then rerun {stage}") from None
    changed = [leaf for key in snapshot for leaf in changed_keys(snapshot[key], now.get(key, _MISSING), key)]
    if changed:
        raise DataError(path, f"{', '.join(changed)} changed while {stage} ran; its outputs were made from the "
                              f"old values and are not recorded", f"rerun {stage} (dvc repro)")


def declared_outputs(stage: str, settings: Settings, dvc_file: Path) -> list[Path]:
    """The ``outs`` folders/files of ``stage`` in dvc.yaml, their ``${...}`` variables resolved."""
    stages = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("stages", {})
    name, _, item = stage.partition("@")
    spec = stages.get(name, {})
    spec = spec.get("do", spec)
    tree = {**to_dict(settings), "item": item, "key": item}  # a foreach over a list (${item}) or a dict (${key})
    outputs = []
    for entry in spec.get("outs") or []:
        text = entry if isinstance(entry, str) else next(iter(entry))
        resolved = _VARIABLE.sub(lambda m: str(_lookup(tree, m.group(1))), text)
        outputs.append(Path(resolved))
    return outputs


def secret_values(settings: Settings) -> list[str]:
    """Values of the environment variables the settings name for credentials (keys ending in ``_env``)."""
    found: list[str] = []

    def walk(tree: Any) -> None:
        if isinstance(tree, dict):
            for key, value in tree.items():
                if key.endswith("_env") and isinstance(value, str) and os.environ.get(value):
                    found.append(os.environ[value])
                else:
                    walk(value)

    walk(to_dict(settings))
    return found


def stage_main(stage: str, body: Callable[[Settings], Any], *, view: bool = True) -> Any:
    """Run a stage's ``body`` on its settings with the guarantees of this module; return what it returns.

    ``stage`` is the dvc.yaml name (``train_tmr@head`` for a foreach item). ``view=False`` for commands
    outside dvc.yaml: they see every setting and have no declared params or outputs.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    label = stage.replace("@", " ")
    path = params_file()
    settings = settings_or_exit(stage, view)
    full = parse_settings(read_yaml(path), path)
    dvc_file = dvc_file_for(path) if view else Path(DVC_FILE)
    snapshot = run_stage(label, lambda: declared_values(stage, path, full)) if view else {}
    stop_with_driver()
    rank_zero = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 writes outputs
    outputs = declared_outputs(stage, full, dvc_file) if view and rank_zero else []

    def guarded() -> Any:
        with contextlib.ExitStack() as stack:
            for output in outputs:
                stack.enter_context(output_lock(output, f"stage {stage}", wait_s=0))
            result = body(settings)
        if view:
            check_params_unchanged(stage, path, snapshot)
        return result

    return run_stage(label, guarded, secrets=secret_values(full))
