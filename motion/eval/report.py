"""The evaluation's human-readable outputs: a Markdown table with 95% CIs and bar charts with CI error bars."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from motion.core.parts import PART_NAMES

MAIN_METRICS = ("r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity",
                "multimodality")
ARROWS = {"fid": "↓", "mm_dist": "↓", "diversity": "→ Real", "multimodality": "↑"}


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
    """One sentence per compared pair: which metric differences are significant (Welch, alpha 0.05)."""
    lines = []
    for pair, tests in comparisons.items():
        a, b = pair.split(" vs ")
        tested = {m: t for m, t in tests.items() if m in metrics and t.get("testable", True)}
        sig = [f"{m} (Δ {t['difference']:+.4g}, p = {t['p_value']:.3g})"
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
    """The evaluator space the results lead with: ``t2m`` (Guo's evaluator) when it was given, else ``tmr``."""
    return next(iter(results["summary"]))


def metrics_json(results: dict[str, Any]) -> dict[str, Any]:
    """The DVC metrics: ``<row>.<metric>.{mean,ci95}`` in the primary space (TMR, or Guo's T2M evaluator when
    given), the other space under its name (``tmr.<row>...`` beside T2M, with the part-level metrics), counts."""
    primary = primary_space(results)
    out: dict[str, Any] = {row: s for row, s in results["summary"][primary].items()}
    for space, rows in results["summary"].items():
        if space != primary:
            out[space] = rows
    out["counts"] = {"captions": results["counts"]["captions"], "replications": results["counts"]["replications"],
                     **{f"motions_{r}": v for r, v in results["counts"]["motions"].items()}}
    return out


def report_markdown(results: dict[str, Any]) -> str:
    """report.md: the tables with 95% CIs, what each figure rests on, and the significance statements."""
    c = results["counts"]
    if results.get("protocol") == "guo":
        scope = (f"Guo et al.'s protocol: {c['items']} test motion items; every replication draws a caption and a "
                 "crop (length a multiple of 4) per item and generates a new set per row")
    else:
        scope = f"{c['captions']} test captions"
    lines = ["# Evaluation", "",
             f"{scope}; {c['replications']} replications (mean ± 95% CI, 1.96·std/√n); "
             f"{c['generation_seeds']} generated set(s) per row; Diversity on {c['diversity_pairs']} pairs; "
             f"MultiModality on {c['multimodality']}. The **motions** column counts the motions each row rests on.",
             f"Motions are fed to the evaluators as {results['settings']['evaluator_normalisation']}.", ""]
    primary = primary_space(results)
    for space, rows in results["summary"].items():
        lead = ", primary" if primary != "tmr" and space == primary else ""
        lines += [f"## Whole-body metrics ({space} evaluator{lead})", "", markdown_table(rows, c["motions"]), ""]
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
