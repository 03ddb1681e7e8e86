"""Stage evaluate: text-to-motion metrics of LGTM with replications, 95% CIs, part-level metrics and ablations.

Reads ``paths`` and ``evaluate`` (plus ``lgtm`` for the text-latent source and caption lengths) from
params.yaml; the features, captions, part texts, token features, the trained TMRs (data/tmr) and LGTM
(data/lgtm). Rows: Real (the test motions), then ``evaluate.configs.<config>.rows`` (LGTM, the
whole-body-text ablation, other samplers/step counts, guidance). Generated sets are cached in
``${paths.cache}/eval_samples`` per (checkpoint, sampler, steps, guidance, seed, captions), so a rerun only
recomputes metrics. Writes ``${paths.metrics}/evaluate.json`` (DVC metrics) and ``paths.evaluate``:
report.md, results.json (per-replication values, tests, notes) and PNG bar charts.
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.config import load_params, seed_everything
from motion.core.errors import DataError
from motion.eval.evaluation import (ENCODERS, WHOLE_BODY, Evaluator, MetricSettings, MotionGenerator, RowData,
                               SamplerSetting, TMREvaluator, cached_generate, compare_rows, condition_texts,
                               read_test_captions, real_motions, row_metrics, summarise)
from motion.eval.report import bar_charts, markdown_table, part_table, significance_lines
from motion.core.io import atomic_dir, write_json, write_text

REAL = "real"


def settings_of(params: dict[str, Any]) -> dict[str, Any]:
    """The selected ``evaluate.configs.<config>`` merged over the section's top-level keys."""
    section = params.get("evaluate") or {}
    name = section.get("config", "cpu")
    configs = section.get("configs") or {}
    if name not in configs:
        raise ValueError(f"evaluate.config {name!r} is not one of {sorted(configs)}")
    return {**{k: v for k, v in section.items() if k != "configs"}, **configs[name]}


def embed_row(name: str, motions_per_seed: list[list[np.ndarray]], spaces: dict[str, Evaluator],
              tmr: TMREvaluator, mm: list[np.ndarray] | None, mm_shape: tuple[int, int]) -> dict[str, RowData]:
    """Evaluator embeddings of one row in every metric space (part latents with the TMRs, in the TMR space)."""
    out = {}
    for space, ev in spaces.items():
        data = RowData(name, [ev.encode_motions(m) for m in motions_per_seed],
                       num_samples=sum(len(m) for m in motions_per_seed) + (len(mm) if mm else 0))
        if mm:
            data.mm = ev.encode_motions(mm).reshape(*mm_shape, -1)
        if space == "tmr":
            data.parts = {e: [tmr.encode_motions(m, e) for m in motions_per_seed] for e in ENCODERS}
        out[space] = data
    return out


def run(params: dict[str, Any], tmr: TMREvaluator, generator: MotionGenerator | None, window: int,
        t2m: Evaluator | None = None) -> dict[str, Any]:
    """Evaluate every row; returns results (summaries, per-replication values, comparisons, counts, notes)."""
    paths, cfg = params["paths"], settings_of(params)
    lgtm_section = params.get("lgtm") or {}
    seed = int(cfg.get("seed", params.get("seed", 0)))
    captions = read_test_captions(paths["features"], Path(paths["poses"]) / "texts",
                                  Path(paths["texts"]) / "body_part_annotations.json", window,
                                  int(lgtm_section.get("min_frames", 40)), int(lgtm_section.get("max_frames", 200)),
                                  int(cfg.get("max_captions", 0)), seed)
    n = len(captions)
    notes: list[str] = []
    settings = MetricSettings(int(cfg.get("replications", 20)), int(cfg.get("diversity_times", 300)),
                              int(cfg.get("mm_times", 10)), seed)
    if n < settings.diversity_times:
        notes.append(f"Diversity uses {n} pairs (the protocol's {settings.diversity_times} need that many "
                     f"test captions; {n} were evaluated).")
    if n < 32:
        notes.append(f"R-precision needs batches of 32 pairs; only {n} captions, so it is not reported.")
    spaces: dict[str, Evaluator] = {"tmr": tmr}
    if t2m is not None:
        spaces["t2m"] = t2m
    texts = [c.caption for c in captions]
    tokens = [c.tokens for c in captions]
    text_emb = {s: ev.encode_texts(texts, tokens) for s, ev in spaces.items()}
    part_texts = {WHOLE_BODY: (text_emb["tmr"], texts)}
    for k, part in enumerate(ENCODERS[1:]):
        raw = [c.part_texts[k] for c in captions]
        part_texts[part] = (tmr.encode_texts(raw, encoder=part), raw)
    real = real_motions(paths["features"], captions)
    rows = {REAL: embed_row(REAL, [real], spaces, tmr, None, (0, 0))}
    rows[REAL]["tmr"].num_samples = n
    seeds = [seed + s for s in range(int(cfg.get("generation_seeds", 1)))]
    if settings.replications > len(seeds):
        notes.append(f"{len(seeds)} generated set(s) per row for {settings.replications} replications: the CIs of "
                     "FID, MM-Dist and similarities (deterministic given a set) reflect "
                     + ("only one generation" if len(seeds) == 1 else f"{len(seeds)} generations") + ".")
    cache_dir = Path(paths["cache"]) / "eval_samples"
    lengths = [c.length for c in captions]
    mm_rng = np.random.default_rng([seed, 7])
    mm_idx = np.sort(mm_rng.choice(n, min(int(cfg.get("mm_texts", 100)), n), replace=False))
    mm_repeats = int(cfg.get("mm_repeats", 30))
    hits = misses = 0
    for spec in cfg.get("rows") or []:
        name = str(spec["name"])
        setting = SamplerSetting(**{k: spec[k] for k in ("sampler", "steps", "eta", "guidance_scale") if k in spec})
        if generator is None:
            raise DataError(paths["lgtm"], "no trained LGTM to evaluate", "run train_lgtm")
        if setting.guidance_scale != 1.0 and not generator.supports_guidance:
            notes.append(f"Row {name} skipped: guidance_scale {setting.guidance_scale} needs a model trained with "
                         "lgtm cond_drop_prob > 0 (this one has no unconditional branch).")
            continue
        cond = condition_texts(captions, spec.get("conditioning", "parts"))
        per_seed = []
        for s in seeds:
            motions, hit = cached_generate(generator, cond, lengths, setting, s, cache_dir)
            per_seed.append(motions)
            hits, misses = hits + hit, misses + (not hit)
        mm = None
        if spec.get("multimodality", False):
            mm_cond = [cond[i] for i in mm_idx for _ in range(mm_repeats)]
            mm_len = [lengths[i] for i in mm_idx for _ in range(mm_repeats)]
            mm, hit = cached_generate(generator, mm_cond, mm_len, setting, seed + 100_000, cache_dir)
            hits, misses = hits + hit, misses + (not hit)
        rows[name] = embed_row(name, per_seed, spaces, tmr, mm, (len(mm_idx), mm_repeats))
    values = {space: {r: row_metrics(rows[r][space], rows[REAL][space].motions[0], text_emb[space],
                                     part_texts if space == "tmr" else {}, settings) for r in rows}
              for space in spaces}
    pairs = [tuple(p) for p in cfg.get("compare") or [] if all(x in rows for x in p)]
    return {
        "summary": {s: {r: summarise(v) for r, v in rows_v.items()} for s, rows_v in values.items()},
        "values": {s: {r: {k: v.tolist() for k, v in rv.items()} for r, rv in rows_v.items()}
                   for s, rows_v in values.items()},
        "comparisons": {s: {f"{a} vs {b}": compare_rows(values[s][a], values[s][b]) for a, b in pairs}
                        for s in spaces},
        "counts": {"captions": n, "replications": settings.replications, "generation_seeds": len(seeds),
                   "diversity_pairs": min(settings.diversity_times, n),
                   "multimodality": f"{len(mm_idx)} texts x {mm_repeats} motions, {settings.mm_times} pairs each",
                   "motions": {r: rows[r]["tmr"].num_samples for r in rows},
                   "cache_hits": hits, "cache_misses": misses},
        "rows": {r: next((dict(s) for s in cfg.get("rows") or [] if s["name"] == r), {"real": True}) for r in rows},
        "notes": notes,
        "settings": {**asdict(settings), "window": window, "evaluator_normalisation":
                     "de-normalised HumanML3D features, then each TMR's part_stats.npz (the T2M evaluator: its meta "
                     "mean/std)"},
    }


def metrics_json(results: dict[str, Any]) -> dict[str, Any]:
    """The DVC metrics: ``<row>.<metric>.{mean,ci95}`` in the TMR space, ``t2m.<row>...`` when present, counts."""
    out: dict[str, Any] = {row: s for row, s in results["summary"]["tmr"].items()}
    if "t2m" in results["summary"]:
        out["t2m"] = results["summary"]["t2m"]
    out["counts"] = {"captions": results["counts"]["captions"], "replications": results["counts"]["replications"],
                     **{f"motions_{r}": v for r, v in results["counts"]["motions"].items()}}
    return out


def report_markdown(results: dict[str, Any]) -> str:
    """report.md: the tables with 95% CIs, what each figure rests on, and the significance statements."""
    c = results["counts"]
    lines = ["# Evaluation", "",
             f"{c['captions']} test captions; {c['replications']} replications (mean ± 95% CI, 1.96·std/√n); "
             f"{c['generation_seeds']} generated set(s) per row; Diversity on {c['diversity_pairs']} pairs; "
             f"MultiModality on {c['multimodality']}. The **motions** column counts the motions each row rests on.",
             f"Motions are fed to the evaluators as {results['settings']['evaluator_normalisation']}.", ""]
    for space, rows in results["summary"].items():
        lines += [f"## Whole-body metrics ({space} evaluator)", "", markdown_table(rows, c["motions"]), ""]
        if space == "tmr":
            lines += ["## Part-level metrics (part TMRs: similarity (cos+1)/2 / R-precision top-1)", "",
                      part_table(rows), ""]
        lines += [f"### Significance ({space}; Welch's t-test over replications, α = 0.05)", ""]
        lines += significance_lines(results["comparisons"][space]) or ["- no comparison configured"]
        lines.append("")
    rows_cfg = results["rows"]
    lines += ["## Rows", ""] + [f"- `{r}`: {spec}" for r, spec in rows_cfg.items()] + [""]
    if results["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)


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

    from motion.core.device import claim_gpu, resolve_device

    torch.set_num_threads(int(cfg.get("num_threads", 2)))
    device = claim_gpu(resolve_device(cfg.get("device", "auto")))
    try:
        from motion.eval.evaluation import LGTMGenerator

        tmr_root = paths["tmr"]
        tmr = TMREvaluator.from_folders(tmr_root, paths["embeddings"], Path(paths["features"]) / "part_stats.npz",
                                        device)
        generator = LGTMGenerator(params, device, int(cfg.get("batch_size", 32)))
        t2m = None
        t2m_cfg = cfg.get("t2m") or {}
        if t2m_cfg.get("checkpoint"):
            from models.t2m_evaluator import T2MEvaluator

            t2m = T2MEvaluator.load(t2m_cfg["checkpoint"], t2m_cfg.get("glove_dir", ""), t2m_cfg.get("meta_dir", ""),
                                    device)
        results = run(params, tmr, generator, int(generator.model.cfg.window), t2m)
        write_outputs(results, paths["evaluate"], Path(paths["metrics"]) / "evaluate.json")
    except (DataError, ValueError, KeyError) as e:
        sys.exit(f"evaluate: {e}")
    c = results["counts"]
    print(f"evaluate: {c['captions']} captions, {len(c['motions'])} rows, cache {c['cache_hits']} hits / "
          f"{c['cache_misses']} misses -> {paths['evaluate']}")


if __name__ == "__main__":
    main()
