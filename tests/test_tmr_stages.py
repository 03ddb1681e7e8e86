"""train_tmr and eval_tmr end to end on a tiny fake dataset (two encoders, three epochs)."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from models.tmr import load_tmr, read_tmr_config
from tests.support.tmr import FakeEmbeddings, make_fake_data


def write_fake_embeddings(folder, texts_dir) -> None:
    """An embed_texts-format folder holding FakeEmbeddings' features of every text of the table."""
    table = pd.read_parquet(texts_dir / "part_texts.parquet")
    texts = sorted(set(table["caption"]) | {t for c in table.columns if c.endswith("_text") for t in table[c]})
    emb = FakeEmbeddings()
    tokens = [emb.tokens(t) for t in texts]
    folder.mkdir()
    pd.DataFrame({"text": texts}).to_parquet(folder / "texts.parquet", index=False)
    np.save(folder / "tokens.npy", np.concatenate(tokens).astype(np.float16))
    np.save(folder / "token_offsets.npy", np.cumsum([0] + [len(t) for t in tokens]).astype(np.int64))
    np.save(folder / "sentences.npy", emb.sentences(texts))
    (folder / "meta.json").write_text(json.dumps({"encoder": "fake", "token_dim": 16, "sentence_dim": 16,
                                                  "num_texts": len(texts)}))


def tiny_params(tmp_path) -> dict:
    """The real params with tiny TMR settings on the fake corpus of ``tmp_path``."""
    paths = {"features": tmp_path / "features", "texts": tmp_path / "texts", "embeddings": tmp_path / "embeddings",
             "poses": tmp_path / "poses", "cache": tmp_path / "cache", "metrics": tmp_path / "metrics",
             "tmr": tmp_path / "tmr", "evaluator": tmp_path / "evaluator", "tmr_eval": tmp_path / "tmr_eval"}
    return {
        **{f"paths.{k}": str(v) for k, v in paths.items()},
        "tmr.encoders": ["whole_body", "right_arm"], "seed": 3,
        "captions.min_frames": 20, "captions.max_frames": 40,
        "tmr.model": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.1},
        "tmr.train.epochs": 3, "tmr.train.batch_size": 8, "tmr.train.lr": 1e-3, "tmr.train.num_workers": 0,
        "tmr.train.crop_frames": None,
        "tmr.eval.batch_size": 4, "tmr.eval.repeats": 2,
        "compute.device": "cpu", "compute.threads.train_tmr": 1, "compute.threads.eval_tmr": 1,
        "compute.processes.train_tmr": 2,
    }


@pytest.fixture
def project(tmp_path, stage_params):
    """A fake features/texts/embeddings corpus and the real params with tiny TMR settings."""
    features, texts = make_fake_data(tmp_path, num_motions=20)
    assert (features, texts) == (tmp_path / "features", tmp_path / "texts")
    write_fake_embeddings(tmp_path / "embeddings", texts)
    stage_params(tiny_params(tmp_path))
    return tmp_path


def test_train_then_eval_stages(project, monkeypatch):
    from stages import eval_tmr, train_tmr

    for name in ("whole_body", "right_arm"):
        monkeypatch.setattr(sys, "argv", ["train_tmr", name])
        train_tmr.main()
        out = project / "tmr" / name
        assert sorted(p.name for p in out.iterdir()) == ["config.json", "dvclive", "metrics.json", "model.safetensors"]
        assert (out / "dvclive" / "plots" / "images" / "losses.png").is_file()
        assert not (project / "cache" / "tmr" / name).exists()  # the checkpoint is gone once outputs exist
        evaluator = project / "evaluator" / name  # trained beside it, in the other process, with its own seed
        assert sorted(p.name for p in evaluator.iterdir()) == sorted(p.name for p in out.iterdir())
        assert read_tmr_config(evaluator)["role"] == "evaluator" and read_tmr_config(out)["role"] == "conditioner"
        assert read_tmr_config(evaluator)["train"]["seed"] == 3 + 1000
        assert (evaluator / "model.safetensors").read_bytes() != (out / "model.safetensors").read_bytes()
    config = read_tmr_config(project / "tmr" / "right_arm")
    assert config["name"] == "right_arm" and config["model"]["motion_dim"] == 48 and len(config["feature_dims"]) == 48
    assert json.loads((project / "tmr" / "whole_body" / "metrics.json").read_text())["epoch"] == 3
    model = load_tmr(project / "tmr" / "whole_body")
    assert model.encode_motion(torch.zeros(1, 10, 263), torch.ones(1, 10, dtype=torch.bool)).shape == (1, 16)

    eval_tmr.main()
    metrics = json.loads((project / "metrics" / "tmr.json").read_text())
    assert set(metrics) == {"chance", "whole_body", "right_arm"}
    assert metrics["right_arm"]["num_pairs"] == 5
    assert set(metrics["right_arm"]) >= {"all", "threshold", "batches_4"}
    assert set(metrics["whole_body"]["all"]["m2t"]) == {"R1", "R2", "R3", "R5", "R10", "MedR"}
    study = json.loads((project / "tmr_eval" / "part_study.json").read_text())["encoders"]
    assert list(study["right_arm"]) == ["right_arm"]  # fake motions differ only in their right-arm action


def test_side_by_side_runs_write_the_bytes_of_runs_in_turn(project, monkeypatch, stage_params):
    from stages import train_tmr

    monkeypatch.setattr(sys, "argv", ["train_tmr", "right_arm"])
    train_tmr.main()  # compute.processes.train_tmr: 2
    pooled = {role: (project / role / "right_arm" / "model.safetensors").read_bytes() for role in ("tmr", "evaluator")}
    stage_params({**tiny_params(project), "compute.processes.train_tmr": 1, "paths.tmr": str(project / "tmr1"),
                  "paths.evaluator": str(project / "evaluator1")})
    train_tmr.main()
    for role in ("tmr", "evaluator"):
        assert (project / f"{role}1" / "right_arm" / "model.safetensors").read_bytes() == pooled[role], role


def test_unknown_encoder_name_exits(project, monkeypatch):
    from stages import train_tmr

    monkeypatch.setattr(sys, "argv", ["train_tmr", "tail"])
    with pytest.raises(SystemExit, match="usage"):
        train_tmr.main()


def test_missing_embeddings_exit_with_one_line(project, monkeypatch):
    import shutil

    from stages import train_tmr

    shutil.rmtree(project / "embeddings")
    monkeypatch.setattr(sys, "argv", ["train_tmr", "head"])
    with pytest.raises(SystemExit, match="embed_texts"):
        train_tmr.main()
