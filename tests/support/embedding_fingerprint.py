"""A small, tolerance-checked fingerprint of an ``embed_texts`` folder, for comparing runs on different CPUs.

MiniLM's forward pass on the CPU gives other last bits with another matrix-multiply or vector code path
(measured on one Intel Xeon by switching MKL's and ATen's code paths: sentence vectors move by up to
2.2e-7, float16 token features by one float16 step on 0.5-0.7% of the values), so an ``embed_texts`` output
is byte-reproducible on one machine but not across CPU kinds. The fingerprint keeps what must be exact
(the file bytes of the text list, token offsets and meta) and, for an evenly spaced sample of texts, the
projections of the sentence vector and of the mean token feature on fixed random unit directions.

Record the golden file from a default run: ``python -m tests.support.embedding_fingerprint data/embeddings``.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.io import sha256_file, write_text

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "embed_texts_default.json"
EXACT_FILES = ("texts.parquet", "token_offsets.npy", "meta.json")
SAMPLE_TEXTS = 64
DIRECTIONS = 8
SEED = 0

# Largest difference allowed per projection. The code-path switches above moved the sampled projections by
# up to 1.5e-7 (sentence vectors) and 1.2e-5 (mean float16 token features): ~30-40x margin. A real change is
# far larger: the projections themselves average 0.04 and 0.17, and storing the sentences as float16 moves
# them by up to 3e-5 (tests/test_reproducible.py checks both directions).
SENTENCE_TOLERANCE = 5e-6
TOKEN_TOLERANCE = 5e-4


def fingerprint(folder: str | Path) -> dict[str, Any]:
    """Exact hashes of the CPU-independent files and projections of a sample of texts' features."""
    folder = Path(folder)
    sentences = np.load(folder / "sentences.npy")
    tokens = np.load(folder / "tokens.npy", mmap_mode="r")
    offsets = np.load(folder / "token_offsets.npy")
    directions = np.random.default_rng(SEED).standard_normal((sentences.shape[1], DIRECTIONS))
    directions /= np.linalg.norm(directions, axis=0)
    rows = np.linspace(0, len(sentences) - 1, min(SAMPLE_TEXTS, len(sentences))).round().astype(int)
    mean_tokens = np.stack([np.asarray(tokens[offsets[i]:offsets[i + 1]], np.float64).mean(0) for i in rows])
    return {
        "files_sha256": {name: sha256_file(folder / name) for name in EXACT_FILES},
        "rows": rows.tolist(),
        "sentences": (sentences[rows].astype(np.float64) @ directions).round(9).tolist(),
        "mean_tokens": (mean_tokens @ directions).round(9).tolist(),
    }


def differences(fresh: dict[str, Any], golden: dict[str, Any]) -> list[str]:
    """What in ``fresh`` does not match ``golden`` (exact files, rows, projections within tolerance)."""
    problems = [f"{name}: sha256 {fresh['files_sha256'].get(name)} != golden {digest}"
                for name, digest in golden["files_sha256"].items() if fresh["files_sha256"].get(name) != digest]
    if fresh["rows"] != golden["rows"]:
        return [*problems, f"sampled rows differ: {len(fresh['rows'])} vs {len(golden['rows'])}"]
    for key, tolerance in (("sentences", SENTENCE_TOLERANCE), ("mean_tokens", TOKEN_TOLERANCE)):
        worst = float(np.abs(np.asarray(fresh[key]) - np.asarray(golden[key])).max())
        if worst > tolerance:
            problems.append(f"{key}: projections differ by up to {worst:.3g} (tolerance {tolerance:g})")
    return problems


def _dump(record: dict[str, Any]) -> str:
    """JSON with one line per key, and one line per row of a list of lists (diffs stay readable)."""
    def value(v: Any) -> str:
        if isinstance(v, list) and v and isinstance(v[0], list):
            return "[\n  " + ",\n  ".join(json.dumps(row) for row in v) + "\n ]"
        return json.dumps(v)
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {value(v)}" for k, v in record.items()) + "\n}\n"


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s first model name), else the machine type."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    """Write the golden fingerprint of an embeddings folder (a default ``dvc repro`` run's)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an embed_texts output folder of the default params")
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args()
    record = {"recorded_on": cpu_name(),
              "command": "python -m tests.support.embedding_fingerprint data/embeddings",
              **fingerprint(args.folder)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, _dump(record))
    print(f"wrote {args.out} ({len(record['rows'])} texts)")


if __name__ == "__main__":
    main()
