"""Speed and memory figures (`python -m benchmarks.<name>`); never timed tests."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stages.settings import Settings


def settings_for(profile: str | None = None) -> Settings:
    """The typed settings of the params file in use (``$LGTM_PARAMS`` or params.yaml), under ``profile`` when given
    instead of the file's own ``profile`` (what ``dvc exp run -S profile=NAME`` would read)."""
    from motion.core.settings import read_yaml
    from stages.settings import params_file, parse_settings

    path = params_file()
    raw = read_yaml(path)
    if profile:
        raw["profile"] = profile
    return parse_settings(raw, path)
