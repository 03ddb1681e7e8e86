"""Stage evaluate: text-to-motion metrics of LGTM with replications, 95% CIs, part-level metrics and ablations.

Reads ``paths`` and ``evaluate`` (plus ``lgtm`` for the text-latent source, the sampling defaults of the rows
and caption lengths) from params.yaml; the features, captions, part texts, token features, the trained TMRs
(data/tmr) and LGTM (data/lgtm). Rows: Real (the test motions), then ``evaluate.configs.<config>.rows`` (LGTM,
the whole-body-text ablation, other samplers/step counts, guidance; each row overrides ``lgtm.sampling``).
The protocol is ``motion.eval.evaluation.evaluate``; generated sets are cached in ``${paths.cache}/eval_samples``
per (checkpoint, sampler, steps, guidance, seed, captions), so a rerun only recomputes metrics. Writes
``${paths.metrics}/evaluate.json`` (DVC metrics) and ``paths.evaluate``: report.md, results.json
(per-replication values, tests, notes) and PNG bar charts.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from motion.core.config import load_params, seed_everything
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json, write_text
from motion.core.sampling import SamplingConfig
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


def settings_of(params: dict[str, Any]) -> dict[str, Any]:
    """The selected ``evaluate.configs.<config>`` merged over the section's top-level keys."""
    section = params.get("evaluate") or {}
    name = section.get("config", "cpu")
    configs = section.get("configs") or {}
    if name not in configs:
        raise ValueError(f"evaluate.config {name!r} is not one of {sorted(configs)}")
    return {**{k: v for k, v in section.items() if k != "configs"}, **configs[name]}


def evaluation_settings(params: dict[str, Any]) -> EvaluationSettings:
    """The protocol of the selected config; each row's sampling overrides ``lgtm.sampling``."""
    cfg = settings_of(params)
    seed = int(cfg.get("seed", params.get("seed", 0)))
    defaults = (params.get("lgtm") or {}).get("sampling") or {}
    rows = tuple(EvaluationRow(str(spec["name"]), SamplingConfig.from_dict({**defaults, **spec}),
                               spec.get("conditioning", "parts"), bool(spec.get("multimodality", False)), dict(spec))
                 for spec in cfg.get("rows") or [])
    return EvaluationSettings(MetricSettings(int(cfg.get("replications", 20)), int(cfg.get("diversity_times", 300)),
                                             int(cfg.get("mm_times", 10)), seed),
                              int(cfg.get("generation_seeds", 1)), int(cfg.get("mm_texts", 100)),
                              int(cfg.get("mm_repeats", 30)), rows,
                              tuple(tuple(p) for p in cfg.get("compare") or []))


def run(params: dict[str, Any], tmr: TMREvaluator, generator: MotionGenerator | None, window: int,
        t2m: Evaluator | None = None) -> dict[str, Any]:
    """Read the test captions and motions named in params, then evaluate every row."""
    paths, cfg = params["paths"], settings_of(params)
    lgtm_section = params.get("lgtm") or {}
    settings = evaluation_settings(params)
    captions = read_test_captions(paths["features"], Path(paths["poses"]) / "texts",
                                  Path(paths["texts"]) / "body_part_annotations.json", window,
                                  int(lgtm_section.get("min_frames", 40)), int(lgtm_section.get("max_frames", 200)),
                                  int(cfg.get("max_captions", 0)), settings.metrics.seed)
    return evaluate(settings, captions, real_motions(paths["features"], captions), tmr, generator, window,
                    Path(paths["cache"]) / "eval_samples", t2m)


def write_outputs(results: dict[str, Any], out_dir: str | Path, metrics_path: str | Path) -> None:
    """Write the output folder (report.md, results.json, PNGs) atomically, then the DVC metrics file."""
    with atomic_dir(out_dir) as tmp:
        write_json(Path(tmp) / "results.json", results)
        write_text(Path(tmp) / "report.md", report_markdown(results))
        bar_charts(results["summary"]["tmr"], tmp)
    write_json(metrics_path, metrics_json(results))


def main() -> None:
    """Load the trained models named in params.yaml, evaluate, write the outputs."""
    params = load_params()
    paths, cfg = params["paths"], settings_of(params)
    seed_everything(int(params.get("seed", 0)))
    import torch

    from models.inference import LGTMGenerator, TrainedLGTM
    from models.tmr import load_tmr
    from motion.core.device import claim_gpu, resolve_device

    torch.set_num_threads(int(cfg.get("num_threads", 2)))
    device = claim_gpu(resolve_device(cfg.get("device", "auto")))
    try:
        tmr = TMREvaluator.from_folders(lambda folder: load_tmr(folder, device), paths["tmr"], paths["embeddings"],
                                        Path(paths["features"]) / "part_stats.npz", device)
        lgtm = params.get("lgtm", {}) or {}
        trained = TrainedLGTM.at(paths, lgtm.get("text_latents", "tmr"), int(params.get("seed", 0)))
        generator = LGTMGenerator.load(trained, device, int(cfg.get("batch_size", 32)))
        t2m = None
        t2m_cfg = cfg.get("t2m") or {}
        if t2m_cfg.get("checkpoint"):
            from models.t2m_evaluator import T2MEvaluator

            t2m = T2MEvaluator.load(t2m_cfg["checkpoint"], t2m_cfg.get("glove_dir", ""), t2m_cfg.get("meta_dir", ""),
                                    device)
        results = run(params, tmr, generator, generator.window, t2m)
        write_outputs(results, paths["evaluate"], Path(paths["metrics"]) / "evaluate.json")
    except (DataError, ValueError, KeyError) as e:
        sys.exit(f"evaluate: {e}")
    c = results["counts"]
    print(f"evaluate: {c['captions']} captions, {len(c['motions'])} rows, cache {c['cache_hits']} hits / "
          f"{c['cache_misses']} misses -> {paths['evaluate']}")


if __name__ == "__main__":
    main()
