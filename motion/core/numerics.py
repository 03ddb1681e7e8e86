"""One instruction set for the numeric libraries, so stages write the same bytes on more x86-64 CPUs.

numpy, OpenBLAS, PyTorch (ATen), MKL and oneDNN each pick their kernels from the running CPU when they load.
An AVX-512 kernel sums and rounds in another order than the AVX2 one, so the same stage gave other float bits
(and another dvc.lock hash) on an AVX-512 machine than on an AVX2 one. ``pin_instruction_set`` asks each of
them for its AVX2 (x86-64-v3) path, which every machine with AVX2 runs; it must run before numpy or torch is
imported (``stages/__init__.py`` calls it), and a variable the user has set wins. Machines without AVX2 and
non-x86 machines are left alone (their kernels are their own).

Measured: the data stages (numpy, numba) give the same bytes on an AVX2 machine, an AVX-512 EPYC and an
Intel Xeon with AVX-512; the torch stages did on the first two, but MiniLM's embeddings came out as other
bytes on the Intel Xeon whatever MKL, ATen and oneDNN path was asked for there (README, "Same bytes").

Thread counts matter too (a reduction split over more threads adds in another order); the stages pin those
from ``compute.threads``.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

# Variable -> value: the AVX2 path of each library (read once, when the library loads).
AVX2_PATHS: dict[str, str] = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy: its AVX-512 targets (SVML sin/cos/exp)
    "OPENBLAS_CORETYPE": "Haswell",                             # numpy's OpenBLAS: the AVX2 gemm kernels
    "ATEN_CPU_CAPABILITY": "avx2",                              # PyTorch's vectorised CPU kernels
    "MKL_CBWR": "AVX2",                                         # PyTorch's MKL: conditional numerical reproducibility
    "ONEDNN_MAX_CPU_ISA": "AVX2",                               # PyTorch's oneDNN (convolutions, some linear layers)
}


def has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this is an x86-64 CPU with AVX2 and FMA (read from /proc/cpuinfo; False where it cannot be read)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx2" in flags and "fma" in flags


def pin_instruction_set(environ: dict[str, str] | None = None, avx2: bool | None = None) -> dict[str, str]:
    """Set the variables of ``AVX2_PATHS`` that are not set yet; return the ones set (none without AVX2)."""
    env = os.environ if environ is None else environ
    if not (has_avx2() if avx2 is None else avx2):
        return {}
    added = {name: value for name, value in AVX2_PATHS.items() if name not in env}
    env.update(added)
    return added
