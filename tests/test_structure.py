"""dvc.yaml cannot drift from the code: every stage's code deps cover what it imports, params what it reads.

A stage whose dvc.yaml ``deps`` miss a project file it imports (directly or transitively) would stay
"up to date" after that file changes, with results from the old code. These tests follow the imports
of every stage's entry module with ``ast`` (inside the project only) and name each stage and file that
is not covered. Params: every declared key exists in params.yaml, and a stage that declares a setting
which a profile overrides also declares ``profile`` and that override (its effective value depends on
them). That a stage reads nothing undeclared is enforced at run time by ``stages.settings``' stage view
(tests/test_settings.py), which the end-to-end ``dvc repro`` test exercises on every stage.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from motion.core.settings import covers, overlaid_keys, read_yaml
from stages.settings import declared_params

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
PARAMS = read_yaml(ROOT / "params.yaml")


def module_file(module: str) -> Path | None:
    """The project file of a dotted module name, or None for third-party / standard-library modules."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Dotted names a file imports (relative imports resolved), including ``from X import name`` submodules."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_closure(start: Path) -> set[Path]:
    """Every project file importing ``start`` loads, ``start`` and the packages on the way included."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def stage_specs() -> dict[str, dict]:
    """Stage name -> its spec (the ``do`` body of a foreach stage)."""
    return {name: spec.get("do", spec) for name, spec in DVC.items()}


def entry_module(cmd: str) -> Path:
    """The module a stage command runs (``python -m stages.NAME``)."""
    match = re.search(r"python3?\s+-m\s+([\w.]+)", cmd)
    assert match, f"stage command {cmd!r} is not `python -m MODULE`"
    path = module_file(match.group(1))
    assert path is not None, f"stage command {cmd!r}: module not found"
    return path


def uncovered_imports(spec: dict) -> list[str]:
    """Project files the stage imports that none of its deps (a file or a folder above it) covers."""
    deps = [str(d).rstrip("/") for d in spec.get("deps", []) if "${" not in str(d)]
    files = sorted(str(p.relative_to(ROOT)) for p in project_closure(entry_module(spec["cmd"])))
    return [f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)]


@pytest.mark.parametrize("stage", sorted(stage_specs()))
def test_code_deps_cover_every_imported_project_file(stage: str) -> None:
    missing = uncovered_imports(stage_specs()[stage])
    assert not missing, f"stage {stage} imports {missing} but its dvc.yaml deps do not cover them"


@pytest.mark.parametrize("stage", sorted(stage_specs()))
def test_code_deps_name_only_existing_paths(stage: str) -> None:
    deps = [str(d) for d in stage_specs()[stage].get("deps", []) if "${" not in str(d)]
    assert all((ROOT / d).exists() for d in deps), f"stage {stage}: a dep does not exist: {deps}"


def test_the_check_fails_when_a_dependency_is_removed() -> None:
    spec = dict(stage_specs()["evaluate"])
    assert not uncovered_imports(spec)
    spec["deps"] = [d for d in spec["deps"] if d not in ("models/diffusion.py", "motion/eval/metrics.py")]
    assert uncovered_imports(spec) == ["models/diffusion.py", "motion/eval/metrics.py"]


def key_exists(tree: dict, key: str) -> bool:
    """Whether the dotted ``key`` names a value in the params tree."""
    node = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@pytest.mark.parametrize("stage", sorted(stage_specs()))
def test_declared_params_exist(stage: str) -> None:
    for instance in instances(stage):
        missing = [k for k in declared_params(instance, ROOT / "dvc.yaml", PARAMS) if not key_exists(PARAMS, k)]
        assert not missing, f"stage {instance} declares params {missing} that params.yaml does not have"


def instances(stage: str) -> list[str]:
    """The stage, or each ``stage@key`` of a foreach over a params dict (its params interpolate ``${key}``)."""
    foreach = DVC[stage].get("foreach")
    if isinstance(foreach, str) and foreach.startswith("${"):
        node = PARAMS
        for part in foreach[2:-1].split("."):
            node = node[part]
        if isinstance(node, dict):
            return [f"{stage}@{key}" for key in node]
    return [stage]


@pytest.mark.parametrize("stage", sorted(stage_specs()))
def test_profile_overrides_of_declared_params_are_declared(stage: str) -> None:
    declared = declared_params(instances(stage)[0], ROOT / "dvc.yaml", PARAMS)
    base = {k for k in declared if not k.startswith("profiles.") and k != "profile"}
    for profile, keys in overlaid_keys(PARAMS["profiles"]).items():
        for key in keys:
            if covers(base, key) or any(b.startswith(key + ".") for b in base):
                assert "profile" in declared, f"stage {stage} reads {key}, which profiles override: declare `profile`"
                assert covers(declared, f"profiles.{profile}.{key}"), \
                    f"stage {stage} reads {key}: declare profiles.{profile}.{key} (or a section above it)"
