"""Stage eval_tmr: retrieval metrics of the seven trained TMR encoders on the test split.

Reads ``paths`` and ``tmr`` from params.yaml and ${paths.tmr}/<name>/ for every name in
``tmr.encoders``. Each encoder is evaluated on the first caption of every test motion (part
encoders on their part texts) with TMR's protocols: all pairs, the sentence-similarity threshold,
and shuffled batches of 32; R@1, 2, 3, 5, 10 and median rank, text->motion and motion->text.
Writes ${paths.metrics}/tmr.json (DVC metrics, with chance levels) and ${paths.tmr_eval}/part_study.json: the
2-way accuracy of each encoder on motion pairs that differ in one part's action (models.tmr_eval; ground-truth
actions from ${paths.poses}/part_texts.json when present, else from part_texts.parquet).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from models.tmr import load_tmr, read_tmr_config
from models.tmr_eval import pair_study, study_groups, test_pairs
from motion.core.device import resolve_device
from motion.core.io import atomic_dir, write_json
from motion.core.parts import PART_NAMES
from motion.data.captions import read_part_annotations
from motion.datasets import load_text_motion
from motion.eval.retrieval import all_protocols, chance_metrics
from stages.entry import stage_main
from stages.settings import Settings


def part_actions(poses_dir: Path, texts_dir: Path, seg_ids: list[str]) -> tuple[dict[str, dict[str, str]], str]:
    """Six part actions per seg_id: the ground truth when the poses stage has it, else split_texts'."""
    truth = poses_dir / "part_texts.json"
    if truth.is_file():
        table = read_part_annotations(truth, "rerun `dvc repro poses`")
        return {s: {p: table[s][p]["action"] for p in PART_NAMES} for s in seg_ids if s in table}, str(truth)
    frame = pd.read_parquet(texts_dir / "part_texts.parquet").set_index("seg_id")
    frame = frame.loc[[s for s in seg_ids if s in frame.index]]
    return {s: {p: str(r[f"{p}_action"]) for p in PART_NAMES} for s, r in frame.iterrows()}, str(texts_dir)


def run(settings: Settings) -> None:
    """Evaluate every configured encoder and write the metrics."""
    paths, cfg = settings.paths, settings.tmr.eval
    batch_size = cfg.batch_size
    device = resolve_device(settings.compute.device)
    if settings.compute.threads.eval_tmr:
        torch.set_num_threads(settings.compute.threads.eval_tmr)
    metrics: dict[str, object] = {"chance": {f"batches_{batch_size}": chance_metrics(batch_size)}}
    study: dict[str, object] = {}
    from motion.text.embeddings import TextEmbeddings

    embeddings = TextEmbeddings.load(paths.embeddings)
    for name in settings.tmr.encoders:
        folder = Path(paths.tmr) / name
        model = load_tmr(folder, device)
        crop_frames = read_tmr_config(folder).get("data", {}).get("crop_frames")  # the length it was trained on
        test_set = load_text_motion(paths.features, paths.texts, embeddings, name, "test",
                                    max_frames=settings.captions.max_frames, embeddings_dir=paths.embeddings,
                                    crop_frames=crop_frames)
        seg_ids, text, motion, sentences = test_pairs(model, test_set, device)
        result = dict(all_protocols(text, motion, sentences, cfg.threshold, batch_size, cfg.shuffle_seed,
                                    cfg.repeats))
        result["num_pairs"] = len(seg_ids)
        metrics[name] = result
        actions, source = part_actions(Path(paths.poses), Path(paths.texts), seg_ids)
        study[name] = pair_study(seg_ids, text, motion, study_groups(actions, name))
        line = result.get(f"batches_{batch_size}", result["all"])["t2m"]
        print(f"eval_tmr {name}: {len(seg_ids)} test pairs, t2m R@1 {line['R1']:.1f}% R@3 {line['R3']:.1f}% "
              f"(chance {100 / batch_size:.1f}% / {300 / batch_size:.1f}%)")
    with atomic_dir(paths.tmr_eval) as tmp:
        write_json(tmp / "part_study.json", {"actions_from": source if study else "", "encoders": study})
    write_json(Path(paths.metrics) / "tmr.json", metrics)


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("eval_tmr", run)


if __name__ == "__main__":
    main()
