"""Stage split_texts: every caption of ${paths.poses}/texts -> six body-part texts (LGTM's part captions).

Reads ``paths`` and ``split_texts``. Writes ${paths.texts}/part_texts.parquet, body_part_annotations.json
(LGTM's export) and report.json, whole or not at all. The LLM backend's replies are cached in
${paths.cache}/split_texts, outside the stage's outputs, so reruns are free.
"""
from __future__ import annotations

from motion.core.io import atomic_dir
from motion.core.settings import convert
from motion.text.split import SplitSettings, split_corpus
from stages.entry import stage_main
from stages.settings import Settings


def run(settings: Settings) -> None:
    """Split all captions into part texts with the configured backend."""
    paths, splitter = settings.paths, convert(SplitSettings, settings.split_texts)
    with atomic_dir(paths.texts) as tmp:
        report = split_corpus(paths.poses, tmp, splitter, paths.cache)
    failed = report.get("llm", {}).get("failed", 0)
    truth = report.get("ground_truth")
    print(f"split_texts: {report['captions']} captions ({report['unique_captions']} unique) split by "
          f"{splitter.backend}; {report['non_idle_share']:.1%} with a moving part"
          + (f"; {failed} LLM failures split by rules (see report.json)" if failed else "")
          + (f"; part F1 vs ground truth {truth['f1']:.3f}" if truth else "") + f" -> {paths.texts}")


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("split_texts", run)


if __name__ == "__main__":
    main()
