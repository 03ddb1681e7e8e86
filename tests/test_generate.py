"""The generation command: part texts, the feature -> joints -> files path, the LGTM glue and the CLI."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from models.inference import LGTMGenerator, features_to_joints, part_sampler, resolve_part_texts
from motion.core.errors import DataError
from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.parts import FEATURE_DIM, PART_NAMES, TEXT_SLOTS, split_parts
from motion.core.sampling import SamplingConfig
from motion.core.settings import convert
from motion.core.skeleton import JOINT_NAMES
from motion.data.features import extract_features, recover_from_ric
from motion.export.render import ffmpeg_exe
from motion.text.split import SplitSettings
from tests.oracles.bvh_reader import read_bvh
from tests.support.params import settings_with, write_params
from tests.support.tmr import FakeEncoder, write_tmr_folders
from tools.generate import generate, main, parse_part_args

CAPTION = "a person waves the right hand"


def known_motion(frames: int = 41) -> np.ndarray:
    """HumanML3D features (frames - 1, 263) of a rigid body that walks, turns and swings its limbs."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    aa = 0.3 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 22, 3)))
    aa[:, 0] = 0.0
    aa[:, 0, 1] = np.linspace(0, np.pi, frames)  # turns around while walking
    trans = np.stack([np.zeros(frames), np.full(frames, 0.95), np.linspace(0, 1.0, frames)], axis=-1)
    return extract_features(forward_kinematics(axis_angle_to_matrix(aa), trans).astype(np.float32))


def stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A Mean/Std pair (263,) that is not the identity, to check de-normalisation."""
    return features.mean(0), features.std(0) + 0.1


def replay_sampler(features: np.ndarray, mean: np.ndarray, std: np.ndarray):  # noqa: ANN201
    """A fake sampler: returns the normalised parts of a known motion, recording its calls."""
    calls = []

    def run(caption: str, part_texts: dict[str, str], frames: int) -> dict[str, np.ndarray]:
        calls.append((caption, dict(part_texts), frames))
        return split_parts(((features - mean) / std)[:frames])

    run.calls = calls  # type: ignore[attr-defined]
    return run


# ----------------------------------------------------------------------------- part texts

def test_parse_part_args() -> None:
    assert parse_part_args(["right_arm=waves the right hand", "left arm = raises  it"]) == {
        "right_arm": "waves the right hand", "left_arm": "raises it"}
    for bad in ("right_hand=waves", "right_arm", "right_arm=  "):
        with pytest.raises(ValueError, match="--part"):
            parse_part_args([bad])


def test_resolve_part_texts(tmp_path: Path) -> None:
    section, cache = convert(SplitSettings, settings_with({}).split_texts), tmp_path / "cache"
    none = resolve_part_texts(CAPTION, {"head": "nods"}, "none", section, cache)
    assert none == {p: ("nods" if p == "head" else CAPTION) for p in PART_NAMES}
    rules = resolve_part_texts(CAPTION, {}, "rules", section, cache)
    assert set(rules) == set(PART_NAMES) and "wave" in rules["right_arm"]
    assert rules["left_leg"] == "does nothing"
    edited = resolve_part_texts(CAPTION, {"right_arm": "waves the right hand slowly"}, "rules", section, cache)
    assert edited["right_arm"] == "waves the right hand slowly" and edited["left_leg"] == rules["left_leg"]
    everything = {p: f"{p} moves" for p in PART_NAMES}
    assert resolve_part_texts(CAPTION, everything, "llm", section, cache) == everything  # no splitter (network) needed
    with pytest.raises(ValueError, match="split 'gpt'"):
        resolve_part_texts(CAPTION, {}, "gpt", section, cache)


# ----------------------------------------------------------------------------- features -> files

def test_features_to_joints_inverts_the_normalisation() -> None:
    features = known_motion()
    mean, std = stats(features)
    out, joints = features_to_joints(split_parts((features - mean) / std), mean, std)
    assert out.shape == features.shape and np.allclose(out, features, atol=1e-4)
    assert joints.shape == (len(features), 22, 3) and joints.dtype == np.float32
    assert np.allclose(joints, recover_from_ric(features), atol=1e-4)
    with pytest.raises(ValueError, match="head"):
        features_to_joints({p: np.zeros((3, 5)) for p in PART_NAMES}, mean, std)


def test_generate_writes_all_outputs(tmp_path: Path) -> None:
    features = known_motion()
    mean, std = stats(features)
    sampler = replay_sampler(features, mean, std)
    parts = {p: CAPTION for p in PART_NAMES} | {"right_arm": "waves the right hand"}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("other files are left alone")
    files = generate(CAPTION, parts, 32, sampler, mean, std, tmp_path / "out", {"sampler": "fake"})
    assert sampler.calls == [(CAPTION, parts, 32)]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["features.npy", "joints.npy", "keep.txt", "motion.bvh", "motion.mp4", "parts.json"]
    joints = np.load(files["joints.npy"])
    assert joints.shape == (32, 22, 3) and joints.dtype == np.float32
    assert np.allclose(np.load(files["features.npy"]), features[:32], atol=1e-4)
    assert np.allclose(joints, recover_from_ric(features[:32]), atol=1e-4)
    bvh_names, _, _, positions = read_bvh(files["motion.bvh"])
    back = positions[:, [bvh_names.index(n) for n in JOINT_NAMES]]
    assert back.shape == joints.shape and np.linalg.norm(back - joints, axis=-1).max() < 0.01
    assert files["motion.mp4"].stat().st_size > 1000
    decode = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(files["motion.mp4"]), "-frames:v", "1",
                             "-f", "null", "-"], capture_output=True)
    assert decode.returncode == 0, decode.stderr
    saved = json.loads(files["parts.json"].read_text())
    assert saved["caption"] == CAPTION and saved["parts"] == parts and saved["frames"] == 32
    assert saved["fps"] == 20 and saved["sampler"] == "fake"


def test_generate_rejects_short_or_broken_samples(tmp_path: Path) -> None:
    features = known_motion()
    mean, std = stats(features)
    parts = {p: CAPTION for p in PART_NAMES}
    with pytest.raises(ValueError, match="frames"):
        generate(CAPTION, parts, 80, replay_sampler(features, mean, std), mean, std, tmp_path / "a")
    nan = lambda c, t, n: {p: np.full((n, v.shape[-1]), np.nan) for p, v in split_parts(features).items()}  # noqa: E731
    with pytest.raises(ValueError, match="NaN"):
        generate(CAPTION, parts, 10, nan, mean, std, tmp_path / "b")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


# ----------------------------------------------------------------------------- the LGTM glue and the CLI

def tiny_lgtm():  # noqa: ANN201
    """A randomly initialised small LGTM (window 24, text latents of 8 dims)."""
    import torch

    from models.lgtm import LGTM, LGTMConfig

    torch.manual_seed(0)
    cfg = LGTMConfig(dim=16, conformer_blocks=1, attention_layers=1, heads=2, optimizer_ff=32, smoothnet_hidden=32,
                     smoothnet_res_hidden=16, smoothnet_blocks=1, dropout=0.0, window=24, text_dim=8)
    return LGTM(cfg).eval()


class RecordingLatents:
    """Seeded pseudo-latents that record which texts of which slot were encoded together."""

    dim, key, inputs = 8, "recording", ()

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []

    def encode(self, slot: str, texts: list[str]) -> np.ndarray:
        self.seen.append((slot, list(texts)))
        return np.stack([np.random.default_rng(len(t)).standard_normal(8) for t in texts]).astype(np.float32)


def test_part_sampler_glue() -> None:
    latents = RecordingLatents()
    generator = LGTMGenerator(tiny_lgtm(), np.zeros(FEATURE_DIM), np.ones(FEATURE_DIM), latents, "cpu", 1)
    parts = {p: f"{p} moves" for p in PART_NAMES}
    run = part_sampler(generator, SamplingConfig("ddim", 3, 0.0, 1.0), seed=5)
    out = run(CAPTION, parts, 20)
    texts = [CAPTION] + [parts[p] for p in PART_NAMES]
    assert latents.seen == [(slot, [text]) for slot, text in zip(TEXT_SLOTS, texts)]  # each text encoded alone
    assert {p: v.shape for p, v in out.items()} == {p: (20, split_parts(np.zeros(FEATURE_DIM))[p].shape[0])
                                                    for p in PART_NAMES}
    again = run(CAPTION, parts, 20)
    assert all(np.array_equal(out[p], again[p]) for p in PART_NAMES)  # the seed fixes the motion
    dpm = part_sampler(generator, SamplingConfig("dpmsolver++", 3, 0.0, 1.0), seed=6)
    other = dpm(CAPTION, parts, 20)
    assert not np.array_equal(out["torso"], other["torso"])
    with pytest.raises(ValueError, match="window"):
        run(CAPTION, parts, 25)


def write_trained_folders(root: Path) -> Path:
    """A params file whose paths hold a saved tiny LGTM and Mean/Std (random text latents)."""
    from models.checkpoint import save_model
    from motion.core.io import write_json

    model = tiny_lgtm()
    save_model(model, root / "lgtm" / "lgtm" / "model.safetensors")  # paths.lgtm / run lgtm
    write_json(root / "lgtm" / "lgtm" / "config.json", {"model": model.cfg.to_dict()})
    features = known_motion()
    mean, std = stats(features)
    (root / "features").mkdir()
    np.save(root / "features" / "Mean.npy", mean.astype(np.float32))
    np.save(root / "features" / "Std.npy", std.astype(np.float32))
    paths = {"lgtm": root / "lgtm", "features": root / "features", "cache": root / "cache",
             "embeddings": root / "none", "tmr": root / "none"}
    return write_params(root, {**{f"paths.{k}": str(v) for k, v in paths.items()}, "split_texts.backend": "rules",
                               "compute.device": "cpu", "compute.threads.prompt_study": 1,
                               "lgtm.text_latents": "random",
                               "lgtm.sampling": {"sampler": "ddim", "steps": 4, "eta": 0.0, "guidance_scale": 1.0,
                          "timestep_spacing": "trailing"}})


def test_command_line_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_trained_folders(tmp_path)
    out = tmp_path / "outputs" / "wave"
    main(["--text", CAPTION, "--frames", "16", "--part", "head=nods", "--params", str(params), "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert report["parts"]["head"] == "nods" and "wave" in report["parts"]["right_arm"]
    saved = json.loads((out / "parts.json").read_text())
    assert saved["steps"] == 4 and saved["sampler"] == "ddim" and saved["split"] == "rules"
    assert saved["hand_set"] == ["head"] and saved["seed"] == 0
    assert np.load(out / "joints.npy").shape == (16, 22, 3)
    assert np.load(out / "features.npy").shape == (16, FEATURE_DIM)
    assert read_bvh(out / "motion.bvh")[3].shape == (16, 22, 3)
    assert (out / "motion.mp4").stat().st_size > 0


def test_command_line_errors(tmp_path: Path) -> None:
    params = write_trained_folders(tmp_path)
    with pytest.raises(SystemExit, match="window"):
        main(["--text", CAPTION, "--frames", "100", "--params", str(params), "--out", str(tmp_path / "o"),
              "--no-video", "--split", "none"])
    with pytest.raises(SystemExit, match="--part"):
        main(["--text", CAPTION, "--part", "tail=wags", "--params", str(params), "--out", str(tmp_path / "o")])
    (tmp_path / "features" / "Std.npy").unlink()
    with pytest.raises(SystemExit, match="Std.npy"):
        main(["--text", CAPTION, "--params", str(params), "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("extra, message", [
    (["--text", "   "], "--text is empty"),
    (["--eta", "1.5"], "--eta 1.5 is outside 0..1"),
    (["--steps", "0"], "--steps 0 is outside 1..1000"),
    (["--frames", "0"], "--frames 0"),
    (["--device", "cuda:0"], "torch sees no GPU"),
])
def test_bad_arguments_are_refused_before_anything_loads(tmp_path: Path, extra: list[str], message: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("stages.settings.load_settings", lambda **_: pytest.fail("settings were read"))
    args = ["--text", CAPTION, "--out", str(tmp_path / "o"), "--params", str(tmp_path / "absent.yaml"), *extra]
    with pytest.raises(SystemExit, match=message):
        main(args)


@pytest.mark.parametrize("extra, message", [
    (["--constraint", "near right_hand head 0.1"], "bad token 'right_hand'"),
    (["--constraint", "above head 1 frames 9-3"], "bad token '9-3'"),
    (["--constraint", "pitch 30 frames 20-end", "--frames", "16"], "start after the motion's last frame 15"),
    (["--constraints", "absent.yaml"], "absent.yaml: cannot read the constraints file"),
    (["--guidance-strength", "-1"], "--guidance-strength -1.0 must be"),
    (["--keep-parts", "torso"], "--inpaint-from and --keep-parts go together"),
    (["--keep-parts", "tail", "--inpaint-from", "x.npy"], "--keep-parts tail: not a part"),
    (["--keep-parts", "torso", "--inpaint-from", "absent.npy"], "--inpaint-from absent.npy: cannot read"),
])
def test_bad_guidance_arguments_are_refused_before_anything_loads(tmp_path: Path, extra: list[str], message: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("stages.settings.load_settings", lambda **_: pytest.fail("settings were read"))
    args = ["--text", CAPTION, "--out", str(tmp_path / "o"), "--params", str(tmp_path / "absent.yaml"), *extra]
    with pytest.raises(SystemExit, match=message):
        main(args)


def test_command_line_with_constraints_and_inpainting(tmp_path: Path) -> None:
    from models.guidance import parse_constraints, satisfaction

    params = write_trained_folders(tmp_path)
    goal = ["above right_wrist 1.6 frames 6-end", "planted left_foot"]
    common = ["--text", CAPTION, "--frames", "16", "--no-video", "--params", str(params)]
    main([*common, "--out", str(tmp_path / "plain")])
    (tmp_path / "goal.yaml").write_text(yaml.safe_dump(goal[:1]))  # the file's constraints come first
    main([*common, "--out", str(tmp_path / "guided"), "--constraint", goal[1], "--constraints",
          str(tmp_path / "goal.yaml"), "--guidance-strength", "1.0"])
    saved = json.loads((tmp_path / "guided" / "parts.json").read_text())
    assert saved["guidance_strength"] == 1.0 and saved["guidance_iterations"] == 5
    assert [c["constraint"] for c in saved["constraints"]] == goal
    plain = satisfaction(parse_constraints(goal), np.load(tmp_path / "plain" / "joints.npy"))
    assert "constraints" not in json.loads((tmp_path / "plain" / "parts.json").read_text())
    assert sum(c["violation"] for c in saved["constraints"]) < 0.6 * sum(c["violation"] for c in plain)
    assert saved["constraints"] == satisfaction(parse_constraints(goal), np.load(tmp_path / "guided" / "joints.npy"))

    reference = np.load(tmp_path / "plain" / "features.npy")
    main(["--text", "a person raises both arms", "--no-video", "--params", str(params), "--out",
          str(tmp_path / "inpainted"), "--inpaint-from", str(tmp_path / "plain" / "features.npy"),
          "--keep-parts", "torso,left_leg", "--keep-parts", "right_leg", "--seed", "3"])
    saved = json.loads((tmp_path / "inpainted" / "parts.json").read_text())
    assert saved["keep_parts"] == ["torso", "left_leg", "right_leg"] and saved["frames"] == 16  # the reference's
    out = split_parts(np.load(tmp_path / "inpainted" / "features.npy"))
    ref = split_parts(reference)
    for p in PART_NAMES:
        kept = np.allclose(out[p], ref[p], atol=1e-4)
        assert kept == (p in saved["keep_parts"]), p


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "o").write_text("not a folder")
    with pytest.raises(SystemExit, match="is a file"):
        main(["--text", CAPTION, "--out", str(tmp_path / "o"), "--params", str(tmp_path / "absent.yaml")])


def test_a_failing_run_leaves_no_new_files_beside_an_older_run(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    features = known_motion()
    mean, std = stats(features)
    generate(CAPTION, {p: CAPTION for p in PART_NAMES}, 40, replay_sampler(features, mean, std), mean, std,
             tmp_path, video=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_bvh(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr("tools.generate.write_bvh", broken_bvh)
    with pytest.raises(OSError, match="disk full"):
        generate("another caption", {p: "another caption" for p in PART_NAMES}, 40,
                 replay_sampler(features, mean, std), mean, std, tmp_path, video=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no staging folder, nothing new


def test_turning_motion_keeps_its_heading_through_features_and_bvh(tmp_path: Path) -> None:
    """features -> joints -> BVH of a body turning by 180 degrees: the exported root turns by 180 (not 90)."""
    from tests.support.motions import root_heading_degrees

    features = known_motion()  # 41 joint frames, yaw 0 -> 180 degrees linearly; 40 feature frames
    mean, std = stats(features)
    files = generate(CAPTION, {p: CAPTION for p in PART_NAMES}, 40, replay_sampler(features, mean, std), mean, std,
                     tmp_path, video=False)
    assert "motion.mp4" not in files
    heading = root_heading_degrees(files["motion.bvh"])
    assert heading[-1] - heading[0] == pytest.approx(180 * 39 / 40, abs=8)


# ----------------------------------------------------------------------------- the TMR text-latent path

def test_token_source_and_tmr_latents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import motion.text.embeddings as embeddings
    from models.text_latents import TMRTextLatents, TokenSource

    write_tmr_folders(tmp_path, [CAPTION, "does nothing"])
    monkeypatch.setattr(embeddings, "make_encoder", lambda section: FakeEncoder())
    source = TokenSource(tmp_path / "embeddings", lambda: embeddings.make_encoder({"encoder": "fake"}))
    stored = source(CAPTION)
    assert source._encoder is None and stored.shape == (6, 8)  # from the embeddings folder, no encoder loaded
    fresh = source("a person nods")  # unseen: encoded now, rounded like the stored float16 features
    assert fresh.shape == (3, 8) and np.array_equal(fresh, fresh.astype(np.float16).astype(np.float32))
    assert np.allclose(source(CAPTION), FakeEncoder().encode([CAPTION])[0][0], atol=1e-2)
    provider = TMRTextLatents(tmp_path / "tmr", source)
    texts = [CAPTION] + ["does nothing"] * 5 + ["a person nods"]

    def encode(texts: list[str]) -> np.ndarray:
        return np.concatenate([provider.encode(slot, [t]) for slot, t in zip(TEXT_SLOTS, texts)])

    latents = encode(texts)
    assert latents.shape == (7, 4) and np.isfinite(latents).all()
    assert not np.allclose(latents[1], latents[2])  # same text, but each slot has its own encoder
    assert np.array_equal(encode(texts), latents)

    class OtherEncoder(FakeEncoder):
        cache_id = "other:model"

    monkeypatch.setattr(embeddings, "make_encoder", lambda section: OtherEncoder())
    with pytest.raises(DataError, match="embed_texts"):
        TokenSource(tmp_path / "embeddings", lambda: embeddings.make_encoder({"encoder": "other"}))("an unseen text")


def test_command_line_with_tmr_latents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import motion.text.embeddings as embeddings
    from models.checkpoint import save_model
    from models.lgtm import LGTM, LGTMConfig
    from motion.core.io import write_json

    params_path = write_trained_folders(tmp_path)
    write_tmr_folders(tmp_path, ["does nothing"])
    monkeypatch.setattr(embeddings, "make_encoder", lambda section: FakeEncoder())
    cfg = LGTMConfig(dim=16, conformer_blocks=1, attention_layers=1, heads=2, optimizer_ff=32, smoothnet_hidden=32,
                     smoothnet_res_hidden=16, smoothnet_blocks=1, dropout=0.0, window=24, text_dim=4)
    save_model(LGTM(cfg), tmp_path / "lgtm" / "lgtm" / "model.safetensors")  # conditioned on 4-d TMR latents
    write_json(tmp_path / "lgtm" / "lgtm" / "config.json", {"model": cfg.to_dict()})
    params = yaml.safe_load(params_path.read_text())
    params["lgtm"]["text_latents"] = "tmr"
    params["paths"].update(tmr=str(tmp_path / "tmr"), embeddings=str(tmp_path / "embeddings"))
    params["models"]["tmr"] = str(tmp_path / "tmr")  # the trained TMRs: models.tmr is paths.tmr
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "nod"
    main(["--text", "a person nods", "--frames", "12", "--split", "rules", "--steps", "2", "--no-video",
          "--params", str(params_path), "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["features.npy", "joints.npy", "motion.bvh", "parts.json"]
    assert np.load(out / "joints.npy").shape == (12, 22, 3)


def test_llm_split_with_the_endpoint_down_falls_back_to_rules_and_says_so(tmp_path: Path) -> None:
    import dataclasses
    import socket

    from models.inference import split_prompt
    from motion.core.settings import convert
    from motion.text.split import SplitSettings
    from tests.support.params import settings_with

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    splitter = convert(SplitSettings, settings_with({}).split_texts)
    llm = dataclasses.replace(splitter.llm, base_url=f"http://127.0.0.1:{port}/v1", api_key_env="", max_retries=0,
                              timeout_s=2.0, backoff_s=0.01)
    texts, used = split_prompt(CAPTION, {}, "llm", dataclasses.replace(splitter, llm=llm), tmp_path)
    assert used == "rules (llm failed)"
    assert texts == split_prompt(CAPTION, {}, "rules", splitter, tmp_path)[0]
