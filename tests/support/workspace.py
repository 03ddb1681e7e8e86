"""A throwaway copy of this repository (tracked and new files, no data) with tiny params, for end-to-end tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.params import with_overrides

REPO_ROOT = Path(__file__).resolve().parents[2]

# The smallest settings under which every stage still does real work.
TINY_OVERRIDES: dict[str, Any] = {
    "download.synthetic.num_motions": 16,
}


def project_files(root: Path = REPO_ROOT) -> list[str]:
    """Files git tracks plus new files it does not ignore (the working tree as a user would clone it)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
    return sorted({f for f in out.decode().split("\0") if f and (root / f).is_file()})


def make_workspace(dest: Path, overrides: dict[str, Any] | None = None,
                   edit: Callable[[dict[str, Any]], None] | None = None, tiny: bool = True) -> Path:
    """Copy the project into ``dest`` as a fresh git+DVC repo with (by default tiny) params committed."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    for lock in ("dvc.lock",):
        (dest / lock).unlink(missing_ok=True)
    params = with_overrides({**(TINY_OVERRIDES if tiny else {}), **(overrides or {})},
                            yaml.safe_load((dest / "params.yaml").read_text()))
    if edit:
        edit(params)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "workspace"], dest)
    return dest


def env_with_venv() -> dict[str, str]:
    """Environment whose PATH starts with this interpreter's bin folder (so `python` and `dvc` resolve)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("LGTM_PARAMS", None)
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 900) -> str:
    """Run a command in the workspace; fail with its stderr when it fails."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env_with_venv(), timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def dvc(*args: str, cwd: Path, timeout: float = 900) -> str:
    """Run DVC from this environment in the workspace."""
    return run([sys.executable, "-m", "dvc", *args], cwd, timeout)


def temporaries(folder: Path, prefix: str = ".") -> list[Path]:
    """Hidden entries of ``folder`` starting with ``prefix``: a writer's leftovers. The output locks
    (``.<name>.lock``, kept on purpose: they hold no state) are not leftovers."""
    return [p for p in Path(folder).iterdir() if p.name.startswith(prefix) and not p.name.endswith(".lock")]
