"""One entry point per DVC stage (`python -m stages.<name>`): parse settings, call library code, write outputs.

Importing this package pins the numeric libraries to their AVX2 kernels before any of them loads, so a stage
gives the same bytes (and dvc.lock hashes) on AVX2 and AVX-512 machines (motion/core/numerics.py).
"""
from motion.core.numerics import pin_instruction_set

pin_instruction_set()
