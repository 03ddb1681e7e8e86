"""glibc heap settings for array code that allocates many short-lived temporaries of ~0.1-1 MB.

By default glibc hands freed memory at the top of the heap back to the kernel as soon as more than
128 kB is free there (``M_TRIM_THRESHOLD``), and serves blocks over 128 kB-32 MB by fresh ``mmap``
calls (``M_MMAP_THRESHOLD``, raised dynamically): a vectorised pass that frees and allocates such
temporaries over and over page-faults them in again every time. ``keep_heap`` keeps that memory in
the process instead (at most ``trim_bytes`` of free heap is kept). The settings change no result.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems


@functools.cache
def keep_heap(trim_bytes: int = 64 * 2**20, mmap_bytes: int = MMAP_THRESHOLD_MAX) -> bool:
    """Set glibc's trim and mmap thresholds for this process (once); False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, int(trim_bytes))) and bool(mallopt(M_MMAP_THRESHOLD, int(mmap_bytes)))
