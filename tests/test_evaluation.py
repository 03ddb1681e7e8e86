"""Tests of the evaluate stage: test captions, the ablation wiring, the sample cache, evaluators, outputs."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from motion.core.parts import FEATURE_DIM
from motion.core.sampling import SamplingConfig
from motion.eval.evaluation import (
    cached_generate,
    compare_rows,
    condition_texts,
    real_motions,
    sample_key,
    share_requests,
)
from motion.eval.report import metrics_json, report_markdown
from stages import evaluate as stage
from stages.settings import load_settings
from tests.support.evaluation import (
    WINDOW,
    FakeTokens,
    ReplayGenerator,
    evaluate_settings,
    fake_evaluator,
    fake_spaces,
    replay_runs,
    tiny_tmrs,
    write_dataset,
    written_captions,
)
from tests.support.stores import feature_clip


@pytest.fixture()
def dataset(tmp_path: Path) -> dict:
    return write_dataset(tmp_path)


# ----------------------------------------------------------------------------- captions and conditioning

def test_test_captions_crop_to_the_window_and_subset_deterministically(dataset: dict) -> None:
    p = dataset["paths"]
    every = written_captions(dataset)
    assert len(every) == 40 and all(c.length == WINDOW for c in every)
    assert every[0].start == (50 - WINDOW) // 2 and every[0].tokens == "a/DET person/NOUN"
    subset = written_captions(dataset, max_captions=10, seed=1)
    assert subset == written_captions(dataset, max_captions=10, seed=1) and len(subset) == 10
    assert written_captions(dataset, min_frames=55) == [c for c in every if c.seg_id not in
                                                     {f"{m:06d}_0" for m in range(0, 40, 3)}]  # 50-frame spans out
    assert [c.seg_id for c in subset] == sorted(c.seg_id for c in subset)
    motions = real_motions(p["features"], subset)
    assert all(m.shape == (WINDOW, FEATURE_DIM) for m in motions)


def test_ablation_replaces_part_texts_by_the_caption(dataset: dict) -> None:
    caps = written_captions(dataset)
    parts, whole = condition_texts(caps, "parts"), condition_texts(caps, "whole_body")
    assert parts[0] == (caps[0].caption,) + caps[0].part_texts and "does nothing" in parts[0]
    assert all(t == (c.caption,) * 7 for t, c in zip(whole, caps))
    with pytest.raises(ValueError, match="conditioning"):
        condition_texts(caps, "none")


# ----------------------------------------------------------------------------- the cache

def test_cache_key_and_second_call_skips_the_sampler(dataset: dict, tmp_path: Path) -> None:
    gen = ReplayGenerator(dataset)
    texts = condition_texts(list(gen.captions.values())[:5], "parts")
    lengths = [40] * 5
    setting = SamplingConfig("ddim", 3, 0.0, 1.0)
    first = cached_generate(gen, texts, lengths, setting, 1, tmp_path / "c")
    assert not first.hit and len(gen.calls) == 1 and first.seconds > 0
    again = cached_generate(gen, texts, lengths, setting, 1, tmp_path / "c")
    assert again.hit and len(gen.calls) == 1
    assert again.seconds == first.seconds  # the sampling's wall time is stored with the set
    assert all(np.array_equal(a, b) for a, b in zip(first.motions, again.motions))
    key = sample_key("replay", setting, 1, texts, lengths)
    assert key != sample_key("replay", setting, 2, texts, lengths)
    assert key != sample_key("replay", SamplingConfig("ddim", 4, 0.0, 1.0), 1, texts, lengths)
    assert key != sample_key("other", setting, 1, texts, lengths)
    assert key != sample_key("replay", setting, 1, condition_texts(list(gen.captions.values())[:5], "whole_body"),
                             lengths)


# ----------------------------------------------------------------------------- evaluators

def test_tmr_evaluator_normalises_with_part_stats(dataset: dict) -> None:
    import torch

    from motion.core.parts import PART_INDICES

    ev = fake_evaluator(dataset)
    motion = feature_clip(Path(dataset["paths"]["features"]), "000001")[:40]
    mean, std = ev.stats["left_arm"]
    with torch.no_grad():
        expected = ev.models["left_arm"].encode_motion(
            torch.from_numpy(((motion[:, PART_INDICES["left_arm"]] - mean) / std).astype(np.float32))[None],
            torch.ones(1, 40, dtype=torch.bool)).numpy()
    got = ev.encode_motions([motion, motion[:30]], "left_arm")
    assert got.shape == (2, 6) and np.allclose(got[0], expected[0], atol=1e-5)
    alone = ev.encode_motions([motion[:30]], "left_arm")
    assert np.allclose(got[1], alone[0], atol=1e-5)  # padding does not leak into the latent
    assert ev.encode_texts(["a person nods", "x"]).shape == (2, 6)


def write_t2m_files(root: Path) -> tuple[Path, Path, Path]:
    """A randomly initialised finest.tar, a 4-word GloVe vocabulary and meta mean/std."""
    import torch

    from models.t2m_evaluator import build_t2m_networks

    torch.manual_seed(0)
    nets = build_t2m_networks()
    (root / "t2m" / "model").mkdir(parents=True)
    ckpt = root / "t2m" / "model" / "finest.tar"
    torch.save({k: v.state_dict() for k, v in nets.items()} | {"epoch": 0}, ckpt)
    glove = root / "glove"
    glove.mkdir()
    words = ["unk", "sos", "eos", "person", "kick", "left"]
    np.save(glove / "our_vab_data.npy", np.random.default_rng(0).standard_normal((len(words), 300)).astype(np.float32))
    with open(glove / "our_vab_words.pkl", "wb") as f:
        pickle.dump(words, f)
    with open(glove / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    meta = root / "meta"
    meta.mkdir()
    np.save(meta / "mean.npy", np.zeros(FEATURE_DIM, np.float32))
    np.save(meta / "std.npy", np.ones(FEATURE_DIM, np.float32))
    return ckpt, glove, meta


def test_t2m_evaluator_adapter_loads_a_checkpoint_and_encodes(tmp_path: Path) -> None:
    from models.t2m_evaluator import T2MEvaluator, WordVectorizer, caption_tokens

    ckpt, glove, meta = write_t2m_files(tmp_path)
    ev = T2MEvaluator.load(ckpt, glove, meta)
    texts = ev.encode_texts(["a person kicks", "left"], ["a/DET person/NOUN kick/VERB", ""])
    assert texts.shape == (2, 512) and np.isfinite(texts).all()
    assert np.allclose(ev.encode_texts(["left"])[0], texts[1], atol=1e-5)  # batch composition does not matter
    rng = np.random.default_rng(0)
    motions = [rng.standard_normal((n, FEATURE_DIM)).astype(np.float32) for n in (40, 23, 64)]
    emb = ev.encode_motions(motions)
    assert emb.shape == (3, 512) and np.allclose(ev.encode_motions(motions[1:2])[0], emb[1], atol=1e-4)
    assert np.allclose(ev.encode_motions([motions[1][:20]])[0], emb[1], atol=1e-4)  # cut to multiples of 4
    vec = WordVectorizer(glove)
    _, pos = vec("left/ADJ")
    assert pos.argmax() == 9  # VIP location word
    assert caption_tokens("A person, kicks.")[1:-1] == ["a/OTHER", "person/OTHER", "kicks/OTHER"]
    with pytest.raises(Exception, match="finest.tar|missing"):
        T2MEvaluator.load(tmp_path / "nope.tar", glove, meta)


# ----------------------------------------------------------------------------- the stage

def test_stage_writes_all_outputs_and_a_rerun_uses_the_cache(dataset: dict, tmp_path: Path) -> None:
    runs = replay_runs(dataset)
    results = stage.run(evaluate_settings(dataset), fake_spaces(dataset), runs, WINDOW)
    stage.write_outputs(results, dataset["paths"]["evaluate"], Path(dataset["paths"]["metrics"]) / "evaluate.json")
    out = Path(dataset["paths"]["evaluate"])
    assert {f.name for f in out.iterdir()} >= {"report.md", "results.json", "fid.png", "r_precision_top1.png",
                                                "diversity.png", "multimodality.png", "part_similarity.png",
                                                "sampler_curve.png"}
    metrics = json.loads((Path(dataset["paths"]["metrics"]) / "evaluate.json").read_text())
    assert set(metrics) >= {"real", "lgtm", "no_partition", "caption_only", "tmr", "curve", "counts"}
    assert "cfg" not in metrics
    assert metrics["real"]["fid"]["mean"] == pytest.approx(0.0, abs=1e-6)  # Real vs itself
    assert metrics["lgtm"]["fid"]["mean"] > 0 and "multimodality" in metrics["lgtm"]
    assert "right_arm.similarity" in metrics["lgtm"] and "head.r_precision_top1" in metrics["lgtm"]
    assert set(metrics["curve"]) == {"real", "ddim_4", "dpm_2"}
    counts = results["counts"]
    # the lgtm variant pools its two training runs: 2 generated sets of 32 + an MM set of 3 x 4 each
    assert counts["captions"] == 32 and counts["motions"]["lgtm"] == 2 * (2 * 32 + 3 * 4)
    assert results["units"]["lgtm"] == [f"{run}/r{r}" for run in ("lgtm", "lgtm_seed1") for r in range(3)]
    assert len(results["values"]["evaluator"]["lgtm"]["fid"]) == 6
    assert set(results["per_run"]["evaluator"]["lgtm"]) == {"lgtm", "lgtm_seed1"}
    assert counts["motions"]["real"] == 32
    assert "cache" not in json.loads((out / "results.json").read_text())  # outputs independent of the cache
    report = (out / "report.md").read_text()
    assert "| lgtm | 152 |" in report and "**no_partition vs lgtm**" in report and "Diversity uses 32 pairs" in report
    assert "Row cfg skipped" in report and "Holm" in report and "## Sampler curve" in report
    assert report.index("## Whole-body metrics: `evaluator` (primary)") < report.index("## Whole-body metrics: `tmr`")
    # no_partition and the caption_only row are conditioned on the caption in all seven slots; lgtm on the parts
    assert all(len(set(t)) == 1 for texts, _, _ in runs["no_partition"].calls for t in texts)
    assert any(len(set(t)) > 1 for t in runs["lgtm"].calls[0][0])
    # a rerun recomputes metrics from the cache only, with the same numbers
    calls = sum(len(g.calls) for g in runs.values())
    again = stage.run(evaluate_settings(dataset), fake_spaces(dataset), runs, WINDOW)
    assert sum(len(g.calls) for g in runs.values()) == calls and again["cache"]["misses"] == 0
    assert again["summary"] == results["summary"] and again["timing"] == results["timing"]


def test_every_variant_is_tested_against_lgtm_with_holms_correction(dataset: dict) -> None:
    results = stage.run(evaluate_settings(dataset), fake_spaces(dataset), replay_runs(dataset), WINDOW)
    tests = results["comparisons"]["evaluator"]
    assert set(tests) == {"no_partition vs lgtm", "real vs lgtm"}
    tested = [t for pair in tests.values() for t in pair.values() if t.get("testable")]
    assert tested and all(t["p_holm"] >= t["p_value"] for t in tested)
    assert all(t["significant"] == (t["p_holm"] < 0.05) for t in tested)
    from motion.study.statistics import holm

    assert sorted(t["p_holm"] for t in tested) == sorted(holm([t["p_value"] for t in tested]))


def test_exact_generations_match_real(dataset: dict) -> None:
    dataset["evaluate"].update(rows=[], variants=["lgtm"])
    results = stage.run(evaluate_settings(dataset), fake_spaces(dataset), replay_runs(dataset, noise=0.0), WINDOW)
    real, lgtm = results["summary"]["evaluator"]["real"], results["summary"]["evaluator"]["lgtm"]
    assert lgtm["fid"]["mean"] == pytest.approx(0.0, abs=1e-6)
    for key in ("r_precision_top1", "mm_dist", "diversity", "torso.similarity", "named_part_energy"):
        assert lgtm[key]["mean"] == pytest.approx(real[key]["mean"], abs=1e-6)


def test_named_part_energy_is_the_share_of_the_moving_part() -> None:
    from motion.core.parts import PART_JOINTS, RIC
    from motion.eval.evaluation import TestCaption, named_part_energy, part_energy_shares

    frames = np.zeros((30, FEATURE_DIM))
    ric = np.zeros((30, 21, 3))
    for j in PART_JOINTS["right_arm"]:
        ric[:, j - 1, 1] = np.sin(np.arange(30) / 3)  # only the right arm's joints move
    frames[:, RIC] = ric.reshape(30, -1)
    shares = part_energy_shares(frames)
    assert shares.sum() == pytest.approx(1.0) and shares[2] == pytest.approx(1.0)  # PART_NAMES[2] == right_arm
    one = TestCaption("a_0", "a", "waves", "", ("",) * 6, 0, 30, ("right_arm",))
    two = TestCaption("b_0", "b", "waves and kicks", "", ("",) * 6, 0, 30, ("right_arm", "left_leg"))
    assert named_part_energy([frames, frames], [one, two]) == pytest.approx(1.0)  # only single-part captions count
    assert named_part_energy([frames], [two]) is None


def test_compare_rows_marks_constant_metrics_untestable() -> None:
    a = {"fid": np.array([1.0, 1.0, 1.0]), "r": np.array([0.5, 0.6, 0.55])}
    b = {"fid": np.array([2.0, 2.0, 2.0]), "r": np.array([0.1, 0.15, 0.12])}
    out = compare_rows(a, b)
    assert out["fid"] == {"testable": False, "difference": -1.0}
    assert out["r"]["testable"] and out["r"]["significant"]


def test_settings_reject_an_unknown_profile(dataset: dict, tmp_path: Path) -> None:
    from motion.core.settings import SettingsError

    dataset["profile"] = "huge"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dataset))
    with pytest.raises(SettingsError, match="profile: 'huge' is not a profile"):
        load_settings("evaluate", tmp_path / "params.yaml")


def write_trained(dataset: dict, tmp_path: Path) -> None:
    """Saved tiny TMRs, an embed_texts folder with every test text, and a tiny LGTM (random text latents)."""
    import torch

    from models.checkpoint import save_model
    from models.lgtm import LGTM, LGTMConfig
    from models.tmr import save_tmr
    from motion.core.io import write_json
    from motion.text.cache import ArrayCache
    from motion.text.embeddings import write_embeddings

    for name, model in tiny_tmrs().items():
        save_tmr(model, Path(dataset["paths"]["tmr"]) / name)
    for name, model in tiny_tmrs(seed=1).items():
        save_tmr(model, Path(dataset["paths"]["evaluator"]) / name)
    caps = written_captions(dataset)
    known = sorted({t for c in caps for t in (c.caption, *c.part_texts)})

    class Enc:
        name, cache_id, token_dim, sentence_dim = "fake", "fake:words", 8, 8

        def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
            tokens = [FakeTokens()(t) for t in texts]
            return tokens, np.stack([t.mean(0) / np.linalg.norm(t.mean(0)) for t in tokens])

    cache = ArrayCache(tmp_path / "cache" / "emb")
    cache.add(known, *Enc().encode(known))
    write_embeddings(dataset["paths"]["embeddings"], known, cache, Enc())
    torch.manual_seed(0)
    cfg = LGTMConfig(dim=16, conformer_blocks=1, attention_layers=1, heads=2, optimizer_ff=32, smoothnet_hidden=32,
                     smoothnet_res_hidden=16, smoothnet_blocks=1, dropout=0.0, window=WINDOW, text_dim=8)
    for run in dataset["lgtm"]["runs"]:
        lgtm = Path(dataset["paths"]["lgtm"]) / run
        save_model(LGTM(cfg).eval(), lgtm / "model.safetensors")
        write_json(lgtm / "config.json", {"model": cfg.to_dict(), "train": {"cond_drop_prob": 0.0}})


def test_lgtm_generator_denormalises_and_is_seeded(dataset: dict, tmp_path: Path) -> None:
    import torch

    from models.diffusion import sample
    from models.inference import LGTMGenerator, TrainedLGTM
    from motion.core.parts import merge_parts
    from motion.datasets import load_normalisation

    write_trained(dataset, tmp_path)
    paths = {k: Path(v) for k, v in dataset["paths"].items()}
    trained = TrainedLGTM(paths["lgtm"] / "lgtm", paths["features"], paths["tmr"], paths["embeddings"], "random",
                          dataset["seed"])
    gen = LGTMGenerator.load(trained, "cpu", batch_size=4)
    assert not gen.supports_guidance and gen.fingerprint.startswith("random:")
    caps = list(ReplayGenerator(dataset).captions.values())[:3]
    texts, lengths, setting = condition_texts(caps, "parts"), [40, 24, 48], SamplingConfig("ddim", 2, 0.0, 1.0)
    out = gen.generate(texts, lengths, setting, seed=4)
    assert [m.shape for m in out] == [(n, FEATURE_DIM) for n in lengths]
    assert all(np.array_equal(a, b) for a, b in zip(out, gen.generate(texts, lengths, setting, seed=4)))
    assert not np.array_equal(out[0], gen.generate(texts, lengths, setting, seed=5)[0])
    parts = sample(gen.model, torch.from_numpy(gen.latents(texts)).float(), torch.tensor(lengths), setting,
                   generator=torch.Generator().manual_seed(4 * 1_000_003))
    mean, std = load_normalisation(dataset["paths"]["features"])
    normalised = merge_parts({p: v.numpy() for p, v in parts.items()})
    assert np.allclose(out[1], normalised[1, :24] * std + mean, atol=1e-5)  # HumanML3D Mean/Std undone


def test_stage_main_end_to_end_with_a_tiny_lgtm(dataset: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """python -m stages.evaluate on saved tiny TMRs, a tiny LGTM (random text latents) and real loaders."""
    write_trained(dataset, tmp_path)
    dataset["evaluate"].update(generation_seeds=1, mm_texts=2, mm_repeats=2, mm_times=2, rows=[])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dataset))
    monkeypatch.setenv("LGTM_PARAMS", str(tmp_path / "params.yaml"))
    stage.main()
    metrics = json.loads((Path(dataset["paths"]["metrics"]) / "evaluate.json").read_text())
    assert np.isfinite(metrics["lgtm"]["fid"]["mean"]) and "t2m" not in metrics and "tmr" in metrics
    assert metrics["counts"]["motions_no_partition"] == 32 + 2 * 2
    results = json.loads((Path(dataset["paths"]["evaluate"]) / "results.json").read_text())
    assert results["variants"]["lgtm"]["runs"] == {"lgtm": 3, "lgtm_seed1": 4}  # params seed + the run's seed
    assert list(results["spaces"]) == ["evaluator", "tmr"]
    before = sorted(p.name for p in (Path(dataset["paths"]["cache"]) / "eval_samples").iterdir())
    assert len(before) == 3 * 2 + 2 * 2  # a set + an MM set per run; 2 curve points x 2 replications
    stage.main()  # the rerun finds every generated set in the cache
    assert sorted(p.name for p in (Path(dataset["paths"]["cache"]) / "eval_samples").iterdir()) == before
    # generated side by side (compute.processes.evaluate: 2, the default) or in turn: the same sets, same bytes
    pooled = {p.name: np.load(p)["features"] for p in (Path(dataset["paths"]["cache"]) / "eval_samples").iterdir()}
    dataset["paths"]["cache"] = str(tmp_path / "cache_in_turn")
    dataset["compute"]["processes"]["evaluate"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dataset))
    stage.main()
    in_turn = {p.name: np.load(p)["features"] for p in (tmp_path / "cache_in_turn" / "eval_samples").iterdir()}
    assert set(in_turn) == set(pooled) and all(np.array_equal(in_turn[k], pooled[k]) for k in pooled)


@pytest.mark.slow
def test_stage_with_the_t2m_evaluator_as_the_primary_space(dataset: dict, tmp_path: Path) -> None:
    """Guo's evaluator (a random tiny-vocabulary checkpoint) leads the metrics and the report; TMR follows."""
    from models.t2m_evaluator import T2MEvaluator

    dataset["evaluate"].update(rows=[], variants=["lgtm"], generation_seeds=1)
    t2m = T2MEvaluator.load(*write_t2m_files(tmp_path))
    spaces = {"t2m": t2m, **fake_spaces(dataset)}
    results = stage.run(evaluate_settings(dataset), spaces, replay_runs(dataset), WINDOW)
    assert results["summary"]["t2m"]["real"]["fid"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert results["summary"]["t2m"]["lgtm"]["fid"]["mean"] > 0
    metrics, report = metrics_json(results), report_markdown(results)
    assert list(results["summary"]) == ["t2m", "evaluator", "tmr"] and "t2m" not in metrics
    assert metrics["lgtm"] == results["summary"]["t2m"]["lgtm"] and "right_arm.similarity" in metrics["tmr"]["lgtm"]
    assert report.index("`t2m` (primary)") < report.index("## Whole-body metrics: `evaluator`")


def test_stage_main_names_the_missing_models(dataset: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(dataset))
    monkeypatch.setenv("LGTM_PARAMS", str(tmp_path / "params.yaml"))
    with pytest.raises(SystemExit, match="evaluate: .*config.json.*train_tmr"):
        stage.main()


def test_the_curve_names_the_fewest_steps_whose_fid_ci_overlaps_the_reference() -> None:
    from motion.eval.report import conclusions, fewest_overlapping

    def point(mean: float, ci: float) -> dict:
        return {"fid": {"mean": mean, "ci95": ci}}

    curve = {"summary": {"evaluator": {"real": point(0.1, 0.01), "ddim_1000": point(5.0, 0.5),
                                       "ddim_50": point(5.6, 0.2), "ddim_10": point(6.5, 0.3),
                                       "dpm_5": point(5.3, 0.1)}},
             "rows": {"real": {"real": True}, "ddim_1000": {"sampler": "ddim", "steps": 1000},
                      "ddim_50": {"sampler": "ddim", "steps": 50}, "ddim_10": {"sampler": "ddim", "steps": 10},
                      "dpm_5": {"sampler": "dpmsolver++", "steps": 5}},
             "timing": {"ddim_1000": {"seconds_per_motion": 10.0}, "ddim_50": {"seconds_per_motion": 0.5},
                        "ddim_10": {"seconds_per_motion": 0.1}, "dpm_5": {"seconds_per_motion": 0.05}},
             "reference": "ddim_1000"}
    # ddim_10's CI [6.2, 6.8] misses [4.5, 5.5]; ddim_50 [5.4, 5.8] and dpm_5 [5.2, 5.4] overlap: dpm_5 is cheapest
    assert fewest_overlapping(curve) == ("dpm_5", 5, 200.0)
    summary = {"real": {"named_part_energy": {"mean": 0.9, "ci95": 0.0}},
               "lgtm": {"named_part_energy": {"mean": 0.4, "ci95": 0.0}}}
    results = {"summary": {"evaluator": summary}, "comparisons": {"evaluator": {"no_partition vs lgtm": {
        "fid": {"testable": True, "significant": True, "difference": 2.0},
        "named_part_energy": {"testable": True, "significant": True, "difference": -0.1},
        "r_precision_top1": {"testable": True, "significant": False, "difference": -0.01}}}},
        "units": {"no_partition": ["a"] * 6, "lgtm": ["b"] * 6}, "synthetic": True, "curve": curve}
    said = conclusions(results)
    assert "synthetic" in said[0]
    assert "fid worse for `no_partition`" in said[1] and "not significant: r_precision_top1" in said[1]
    assert "named_part_energy further from Real for `no_partition`" in said[1]  # 0.3 is further from 0.9 than 0.4
    assert "`dpm_5` (5 steps)" in said[2] and "do not prove equal quality" in said[2]


def test_per_run_means_skip_units_that_lack_a_metric() -> None:
    from motion.eval.evaluation import Table

    table = Table(["evaluator"])
    table.put("lgtm", "lgtm/r0", {"evaluator": {"fid": 1.0, "named_part_energy": 0.5}}, 10)
    table.put("lgtm", "lgtm/r1", {"evaluator": {"fid": 3.0}}, 0)  # this draw had no single-part caption
    table.put("lgtm", "lgtm_seed1/r0", {"evaluator": {"fid": 5.0, "named_part_energy": 0.7}}, 10)
    runs = table.per_run()["evaluator"]["lgtm"]
    assert runs == {"lgtm": {"fid": 2.0, "named_part_energy": 0.5},
                    "lgtm_seed1": {"fid": 5.0, "named_part_energy": 0.7}}


def test_the_planning_pass_asks_for_exactly_the_sets_the_evaluation_generates(dataset: dict, tmp_path: Path) -> None:
    settings = evaluate_settings(dataset)
    requests = stage.planned_requests(settings, replay_runs(dataset), WINDOW)  # its own stand-in space
    runs = replay_runs(dataset)
    stage.run(settings, fake_spaces(dataset), runs, WINDOW, tmp_path / "cache")
    generated = [(name, tuple(map(tuple, texts)), setting, seed)
                 for name, g in runs.items() for texts, setting, seed in g.calls]
    planned = [(q.run, q.texts, q.setting, q.seed) for q in dict.fromkeys(requests)]
    assert sorted(planned, key=repr) == sorted(generated, key=repr) and len(set(generated)) == len(generated)
    shares = share_requests(requests, 2)
    assert sorted((q for share in shares for q in share), key=repr) == sorted(dict.fromkeys(requests), key=repr)
    costs = [sum(q.cost for q in share) for share in shares]
    assert max(costs) - min(costs) <= max(q.cost for q in requests)  # greedy split: within one set of equal
