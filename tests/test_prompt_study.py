"""The IK-vs-FK prompt study on hand-built motions: winners, intervals, reports; the pairs file; the stage glue."""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from motion.core.errors import DataError
from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.parts import PART_NAMES
from motion.core.sampling import SamplingConfig
from motion.core.skeleton import JOINT_INDEX, NUM_JOINTS
from motion.eval.confidence import welch_test
from motion.study.constraints import CONSTRAINTS, heading
from motion.study.prompt_study import (
    PromptPair,
    StudySettings,
    aggregate,
    compare,
    dvc_metrics,
    load_pairs,
    run_study,
    winner,
)
from motion.study.report import html_report, write_study
from tests.support.params import write_params

REPO = Path(__file__).resolve().parents[1]
J = JOINT_INDEX
UPPER_BODY = [J[n] for n in ("spine2", "spine3", "neck", "head", "left_collar", "right_collar", "left_shoulder",
                             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")]


def rest_pose() -> np.ndarray:
    """(22, 3) the target skeleton at rest, its lowest joint on the floor."""
    rest = forward_kinematics(axis_angle_to_matrix(np.zeros((NUM_JOINTS, 3))), np.zeros(3))
    return rest - np.array([0.0, rest[:, 1].min(), 0.0])


def touch_shoulder(distance: float, frames: int) -> np.ndarray:
    """The right wrist moves straight towards the left shoulder until ``distance`` metres from it, and back."""
    x = np.repeat(rest_pose()[None], frames, axis=0)
    shoulder, wrist = x[0, J["left_shoulder"]], x[0, J["right_wrist"]]
    target = shoulder + distance * (wrist - shoulder) / np.linalg.norm(wrist - shoulder)
    w = np.minimum(1.0, 2.0 * np.sin(np.linspace(0, np.pi, frames)))[:, None]  # holds the target mid-motion
    x[:, J["right_wrist"]] = (1 - w) * x[:, J["right_wrist"]] + w * target
    return x


def pitch_torso(degrees: float, frames: int) -> np.ndarray:
    """The upper body (spine2 upwards) rotates forward about spine1 up to ``degrees`` from vertical and back."""
    x = np.repeat(rest_pose()[None], frames, axis=0)
    spine = x[0, J["spine1"]] - x[0, J["pelvis"]]
    lean0 = np.degrees(np.arctan2(np.hypot(spine[0], spine[2]), spine[1]))  # rest spine is not quite vertical
    axis = np.cross([0.0, 1.0, 0.0], heading(x[:1])[0])
    pivot = x[0, J["pelvis"]]
    for t, w in enumerate(np.sin(np.linspace(0, np.pi, frames))):
        r = Rotation.from_rotvec(np.radians(w * (degrees - lean0)) * axis / np.linalg.norm(axis))
        x[t, [J["spine1"]] + UPPER_BODY] = r.apply(x[t, [J["spine1"]] + UPPER_BODY] - pivot) + pivot
    return x


def lift_right_foot(seconds: float, frames: int, height: float = 0.3) -> np.ndarray:
    """The right knee, ankle and toes go up by ``height`` for ``seconds`` from frame 5, the left foot stays down."""
    x = np.repeat(rest_pose()[None], frames, axis=0)
    up = slice(5, 5 + int(round(seconds * 20)))
    x[up, [J["right_knee"], J["right_ankle"], J["right_foot"]], 1] += height
    return x


def fake_sampler(calls: list[tuple[str, int, int, int]]):  # noqa: ANN201
    """IK phrasings touch the shoulder and pitch to 45 degrees better; the FK phrasing holds the foot up longer."""
    def one(prompt: str, frames: int, rng: np.random.Generator) -> np.ndarray:
        ik = prompt.startswith("IK")
        if "shoulder" in prompt:
            return touch_shoulder((0.03 if ik else 0.30) + 0.02 * rng.random(), frames)
        if "torso" in prompt:
            return pitch_torso((44.0 if ik else 20.0) + 2.0 * rng.random(), frames)
        return lift_right_foot((0.5 if ik else 1.2) + 0.05 * rng.integers(0, 3), frames)

    def sample(prompts: list[str], parts: list[dict[str, str]], frames: list[int], seed: int) -> list[np.ndarray]:
        calls.extend(zip(prompts, frames, [seed] * len(prompts)))
        assert all(set(p) == set(PART_NAMES) for p in parts)
        return [one(prompt, n, np.random.default_rng([seed, k, zlib.crc32(prompt.encode())]))
                for k, (prompt, n) in enumerate(zip(prompts, frames))]
    return sample


def study_settings(samples: int, seed: int = 0, ci: str = "bootstrap", n_resamples: int = 10000) -> StudySettings:
    """The study's settings in a test (95% intervals)."""
    return StudySettings(samples, seed, ci, n_resamples, 0.05)


PAIRS = [PromptPair("1", "IK touch the left shoulder", "FK swing the arm, shoulder", "touch_shoulder", 30),
         PromptPair("4", "IK torso to 45 degrees", "FK tilt the torso", "torso_pitch", 30),
         PromptPair("2", "IK foot up", "FK thigh up", "foot_lift", 40)]


def similarity(text: str, joints: np.ndarray) -> float:
    """A deterministic stand-in for TMR: IK prompts score 0.6, FK ones 0.4, plus a joint-dependent bit."""
    return (0.6 if text.startswith("IK") else 0.4) + 0.01 * float(np.tanh(joints[..., 1].mean()))


def splitter(calls: list[str]):  # noqa: ANN201
    """Every part gets the prompt; records the prompts it split."""
    def split(prompt: str) -> dict[str, str]:
        calls.append(prompt)
        return {p: f"{p}: {prompt}" for p in PART_NAMES}
    return split


@pytest.fixture(scope="module")
def study():  # noqa: ANN201
    """The study of PAIRS on the fake sampler, K = 5, bootstrap intervals."""
    samples, splits = [], []
    run = run_study(PAIRS, fake_sampler(samples), splitter(splits), similarity,
                    study_settings(samples=5, seed=3, n_resamples=2000), progress=False)
    return run, aggregate(run), samples, splits


def test_samples_seeds_and_part_texts(study) -> None:  # noqa: ANN001
    run, result, samples, splits = study
    assert len(run.records) == 3 * 2 * 5
    assert sorted(splits) == sorted(p.prompt(ph) for p in PAIRS for ph in ("ik", "fk"))  # one split per prompt
    assert samples == [(p.prompt(ph), p.frames, 3) for p in PAIRS for ph in ("ik", "fk") for _ in range(5)]
    assert [r["sample"] for r in run.records[:6]] == [0, 1, 2, 3, 4, 0] and {r["seed"] for r in run.records} == {3}
    assert result["part_texts"]["1"]["ik"]["head"] == f"head: {PAIRS[0].ik}"
    record = run.records[0]
    assert set(record["plausibility"]) == {"foot_sliding", "foot_skating_ratio", "ground_penetration",
                                           "bone_length_drift"}
    assert record["constraint"]["min_distance"] == record["primary"] and record["tmr_similarity"] > 0.5
    assert run.motions[("2", "fk")][0].shape == (40, NUM_JOINTS, 3)


def test_winners_respect_the_direction_of_each_constraint(study) -> None:  # noqa: ANN001
    _, result, _, _ = study
    by_id = {p["id"]: p for p in result["pairs"]}
    assert [p["id"] for p in result["pairs"]] == ["1", "4", "2"]  # file order kept
    ik, fk = by_id["1"]["summary"]["primary"]["ik"], by_id["1"]["summary"]["primary"]["fk"]
    assert 0.02 < ik["mean"] < 0.06 and 0.29 < fk["mean"] < 0.33  # metres, the hand-built distances
    assert by_id["1"]["winner"] == "ik" and by_id["1"]["significant"]  # lower distance is better
    pitch = by_id["4"]["summary"]["constraint.peak_pitch"]
    assert pitch["ik"]["mean"] == pytest.approx(45.0, abs=1.5) and pitch["fk"]["mean"] == pytest.approx(21, abs=1.5)
    assert by_id["4"]["winner"] == "ik" and by_id["4"]["significant"]  # lower error is better
    hold = by_id["2"]["summary"]["primary"]
    assert 0.45 <= hold["ik"]["mean"] <= 0.65 and 1.15 <= hold["fk"]["mean"] <= 1.35
    assert by_id["2"]["winner"] == "fk" and by_id["2"]["significant"]  # higher hold time is better
    assert result["tally"] == {"ik_wins": 2, "fk_wins": 1, "ties": 0, "ik_significant_wins": 2,
                               "fk_significant_wins": 1}
    for p in result["pairs"]:
        c = p["comparisons"]["primary"]
        assert c["method"] == "bootstrap" and c["ci_low"] <= c["difference"] <= c["ci_high"]
        means = p["summary"]["primary"]
        assert c["difference"] == pytest.approx(means["ik"]["mean"] - means["fk"]["mean"])
        assert p["comparisons"]["tmr_similarity"]["difference"] == pytest.approx(0.2, abs=0.02)


def test_welch_intervals_and_ties() -> None:
    a, b = [0.1, 0.2, 0.15, 0.12], [0.3, 0.35, 0.28, 0.4]
    got = compare(a, b, study_settings(samples=4, ci="welch"), "x")
    assert got == welch_test(a, b)
    boot = compare(a, b, study_settings(samples=4, seed=1, n_resamples=500), "x")
    assert boot.ci_high < 0 and boot == compare(a, b, study_settings(samples=4, seed=1, n_resamples=500), "x")
    assert winner(-0.1, higher_is_better=False) == "ik" and winner(-0.1, higher_is_better=True) == "fk"
    assert winner(0.0, True) == "tie"
    same = run_study(PAIRS[:1], lambda p, parts, f, s: [touch_shoulder(0.1, n) for n in f],
                     lambda p: {q: p for q in PART_NAMES},
                     None, study_settings(samples=3, ci="welch"), progress=False)
    pair = aggregate(same)["pairs"][0]
    assert pair["winner"] == "tie" and not pair["significant"]
    assert pair["comparisons"]["tmr_similarity"] is None and pair["summary"]["tmr_similarity"]["ik"]["n"] == 0
    with pytest.raises(ValueError, match="Welch"):
        study_settings(samples=1, ci="welch")


def test_bad_samples_are_named() -> None:
    split = lambda p: {q: p for q in PART_NAMES}  # noqa: E731
    with pytest.raises(ValueError, match="pair 1 ik sample 1: .*shape"):
        run_study(PAIRS[:1], lambda p, parts, f, s: [touch_shoulder(0.1, f[0]), np.zeros((1, NUM_JOINTS, 3))] * 2,
                  split, None, study_settings(samples=2), progress=False)
    with pytest.raises(ValueError, match="the sampler returned 1 motions, 4 were asked for"):
        run_study(PAIRS[:1], lambda p, parts, f, s: [touch_shoulder(0.1, f[0])], split, None,
                  study_settings(samples=2), progress=False)


def test_reports_plots_and_videos(study, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.oracles.video import decode_first_frame

    run, result, _, _ = study
    files = write_study(tmp_path, run, result, {"splitter": "fake"}, video_sample=1, progress=False)
    for pid in ("1", "2", "4"):
        assert (tmp_path / f"plots/pair_{pid}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        frame = decode_first_frame(tmp_path / f"videos/pair_{pid}.mp4")
        assert frame.shape[1] == 960 and frame.std() > 0  # two 480-pixel panels side by side
        assert files[f"frame_{pid}"].read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "report.md").read_text()
    assert "| 1 | IK touch the left shoulder | FK swing the arm, shoulder |" in md
    assert "IK-like (significant)" in md and "FK-like (significant)" in md
    assert "](plots/pair_4.png)" in md and "videos/pair_2.mp4" in md
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and page.count("data:video/mp4;base64,") == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["samples"]) == 30 and saved["meta"] == {"splitter": "fake"}
    with np.load(tmp_path / "joints.npz") as motions:
        assert np.array_equal(motions["4_ik_2"], run.motions[("4", "ik")][2])
    page = html_report(result, tmp_path, saved["files"]["plots"], saved["files"]["videos"], {}, embed_video_bytes=0)
    assert "data:video/mp4" not in page and "src='videos/pair_1.mp4'" in page
    metrics = dvc_metrics(result)
    assert metrics["pairs"]["2"]["winner"] == "fk" and metrics["tally"]["ik_wins"] == 2
    assert metrics["pairs"]["1"]["ci_low"] <= metrics["pairs"]["1"]["difference"] <= metrics["pairs"]["1"]["ci_high"]


# ----------------------------------------------------------------------------- the pairs file

def test_the_repository_pairs_file_loads() -> None:
    pairs = load_pairs(REPO / "prompts" / "ik_fk_pairs.yaml")
    assert [p.id for p in pairs] == ["1", "2", "3", "4", "5"]
    assert [p.constraint for p in pairs] == ["touch_shoulder", "foot_lift", "planted_reach", "torso_pitch",
                                             "raise_then_touch"]
    assert all(p.constraint in CONSTRAINTS and p.frames >= 40 for p in pairs)
    assert pairs[0].ik == "a man raises the right hand and touches the left shoulder"
    assert pairs[4].fk == "a man lifts the left arm upward, then bends the elbow to rest the hand"


@pytest.mark.parametrize("change, message", [
    ({"constraint": "touch_nose"}, "unknown constraint 'touch_nose'.*touch_shoulder"),
    ({"frames": "many"}, "frames must be an integer"),
    ({"ik": ""}, "'ik' must be a non-empty caption"),
    ({"extra": 1}, "unknown keys \\['extra'\\]"),
])
def test_bad_pairs_name_the_file(tmp_path: Path, change: dict, message: str) -> None:
    item = {"id": "7", "ik": "a man touches the nose", "fk": "a man bends the elbow", "constraint": "touch_shoulder",
            "frames": 60}
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump({"pairs": [{**item, **change}]}))
    with pytest.raises(DataError, match=f"{path}.*{message}"):
        load_pairs(path)


def test_pairs_file_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.yaml"
    with pytest.raises(DataError, match="pairs.yaml: prompt pair file is missing"):
        load_pairs(path)
    path.write_text("pairs: [1, 2")
    with pytest.raises(DataError, match="not valid YAML"):
        load_pairs(path)
    path.write_text("- id: 1\n")
    with pytest.raises(DataError, match="top-level 'pairs:'"):
        load_pairs(path)
    item = {"id": 1, "ik": "a", "fk": "b", "constraint": "foot_lift", "frames": 40}
    path.write_text(yaml.safe_dump({"pairs": [item, item]}))
    with pytest.raises(DataError, match="duplicate pair ids \\['1'\\]"):
        load_pairs(path)
    item.pop("fk")
    path.write_text(yaml.safe_dump({"pairs": [item]}))
    with pytest.raises(DataError, match="missing keys \\['fk'\\]"):
        load_pairs(path)


# ----------------------------------------------------------------------------- the stage on tiny trained models

class WordEncoder:
    """A deterministic stand-in for the embed_texts encoder: one 8-d token per word."""

    name, cache_id, token_dim, sentence_dim = "fake", "fake:words", 8, 8

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token features per word (seeded by the word) and their normalised mean."""
        tokens = [np.stack([np.random.default_rng(zlib.crc32(w.encode())).standard_normal(8) for w in t.split()])
                  .astype(np.float32) for t in texts]
        return tokens, np.stack([t.mean(0) / np.linalg.norm(t.mean(0)) for t in tokens])


def write_tiny_pipeline(root: Path) -> Path:
    """A params file over a random tiny LGTM (window 24), a tiny whole-body TMR, embeddings and feature stats."""
    import torch

    from models.checkpoint import save_model
    from models.lgtm import LGTM, LGTMConfig
    from models.tmr import TMR, TMRConfig, save_tmr
    from motion.core.io import write_json
    from motion.data.features import extract_features
    from motion.text.cache import ArrayCache
    from motion.text.embeddings import write_embeddings

    torch.manual_seed(0)
    cfg = LGTMConfig(dim=16, conformer_blocks=1, attention_layers=1, heads=2, optimizer_ff=32, smoothnet_hidden=32,
                     smoothnet_res_hidden=16, smoothnet_blocks=1, dropout=0.0, window=24, text_dim=8)
    save_model(LGTM(cfg).eval(), root / "lgtm" / "model.safetensors")
    write_json(root / "lgtm" / "config.json", {"model": cfg.to_dict()})
    save_tmr(TMR(TMRConfig(motion_dim=263, token_dim=8, latent_dim=4, ff_size=8, num_layers=1, num_heads=2,
                           dropout=0.0)), root / "tmr" / "whole_body")
    mean = extract_features(pitch_torso(10.0, 30)).mean(axis=0)  # samples scatter around a standing pose
    std = np.full_like(mean, 0.02)
    (root / "features").mkdir()
    np.save(root / "features" / "Mean.npy", mean)
    np.save(root / "features" / "Std.npy", std)
    np.savez(root / "features" / "part_stats.npz", whole_body_mean=mean, whole_body_std=std + 1.0)
    known = ["a man raises the right hand and touches the left shoulder"]
    cache = ArrayCache(root / "cache" / "embeddings")
    cache.add(known, *WordEncoder().encode(known))
    write_embeddings(root / "embeddings", known, cache, WordEncoder())
    pairs = load_pairs(REPO / "prompts" / "ik_fk_pairs.yaml")
    (root / "pairs.yaml").write_text(yaml.safe_dump({"pairs": [
        {"id": p.id, "ik": p.ik, "fk": p.fk, "constraint": p.constraint, "frames": f}
        for p, f in ((pairs[0], 30),)]}))
    paths = {"lgtm": root / "lgtm", "tmr": root / "tmr", "prompt_study": root / "out", "features": root / "features",
             "embeddings": root / "embeddings", "cache": root / "cache", "metrics": root / "m"}
    return write_params(root, {
        **{f"paths.{k}": str(v) for k, v in paths.items()}, "split_texts.backend": "rules",
        "profile": "cpu", "compute.device": "cpu", "compute.threads.prompt_study": 1,
        "lgtm.text_latents": "random",
        "lgtm.sampling": {"sampler": "ddim", "steps": 1000, "eta": 0.0, "guidance_scale": 1.0,
                          "timestep_spacing": "trailing"},
        "prompt_study.pairs": str(root / "pairs.yaml"), "prompt_study.noise_seed": 0,
        "prompt_study.split": "", "prompt_study.ci": "welch",
        "prompt_study.samples": 2, "prompt_study.batch_size": 3, "prompt_study.sampling": {"steps": 2}})


def test_stage_on_tiny_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import motion.text.embeddings as embeddings
    from stages.prompt_study import main

    monkeypatch.setattr(embeddings, "make_encoder", lambda section: WordEncoder())
    monkeypatch.setenv("LGTM_PARAMS", str(write_tiny_pipeline(tmp_path)))
    main()
    assert "report.html" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "m" / "prompt_study.json").read_text())
    assert metrics["ci"] == "welch" and metrics["samples_per_prompt"] == 2 and metrics["sampling_steps"] == 2
    assert metrics["splitter"] == "rules" and set(metrics["pairs"]) == {"1"}
    for p in metrics["pairs"].values():
        assert p["winner"] in ("ik", "fk", "tie") and -1 <= p["ik_tmr_similarity"] <= 1
        assert p["ci_low"] <= p["difference"] <= p["ci_high"]
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert saved["meta"]["frames"] == {"1": {"requested": 30, "used": 24}}  # clamped to the model's window
    assert saved["part_texts"]["1"]["ik"]["right_arm"] == "raises the right hand"  # the rules splitter's
    assert [(r["phrasing"], r["sample"]) for r in saved["samples"]] == [("ik", 0), ("ik", 1), ("fk", 0), ("fk", 1)]
    first = np.load(out / "joints.npz")
    assert first["1_ik_0"].shape == (24, NUM_JOINTS, 3) and not np.array_equal(first["1_ik_0"], first["1_ik_1"])

    assert (out / "videos" / "pair_1.mp4").is_file() and (out / "frames" / "pair_1.png").is_file()
    from models.inference import LGTMGenerator, TrainedLGTM, features_to_joints, part_sampler, study_sampler

    trained = TrainedLGTM(tmp_path / "lgtm", tmp_path / "features", tmp_path / "tmr", tmp_path / "embeddings",
                          "random", 0)
    cfg = SamplingConfig("ddim", 2, 0.0, 1.0)
    generator = LGTMGenerator.load(trained, "cpu", batch_size=2)
    batched = study_sampler(generator, cfg)
    single = part_sampler(generator, cfg, seed=0)  # the generate command's glue
    parts = saved["part_texts"]["1"]["ik"]
    alone = features_to_joints(single(PAIRS[0].ik, parts, 24), generator.mean, generator.std)[1]
    motions = batched([PAIRS[0].ik] * 3, [parts] * 3, [24, 20, 24], 0)  # batches of 2: seeds 0, 1
    assert generator.window == 24 and [len(m) for m in motions] == [24, 20, 24]
    # batch composition changes float rounding (~7e-4 after the root integration at 2 trailing steps); other
    # noise changes the motion by ~4e-2
    assert np.allclose(motions[0], alone, atol=2e-3) and np.abs(motions[0] - motions[2]).max() > 1e-2
    main()  # reruns are deterministic
    again = np.load(out / "joints.npz")
    assert all(np.array_equal(first[k], again[k]) for k in first.files)
    assert json.loads((tmp_path / "m" / "prompt_study.json").read_text()) == metrics
    (tmp_path / "pairs.yaml").write_text("pairs:\n  - {id: 9, ik: a, fk: b, constraint: nose, frames: 20}\n")
    with pytest.raises(SystemExit, match="pairs.yaml: pair '9': unknown constraint 'nose'"):
        main()
