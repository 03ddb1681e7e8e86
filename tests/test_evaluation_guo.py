"""Guo et al.'s protocol (motion.eval.guo): the 200-frame filter before sub-captions, one item per motion span,
a caption drawn per replication, lengths rounded down to multiples of 4, a set (and MM set) generated per
replication, non-zero CIs on every metric."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from motion.eval.evaluation import TestCaption
from motion.eval.guo import UNIT_LENGTH, GuoCaption, GuoItem, crop_length, draw_replication, evaluate_guo, group_items
from stages.evaluate import evaluation_settings
from tests.support.evaluation import evaluate_settings, fake_spaces, replay_runs, write_dataset

PARTS = ("p",) * 6


def caption(seg_id: str, motion: str, start: int, length: int) -> TestCaption:
    return TestCaption(seg_id, motion, f"text {seg_id}", "", PARTS, start, length)


def test_long_motions_go_with_their_sub_captions_and_spans_group_captions() -> None:
    captions = [
        caption("a_0", "a", 0, 150), caption("a_1", "a", 0, 150),  # two whole-motion captions of a 150-frame motion
        caption("a_2", "a", 20, 60),                                # a sub-caption: its own item
        caption("b_0", "b", 30, 100),                               # a sub-caption of a 250-frame motion: dropped
        caption("c_0", "c", 0, 30),                                 # a motion shorter than min_frames: dropped
    ]
    items = group_items(captions, {"a": 150, "b": 250, "c": 30}, min_frames=40, max_frames=200)
    assert [(i.motion_id, i.start, i.end, [c.seg_id for c in i.captions]) for i in items] == [
        ("a", 0, 150, ["a_0", "a_1"]), ("a", 20, 80, ["a_2"])]


def test_lengths_are_multiples_of_four_and_one_unit_shorter_a_third_of_the_time() -> None:
    rng = np.random.default_rng(0)
    lengths = [crop_length(123, 196, rng) for _ in range(3000)]
    assert set(lengths) == {120, 116}  # 123 // 4 * 4 = 120, or one unit less ("double")
    assert 0.30 < Counter(lengths)[116] / 3000 < 0.37
    assert {crop_length(150, 64, rng) for _ in range(200)} == {64, 60}  # the model's window caps the length
    assert all(n % UNIT_LENGTH == 0 for n in lengths)


def test_each_replication_draws_a_caption_and_a_crop_inside_the_span() -> None:
    item = GuoItem("m", 10, 110, tuple(GuoCaption(f"m_{k}", f"caption {k}", "", PARTS) for k in range(3)))
    rng = np.random.default_rng(1)
    draws = [draw_replication([item], 48, rng)[0] for _ in range(600)]
    assert Counter(d.caption for d in draws).keys() == {"caption 0", "caption 1", "caption 2"}
    assert min(Counter(d.caption for d in draws).values()) > 150  # uniform over the item's captions
    assert all(10 <= d.start and d.start + d.length <= 110 and d.length in (48, 44) for d in draws)
    assert len({d.start for d in draws}) > 20  # a random crop, not the centre


@pytest.fixture()
def dataset(tmp_path: Path) -> dict:
    return write_dataset(tmp_path)


def test_every_replication_generates_its_own_set_and_mm_set(dataset: dict, tmp_path: Path) -> None:
    settings = evaluate_settings(dataset)
    protocol = evaluation_settings(settings)
    from motion.eval.guo import read_items

    p = dataset["paths"]
    items = read_items(p["features"], Path(p["poses"]) / "texts.parquet",
                       Path(p["texts"]) / "body_part_annotations.json", 40, 200)
    assert len(items) == 40  # one item per test motion (each has one caption)
    runs = replay_runs(dataset)
    results = evaluate_guo(protocol, items, p["features"], fake_spaces(dataset), runs, 48, tmp_path / "cache")
    reps = protocol.metrics.replications
    # every replication: a set per row and run; the variant rows (lgtm: 2 runs, no_partition: 1) also an MM set
    calls = {run: g.calls for run, g in runs.items()}
    assert len(calls["lgtm"]) == reps * (2 + 1)  # lgtm row set + MM set, and the caption_only row of models.lgtm
    assert len(calls["lgtm_seed1"]) == reps * 2 and len(calls["no_partition"]) == reps * 2
    seeds = [seed for _, _, seed in calls["lgtm_seed1"]]
    assert sorted(set(seeds)) == sorted({settings.seed + r for r in range(reps)}
                                        | {settings.seed + 100_000 + r for r in range(reps)})
    assert {len(texts) for texts, _, _ in calls["lgtm_seed1"]} == {40, protocol.mm_texts * protocol.mm_repeats}
    # the runs of a row generate from the row's draw of the replication: the same texts and lengths
    assert [c[0] for c in calls["lgtm"][:2]] == [c[0] for c in calls["lgtm_seed1"][:2]]
    summary = results["summary"]["evaluator"]
    for row in ("real", "lgtm", "no_partition"):
        for metric in ("fid", "mm_dist", "diversity", "whole_body.similarity"):
            assert summary[row][metric]["ci95"] > 0, (row, metric)  # redrawn every replication: a real spread
    assert summary["lgtm"]["multimodality"]["ci95"] > 0 and summary["real"]["fid"]["mean"] > 0
    assert results["protocol"] == "guo" and "Row cfg skipped" in " ".join(results["notes"])
    assert results["counts"]["items"] == 40 and len(results["values"]["evaluator"]["lgtm"]["fid"]) == 2 * reps
    assert len(results["values"]["evaluator"]["no_partition"]["fid"]) == reps
    again = evaluate_guo(protocol, items, p["features"], fake_spaces(dataset), replay_runs(dataset), 48,
                         tmp_path / "cache")
    assert again["values"] == results["values"] and again["cache"]["misses"] == 0  # deterministic, cached


def test_the_stage_runs_guos_protocol_and_writes_its_report(dataset: dict, tmp_path: Path) -> None:
    from stages import evaluate as stage
    from tests.support.params import settings_of, with_overrides

    params = with_overrides({"evaluate.protocol": "guo", "evaluate.replications": 2}, dataset)
    results = stage.run(settings_of(params, "evaluate"), fake_spaces(dataset), replay_runs(dataset), 48)
    stage.write_outputs(results, tmp_path / "out", tmp_path / "metrics.json")
    report = (tmp_path / "out" / "report.md").read_text()
    assert results["protocol"] == "guo" and "| lgtm |" in report.replace("**", "")
    assert results["curve"]["counts"]["items"] == 12  # the curve's seeded subset of the 40 items
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "out" / "sampler_curve.png").is_file()
