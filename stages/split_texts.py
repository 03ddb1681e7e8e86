"""Stage split_texts: every caption of ${paths.poses}/texts -> six body-part texts (LGTM's part captions).

Reads ``paths`` and ``split_texts`` from params.yaml. Writes ${paths.texts}/part_texts.parquet,
body_part_annotations.json (LGTM's export) and report.json, whole or not at all. The LLM backend's
replies are cached in ${paths.cache}/split_texts, outside the stage's outputs, so reruns are free.
"""
from __future__ import annotations

import sys
from pathlib import Path

from motion.core.config import load_params
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json, write_parquet
from motion.data.captions import read_part_annotations
from motion.text.schema import active_parts
from motion.text.split import (SplitSettings, annotations_export, ground_truth_agreement, part_table,
                               read_caption_rows, split_unique)


def main() -> None:
    """Split all captions into part texts with the configured backend."""
    params = load_params()
    paths = params["paths"]
    try:
        settings = SplitSettings.from_params(params.get("split_texts"))
        rows = read_caption_rows(Path(paths["poses"]) / "texts")
        results, backend_of, report = split_unique([r["caption"] for r in rows], settings,
                                                   paths["cache"])
        table = part_table(rows, results, backend_of)
        export = annotations_export(table)
        report["captions"] = len(table)
        report["non_idle_share"] = sum(bool(active_parts(a)) for a in export.values()) / max(len(export), 1)
        truth_file = Path(paths["poses"]) / "part_texts.json"
        if truth_file.is_file():
            truth = read_part_annotations(truth_file, "rerun `dvc repro poses`")
            report["ground_truth"] = ground_truth_agreement(table, truth)
        with atomic_dir(paths["texts"]) as tmp:
            write_parquet(tmp / "part_texts.parquet", table)
            write_json(tmp / "body_part_annotations.json", export)
            write_json(tmp / "report.json", report)
    except DataError as e:
        sys.exit(f"split_texts: {e}")
    failed = report.get("llm", {}).get("failed", 0)
    truth = report.get("ground_truth")
    print(f"split_texts: {report['captions']} captions ({report['unique_captions']} unique) split by "
          f"{settings.backend}; {report['non_idle_share']:.1%} with a moving part"
          + (f"; {failed} LLM failures split by rules (see report.json)" if failed else "")
          + (f"; part F1 vs ground truth {truth['f1']:.3f}" if truth else "") + f" -> {paths['texts']}")


if __name__ == "__main__":
    main()
