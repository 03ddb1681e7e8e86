"""Test code depends one way: test modules and benchmarks use tests/support and tests/oracles, never each other."""
from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports (absolute names, at any depth of the file)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def offending_imports(folder: Path, forbidden: tuple[str, ...]) -> list[str]:
    """``file: module`` for each import under ``folder`` of a module whose name starts with a forbidden prefix."""
    return sorted(f"{path.relative_to(folder)}: {module}" for path in folder.rglob("*.py")
                  for module in imported_modules(path) if module.startswith(forbidden))


def test_benchmarks_import_no_test_module() -> None:
    assert offending_imports(REPO_ROOT / "benchmarks", ("tests.test_", "tests.conftest")) == []


def test_tests_import_no_benchmark_and_no_other_test_module() -> None:
    assert offending_imports(REPO_ROOT / "tests", ("benchmarks", "tests.test_", "tests.conftest")) == []


def test_the_check_finds_imports_inside_functions(tmp_path: Path) -> None:
    source = "import numpy\n\n\ndef f():\n    from tests.test_amass import write_amass_npz\n"
    (tmp_path / "bench_x.py").write_text(source)
    assert offending_imports(tmp_path, ("tests.test_",)) == ["bench_x.py: tests.test_amass",
                                                              "bench_x.py: tests.test_amass.write_amass_npz"]
