"""The stages pin numpy and PyTorch to their AVX2 kernels before either loads (motion/core/numerics.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from motion.core.numerics import AVX2_PATHS, has_avx2, pin_instruction_set
from tests.support.workspace import REPO_ROOT


def test_pinning_sets_every_variable_and_keeps_the_users() -> None:
    env = {"ATEN_CPU_CAPABILITY": "default"}
    added = pin_instruction_set(env, avx2=True)
    assert env["ATEN_CPU_CAPABILITY"] == "default" and "ATEN_CPU_CAPABILITY" not in added
    assert {k: env[k] for k in AVX2_PATHS if k != "ATEN_CPU_CAPABILITY"} == added
    assert len(added) == len(AVX2_PATHS) - 1


def test_no_pinning_without_avx2() -> None:
    env: dict[str, str] = {}
    assert pin_instruction_set(env, avx2=False) == {} and env == {}


def test_cpu_flags_are_read_from_cpuinfo(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\n", encoding="utf-8")
    assert has_avx2(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx\n", encoding="utf-8")
    assert not has_avx2(info)
    assert not has_avx2(tmp_path / "missing")


@pytest.mark.skipif(not has_avx2(), reason="pinning applies to x86-64 CPUs with AVX2")
def test_a_stage_process_runs_the_avx2_kernels() -> None:
    """Meaningful on an AVX-512 machine (numpy's X86_V4 and torch's AVX512 paths are then switched off); on an
    AVX2-only machine it checks only that importing stages keeps the AVX2 paths."""
    probe = ("import json, stages, numpy, torch\n"
             "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "print(json.dumps({'avx2': f['AVX2'], 'x86_v4': f['X86_V4'],"
             " 'torch': torch.backends.cpu.get_cpu_capability()}))")
    env = {k: v for k, v in os.environ.items() if k not in AVX2_PATHS}
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"avx2": True, "x86_v4": False, "torch": "AVX2"}
