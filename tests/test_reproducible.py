"""A fresh clone reproduces the committed results: the data and text stages from empty caches.

The committed dvc.lock and metrics/ come from a from-scratch run in a fresh clone; this rebuilds the data and
text stages the same way (a copy of the project without data/ or caches). The data stages (numpy and numba
in float64, the caption rules) give the same bytes on every CPU measured, so their output hashes must equal
the committed lock's. ``embed_texts`` runs MiniLM through torch, whose last bits depend on the CPU's math
code paths: it must give the same bytes twice on one machine, and match the committed fingerprint
(``tests/golden/embed_texts_default.json``) within a tolerance on any machine.
Training stages are left out: they take minutes, and their inputs are what this pins.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.embedding_fingerprint import GOLDEN, differences, fingerprint
from tests.support.workspace import REPO_ROOT, dvc, make_workspace

DATA_STAGES = ("download", "poses", "features", "split_texts")


def output_hashes(lock: Path) -> dict[str, dict[str, str]]:
    """Stage -> {output path: md5} of a dvc.lock."""
    stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
    return {name: {o["path"]: o["md5"] for o in spec.get("outs", [])} for name, spec in stages.items()}


@pytest.mark.slow
def test_data_and_text_stages_reproduce_the_committed_results(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", tiny=False)
    dvc("repro", "features", "embed_texts", cwd=ws, timeout=1500)
    committed, fresh = output_hashes(REPO_ROOT / "dvc.lock"), output_hashes(ws / "dvc.lock")
    for stage in DATA_STAGES:
        assert fresh[stage] == committed[stage], f"stage {stage} does not reproduce the committed dvc.lock"

    problems = differences(fingerprint(ws / "data/embeddings"), json.loads(GOLDEN.read_text(encoding="utf-8")))
    assert not problems, f"embed_texts does not match {GOLDEN.name}: {problems}"

    shutil.rmtree(ws / "data/cache/embeddings")  # encode every text again
    dvc("repro", "--force", "--single-item", "embed_texts", cwd=ws, timeout=900)
    assert output_hashes(ws / "dvc.lock")["embed_texts"] == fresh["embed_texts"], "embed_texts is not deterministic"


def _embeddings_folder(folder: Path, sentences: np.ndarray, tokens: np.ndarray, texts: int) -> Path:
    """An embed_texts-layout folder of the given arrays (a token per text and dimension row)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "texts.parquet").write_bytes(b"".join(f"text {i}\n".encode() for i in range(texts)))
    (folder / "meta.json").write_text("{}")
    np.save(folder / "token_offsets.npy", np.linspace(0, len(tokens), texts + 1).astype(np.int64))
    np.save(folder / "sentences.npy", sentences)
    np.save(folder / "tokens.npy", tokens)
    return folder


def test_fingerprint_passes_last_bit_noise_and_catches_real_changes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sentences = rng.standard_normal((200, 384)).astype(np.float32)
    sentences /= np.linalg.norm(sentences, axis=1, keepdims=True)
    tokens = (rng.standard_normal((3000, 384)) * 2).astype(np.float16)
    golden = fingerprint(_embeddings_folder(tmp_path / "golden", sentences, tokens, 200))

    noisy_tokens = tokens.copy()  # one float16 step on 1% of the token values, 1e-7 on the sentences
    flip = rng.random(tokens.shape) < 0.01
    noisy_tokens[flip] = np.nextafter(tokens[flip], np.float16(np.inf))
    noisy = _embeddings_folder(tmp_path / "noisy", sentences + np.float32(1e-7), noisy_tokens, 200)
    assert differences(fingerprint(noisy), golden) == []

    as_float16 = _embeddings_folder(tmp_path / "f16", sentences.astype(np.float16).astype(np.float32), tokens, 200)
    assert [p.split(":")[0] for p in differences(fingerprint(as_float16), golden)] == ["sentences"]
    shifted = _embeddings_folder(tmp_path / "shifted", sentences, np.roll(tokens, 1, axis=0), 200)
    assert [p.split(":")[0] for p in differences(fingerprint(shifted), golden)] == ["mean_tokens"]
    renamed = _embeddings_folder(tmp_path / "renamed", sentences, tokens, 200)
    (renamed / "texts.parquet").write_bytes(b"other texts")
    assert [p.split(":")[0] for p in differences(fingerprint(renamed), golden)] == ["texts.parquet"]
