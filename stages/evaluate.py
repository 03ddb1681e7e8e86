"""Stage evaluate: the trained variants and the sampler curve, scored by an evaluator no model was conditioned on.

Reads ``paths``, ``evaluate``, ``lgtm`` (runs, variants, text latents, sampling) and ``models`` from params.yaml.
Rows: Real (the test motions), one row per variant of ``evaluate.variants`` pooling every training run of that
variant (``lgtm.runs``; units = runs x replications, so the CIs include the training-seed variance), then
``evaluate.rows`` (other settings of ``models.lgtm``'s run). Each variant is tested against ``lgtm`` (Welch over
the units, Holm-corrected across the table). Metric spaces, in report order: Guo's T2M evaluator when
``evaluate.t2m`` is set; the evaluator TMRs (``models.evaluator``: trained with their own seed, never a
conditioner); the conditioning TMRs (``models.tmr``, secondary and labelled so). The sampler curve scores
``models.lgtm`` at ``evaluate.curve.points`` on a seeded subset of the items, with wall time per motion.
``evaluate.protocol`` is Guo's (``motion.eval.guo``) or the caption-level one. Generated sets are cached in
``${paths.cache}/eval_samples``, so a rerun only recomputes metrics. With ``compute.processes.evaluate`` > 1 a
planning pass (stand-in generators, ``PlanningGenerator``) lists every set the evaluation will ask for, the sets
not yet cached are generated side by side in that many processes, and the real pass reads them all from the
cache: the same bytes as generating them in turn (each set depends only on its run, texts, sampler and seed).
Writes ``${paths.metrics}/evaluate.json``
(DVC metrics) and ``paths.evaluate``: report.md, results.json (per-unit values, tests, notes) and PNG charts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from models.inference import LGTMGenerator, ModelFolders
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json, write_text
from motion.core.parts import TEXT_SLOTS
from motion.core.process import side_by_side
from motion.core.sampling import SamplingConfig
from motion.core.seeding import seed_everything
from motion.core.settings import to_dict
from motion.data.clipstore import CAPTION_TABLE
from motion.eval.evaluation import (
    EvaluationRow,
    EvaluationSettings,
    Evaluator,
    MetricSettings,
    MotionGenerator,
    PlanningEvaluator,
    PlanningGenerator,
    Request,
    TMREvaluator,
    cached_generate,
    evaluate,
    read_test_captions,
    real_motions,
    sample_path,
    share_requests,
)
from motion.eval.report import bar_charts, curve_chart, metrics_json, primary_space, report_markdown
from stages.entry import stage_main
from stages.settings import Settings


def variant_conditioning(settings: Settings, variant: str) -> str:
    """How a variant's rows are conditioned: the part texts, or the caption in all seven slots."""
    return "whole_body" if settings.lgtm.variants[variant].texts == "caption" else "parts"


def variant_runs(settings: Settings, variant: str) -> tuple[str, ...]:
    """The training runs of ``variant`` (official source: the released model, one run named lgtm)."""
    if settings.models.source == "official":
        return (PRIMARY,) if variant == PRIMARY else ()
    return tuple(name for name, run in settings.lgtm.runs.items() if run.variant == variant)


PRIMARY = "lgtm"  # the variant the others are tested against


def evaluation_settings(settings: Settings) -> EvaluationSettings:
    """The protocol of params ``evaluate``: the variant rows (all their runs, ``evaluate.sampling`` over
    ``lgtm.sampling``), then the rows of ``models.lgtm``'s run (each row's sampling keys override ``lgtm.sampling``);
    every variant is compared with lgtm, plus ``evaluate.compare``."""
    cfg, base = settings.evaluate, to_dict(settings.lgtm.sampling)
    primary_run = Path(settings.models.lgtm).name if settings.models.source == "trained" else PRIMARY
    variant_sampling = SamplingConfig.from_dict(to_dict(cfg.sampling.over(settings.lgtm.sampling)))
    rows = [EvaluationRow(v, variant_sampling, variant_conditioning(settings, v), cfg.mm_texts > 0,
                          {"variant": v, **{k: x for k, x in to_dict(cfg.sampling).items() if x is not None}},
                          variant_runs(settings, v), "variant")
            for v in cfg.variants if variant_runs(settings, v)]
    rows += [EvaluationRow(row.name, SamplingConfig.from_dict({**base, **row.as_written()}),
                           row.conditioning or "parts", bool(row.multimodality), row.as_written(), (primary_run,))
             for row in cfg.rows]
    pairs = [(v, PRIMARY) for v in cfg.variants if v != PRIMARY and PRIMARY in cfg.variants]
    pairs += [tuple(p) for p in cfg.compare if tuple(p) not in pairs]
    return EvaluationSettings(MetricSettings(cfg.replications, cfg.diversity_times, cfg.mm_times, settings.seed),
                              cfg.generation_seeds, cfg.mm_texts, cfg.mm_repeats, tuple(rows), tuple(pairs))


def curve_settings(settings: Settings) -> EvaluationSettings:
    """The sampler curve: one row per ``evaluate.curve.points`` of ``models.lgtm``'s run, each point tested
    against the reference point (Holm-corrected over the curve)."""
    cfg, curve = settings.evaluate, settings.evaluate.curve
    primary_run = Path(settings.models.lgtm).name if settings.models.source == "trained" else PRIMARY
    base = to_dict(settings.lgtm.sampling)
    rows = tuple(EvaluationRow(pt.name, SamplingConfig.from_dict({**base, "sampler": pt.sampler, "steps": pt.steps}),
                               "parts", False, {"sampler": pt.sampler, "steps": pt.steps}, (primary_run,))
                 for pt in curve.points)
    pairs = tuple((pt.name, curve.reference) for pt in curve.points if pt.name != curve.reference)
    return EvaluationSettings(MetricSettings(curve.replications, cfg.diversity_times, cfg.mm_times, settings.seed),
                              1, 0, 1, rows, pairs)


def curve_items(items: list, count: int, seed: int) -> list:
    """A seeded subset of ``count`` items (all when 0 or more than there are), in their order."""
    import numpy as np

    if not 0 < count < len(items):
        return items
    keep = np.sort(np.random.default_rng([seed, 31]).choice(len(items), count, replace=False))
    return [items[i] for i in keep]


def sample_cache(settings: Settings) -> Path:
    """The folder of the cached generated sets."""
    return Path(settings.paths.cache) / "eval_samples"


def run(settings: Settings, spaces: dict[str, Evaluator], generators: dict[str, MotionGenerator],
        window: int, cache: Path | None = None) -> dict[str, Any]:
    """Read the test captions and motions named in the settings, then evaluate every row (``evaluate.protocol``:
    Guo et al.'s, ``motion.eval.guo``, or the caption-level one) and the sampler curve (Guo's protocol).
    Generated sets are read from and written to ``cache`` (default: ``sample_cache``)."""
    from motion.eval.guo import evaluate_guo, read_items

    paths, protocol = settings.paths, evaluation_settings(settings)
    if not generators:
        raise DataError(paths.lgtm, "no trained LGTM to evaluate", "run `dvc repro train_lgtm`")
    cache = sample_cache(settings) if cache is None else cache
    items = read_items(paths.features, Path(paths.poses) / CAPTION_TABLE,
                       Path(paths.texts) / "body_part_annotations.json", settings.captions.min_frames,
                       settings.captions.max_frames)
    if settings.evaluate.protocol == "guo":
        results = evaluate_guo(protocol, items, paths.features, spaces, generators, window, cache)
    else:
        captions = read_test_captions(paths.features, Path(paths.poses) / CAPTION_TABLE,
                                      Path(paths.texts) / "body_part_annotations.json", window,
                                      settings.captions.min_frames, settings.captions.max_frames,
                                      settings.evaluate.max_captions, protocol.metrics.seed)
        results = evaluate(protocol, captions, real_motions(paths.features, captions), spaces, generators, window,
                           cache)
    if settings.evaluate.curve.points:
        curve = curve_settings(settings)
        subset = curve_items(items, settings.evaluate.curve.items, settings.seed)
        first = next(iter(spaces))
        results["curve"] = evaluate_guo(curve, subset, paths.features, {first: spaces[first]}, generators, window,
                                        cache)
        results["curve"]["reference"] = settings.evaluate.curve.reference
        curve_cache = results["curve"].pop("cache")
        results["cache"] = {k: results["cache"][k] + curve_cache[k] for k in ("hits", "misses")}
    return results


def planned_requests(settings: Settings, generators: dict[str, MotionGenerator], window: int) -> list[Request]:
    """Every generated set ``run`` will ask for, listed by a pass with stand-in generators and a stand-in
    metric space (its scores are discarded)."""
    import tempfile

    requests: list[Request] = []
    planners: dict[str, MotionGenerator] = {n: PlanningGenerator(n, g, requests) for n, g in generators.items()}
    with tempfile.TemporaryDirectory(prefix="evaluate-plan-") as scratch:
        run(settings, {PlanningEvaluator.name: PlanningEvaluator()}, planners, window, Path(scratch))
    return requests


def prefetch(settings: Settings, generators: dict[str, MotionGenerator], window: int) -> int:
    """Generate the sets the evaluation will read and the cache lacks, in ``compute.processes.evaluate``
    processes; returns how many were generated (0 with one process: ``run`` then generates them in turn)."""
    processes = settings.compute.processes.evaluate
    if processes < 2:
        return 0
    cache = sample_cache(settings)
    todo = [q for q in dict.fromkeys(planned_requests(settings, generators, window))
            if not sample_path(cache, generators[q.run], q.texts, q.lengths, q.setting, q.seed).is_file()]
    shares = share_requests(todo, processes)
    if len(shares) < 2:
        return 0

    print(f"evaluate: generating {len(todo)} sets in {len(shares)} processes", flush=True)
    with side_by_side(len(shares)) as pool:
        for future in [pool.submit(generate_share, settings, share, k) for k, share in enumerate(shares)]:
            future.result()
    return len(todo)


def generate_share(settings: Settings, share: list[Request], worker: int) -> None:
    """A prefetch worker: generate ``share`` into the sample cache with the stage's thread count and device."""
    import torch

    from motion.core.device import resolve_device

    if settings.compute.threads.evaluate:
        torch.set_num_threads(settings.compute.threads.evaluate)
    generators = load_generators(settings, resolve_device(settings.compute.device), {q.run for q in share})
    for k, q in enumerate(share, 1):
        cached_generate(generators[q.run], q.texts, q.lengths, q.setting, q.seed, sample_cache(settings))
        print(f"evaluate: process {worker + 1}: set {k}/{len(share)} ({q.run}, {q.setting.sampler} "
              f"{q.setting.steps} steps, {len(q.lengths)} motions)", flush=True)


def write_outputs(results: dict[str, Any], out_dir: str | Path, metrics_path: str | Path) -> None:
    """Write the output folder (report.md, results.json, PNGs) atomically, then the DVC metrics file."""
    with atomic_dir(out_dir) as tmp:  # the outputs never depend on the sample cache's state
        write_json(Path(tmp) / "results.json", {k: v for k, v in results.items() if k != "cache"})
        write_text(Path(tmp) / "report.md", report_markdown(results))
        bar_charts(results["summary"][primary_space(results)], tmp)
        if "curve" in results:
            curve_chart(results["curve"], tmp)
    write_json(metrics_path, metrics_json(results))


def metric_spaces(settings: Settings, device: str) -> tuple[dict[str, Evaluator], dict[str, str]]:
    """The metric spaces in report order and what each is: T2M (when configured), the evaluator TMRs, and the
    conditioning TMRs (secondary). With the released models the evaluator is the released TMRs themselves."""
    from models.tmr import load_tmr

    models, paths, cfg = settings.models, settings.paths, settings.evaluate
    folders = ModelFolders.of(models, paths, settings.lgtm.text_latents, settings.seed)

    def tmrs(root: str | Path, encoders: tuple[str, ...] = TEXT_SLOTS) -> TMREvaluator:
        return TMREvaluator.from_folders(lambda folder: load_tmr(folder, device), root, paths.embeddings,
                                         folders.part_stats, device, encoders)

    spaces: dict[str, Evaluator] = {}
    labels: dict[str, str] = {}
    if cfg.t2m.checkpoint:
        from models.t2m_evaluator import T2MEvaluator

        spaces["t2m"] = T2MEvaluator.load(cfg.t2m.checkpoint, cfg.t2m.glove_dir, cfg.t2m.meta_dir, device)
        labels["t2m"] = "Guo et al.'s T2M evaluator (finest.tar), trained by its authors: independent of every row"
    if Path(models.evaluator) != Path(models.tmr):
        spaces["evaluator"] = tmrs(models.evaluator, tuple(settings.tmr.encoders))
        labels["evaluator"] = (f"evaluator TMRs ({models.evaluator}): trained on the training split with their own "
                               "seed, never used to condition a model")
    spaces["tmr"] = tmrs(models.tmr)
    labels["tmr"] = (f"conditioning TMRs ({models.tmr}): the text latents LGTM and its variants are conditioned on "
                     "(favours the models conditioned on them; secondary)")
    return spaces, labels


def load_generators(settings: Settings, device: str, runs: set[str]) -> dict[str, MotionGenerator]:
    """One generator per training run the rows use (official source: the released LGTM as run lgtm)."""
    models, paths = settings.models, settings.paths
    if models.source == "official":
        folders = ModelFolders.of(models, paths, settings.lgtm.text_latents, settings.seed)
        return {PRIMARY: LGTMGenerator.load(folders.lgtm, device, settings.evaluate.batch_size)}
    out: dict[str, MotionGenerator] = {}
    for name in sorted(runs):
        trained = ModelFolders.trained(Path(models.runs) / name, models.tmr, paths.features, paths.embeddings,
                                       settings.lgtm.text_latents, settings.seed).lgtm
        if not (trained.lgtm / "config.json").is_file():
            raise DataError(trained.lgtm, "no trained LGTM run here", "run `dvc repro train_lgtm`")
        out[name] = LGTMGenerator.load(trained, device, settings.evaluate.batch_size)
    return out


def load_and_evaluate(settings: Settings) -> None:
    """Load the models ``models`` names, evaluate, write the outputs."""
    paths = settings.paths
    seed_everything(settings.seed)
    import torch

    from motion.core.device import claim_gpu, resolve_device

    if settings.compute.threads.evaluate:
        torch.set_num_threads(settings.compute.threads.evaluate)
    device = claim_gpu(resolve_device(settings.compute.device))
    spaces, labels = metric_spaces(settings, device)
    runs = {r for row in evaluation_settings(settings).rows for r in row.runs}
    runs |= {r for row in curve_settings(settings).rows for r in row.runs}
    generators = load_generators(settings, device, runs)
    window = min(g.window for g in generators.values())
    prefetched = prefetch(settings, generators, window)
    results = run(settings, spaces, generators, window)
    results["spaces"] = labels
    results["variants"] = describe_variants(settings)
    results["synthetic"] = settings.download.source == "synthetic"
    write_outputs(results, paths.evaluate, Path(paths.metrics) / "evaluate.json")
    c = results["counts"]
    cache = results["cache"]
    print(f"evaluate: {c['captions']} items, {len(c['motions'])} rows, {prefetched} sets generated side by side, "
          f"sample cache {cache['hits']} hits / {cache['misses']} misses -> {paths.evaluate}")


def describe_variants(settings: Settings) -> dict[str, dict[str, Any]]:
    """What each evaluated variant is: its switches and its training runs with their seeds."""
    if settings.models.source == "official":
        return {PRIMARY: {"released": settings.models.lgtm}}
    out = {}
    for v in settings.evaluate.variants:
        spec = to_dict(settings.lgtm.variants[v])
        runs = {name: settings.seed + run.seed for name, run in settings.lgtm.runs.items() if run.variant == v}
        out[v] = {**spec, "runs": runs}
    return out


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("evaluate", load_and_evaluate)

if __name__ == "__main__":
    main()
