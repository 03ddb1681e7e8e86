"""The split_texts stage's work: every caption line of every clip -> six part texts, as a table.

Captions are split once per unique text (the rules are pure; the LLM results are cached). Captions
the LLM could not split after all retries are either split by the rules instead (and listed in the
report) or stop the stage, as ``on_failure`` says.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm import tqdm

from motion.core.errors import DataError
from motion.core.io import write_json, write_parquet
from motion.core.parts import PART_NAMES
from motion.data.captions import read_caption_table, read_part_annotations
from motion.data.clipstore import CAPTION_TABLE
from motion.text.cache import JsonCache
from motion.text.llm import PROMPT_VERSION, EndpointError, LLMConfig, split_captions_llm
from motion.text.rules import split_caption
from motion.text.schema import PartAnnotation, active_parts


@dataclass(frozen=True)
class RuleSettings:
    """params.yaml ``split_texts.rules``: options of the offline splitter."""

    fallback: bool  # unrecognised captions go to every part (LGTM's own fallback)
    gait_torso: bool  # walking/running/jumping also move the torso (root trajectory)

    def split(self, caption: str) -> PartAnnotation:
        """Split one caption with these options."""
        return split_caption(caption, fallback=self.fallback, gait_torso=self.gait_torso)


@dataclass(frozen=True)
class SplitSettings:
    """params.yaml ``split_texts``."""

    backend: Literal["rules", "llm"]
    on_failure: Literal["rules", "error"]  # llm only: captions still failing after retries
    llm: LLMConfig
    rules: RuleSettings


def read_caption_rows(caption_table: str | Path) -> list[dict[str, Any]]:
    """One row per caption of the poses stage's ``texts.parquet`` (ids sorted): seg_id, motion_id, index,
    caption, start, end."""
    table = read_caption_table(caption_table, "run the poses stage first (dvc repro poses)")
    if not table:
        raise DataError(caption_table, "holds no caption", "run the poses stage first (dvc repro poses)")
    return [{"seg_id": f"{motion_id}_{i}", "motion_id": motion_id, "caption_index": i,
             "caption": caption.text, "start": caption.start, "end": caption.end}
            for motion_id, captions in table.items() for i, caption in enumerate(captions)]


def split_unique(captions: list[str], settings: SplitSettings, cache_dir: str | Path,
                 progress: bool = True) -> tuple[dict[str, PartAnnotation], dict[str, str], dict[str, Any]]:
    """Split each unique caption with the chosen backend; returns (annotation, backend, report) per caption."""
    unique = sorted(set(captions))
    backend_of: dict[str, str] = {}
    report: dict[str, Any] = {"backend": settings.backend, "unique_captions": len(unique)}
    if settings.backend == "rules":
        results = {c: settings.rules.split(c) for c in tqdm(unique, desc="split_texts (rules)", disable=not progress)}
        backend_of = {c: "rules" for c in unique}
        return results, backend_of, report
    cache = JsonCache(Path(cache_dir) / "split_texts" / "llm.jsonl")
    try:
        results, failures, counts = split_captions_llm(unique, settings.llm, cache, progress=progress)
    except EndpointError as err:
        raise DataError(settings.llm.base_url, str(err),
                        "fix split_texts.llm in params.yaml or the key variable") from None
    report["llm"] = {"model": settings.llm.model, "prompt_version": PROMPT_VERSION, **counts,
                     "failures": [{"caption": c, "error": e} for c, e in sorted(failures.items())]}
    if failures and settings.on_failure == "error":
        raise DataError(Path(cache_dir) / "split_texts" / "llm.jsonl",
                        f"{len(failures)} caption(s) could not be split, e.g. {next(iter(sorted(failures)))!r}: "
                        f"{failures[sorted(failures)[0]]}",
                        "rerun (finished captions are cached) or set split_texts.on_failure: rules")
    backend_of = {c: "llm" for c in results}
    for caption in failures:
        results[caption] = settings.rules.split(caption)
        backend_of[caption] = "rules (llm failed)"
    return results, backend_of, report


def part_table(rows: list[dict[str, Any]], results: dict[str, PartAnnotation],
               backend_of: dict[str, str]) -> pd.DataFrame:
    """The part_texts table: caption rows plus ``backend`` and ``<part>_action`` / ``<part>_text`` columns."""
    records = []
    for row in rows:
        annotation = results[row["caption"]]
        record = {**row, "backend": backend_of[row["caption"]]}
        for part in PART_NAMES:
            record[f"{part}_action"] = annotation[part]["action"]
            record[f"{part}_text"] = annotation[part]["text"]
        records.append(record)
    return pd.DataFrame.from_records(records)


def annotations_export(table: pd.DataFrame) -> dict[str, PartAnnotation]:
    """LGTM's ``body_part_annotations.json``: {seg_id: {part: {action, text}}} with all six parts."""
    return {row["seg_id"]: {p: {"action": row[f"{p}_action"], "text": row[f"{p}_text"]} for p in PART_NAMES}
            for row in table.to_dict("records")}


def ground_truth_agreement(table: pd.DataFrame, truth: dict[str, PartAnnotation]) -> dict[str, float]:
    """Agreement of the moving-part sets with ground-truth part labels (synthetic data)."""
    from motion.text.quality import part_accuracy, set_scores

    export = annotations_export(table)
    predicted = {s: active_parts(a) for s, a in export.items() if s in truth}
    reference = {s: active_parts(truth[s]) for s in predicted}
    action_hits = [export[s][p]["action"] == truth[s][p]["action"]
                   for s in predicted for p in reference[s] & predicted[s]]
    return {**set_scores(predicted, reference), "part_accuracy": part_accuracy(predicted, reference),
            "action_accuracy": sum(action_hits) / len(action_hits) if action_hits else 0.0}


def split_corpus(poses_dir: str | Path, out: str | Path, settings: SplitSettings,
                 cache_dir: str | Path) -> dict[str, Any]:
    """Split every caption of ``<poses_dir>/texts.parquet`` into ``out``: part_texts.parquet, LGTM's
    body_part_annotations.json and report.json (agreement with ``part_texts.json`` when the poses
    stage has that ground truth); returns the report."""
    poses_dir, out = Path(poses_dir), Path(out)
    rows = read_caption_rows(poses_dir / CAPTION_TABLE)
    results, backend_of, report = split_unique([r["caption"] for r in rows], settings, cache_dir)
    table = part_table(rows, results, backend_of)
    export = annotations_export(table)
    report["captions"] = len(table)
    report["non_idle_share"] = sum(bool(active_parts(a)) for a in export.values()) / max(len(export), 1)
    truth_file = poses_dir / "part_texts.json"
    if truth_file.is_file():
        truth = read_part_annotations(truth_file, "rerun `dvc repro poses`")
        report["ground_truth"] = ground_truth_agreement(table, truth)
    write_parquet(out / "part_texts.parquet", table)
    write_json(out / "body_part_annotations.json", export)
    write_json(out / "report.json", report)
    return report
