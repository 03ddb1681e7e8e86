"""The evaluation's human-readable outputs: a Markdown table with 95% CIs and bar charts with CI error bars."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from motion.core.parts import PART_NAMES

MAIN_METRICS = ("r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity",
                "multimodality", "named_part_energy")
ARROWS = {"fid": "↓", "mm_dist": "↓", "diversity": "→ Real", "multimodality": "↑", "named_part_energy": "→ Real"}


def cell(summary: dict[str, dict[str, float]], key: str, digits: int = 3) -> str:
    """``mean ± ci95`` of a metric, or a dash when the row lacks it."""
    if key not in summary:
        return "—"
    s = summary[key]
    return f"{s['mean']:.{digits}f} ± {s['ci95']:.{digits}f}"


def markdown_table(rows: dict[str, dict[str, dict[str, float]]], counts: dict[str, int],
                   metrics: tuple[str, ...] = MAIN_METRICS) -> str:
    """Rows x metrics table (mean ± 95% CI) with the number of motions each row rests on."""
    shown = [m for m in metrics if any(m in s for s in rows.values())]
    head = "| row | motions | " + " | ".join(f"{m} {ARROWS.get(m, '↑')}" for m in shown) + " |"
    lines = [head, "|" + "---|" * (len(shown) + 2)]
    for name, summary in rows.items():
        lines.append(f"| {name} | {counts.get(name, 0)} | " + " | ".join(cell(summary, m) for m in shown) + " |")
    return "\n".join(lines)


def part_table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    """Part-level similarity (cos+1)/2 and part R-precision top-1 per row and part."""
    encoders = ["whole_body", *PART_NAMES]
    lines = ["| row | " + " | ".join(f"{p} sim / R@1" for p in encoders) + " |", "|" + "---|" * (len(encoders) + 1)]
    for name, s in rows.items():
        cells = [f"{cell(s, f'{p}.similarity')} / {cell(s, f'{p}.r_precision_top1')}" for p in encoders]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def significance_lines(comparisons: dict[str, dict[str, dict[str, Any]]],
                       metrics: tuple[str, ...] = MAIN_METRICS) -> list[str]:
    """One sentence per compared pair: which metric differences are significant after Holm's correction."""
    lines = []
    for pair, tests in comparisons.items():
        a, b = pair.split(" vs ")
        tested = {m: t for m, t in tests.items() if m in metrics and t.get("testable", True)}
        sig = [f"{m} (Δ {t['difference']:+.4g}, p = {t['p_value']:.3g}, Holm {t.get('p_holm', t['p_value']):.3g})"
               for m, t in tested.items() if t["significant"]]
        same = [m for m, t in tested.items() if not t["significant"]]
        untested = [f"{m} (Δ {t['difference']:+.4g})" for m, t in tests.items()
                    if m in metrics and not t.get("testable", True)]
        text = f"- **{a} vs {b}**: "
        text += ("significant differences in " + "; ".join(sig)) if sig else "no significant difference"
        if same:
            text += f"; not significant: {', '.join(same)}"
        if untested:
            text += f"; not testable (the same value in every replication: nothing redrawn): {', '.join(untested)}"
        lines.append(text + ".")
    return lines


def seed_lines(per_run: dict[str, dict[str, dict[str, float]]], metrics: tuple[str, ...] = ("r_precision_top1",
                                                                                             "fid")) -> list[str]:
    """Per row with several training runs: each run's mean of the headline metrics (the training-seed spread)."""
    lines = []
    for row, runs in per_run.items():
        if len(runs) < 2:
            continue
        parts = [f"{run}: " + ", ".join(f"{m} {v[m]:.3f}" for m in metrics if m in v) for run, v in runs.items()]
        lines.append(f"- `{row}`: " + "; ".join(parts))
    return lines


def curve_table(curve: dict[str, Any]) -> list[str]:
    """The sampler curve: FID and R@1 per point with seconds per motion, and the fewest steps whose FID CI
    overlaps the reference point's (with the speed-up over the reference)."""
    space = next(iter(curve["summary"]))
    rows, timing, ref = curve["summary"][space], curve["timing"], curve["reference"]
    lines = ["| point | FID ↓ | R@1 ↑ | s / motion |", "|---|---|---|---|"]
    for name, summary in rows.items():
        if name == "real":
            continue
        t = timing.get(name, {}).get("seconds_per_motion")
        lines.append(f"| {name} | {cell(summary, 'fid')} | {cell(summary, 'r_precision_top1')} | "
                     f"{'—' if t is None else f'{t:.4f}'} |")
    verdict = fewest_overlapping(curve)
    lines.append("")
    if verdict is None:
        lines.append(f"No point's FID CI overlaps the reference `{ref}`'s.")
    else:
        name, steps, speedup = verdict
        lines.append(f"Fewest steps whose FID 95% CI overlaps `{ref}`'s: `{name}` ({steps} steps), "
                     f"{speedup:.1f}x faster per motion than `{ref}` (wall time of this run's sampling).")
    return lines


def fewest_overlapping(curve: dict[str, Any]) -> tuple[str, int, float] | None:
    """(point, steps, speed-up) of the cheapest point whose FID CI overlaps the reference's, or None."""
    space = next(iter(curve["summary"]))
    rows, timing, ref = curve["summary"][space], curve["timing"], curve["reference"]
    if ref not in rows or "fid" not in rows[ref]:
        return None
    lo, hi = rows[ref]["fid"]["mean"] - rows[ref]["fid"]["ci95"], rows[ref]["fid"]["mean"] + rows[ref]["fid"]["ci95"]
    best = None
    for name, spec in curve["rows"].items():
        if name in ("real", ref) or name not in rows:
            continue
        f = rows[name]["fid"]
        if f["mean"] - f["ci95"] <= hi and f["mean"] + f["ci95"] >= lo:
            if best is None or spec["steps"] < best[1]:
                best = (name, int(spec["steps"]))
    if best is None:
        return None
    t_ref = timing[ref]["seconds_per_motion"]
    t = timing[best[0]]["seconds_per_motion"]
    return best[0], best[1], (t_ref / t) if t > 0 else float("nan")


def curve_chart(curve: dict[str, Any], out_dir: str | Path) -> Path:
    """sampler_curve.png: FID and R@1 (95% CI) against steps, one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    space = next(iter(curve["summary"]))
    rows = curve["summary"][space]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for sampler in dict.fromkeys(spec["sampler"] for n, spec in curve["rows"].items() if n != "real"):
        names = sorted((n for n, spec in curve["rows"].items() if spec.get("sampler") == sampler and n in rows),
                       key=lambda n: curve["rows"][n]["steps"])
        steps = [curve["rows"][n]["steps"] for n in names]
        for ax, metric in zip(axes, ("fid", "r_precision_top1")):
            have = [i for i, n in enumerate(names) if metric in rows[n]]
            ax.errorbar([steps[i] for i in have], [rows[names[i]][metric]["mean"] for i in have],
                        yerr=[rows[names[i]][metric]["ci95"] for i in have], marker="o", capsize=3, label=sampler)
    for ax, metric in zip(axes, ("FID", "R-precision top-1")):
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps")
        ax.set_title(f"{metric} (mean, 95% CI)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out_dir) / "sampler_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bar_charts(rows: dict[str, dict[str, dict[str, float]]], out_dir: str | Path) -> list[Path]:
    """PNG bar charts with 95% CI error bars: one per main metric, and the part similarities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out_dir = Path(out_dir)
    names = list(rows)
    written = []
    for metric in MAIN_METRICS:
        have = [n for n in names if metric in rows[n]]
        if not have:
            continue
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(have), 3.2))
        ax.bar(range(len(have)), [rows[n][metric]["mean"] for n in have],
               yerr=[rows[n][metric]["ci95"] for n in have], capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(have)), have, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{metric} (mean, 95% CI)", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{metric}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    encoders = [p for p in ("whole_body", *PART_NAMES) if any(f"{p}.similarity" in rows[n] for n in names)]
    if encoders:
        fig, ax = plt.subplots(figsize=(8, 3.4))
        width = 0.8 / len(names)
        x = np.arange(len(encoders))
        for i, n in enumerate(names):
            s = rows[n]
            ax.bar(x + i * width, [s.get(f"{p}.similarity", {}).get("mean", np.nan) for p in encoders], width,
                   yerr=[s.get(f"{p}.similarity", {}).get("ci95", 0.0) for p in encoders], capsize=2, label=n)
        ax.set_xticks(x + 0.4 - width / 2, encoders, fontsize=8)
        ax.set_title("part-level similarity (cos+1)/2 (mean, 95% CI)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "part_similarity.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def primary_space(results: dict[str, Any]) -> str:
    """The metric space the results lead with: Guo's T2M evaluator when given, else the evaluator TMRs (the
    conditioning TMRs only when nothing else is there)."""
    return next(iter(results["summary"]))


def metrics_json(results: dict[str, Any]) -> dict[str, Any]:
    """The DVC metrics: ``<row>.<metric>.{mean,ci95}`` in the primary space, the other spaces under their names,
    the sampler curve under ``curve``, counts."""
    primary = primary_space(results)
    out: dict[str, Any] = {row: s for row, s in results["summary"][primary].items()}
    for space, rows in results["summary"].items():
        if space != primary:
            out[space] = rows
    if "curve" in results:
        curve = results["curve"]
        out["curve"] = {row: {k: s[k] for k in ("fid", "r_precision_top1") if k in s}
                        for row, s in curve["summary"][next(iter(curve["summary"]))].items()}
    out["counts"] = {"captions": results["counts"]["captions"], "replications": results["counts"]["replications"],
                     **{f"motions_{r}": v for r, v in results["counts"]["motions"].items()}}
    return out


BETTER = {"fid": -1, "mm_dist": -1, "r_precision_top1": 1, "r_precision_top2": 1, "r_precision_top3": 1,
          "multimodality": 1}  # the direction that is better; Diversity and named-part energy: closer to Real


def conclusions(results: dict[str, Any]) -> list[str]:
    """The statements the primary space's Holm-corrected tests support, one per compared pair, and the curve's
    verdict; nothing beyond them (a difference that is not significant is reported as not shown)."""
    primary = primary_space(results)
    units = results.get("units", {})
    real = results["summary"][primary].get("real", {})
    out = []
    if results.get("synthetic"):
        out.append("All numbers are on the embedded synthetic dataset: they compare the variants on this data, "
                   "not on HumanML3D, and are not comparable with published HumanML3D figures.")
    for pair, tests in results["comparisons"][primary].items():
        a, b = pair.split(" vs ")
        tested = {m: t for m, t in tests.items() if t.get("testable", True)}
        sig = {m: t for m, t in tested.items() if t["significant"]}
        n_a, n_b = len(units.get(a, [])), len(units.get(b, []))
        if not tested:
            continue
        if not sig:
            out.append(f"`{a}` vs `{b}` ({n_a} vs {n_b} units): no metric differs significantly after Holm's "
                       "correction; these numbers do not show a difference (nor its absence: see the CIs).")
            continue
        words = []
        for m, t in sig.items():
            if m in BETTER:
                better = (t["difference"] > 0) == (BETTER[m] > 0)
                words.append(f"{m} {'better' if better else 'worse'} for `{a}` (Δ {t['difference']:+.3g})")
            elif m in real and "real" not in (a, b):  # Diversity, named-part energy: the target is Real's value
                target, mean_b = real[m]["mean"], results["summary"][primary][b][m]["mean"]
                closer = abs(mean_b + t["difference"] - target) < abs(mean_b - target)
                words.append(f"{m} {'closer to' if closer else 'further from'} Real for `{a}` "
                             f"(Δ {t['difference']:+.3g}; Real {target:.3g})")
            else:
                words.append(f"{m} differs (Δ {t['difference']:+.3g})")
        out.append(f"`{a}` vs `{b}` ({n_a} vs {n_b} units, {primary} space): " + "; ".join(words)
                   + f"; not significant: {', '.join(m for m in tested if m not in sig) or 'none'}.")
    if "curve" in results:
        verdict = fewest_overlapping(results["curve"])
        ref = results["curve"]["reference"]
        if verdict:
            out.append(f"Sampler curve: `{verdict[0]}` ({verdict[1]} steps) is the cheapest point whose FID CI "
                       f"overlaps `{ref}`'s ({verdict[2]:.1f}x faster); overlapping CIs do not prove equal quality.")
    return out


def row_label(name: str, spec: dict[str, Any], variants: dict[str, Any]) -> str:
    """What a row is, in words: a trained variant with its seeds, a sampler setting of one run, or Real."""
    if spec.get("real"):
        return "the test motions themselves"
    if spec.get("kind") == "variant":
        v = variants.get(name, {})
        runs = v.get("runs", {})
        what = {"lgtm": "LGTM", "no_partition": "LGTM trained without the partition (the caption in all seven slots)",
                "no_optimizer": "LGTM trained without the full-body optimizer (part streams decoded directly)",
                "no_smoothnet": "LGTM trained without SmoothNet",
                "baseline": "MDM-style whole-body baseline (one transformer over the 263-d features)"}.get(name, name)
        seeds = ", ".join(f"{r} (seed {s})" for r, s in runs.items()) or "the released weights"
        sampler = {k: x for k, x in spec.items() if k in ("sampler", "steps")}
        return f"trained variant: {what}; training runs {seeds}; sampler {sampler or 'lgtm.sampling'}"
    return f"a sampler setting of run {', '.join(spec.get('runs', []))}: " + \
        str({k: x for k, x in spec.items() if k not in ("kind", "runs")})


def report_markdown(results: dict[str, Any]) -> str:
    """report.md: the tables with 95% CIs, what each row and space is, the Holm-corrected tests, the curve."""
    c = results["counts"]
    if results.get("protocol") == "guo":
        scope = (f"Guo et al.'s protocol: {c['items']} test motion items; every replication draws a caption and a "
                 "crop (length a multiple of 4) per item and generates a new set per row and training run")
    else:
        scope = f"{c['captions']} test captions"
    lines = ["# Evaluation", "",
             f"{scope}; {c['replications']} replications. A row's units are its training runs x replications; "
             "mean ± 95% CI = 1.96·std/√units, so a variant's CI includes the variance between its training seeds. "
             f"Diversity on {c['diversity_pairs']} pairs; MultiModality on {c['multimodality']}. The **motions** "
             "column counts the motions each row rests on.",
             f"Motions are fed to the evaluators as {results['settings']['evaluator_normalisation']}.", ""]
    if results.get("synthetic"):
        lines += ["**Synthetic data**: these numbers come from the embedded synthetic dataset, not HumanML3D; they "
                  "check the pipeline and compare variants on this data only.", ""]
    labels = results.get("spaces", {})
    primary = primary_space(results)
    lines += ["## Metric spaces", ""] + [f"- `{s}`{' (primary)' if s == primary else ''}: {labels.get(s, s)}"
                                          for s in results["summary"]] + [""]
    variants = results.get("variants", {})
    lines += ["## Rows", ""] + [f"- `{r}`: {row_label(r, spec, variants)}" for r, spec in results["rows"].items()]
    lines.append("")
    for space, rows in results["summary"].items():
        lead = " (primary)" if space == primary else ""
        lines += [f"## Whole-body metrics: `{space}`{lead}", "", markdown_table(rows, c["motions"]), ""]
        if space in results.get("per_run", {}):
            spread = seed_lines(results["per_run"][space])
            if spread:
                lines += ["Per training run (the seed spread behind the pooled rows):", ""] + spread + [""]
        if any("head.similarity" in s for s in rows.values()):
            lines += [f"### Part-level metrics: `{space}` (part TMRs: similarity (cos+1)/2 / R-precision top-1)", "",
                      part_table(rows), ""]
        lines += [f"### Tests: `{space}` (Welch's t-test over units, Holm-corrected over the table, α = 0.05)", ""]
        lines += significance_lines(results["comparisons"][space]) or ["- no comparison configured"]
        lines.append("")
    if "named_part_energy" in next(iter(results["summary"].values())).get("real", {}):
        lines += ["`named_part_energy`: for the test captions whose split names exactly one moving part, the share "
                  "of motion energy (mean squared speed of the root-relative joints) in that part; Real is the "
                  "reference. It needs no evaluator.", ""]
    if "curve" in results:
        curve = results["curve"]
        lines += ["## Sampler curve", "",
                  f"Run `{', '.join(next(iter(curve['rows'].values()), {}).get('runs', []) or ['lgtm'])}` "
                  f"on {curve['counts']['items']} test items, {curve['counts']['replications']} replications, "
                  f"space `{next(iter(curve['summary']))}`; timestep spacing as lgtm.sampling. Seconds per motion "
                  "are the wall time of the sampling that produced the cached sets.", ""]
        lines += curve_table(curve) + [""]
        lines += ["Tests against the reference (Holm-corrected over the curve):", ""]
        lines += significance_lines(curve["comparisons"][next(iter(curve["summary"]))], ("fid", "r_precision_top1"))
        lines.append("")
    lines += ["## What the numbers support", ""] + [f"- {x}" for x in conclusions(results)] + [""]
    if results["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)
