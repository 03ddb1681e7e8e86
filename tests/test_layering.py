"""The project's packages depend one way: motion (library) <- models <- stages / tools / pipelines.

One shared exception: ``stages.settings``, the schema of params.yaml that every entry point reads
(stages, tools, benchmarks), may be imported by tools; nothing else of stages may.

Every ``.py`` file of the packages is parsed (imports at any depth, so lazy imports inside functions count)
and its project imports are mapped to top-level packages; a forbidden edge fails naming the file and module.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("motion", "models", "stages", "tools", "pipelines", "tests", "benchmarks")
# package -> the project packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "motion": ("models", "stages", "tools", "pipelines", "tests", "benchmarks"),
    "models": ("stages", "tools", "pipelines", "tests", "benchmarks"),
    "tools": ("stages", "pipelines", "tests", "benchmarks"),
    "stages": ("tools", "pipelines", "tests", "benchmarks"),
    "pipelines": ("tools", "tests", "benchmarks"),
}
SHARED = ("stages.settings",)  # entry-point modules any entry point may import


def project_imports(path: Path, package: str) -> set[str]:
    """The project modules a file imports (absolute; relative imports resolved against ``package``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(package if node.level else (node.module or ""))
    return {m for m in out if m.split(".")[0] in PROJECT}


def violations(root: Path) -> list[str]:
    """``file imports module`` for every import of a forbidden package under ``root``."""
    found = []
    for package, banned in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for module in sorted(project_imports(path, package)):
                if module.split(".")[0] in banned and module not in SHARED:
                    found.append(f"{path.relative_to(root)} imports {module}")
    return found


def test_dependencies_point_one_way() -> None:
    assert violations(REPO_ROOT) == []


@pytest.mark.parametrize("package,source,expected", [
    ("motion", "def f():\n    from models.lgtm import LGTM\n", ["motion/eval/x.py imports models.lgtm"]),
    ("models", "import tools.generate as g\n", ["models/eval/x.py imports tools.generate"]),
    ("stages", "from tools import generate\n", ["stages/eval/x.py imports tools"]),
    ("motion", "from motion.core import parts\nimport numpy\n", []),
])
def test_the_check_sees_every_kind_of_import(tmp_path: Path, package: str, source: str,
                                             expected: list[str]) -> None:
    (tmp_path / package / "eval").mkdir(parents=True)
    (tmp_path / package / "eval" / "x.py").write_text(source)
    assert violations(tmp_path) == expected
