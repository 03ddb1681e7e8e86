"""The IK-vs-FK prompt study on hand-built motions: arms, tests, reports (opened in Chromium); the design file;
the held-out vocabulary; the stage glue."""
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
from motion.core.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from motion.study.constraints import heading
from motion.study.prompt_study import (
    FK_SEED_OFFSET,
    StudySettings,
    aggregate,
    dvc_metrics,
    load_design,
    parse_design,
    run_study,
)
from motion.study.report import html_report, write_study
from motion.study.vocabulary import vocabulary_overlap, words
from tests.support.params import write_params
from tests.support.stores import write_caption_files

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


def parts_of(text: str) -> dict[str, str]:
    """Six part texts of a test prompt."""
    return {p: f"{p}: {text}" for p in PART_NAMES}


def design_dict(frames: int = 30) -> dict:
    """Three constraints: two pairs for touch_shoulder and torso_pitch, one for foot_lift."""
    pairs = [("ts_1", "touch_shoulder"), ("ts_2", "touch_shoulder"), ("tp_1", "torso_pitch"), ("tp_2", "torso_pitch"),
             ("fl_1", "foot_lift")]
    return {
        "constraints": {
            "touch_shoulder": {"goal": "the right hand on the left shoulder", "guided": "near right_wrist "
                               "left_shoulder 0.05", "frames": frames},
            "torso_pitch": {"goal": "the torso at 45 degrees", "guided": "pitch 45", "frames": frames},
            "foot_lift": {"goal": "the right foot up", "guided": "above right_foot 0.2", "frames": frames + 10},
        },
        "pairs": [{"id": pid, "constraint": c, "ik": {"text": f"IK {pid} {c}", "parts": parts_of(f"IK {pid}")},
                   "fk": {"text": f"FK {pid} {c}", "parts": parts_of(f"FK {pid}")}} for pid, c in pairs],
    }


DESIGN = parse_design(design_dict(), "test")


def fake_motion(prompt: str, frames: int, rng: np.random.Generator, guided: bool = False) -> np.ndarray:
    """IK prompts touch the shoulder and pitch to 45 degrees better; FK ones hold the foot up longer; guided best."""
    ik = prompt.startswith("IK")
    if "touch_shoulder" in prompt:
        distance = 0.01 if guided else 0.03 if ik else 0.30
        return touch_shoulder(distance + 0.02 * rng.random(), frames)
    if "torso_pitch" in prompt:
        return pitch_torso((44.0 if ik else 20.0) + 2.0 * rng.random(), frames) + np.array([0.0, 0.5, 0.0])  # floats
    return lift_right_foot((0.5 if ik else 1.2) + 0.05 * rng.integers(0, 3), frames)


def fake_sampler(calls: list[tuple[str, int, int]]):  # noqa: ANN201
    """The unguided sampler: one motion per prompt from (seed, index, prompt)."""
    def sample(prompts: list[str], parts: list[dict[str, str]], frames: list[int], seed: int) -> list[np.ndarray]:
        calls.extend(zip(prompts, frames, [seed] * len(prompts)))
        assert all(set(p) == set(PART_NAMES) for p in parts)
        return [fake_motion(prompt, n, np.random.default_rng([seed, k, zlib.crc32(prompt.encode())]))
                for k, (prompt, n) in enumerate(zip(prompts, frames))]
    return sample


def fake_guided(calls: list[str]):  # noqa: ANN201
    """The guided sampler: the unguided motion of the same noise, moved towards the constraint."""
    def sample(prompts: list[str], parts: list[dict[str, str]], frames: list[int], seed: int,
               constraints: list[str]) -> list[np.ndarray]:
        calls.extend(constraints)
        return [fake_motion(prompt, n, np.random.default_rng([seed, k, zlib.crc32(prompt.encode())]), guided=True)
                for k, (prompt, n) in enumerate(zip(prompts, frames))]
    return sample


def similarity(text: str, joints: np.ndarray) -> float:
    """A deterministic stand-in for TMR: a joint-dependent number."""
    return 0.5 + 0.01 * float(np.tanh(joints[..., 1].mean()))


K = 6


@pytest.fixture(scope="module")
def study():  # noqa: ANN201
    """The study of DESIGN on the fake samplers, K = 6, three arms."""
    calls, guided_calls, splits = [], [], []
    run = run_study(DESIGN, fake_sampler(calls), StudySettings(K, 3, 0.05, 999), similarity,
                    guided=fake_guided(guided_calls), splitter=lambda p: splits.append(p) or parts_of(p.upper()),
                    progress=False)
    return run, aggregate(run), calls, guided_calls, splits


def test_arms_seeds_floor_and_part_texts(study) -> None:  # noqa: ANN001
    run, result, calls, guided_calls, splits = study
    assert run.arms == ("ik", "fk", "guided") and len(run.records) == 5 * 3 * K
    ik_calls = [c for c in calls if c[0].startswith("IK")]
    assert {c[2] for c in ik_calls} == {3} and {c[2] for c in calls if c[0].startswith("FK")} == {3 + FK_SEED_OFFSET}
    assert len(calls) == 2 * 5 * K and guided_calls.count("pitch 45") == 2 * K  # the guided arm gets the constraint
    assert sorted(splits) == sorted(f"{ph} {p.id} {p.constraint}" for p in DESIGN.pairs for ph in ("IK", "FK"))
    assert result["pairs"][0]["parts"]["ik"]["head"] == "head: IK ts_1"  # the given texts are used ...
    assert result["pairs"][0]["split_parts"]["ik"]["head"] == "head: IK TS_1 TOUCH_SHOULDER"  # ... the split shown
    record = next(r for r in run.records if r["pair"] == "tp_1")
    assert record["plausibility"]["floor_offset"] == pytest.approx(0.5, abs=0.02)  # the floating clip is floored
    assert min(m[..., [7, 8, 10, 11], 1].min() for m in run.motions[("tp_1", "ik")]) == pytest.approx(0.0, abs=1e-9)
    assert set(record["plausibility"]) >= {"foot_sliding", "foot_skating_ratio", "ground_penetration",
                                           "bone_length_drift", "jerk", "floating"}
    guided = [r for r in run.records if r["arm"] == "guided" and r["pair"] == "ts_1"]
    assert all(0 < r["moved"] < 0.1 for r in guided)  # moved from its FK twin (same noise)
    assert run.motions[("fl_1", "fk")][0].shape == (40, NUM_JOINTS, 3)


def test_tests_directions_holm_and_power(study) -> None:  # noqa: ANN001
    _, result, _, _, _ = study
    tests = {t["id"]: t for t in result["tests"]}
    # per pair IK vs FK: 5; per constraint pooled IK vs FK (primary, similarity) and guided vs FK: 3 x 3
    assert len(tests) == 5 + 9
    ts = tests["ik_vs_fk/touch_shoulder/pooled/primary"]
    assert ts["method"] == "stratified-monte-carlo-permutation" and ts["n_a"] == 2 * K
    assert ts["better"] == "ik" and ts["difference"] < 0 and ts["ci_high"] < 0  # lower distance is better
    assert tests["ik_vs_fk/torso_pitch/pooled/primary"]["better"] == "ik"
    foot = tests["ik_vs_fk/foot_lift/fl_1/primary"]
    assert foot["method"] == "exact-permutation" or foot["method"] == "monte-carlo-permutation"
    assert foot["difference"] < 0 and foot["better"] == "fk"  # higher hold time is better
    assert tests["guided_vs_fk/touch_shoulder/pooled/primary"]["better"] == "guided"
    assert all(t["p_holm"] >= t["p_value"] for t in tests.values())
    assert all(t["underpowered"] for t in tests.values() if t["scope"] == "pair")  # 6 vs 6 after 14 tests
    by_name = {c["name"]: c for c in result["constraints"]}
    assert by_name["touch_shoulder"]["ik_vs_fk"] is ts and by_name["touch_shoulder"]["pairs"] == ["ts_1", "ts_2"]
    s = by_name["touch_shoulder"]["summary"]["primary"]
    assert 0.02 < s["ik"]["mean"] < 0.06 and 0.29 < s["fk"]["mean"] < 0.33 and s["guided"]["mean"] < 0.035
    assert s["ik"]["low"] < s["ik"]["mean"] < s["ik"]["high"]
    assert result["tally"]["ik_better"] + result["tally"]["fk_better"] + result["tally"][
        "no_significant_difference"] == 3
    metrics = dvc_metrics(result)
    assert set(metrics["constraints"]) == {"touch_shoulder", "torso_pitch", "foot_lift"}
    assert metrics["constraints"]["touch_shoulder"]["better"] == "ik" and len(json.dumps(metrics)) < 3000


def test_binary_outcomes_use_fisher_and_two_arms_without_guidance() -> None:
    data = design_dict(frames=20)
    data["constraints"] = {"raise_then_touch": {"goal": "g", "guided": "pitch 10", "frames": 20}}
    data["pairs"] = [{**p, "constraint": "raise_then_touch"} for p in data["pairs"][:2]]
    design = parse_design(data, "test")
    still = lambda p, parts, f, s: [touch_shoulder(0.1, n) for n in f]  # noqa: E731
    run = run_study(design, still, StudySettings(4, 0, 0.05, 99), progress=False)
    assert run.arms == ("ik", "fk") and all(r[ "goal_similarity"] is None for r in run.records)
    result = aggregate(run)
    pair = result["pairs"][0]["test"]
    assert pair["method"] == "fisher-exact" and pair["p_value"] == 1.0 and pair["better"] is None
    assert pair["min_p"] == 1.0 and pair["underpowered"]  # no successes at all: nothing can be significant
    assert [t["metric"] for t in result["tests"]] == ["primary", "primary", "primary"]  # no similarity scored
    assert result["constraints"][0]["guided_vs_fk"] is None


def test_bad_samples_are_named() -> None:
    with pytest.raises(ValueError, match="samples must be >= 2"):
        StudySettings(1, 0, 0.05)
    with pytest.raises(ValueError, match="pair ts_1 ik sample 1: .*shape"):
        run_study(DESIGN, lambda p, parts, f, s: [touch_shoulder(0.1, f[0]), np.zeros((1, NUM_JOINTS, 3))] * 5,
                  StudySettings(2, 0, 0.05), progress=False)
    with pytest.raises(ValueError, match="the ik sampler returned 1 motions, 10 were asked for"):
        run_study(DESIGN, lambda p, parts, f, s: [touch_shoulder(0.1, f[0])], StudySettings(2, 0, 0.05),
                  progress=False)


def test_reports_plots_videos_and_the_page_in_chromium(study, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.oracles.video import decode_first_frame

    run, result, _, _, _ = study
    vocabulary = vocabulary_overlap({"ik": ["IK ts_1"], "fk": ["FK ts_1"]}, ["ik ts_1 touches"])
    files = write_study(tmp_path, run, result, {"data": "synthetic"}, vocabulary, video_sample=1, progress=False)
    for name in ("touch_shoulder", "torso_pitch", "foot_lift"):
        assert (tmp_path / f"plots/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = decode_first_frame(tmp_path / "videos/pair_ts_1.mp4")
    assert frame.shape[1] == 3 * 480 and frame.std() > 0  # three 480-pixel panels: IK, FK, guided
    assert files["frame_fl_1"].read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "report.md").read_text()
    assert "model trained on the project's synthetic data" in md and "tools.switch_source official" in md
    assert "| touch_shoulder: min_distance (lower is better) |" in md and "IK-like better" in md
    assert "splitter (not used)" in md and "](plots/torso_pitch.png)" in md and "videos/pair_fl_1.mp4" in md
    assert "| IK-like | 1 | 1 |" in md  # the vocabulary table: 'IK ts_1' occurs verbatim in the caption
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["samples"]) == 5 * 3 * K and saved["meta"] == {"data": "synthetic"}
    with np.load(tmp_path / "joints.npz") as motions:
        assert np.allclose(motions["tp_2_guided_2"], run.motions[("tp_2", "guided")][2], atol=1e-6)
    page = html_report(result, tmp_path, saved["files"]["plots"], saved["files"]["videos"], {}, None,
                       embed_video_bytes=0)
    assert "data:video/mp4" not in page and "src='videos/pair_ts_1.mp4'" in page
    (tmp_path / "linked.html").write_text(page)
    check_page_in_chromium(tmp_path / "report.html", images=3, videos=5)
    check_page_in_chromium(tmp_path / "linked.html", images=3, videos=5)


def check_page_in_chromium(page: Path, images: int, videos: int) -> None:
    """Open a report in headless Chromium: every image decodes, every video loads its data, no console errors."""
    import time

    from tests.support.studio import headless_chromium, require_browser

    require_browser()
    with headless_chromium() as driver:
        driver.get(page.as_uri())
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            state = driver.execute_script(
                "const i = [...document.images], v = [...document.querySelectorAll('video')];"
                "v.forEach(x => { if (x.readyState === 0 && !x.error) x.load(); });"
                "return {images: i.length, decoded: i.filter(x => x.complete && x.naturalWidth > 0).length,"
                " videos: v.length, ready: v.filter(x => x.readyState >= 1 && x.videoWidth > 0).length,"
                " errors: v.filter(x => x.error).length};")
            if state["decoded"] == state["images"] and state["ready"] == state["videos"]:
                break
            time.sleep(0.5)
        assert state == {"images": images, "decoded": images, "videos": videos, "ready": videos, "errors": 0}, state
        severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []


# ----------------------------------------------------------------------------- the design file

def test_the_repository_design_file() -> None:
    design = load_design(REPO / "prompts" / "ik_fk_pairs.yaml")
    assert list(design.goals) == ["touch_shoulder", "foot_lift", "planted_reach", "torso_pitch", "raise_then_touch",
                                  "hand_height", "knee_to_chest"]
    keywords = {"near", "above", "below", "planted", "pitch"}
    for name, goal in design.goals.items():
        assert len(design.pairs_of(name)) >= 3 and goal.frames >= 40, name
        for constraint in goal.guided.split(";"):
            tokens = constraint.split()
            assert tokens[0] in keywords, goal.guided
            assert all(t in JOINT_NAMES for t in tokens[1:] if t.isidentifier() and t not in ("frames", "end"))
    for pair in design.pairs:
        assert pair.ik.text != pair.fk.text and set(pair.ik.parts) == set(pair.fk.parts) == set(PART_NAMES)
        assert any(pair.ik.parts[p] != "does nothing" for p in PART_NAMES)
    texts = [p.ik.text for p in design.pairs] + [p.fk.text for p in design.pairs]
    assert len(set(texts)) == len(texts)


def test_study_prompts_are_held_out_from_the_synthetic_training_captions(tmp_path: Path) -> None:
    """The default synthetic data (400 motions, seed 1234): no study prompt occurs in any caption (or its mirror),
    and the two styles' wording is about as familiar to the model."""
    from motion.data.captions import mirror_text, read_captions
    from motion.data.synthetic.dataset import generate_dataset

    generate_dataset(tmp_path / "amass", tmp_path / "ann", 400, 1234)
    captions = [c.text for f in sorted((tmp_path / "ann" / "texts").glob("*.txt")) for c in read_captions(f)]
    captions += [mirror_text(c) for c in captions]
    design = load_design(REPO / "prompts" / "ik_fk_pairs.yaml")
    overlap = vocabulary_overlap({"ik": [p.ik.text for p in design.pairs], "fk": [p.fk.text for p in design.pairs]},
                                 captions)
    assert overlap["styles"]["ik"]["verbatim"] == 0 and overlap["styles"]["fk"]["verbatim"] == 0
    ik, fk = (overlap["styles"][s]["overlap"] for s in ("ik", "fk"))
    assert abs(ik["1"] - fk["1"]) < 0.15, (ik, fk)  # both styles' words were seen in training


def test_vocabulary_overlap_counts() -> None:
    got = vocabulary_overlap({"a": ["The man, bends the knee", "jumps high"]}, ["a man bends the knee slowly"])
    rows = got["styles"]["a"]["rows"]
    assert words("The man, bends the knee") == ["the", "man", "bends", "the", "knee"]
    assert rows[0]["verbatim"] is False and rows[0]["overlap"]["1"] == pytest.approx(1.0)
    assert rows[0]["overlap"]["2"] == pytest.approx(3 / 4) and rows[1]["overlap"]["1"] == 0.0
    assert vocabulary_overlap({"a": ["bends the knee"]}, ["a man bends the knee"])["styles"]["a"]["verbatim"] == 1


@pytest.mark.parametrize("change, message", [
    (lambda d: d["constraints"].update(nose={"goal": "g", "guided": "x", "frames": 9}), "unknown constraint 'nose'"),
    (lambda d: d["constraints"]["torso_pitch"].update(frames="many"), "frames must be an integer"),
    (lambda d: d["pairs"][0]["ik"].update(text=""), "pair 'ts_1' ik text must be a non-empty text"),
    (lambda d: d["pairs"][0]["fk"]["parts"].pop("head"), "pair 'ts_1' fk parts: missing keys \\['head'\\]"),
    (lambda d: d["pairs"][0].update(extra=1), "unknown keys \\['extra'\\]"),
    (lambda d: d["pairs"][0].update(constraint="hand_height"), "'hand_height' is not under 'constraints:'"),
    (lambda d: d["pairs"].append(dict(d["pairs"][0])), "duplicate pair ids \\['ts_1'\\]"),
    (lambda d: d["pairs"].pop(), "constraints without a pair: \\['foot_lift'\\]"),
])
def test_bad_designs_name_the_file(tmp_path: Path, change, message: str) -> None:  # noqa: ANN001
    data = design_dict()
    change(data)
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=f"{path}.*{message}"):
        load_design(path)


def test_design_file_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.yaml"
    with pytest.raises(DataError, match="pairs.yaml: prompt pair file is missing"):
        load_design(path)
    path.write_text("pairs: [1, 2")
    with pytest.raises(DataError, match="not valid YAML"):
        load_design(path)
    path.write_text("- id: 1\n")
    with pytest.raises(DataError, match="top-level 'constraints:'"):
        load_design(path)
    path.write_text(yaml.safe_dump({"constraints": design_dict()["constraints"]}))
    with pytest.raises(DataError, match="top-level 'pairs:'"):
        load_design(path)


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
    save_model(LGTM(cfg).eval(), root / "lgtm" / "lgtm" / "model.safetensors")  # paths.lgtm / run lgtm
    write_json(root / "lgtm" / "lgtm" / "config.json", {"model": cfg.to_dict()})
    save_tmr(TMR(TMRConfig(motion_dim=263, token_dim=8, latent_dim=4, ff_size=8, num_layers=1, num_heads=2,
                           dropout=0.0)), root / "tmr" / "whole_body")
    mean = extract_features(pitch_torso(10.0, 30)).mean(axis=0)  # samples scatter around a standing pose
    std = np.full_like(mean, 0.02)
    (root / "features").mkdir()
    np.save(root / "features" / "Mean.npy", mean)
    np.save(root / "features" / "Std.npy", std)
    np.savez(root / "features" / "part_stats.npz", whole_body_mean=mean, whole_body_std=std + 1.0)
    design = load_design(REPO / "prompts" / "ik_fk_pairs.yaml")
    pair = design.pairs[0]
    known = [pair.ik.text]
    cache = ArrayCache(root / "cache" / "embeddings")
    cache.add(known, *WordEncoder().encode(known))
    write_embeddings(root / "embeddings", known, cache, WordEncoder())
    data = yaml.safe_load((REPO / "prompts" / "ik_fk_pairs.yaml").read_text())
    (root / "pairs.yaml").write_text(yaml.safe_dump({
        "constraints": {pair.constraint: {**data["constraints"][pair.constraint], "frames": 30,
                                          "guided": "near right_wrist left_shoulder 0.05 frames 12-end"}},
        "pairs": [p for p in data["pairs"] if p["id"] == pair.id]}))
    (root / "features" / "splits").mkdir()
    (root / "features" / "splits" / "train.txt").write_text("000000\n000001\n")
    write_caption_files(root / "poses", {"000000": "a man waves.#a/DET man/NOUN wave/VERB#0.0#0.0\n",
                                         "000001": f"{pair.fk.text}.#x/X#0.0#0.0\n"})
    paths = {"lgtm": root / "lgtm", "tmr": root / "tmr", "prompt_study": root / "out", "features": root / "features",
             "embeddings": root / "embeddings", "cache": root / "cache", "metrics": root / "m", "poses": root / "poses"}
    return write_params(root, {
        **{f"paths.{k}": str(v) for k, v in paths.items()}, "split_texts.backend": "rules",
        "profile": "cpu", "compute.device": "cpu", "compute.threads.prompt_study": 1,
        "lgtm.text_latents": "random",
        "lgtm.sampling": {"sampler": "ddim", "steps": 1000, "eta": 0.0, "guidance_scale": 1.0,
                          "timestep_spacing": "trailing"},
        "prompt_study.pairs": str(root / "pairs.yaml"), "prompt_study.noise_seed": 0,
        "prompt_study.split": "", "prompt_study.n_permutations": 99,
        "prompt_study.guidance": {"strength": 1.0, "iterations": 1, "sweep": [0.0], "sweep_samples": 1},
        "prompt_study.samples": 2, "prompt_study.batch_size": 3, "prompt_study.sampling": {"steps": 2}})


def test_stage_on_tiny_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import motion.text.embeddings as embeddings
    from stages.prompt_study import main

    monkeypatch.setattr(embeddings, "make_encoder", lambda section: WordEncoder())
    monkeypatch.setenv("LGTM_PARAMS", str(write_tiny_pipeline(tmp_path)))
    main()
    assert "report.html" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "m" / "prompt_study.json").read_text())
    assert metrics["samples_per_prompt"] == 2 and metrics["sampling_steps"] == 2
    assert metrics["arms"] == ["ik", "fk", "guided"] and metrics["tests"] == 4  # pair, pooled, similarity, guided
    assert set(metrics["constraints"]) == {"touch_shoulder"}
    assert metrics["vocabulary"]["fk"]["verbatim"] == 1 and metrics["vocabulary"]["ik"]["verbatim"] == 0
    out = tmp_path / "out"
    saved = json.loads((out / "results.json").read_text())
    assert saved["meta"]["frames"] == {"touch_shoulder": {"requested": 30, "used": 24}}  # clamped to the window
    pair = saved["pairs"][0]
    given = load_design(tmp_path / "pairs.yaml").pairs[0]
    assert pair["parts"] == {"ik": given.ik.parts, "fk": given.fk.parts}  # the given texts are used ...
    assert set(pair["split_parts"]["fk"]) == set(PART_NAMES)  # ... the rules splitter's are shown beside them
    assert [(r["arm"], r["sample"]) for r in saved["samples"]] == [("ik", 0), ("ik", 1), ("fk", 0), ("fk", 1),
                                                                   ("guided", 0), ("guided", 1)]
    guided = [r for r in saved["samples"] if r["arm"] == "guided"]
    assert all(r["moved"] > 0 for r in guided)  # guidance moved the motion away from its FK twin
    assert [r["strength"] for r in saved["guidance_sweep"]] == [0.0] and saved["meta"]["guidance_strength"] == 1.0
    assert "Guidance strength sweep" in (out / "report.md").read_text()
    assert all(-1 <= r["goal_similarity"] <= 1 for r in saved["samples"])
    first = np.load(out / "joints.npz")
    key = f"{pair['id']}_ik_0"
    assert first[key].shape == (24, NUM_JOINTS, 3) and not np.array_equal(first[key], first[f"{pair['id']}_ik_1"])
    assert (out / "videos" / f"pair_{pair['id']}.mp4").is_file() and (out / "report.html").is_file()
    from models.inference import LGTMGenerator, TrainedLGTM, features_to_joints, part_sampler, study_sampler

    trained = TrainedLGTM(tmp_path / "lgtm" / "lgtm", tmp_path / "features", tmp_path / "tmr", tmp_path / "embeddings",
                          "random", 0)
    cfg = SamplingConfig("ddim", 2, 0.0, 1.0)
    generator = LGTMGenerator.load(trained, "cpu", batch_size=2)
    batched = study_sampler(generator, cfg)
    single = part_sampler(generator, cfg, seed=0)  # the generate command's glue
    parts = pair["parts"]["ik"]
    alone = features_to_joints(single(pair["ik"], parts, 24), generator.mean, generator.std)[1]
    motions = batched([pair["ik"]] * 3, [parts] * 3, [24, 20, 24], 0)  # batches of 2: seeds 0, 1
    assert generator.window == 24 and [len(m) for m in motions] == [24, 20, 24]
    # batch composition changes float rounding (~7e-4 after the root integration at 2 trailing steps); other
    # noise changes the motion by ~4e-2
    assert np.allclose(motions[0], alone, atol=2e-3) and np.abs(motions[0] - motions[2]).max() > 1e-2
    main()  # reruns are deterministic
    again = np.load(out / "joints.npz")
    assert all(np.array_equal(first[k], again[k]) for k in first.files)
    assert json.loads((tmp_path / "m" / "prompt_study.json").read_text()) == metrics
    design = yaml.safe_load((tmp_path / "pairs.yaml").read_text())
    design["constraints"]["touch_shoulder"]["guided"] = "near right_wrist left_shoulder 0.05 frames 30-40"
    (tmp_path / "pairs.yaml").write_text(yaml.safe_dump(design))
    with pytest.raises(SystemExit, match="constraint 'touch_shoulder' guided: .*frames 30-40 start after"):
        main()  # checked against the clamped length before anything is sampled
    (tmp_path / "pairs.yaml").write_text("constraints: {nose: {goal: a, guided: b, frames: 20}}\npairs: []\n")
    with pytest.raises(SystemExit, match="pairs.yaml: expected a top-level 'pairs:' list"):
        main()
