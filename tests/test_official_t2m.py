"""Guo's T2M evaluator in finest.tar format: sizes read from the tensors, embeddings match the official wrapper."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.t2m_evaluator import T2MEvaluator, read_t2m_checkpoint
from motion.core.errors import DataError
from tools.official_parity import T2M_TOL, t2m_checks


def test_sizes_come_from_the_tensors(golden: Path) -> None:
    nets = read_t2m_checkpoint(golden / "t2m_evaluator_small.tar")
    assert nets["motion_encoder"].hidden.shape[-1] == 128 and nets["text_encoder"].hidden.shape[-1] == 64
    evaluator = T2MEvaluator(nets, None, np.zeros(263), np.ones(263))
    assert evaluator.dim == 64


def test_embeddings_match_official(golden: Path) -> None:
    checks = list(t2m_checks(golden, "t2m_small_io"))
    assert len(checks) == 3 and all(c.ok and c.tolerance == T2M_TOL for c in checks), [c.line() for c in checks]


def test_encode_motions_uses_the_same_path(golden: Path) -> None:
    """encode_motions (de-normalised, unpadded motions, as evaluation passes them) equals the golden embedding."""
    io = np.load(golden / "t2m_small_io.npz")
    mean = np.linspace(-1, 1, 263).astype(np.float32)
    std = np.linspace(0.5, 2, 263).astype(np.float32)
    evaluator = T2MEvaluator(read_t2m_checkpoint(golden / "t2m_evaluator_small.tar"), None, mean, std)
    motions = [io["motions"][i, :n] * std + mean for i, n in enumerate(io["m_lens"])]
    assert np.abs(evaluator.encode_motions(motions) - io["motion_embedding"]).max() <= T2M_TOL


def test_bad_evaluator_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="checkpoint is missing"):
        read_t2m_checkpoint(tmp_path / "finest.tar")
    path = tmp_path / "other.tar"
    torch.save({"text_encoder": {}}, path)
    with pytest.raises(DataError, match="has no 'movement_encoder'"):
        read_t2m_checkpoint(path)
    path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable torch checkpoint"):
        read_t2m_checkpoint(path)
