"""Released weights through the real ``dvc repro``: a throwaway copy of the project, switched to the released
models by ``tools.switch_source official``, builds the tiny synthetic data, imports the official-format files (the
golden LGTM checkpoint and official-layout TMR fakes sized to its 256-d text latents), embeds the texts with a
DistilBERT in the Hugging Face cache layout (a tiny random one: the real model is not offline), evaluates and runs
the prompt study, and trains nothing; ``tools.generate`` then draws a motion from the released model there."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from motion.core.parts import FEATURE_DIM
from tests.support.official import ACTIONS, tiny_design, write_fake_distilbert, write_official_tmrs
from tests.support.workspace import dvc, make_workspace, run

pytestmark = pytest.mark.slow

LATENT = 256  # the golden LGTM's text adapters take 256-d latents
TARGETS = ("import_official", "evaluate", "prompt_study")


def write_release_files(golden: Path, root: Path) -> dict[str, str]:
    """The official-format inputs outside the workspace; returns the ``official.*`` params naming them."""
    write_official_tmrs(root / "TMR_models", LATENT)
    rng = np.random.default_rng(0)  # HumanML3D-style published normalisation (263-d Mean.npy / Std.npy)
    np.save(root / "Mean.npy", (0.1 * rng.standard_normal(FEATURE_DIM)).astype(np.float32))
    np.save(root / "Std.npy", (0.5 + rng.random(FEATURE_DIM)).astype(np.float32))
    return {"official.checkpoint": str(next((golden / "lgtm_small").rglob("*.ckpt"))),
            "official.tmr_dir": str(root / "TMR_models"), "official.mean": str(root / "Mean.npy"),
            "official.std": str(root / "Std.npy"), "official.tmr_stats": "",
            "official.text_model": "distilbert-base-uncased"}


def stages_run(log: str) -> set[str]:
    """The stages ``dvc repro`` ran (``Running stage 'name':``)."""
    return set(re.findall(r"Running stage '([^']+)'", log))


def test_dvc_repro_in_official_mode_trains_nothing(golden: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_distilbert(tmp_path / "hf" / "hub", tuple(w for a in ACTIONS for w in a.split()))
    for name, value in {"HF_HOME": tmp_path / "hf", "HF_HUB_CACHE": tmp_path / "hf" / "hub", "HF_HUB_OFFLINE": 1,
                        "TRANSFORMERS_OFFLINE": 1}.items():
        monkeypatch.setenv(name, str(value))
    (tmp_path / "release").mkdir()
    overrides = {
        **write_release_files(golden, tmp_path / "release"),
        "compute.device": "cpu",
        "evaluate.batch_size": 8, "evaluate.compare": [["real", "lgtm"]], "evaluate.max_captions": 8,
        "evaluate.replications": 2, "evaluate.mm_texts": 0,
        "evaluate.variants": ["lgtm"], "evaluate.sampling": {"sampler": "ddim", "steps": 2}, "evaluate.rows": [],
        "evaluate.curve.items": 8, "evaluate.curve.reference": "ddim_2",
        "evaluate.curve.points": [{"name": "ddim_2", "sampler": "ddim", "steps": 2}],
        "prompt_study.pairs": "prompts/tiny_pairs.yaml", "prompt_study.samples": 2, "prompt_study.batch_size": 4,
        "prompt_study.sampling": {"steps": 2}, "prompt_study.guidance.sweep": [],
    }
    ws = make_workspace(tmp_path / "ws", overrides=overrides)
    (ws / "prompts" / "tiny_pairs.yaml").write_text(yaml.safe_dump(tiny_design(), sort_keys=False))
    run([sys.executable, "-m", "tools.switch_source", "official"], ws)  # the one switch (params.yaml in place)
    switched = yaml.safe_load((ws / "params.yaml").read_text())
    assert switched["models"]["source"] == "official" and switched["embed_texts"]["encoder"] == "distilbert"

    log = dvc("repro", *TARGETS, cwd=ws, timeout=1800)
    ran = stages_run(log)
    assert ran == {"download", "poses", "features", "split_texts", "embed_texts", *TARGETS}, log
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert not [s for s in lock if s.startswith(("train_", "eval_tmr"))], sorted(lock)
    assert not (ws / "data" / "lgtm").exists() and not (ws / "data" / "tmr").exists()

    manifest = json.loads((ws / "data/official/manifest.json").read_text())
    assert manifest["lgtm"]["forward_max_diff"] == 0.0 and len(manifest["tmr"]) == 7
    meta = json.loads((ws / "data/embeddings/meta.json").read_text())
    assert meta["encoder"] == "distilbert:distilbert-base-uncased" and meta["token_dim"] == 768
    assert np.load(ws / "data/embeddings/tokens.npy", mmap_mode="r").dtype == np.float32
    metrics = json.loads((ws / "metrics/evaluate.json").read_text())
    assert np.isfinite(metrics["lgtm"]["fid"]["mean"]) and "right_arm.similarity" in metrics["lgtm"]
    assert (ws / "data/evaluate/report.md").is_file() and (ws / "data/prompt_study/report.html").is_file()
    study = json.loads((ws / "data/prompt_study/results.json").read_text())
    assert study["meta"]["lgtm"] == "data/official/lgtm"

    out = ws / "outputs" / "wave"  # the workspace holds no trained LGTM (asserted above): this is the released one
    run([sys.executable, "-m", "tools.generate", "--text", "a person waves the right hand", "--frames", "30",
         "--steps", "2", "--no-video", "--out", str(out)], ws)
    joints = np.load(out / "joints.npy")
    assert joints.shape == (30, 22, 3) and np.isfinite(joints).all()
    assert json.loads(dvc("status", "--json", *TARGETS, cwd=ws)) == {}
