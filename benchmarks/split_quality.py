"""Quality of the caption -> part-text splitter, printed as figures.

1. Synthetic data: part attribution against the ground-truth part labels
   (${paths.poses}/part_texts.json with the captions in ${paths.poses}/texts; skipped when absent).
2. BABEL action labels (../shared/reference/babel_parts/gpt3_labels_to_parts.json): precision,
   recall and F1 of the set of moving parts against the majority (2 of 3) of GPT-3's answers, its
   part words mapped onto the six parts as in motion/text/quality.py.
3. KIT-ML (../shared/reference/kitml/annotations.json, 12k real captions): the share of captions
   with at least one non-idle part (and the share found without the whole-body fallback), plus 20
   sample outputs.

Usage: python -m benchmarks.split_quality [--backend rules|llm] [--samples 20] [--seed 0]
The llm backend uses params.yaml split_texts.llm and its cache (it sends ~18k captions once).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from pathlib import Path

from benchmarks import settings_for
from motion.core.parts import PART_NAMES
from motion.core.settings import convert
from motion.data.captions import read_part_annotations
from motion.data.clipstore import CAPTION_TABLE
from motion.text.quality import majority_parts, part_accuracy, set_scores
from motion.text.rules import split_caption
from motion.text.schema import active_parts
from motion.text.split import SplitSettings, read_caption_rows, split_unique
from stages.settings import Settings

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def splitter(backend: str, params: Settings, gait_torso: bool | None = None):
    """A function from a list of captions to their annotations, with the chosen backend."""
    section = dataclasses.replace(params.split_texts, backend=backend)
    if gait_torso is not None:
        section = dataclasses.replace(section, rules=dataclasses.replace(section.rules, gait_torso=gait_torso))
    settings = convert(SplitSettings, section)
    cache = params.paths.cache

    def run(captions: list[str]) -> dict[str, dict]:
        results, _, report = split_unique(captions, settings, cache, progress=False)
        if "llm" in report and report["llm"]["failed"]:
            print(f"  ({report['llm']['failed']} captions failed with the LLM and were split by rules)")
        return results

    return run


def fmt(scores: dict[str, float]) -> str:
    """One line of set scores."""
    return (f"precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  F1 {scores['f1']:.3f}  "
            f"exact set {scores['exact_set']:.3f}  (n={int(scores['count'])})")


def synthetic(run, params: Settings) -> None:
    """Part attribution on the synthetic captions against their ground truth."""
    poses = Path(params.paths.poses)
    truth_file = poses / "part_texts.json"
    print("== synthetic: part attribution vs ground truth")
    if not truth_file.is_file():
        print(f"  skipped: {truth_file} is absent (run dvc repro poses on the synthetic source)")
        return
    truth = read_part_annotations(truth_file, "rerun `dvc repro poses`")
    rows = [r for r in read_caption_rows(poses / CAPTION_TABLE) if r["seg_id"] in truth]
    results = run([r["caption"] for r in rows])
    predicted = {r["seg_id"]: active_parts(results[r["caption"]]) for r in rows}
    reference = {s: active_parts(truth[s]) for s in predicted}
    actions = [results[r["caption"]][p]["action"] == truth[r["seg_id"]][p]["action"]
               for r in rows for p in predicted[r["seg_id"]] & reference[r["seg_id"]]]
    print(f"  part accuracy (idle/moving per part) {part_accuracy(predicted, reference):.3f}")
    print(f"  moving-part sets: {fmt(set_scores(predicted, reference))}")
    print(f"  action word agreement on shared moving parts {sum(actions) / max(len(actions), 1):.3f}")


def babel(run) -> None:
    """Moving-part sets against the GPT-3 majority on BABEL's action labels."""
    path = REFERENCE / "babel_parts" / "gpt3_labels_to_parts.json"
    print("== BABEL labels vs GPT-3 majority (2 of 3 answers)")
    if not path.is_file():
        print(f"  skipped: {path} is absent")
        return
    labels = json.loads(path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    results = run(sorted(labels))
    seconds = time.perf_counter() - start
    predicted = {k: active_parts(results[k]) for k in labels}
    reference = {k: majority_parts(v) for k, v in labels.items()}
    print(f"  {fmt(set_scores(predicted, reference))}  [{len(labels) / seconds:.0f} labels/s]")
    for part in PART_NAMES:
        s = set_scores({k: predicted[k] & {part} for k in labels}, {k: reference[k] & {part} for k in labels})
        print(f"    {part:<9} precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}")


def kitml(run, backend: str, samples: int, seed: int) -> None:
    """Coverage on real KIT-ML captions and a sample of outputs."""
    path = REFERENCE / "kitml" / "annotations.json"
    print("== KIT-ML captions")
    if not path.is_file():
        print(f"  skipped: {path} is absent")
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    captions = [a["text"] for v in data.values() for a in v["annotations"]]
    results = run(captions)
    moving = sum(bool(active_parts(results[c])) for c in captions)
    print(f"  captions {len(captions)}, unique {len(set(captions))}")
    print(f"  share with >= 1 non-idle part: {moving / len(captions):.3f}")
    if backend == "rules":
        recognised = sum(bool(active_parts(split_caption(c, fallback=False))) for c in set(captions))
        print(f"  share of unique captions with parts found without the whole-body fallback: "
              f"{recognised / len(set(captions)):.3f}")
    print(f"  {samples} samples (seed {seed}); parts not shown are idle:")
    for caption in random.Random(seed).sample(sorted(set(captions)), samples):
        parts = "; ".join(f"{p}: {a['text']}" for p, a in results[caption].items() if a["action"] != "idle")
        print(f"  - {caption.strip()!r} -> {parts or 'all idle'}")


def main() -> None:
    """Print the three quality figures for one backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="rules | llm (default: params split_texts.backend)")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    params = settings_for()
    backend = args.backend or params.split_texts.backend
    print(f"split quality, backend {backend}")
    run = splitter(backend, params)
    synthetic(run, params)
    babel(run)
    if backend == "rules":
        gait = params.split_texts.rules.gait_torso
        print(f"-- the same two with the other gait convention (gait_torso: {not gait})")
        other = splitter(backend, params, gait_torso=not gait)
        synthetic(other, params)
        babel(other)
    kitml(run, backend, args.samples, args.seed)


if __name__ == "__main__":
    main()
