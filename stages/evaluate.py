"""Stage evaluate: text-to-motion metrics of LGTM with replications, 95% CIs, part-level metrics and ablations.

Reads ``paths`` and ``evaluate`` (plus ``lgtm`` for the text-latent source, the sampling defaults of the rows
and caption lengths) from params.yaml; the features, captions, part texts, token features, the trained TMRs
(data/tmr) and LGTM (data/lgtm). Rows: Real (the test motions), then ``evaluate.rows`` (LGTM,
the whole-body-text ablation, other samplers/step counts, guidance; each row overrides ``lgtm.sampling``).
``models`` chooses the models: the trained ones or the released ones (``import_official``'s output).
The protocol is ``motion.eval.evaluation.evaluate``; generated sets are cached in ``${paths.cache}/eval_samples``
per (checkpoint, sampler, steps, guidance, seed, captions), so a rerun only recomputes metrics. Writes
``${paths.metrics}/evaluate.json`` (DVC metrics) and ``paths.evaluate``: report.md, results.json
(per-replication values, tests, notes) and PNG bar charts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json, write_text
from motion.core.sampling import SamplingConfig
from motion.core.seeding import seed_everything
from motion.core.settings import to_dict
from motion.eval.evaluation import (
    EvaluationRow,
    EvaluationSettings,
    Evaluator,
    MetricSettings,
    MotionGenerator,
    TMREvaluator,
    evaluate,
    read_test_captions,
    real_motions,
)
from motion.eval.report import bar_charts, metrics_json, report_markdown
from stages.entry import stage_main
from stages.settings import Settings


def evaluation_settings(settings: Settings) -> EvaluationSettings:
    """The protocol of params ``evaluate``; each row's sampling keys override ``lgtm.sampling``."""
    cfg, base = settings.evaluate, to_dict(settings.lgtm.sampling)
    rows = tuple(EvaluationRow(row.name, SamplingConfig.from_dict({**base, **row.as_written()}),
                               row.conditioning or "parts", bool(row.multimodality), row.as_written())
                 for row in cfg.rows)
    return EvaluationSettings(MetricSettings(cfg.replications, cfg.diversity_times, cfg.mm_times, settings.seed),
                              cfg.generation_seeds, cfg.mm_texts, cfg.mm_repeats, rows,
                              tuple(tuple(p) for p in cfg.compare))


def run(settings: Settings, tmr: TMREvaluator, generator: MotionGenerator | None, window: int,
        t2m: Evaluator | None = None) -> dict[str, Any]:
    """Read the test captions and motions named in the settings, then evaluate every row
    (``evaluate.protocol``: the caption-level one, or Guo et al.'s, ``motion.eval.guo``)."""
    paths, protocol = settings.paths, evaluation_settings(settings)
    if settings.evaluate.protocol == "guo":
        from motion.eval.guo import evaluate_guo, read_items

        if generator is None:
            raise DataError(paths.lgtm, "no trained LGTM to evaluate", "run `dvc repro train_lgtm`")
        items = read_items(paths.features, Path(paths.poses) / "texts",
                           Path(paths.texts) / "body_part_annotations.json",
                           settings.captions.min_frames, settings.captions.max_frames)
        return evaluate_guo(protocol, items, paths.features, tmr, generator, window,
                            Path(paths.cache) / "eval_samples", t2m)
    captions = read_test_captions(paths.features, Path(paths.poses) / "texts",
                                  Path(paths.texts) / "body_part_annotations.json", window,
                                  settings.captions.min_frames, settings.captions.max_frames,
                                  settings.evaluate.max_captions, protocol.metrics.seed)
    return evaluate(protocol, captions, real_motions(paths.features, captions), tmr, generator, window,
                    Path(paths.cache) / "eval_samples", t2m)


def write_outputs(results: dict[str, Any], out_dir: str | Path, metrics_path: str | Path) -> None:
    """Write the output folder (report.md, results.json, PNGs) atomically, then the DVC metrics file."""
    with atomic_dir(out_dir) as tmp:  # the outputs never depend on the sample cache's state
        write_json(Path(tmp) / "results.json", {k: v for k, v in results.items() if k != "cache"})
        write_text(Path(tmp) / "report.md", report_markdown(results))
        bar_charts(results["summary"]["tmr"], tmp)
    write_json(metrics_path, metrics_json(results))


def load_and_evaluate(settings: Settings) -> None:
    """Load the models ``models.source`` names, evaluate, write the outputs."""
    paths, cfg = settings.paths, settings.evaluate
    seed_everything(settings.seed)
    import torch

    from models.inference import LGTMGenerator, ModelFolders
    from models.tmr import load_tmr
    from motion.core.device import claim_gpu, resolve_device

    if settings.compute.threads.evaluate:
        torch.set_num_threads(settings.compute.threads.evaluate)
    device = claim_gpu(resolve_device(settings.compute.device))
    models = ModelFolders.of(settings.models, paths, settings.lgtm.text_latents, settings.seed)
    tmr = TMREvaluator.from_folders(lambda folder: load_tmr(folder, device), models.tmr, paths.embeddings,
                                    models.part_stats, device)
    generator = LGTMGenerator.load(models.lgtm, device, cfg.batch_size)
    t2m = None
    if cfg.t2m.checkpoint:
        from models.t2m_evaluator import T2MEvaluator

        t2m = T2MEvaluator.load(cfg.t2m.checkpoint, cfg.t2m.glove_dir, cfg.t2m.meta_dir, device)
    results = run(settings, tmr, generator, generator.window, t2m)
    write_outputs(results, paths.evaluate, Path(paths.metrics) / "evaluate.json")
    c = results["counts"]
    cache = results["cache"]
    print(f"evaluate: {c['captions']} captions, {len(c['motions'])} rows, sample cache {cache['hits']} hits / "
          f"{cache['misses']} misses -> {paths.evaluate}")


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("evaluate", load_and_evaluate)

if __name__ == "__main__":
    main()
