"""Released weights end to end: import_official, then evaluate, prompt_study and tools.generate with
``models.source: official``, on official-format files (the golden LGTM checkpoint and T2M evaluator, plus
official-layout TMR fakes sized to the checkpoint's 256-d text latents); and the DVC graph of that mode."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motion.core.errors import DataError
from motion.core.parts import PART_INDICES, TEXT_SLOTS
from tests.support.official import (
    ACTIONS,
    FakeDistilBert,
    tiny_design,
    write_glove,
    write_official_tmrs,
    write_test_split,
    write_tmr_stats,
)
from tests.support.params import real_params, with_overrides

REPO = Path(__file__).resolve().parents[1]
LATENT = 256  # the golden LGTM's text adapters take 256-d latents (as the paper's)


def write_release(golden: Path, root: Path, token_dtype: str = "float32") -> Path:
    """Official-format files, a test split, DistilBERT-like token features and a params file in official mode."""
    from motion.text.cache import ArrayCache
    from motion.text.embeddings import write_embeddings

    paths = write_test_split(root, num_motions=8)
    write_official_tmrs(root / "TMR_models", LATENT)
    mean, std = np.load(paths["features"] / "Mean.npy"), np.load(paths["features"] / "Std.npy")
    write_tmr_stats(root / "TMR_stats", mean, std * 1.5)
    texts = sorted({f"a person {a}" for a in ACTIONS} | set(ACTIONS) | {"does nothing"})
    cache = ArrayCache(root / "cache" / "tokens", np.float32)
    cache.add(texts, *FakeDistilBert().encode(texts))
    write_embeddings(root / "embeddings", texts, cache, FakeDistilBert(), np.dtype(token_dtype))
    glove = write_glove(root / "glove", [w for t in texts for w in t.split()])
    (root / "meta").mkdir()
    np.save(root / "meta" / "mean.npy", mean)
    np.save(root / "meta" / "std.npy", std)
    (root / "pairs.yaml").write_text(yaml.safe_dump(tiny_design()))
    out = root / "official"
    dirs = {**paths, "embeddings": root / "embeddings", "cache": root / "cache", "metrics": root / "metrics",
            "evaluate": root / "evaluate", "prompt_study": root / "study", "lgtm": root / "trained_lgtm",
            "tmr": root / "trained_tmr"}
    params = with_overrides({
        **{f"paths.{k}": str(v) for k, v in dirs.items()},
        "models": {"source": "official", "lgtm": str(out / "lgtm"), "runs": str(out / "lgtm"), "tmr": str(out / "tmr"),
                   "evaluator": str(out / "tmr")},
        "official.checkpoint": str(next((golden / "lgtm_small").rglob("*.ckpt"))),
        "official.tmr_dir": str(root / "TMR_models"), "official.tmr_stats": str(root / "TMR_stats"),
        "official.mean": str(paths["features"] / "Mean.npy"), "official.std": str(paths["features"] / "Std.npy"),
        "official.text_model": "", "official.out": str(out),
        "embed_texts.encoder": "distilbert", "embed_texts.token_dtype": token_dtype,
        "profile": "cpu", "compute.device": "cpu", "split_texts.backend": "rules",
        "captions.min_frames": 40, "captions.max_frames": 200,
        "evaluate.batch_size": 8, "evaluate.compare": [["real", "lgtm"]],
        **{f"evaluate.{k}": v for k, v in {"protocol": "lgtm", "max_captions": 8, "replications": 2,
                                            "generation_seeds": 1, "mm_texts": 0, "variants": ["lgtm"],
                                            "sampling": {"sampler": "ddim", "steps": 2}, "rows": [],
                                            "curve": {"items": 8, "replications": 2, "reference": "ddim_2",
                                                      "points": [{"name": "ddim_2", "sampler": "ddim", "steps": 2}]},
                                            "t2m": {"checkpoint": str(golden / "t2m_evaluator_small.tar"),
                                                    "glove_dir": str(glove), "meta_dir": str(root / "meta")}}.items()},
        "prompt_study.pairs": str(root / "pairs.yaml"), "prompt_study.samples": 2, "prompt_study.batch_size": 4,
        "prompt_study.sampling": {"steps": 2}, "prompt_study.split": "rules",
        "prompt_study.guidance.sweep": [],
    })
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_import_evaluate_study_and_generate_on_the_release(golden: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    import motion.text.embeddings as embeddings
    from stages import evaluate, import_official, prompt_study
    from tools import generate

    monkeypatch.setattr(embeddings, "make_encoder", lambda settings: FakeDistilBert())  # new prompts' tokens
    monkeypatch.setenv("LGTM_PARAMS", str(write_release(golden, tmp_path)))
    import_official.main()
    manifest = json.loads((tmp_path / "official" / "manifest.json").read_text())
    assert set(manifest["tmr"]) == set(TEXT_SLOTS) and manifest["lgtm"]["forward_max_diff"] == 0.0
    assert manifest["tmr_normalisation"].startswith("TMR statistics")
    with np.load(tmp_path / "official" / "tmr" / "part_stats.npz") as stats:  # TMR's stats, not HumanML3D's
        std = np.load(tmp_path / "features" / "Std.npy")
        assert np.allclose(stats["whole_body_std"], std * 1.5) and stats["head_mean"].shape == (24,)

    evaluate.main()
    metrics = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert np.isfinite(metrics["lgtm"]["fid"]["mean"]) and metrics["real"]["fid"]["mean"] == pytest.approx(0, abs=1e-6)
    assert "right_arm.similarity" in metrics["tmr"]["lgtm"]  # T2M leads, TMR's part metrics beside it
    report = (tmp_path / "evaluate" / "report.md").read_text()
    assert "## Whole-body metrics: `t2m` (primary)" in report and "conditioning TMRs" in report

    prompt_study.main()
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert saved["meta"]["lgtm"] == str(tmp_path / "official" / "lgtm")
    assert saved["meta"]["frames"] == {"touch_shoulder": {"requested": 40, "used": 40}}  # the released window is 196
    joints = np.load(tmp_path / "study" / "joints.npz")
    assert joints["1_ik_0"].shape == (40, 22, 3) and np.isfinite(joints["1_ik_0"]).all()

    out = tmp_path / "motion"
    generate.main(["--text", "a person waves the right hand", "--frames", "30", "--steps", "2", "--no-video",
                   "--out", str(out)])
    assert np.load(out / "joints.npy").shape == (30, 22, 3)
    assert json.loads((out / "parts.json").read_text())["parts"]["right_arm"] == "waves the right hand"
    capsys.readouterr()


def test_official_mode_refuses_float16_or_foreign_tokens(golden: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The official TMRs read float32 DistilBERT tokens: anything else is one line naming the setting."""
    from models.inference import ModelFolders, check_official_tokens

    write_release(golden, tmp_path, token_dtype="float16")
    with pytest.raises(DataError, match="float16.*set embed_texts.token_dtype: float32"):
        check_official_tokens(tmp_path / "embeddings", tmp_path / "official" / "tmr")
    meta = json.loads((tmp_path / "embeddings" / "meta.json").read_text())
    (tmp_path / "embeddings" / "meta.json").write_text(json.dumps({**meta, "encoder": "minilm:all-MiniLM-L6-v2"}))
    with pytest.raises(DataError, match="minilm.*set embed_texts.encoder: distilbert"):
        ModelFolders.released(tmp_path / "o" / "lgtm", tmp_path / "o" / "tmr", tmp_path / "embeddings", 0)


def test_tmr_statistics_layout_and_bad_files(tmp_path: Path) -> None:
    """TMR's stats/ folder feeds the TMR normalisation; a missing or misshapen file is one line naming it."""
    from models.official.release import HUMANML3D_STATS, tmr_part_stats

    mean, std = np.linspace(-1, 1, 263).astype(np.float32), np.linspace(0.5, 2, 263).astype(np.float32)
    np.save(tmp_path / "Mean.npy", mean)
    np.save(tmp_path / "Std.npy", std)
    stats, kind = tmr_part_stats(tmp_path / "Mean.npy", tmp_path / "Std.npy", None)  # LGTM's evaluation
    assert kind == HUMANML3D_STATS and np.array_equal(stats["left_leg_std"], std[PART_INDICES["left_leg"]])
    write_tmr_stats(tmp_path / "stats", mean + 1, std)
    stats, kind = tmr_part_stats(tmp_path / "Mean.npy", tmp_path / "Std.npy", tmp_path / "stats")
    assert kind.startswith("TMR statistics") and np.allclose(stats["whole_body_mean"], mean + 1)
    head = tmp_path / "stats" / "humanml3d_head" / "guoh3dfeats"
    torch.save(torch.zeros(48), head / "std.pt")
    with pytest.raises(DataError, match="humanml3d_head/guoh3dfeats/std.pt: must be a tensor of 24 finite values"):
        tmr_part_stats(tmp_path / "Mean.npy", tmp_path / "Std.npy", tmp_path / "stats")
    (head / "mean.pt").unlink()
    with pytest.raises(DataError, match="mean.pt: TMR motion statistics of head are missing -- fix: point "
                                        "official.tmr_stats"):
        tmr_part_stats(tmp_path / "Mean.npy", tmp_path / "Std.npy", tmp_path / "stats")


def test_half_made_switches_are_one_line_errors(tmp_path: Path) -> None:
    from motion.core.settings import SettingsError
    from stages.settings import parse_settings

    official = with_overrides({"models.source": "official"})
    with pytest.raises(SettingsError, match="models.source is official but models.runs is a trained folder: "
                                            "set models.runs: data/official/lgtm"):
        parse_settings(official)
    moved = real_params()
    moved["paths"]["tmr"] = "elsewhere/tmr"
    with pytest.raises(SettingsError, match="models.source is trained but models.tmr is data/tmr, not paths.tmr"):
        parse_settings(moved)


def test_import_official_without_a_release_writes_a_labelled_stub(tmp_path: Path) -> None:
    """The default pipeline: import_official only records that nothing is configured (quickly)."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(with_overrides({"official.out": str(tmp_path / "official")}), sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "stages.import_official"], cwd=REPO, capture_output=True, text=True,
                          env={"LGTM_PARAMS": str(params), "PATH": str(Path(sys.executable).parent)}, check=False)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "official").iterdir()] == ["manifest.json"]
    assert json.loads((tmp_path / "official" / "manifest.json").read_text())["configured"] is False
    official = with_overrides({"official.out": str(tmp_path / "o2"), "models": {
        "source": "official", "lgtm": str(tmp_path / "o2" / "lgtm"), "runs": str(tmp_path / "o2" / "lgtm"),
        "tmr": str(tmp_path / "o2" / "tmr"), "evaluator": str(tmp_path / "o2" / "tmr")},
        "embed_texts.encoder": "distilbert", "embed_texts.token_dtype": "float32"})
    params.write_text(yaml.safe_dump(official, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "stages.import_official"], cwd=REPO, capture_output=True, text=True,
                          env={"LGTM_PARAMS": str(params), "PATH": str(Path(sys.executable).parent)}, check=False)
    assert done.returncode != 0 and "official.checkpoint is not set" in done.stderr
    assert not (tmp_path / "o2").exists()


def dvc_graph(tmp_path: Path, params: dict, target: str) -> str:
    """``dvc dag --dot target`` of this dvc.yaml under ``params`` (a bare DVC repo in ``tmp_path``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    return subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot", target], cwd=tmp_path, check=True,
                          capture_output=True, text=True).stdout


def test_the_official_source_needs_no_training_stage(tmp_path: Path) -> None:
    official = with_overrides({"models": {"source": "official", "lgtm": "data/official/lgtm",
                                          "runs": "data/official/lgtm", "tmr": "data/official/tmr",
                                          "evaluator": "data/official/tmr"}})
    for target in ("evaluate", "prompt_study"):
        graph = dvc_graph(tmp_path / target, official, target)
        assert '"import_official" -> ' in graph and "train_" not in graph and "eval_tmr" not in graph
    trained = dvc_graph(tmp_path / "trained", real_params(), "evaluate")
    assert '"train_lgtm" -> "evaluate"' in trained and '"train_tmr@head" -> "evaluate"' in trained
    assert "import_official" not in trained
