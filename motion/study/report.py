"""The prompt study's outputs: distribution plots, side-by-side videos, a Markdown and a self-contained HTML report.

Layout of the output folder (written by ``write_study`` into a folder the caller renames into place):
``results.json`` (every sample's numbers, the part texts, the comparisons), ``joints.npz`` (every motion,
key ``<pair>_<phrasing>_<sample>``), ``plots/pair_<id>.png``, ``videos/pair_<id>.mp4`` (IK-like left, FK-like
right, caption burned in), ``frames/pair_<id>.png`` (one frame of that video), ``report.md`` and ``report.html``
(plots embedded as base64 PNG; videos embedded as data URIs while their total size stays under a limit,
else linked relative to the page).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.io import atomic_path, write_json, write_text
from motion.study.prompt_study import PHRASING_LABELS, PHRASINGS, PLAUSIBILITY_KEYS, SIMILARITY, StudyRun, metric_values

PLOT_METRICS = ("primary", SIMILARITY, "foot_skating_ratio")
COLOURS = {"ik": "#1f77b4", "fk": "#ff7f0e"}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the tables ('n/a' for None)."""
    return "n/a" if value is None else f"{value:.{digits}g}" if abs(value) >= 1e4 else f"{value:.{digits}f}"


def mean_ci_text(summary: dict[str, Any]) -> str:
    """'mean ± half-width' of a summary."""
    return "n/a" if summary["mean"] is None else f"{fmt(summary['mean'])} ± {fmt(summary['ci95'])}"


def difference_text(comparison: dict[str, Any] | None) -> str:
    """'difference [low, high]' of a comparison."""
    if comparison is None:
        return "n/a"
    return f"{fmt(comparison['difference'])} [{fmt(comparison['ci_low'])}, {fmt(comparison['ci_high'])}]"


def winner_text(pair: dict[str, Any]) -> str:
    """'IK-like', 'FK-like' or 'tie', with whether the interval excludes 0."""
    if pair["winner"] is None:
        return "n/a"
    if pair["winner"] == "tie":
        return "tie"
    return f"{PHRASING_LABELS[pair['winner']]} ({'significant' if pair['significant'] else 'n.s.'})"


def metric_label(pair: dict[str, Any], metric: str) -> str:
    """Axis label of a plotted metric."""
    if metric == "primary":
        better = "higher" if pair["higher_is_better"] else "lower"
        return f"{pair['constraint']}: {pair['primary']} ({better} is better)"
    return {SIMILARITY: "TMR text-motion similarity", "foot_skating_ratio": "foot skating ratio"}.get(metric, metric)


# ----------------------------------------------------------------------------- tables

def results_table(result: dict[str, Any]) -> list[list[str]]:
    """The issue's table with numbers: header row, then one row per pair."""
    rows = [["id", "IK-like prompt", "FK-like prompt", "constraint (deciding number)", "IK mean ± CI",
             "FK mean ± CI", "IK − FK [95% CI]", "winner", "TMR sim. IK / FK", "foot skating IK / FK"]]
    for p in result["pairs"]:
        s = p["summary"]
        rows.append([
            p["id"], p["ik"], p["fk"],
            f"{p['description']}; {p['primary']}, {'higher' if p['higher_is_better'] else 'lower'} is better",
            mean_ci_text(s["primary"]["ik"]), mean_ci_text(s["primary"]["fk"]),
            difference_text(p["comparisons"]["primary"]), winner_text(p),
            f"{fmt(s[SIMILARITY]['ik']['mean'])} / {fmt(s[SIMILARITY]['fk']['mean'])}",
            f"{fmt(s['foot_skating_ratio']['ik']['mean'])} / {fmt(s['foot_skating_ratio']['fk']['mean'])}",
        ])
    return rows


def detail_table(result: dict[str, Any]) -> list[list[str]]:
    """Per prompt: every constraint number and the plausibility checks (mean ± CI)."""
    rows = [["id", "phrasing", "constraint numbers", *PLAUSIBILITY_KEYS]]
    for p in result["pairs"]:
        numbers = [k for k in p["summary"] if k.startswith("constraint.")]
        for ph in PHRASINGS:
            s = p["summary"]
            text = "; ".join(f"{k.split('.', 1)[1]} {mean_ci_text(s[k][ph])}"
                             + ("" if s[k][ph]["n"] == s["primary"][ph]["n"] else f" (n={s[k][ph]['n']})")
                             for k in numbers)
            rows.append([p["id"], PHRASING_LABELS[ph], text, *(mean_ci_text(s[k][ph]) for k in PLAUSIBILITY_KEYS)])
    return rows


def parts_table(result: dict[str, Any]) -> list[list[str]]:
    """The six part texts the splitter gave each prompt."""
    from motion.core.parts import PART_NAMES

    rows = [["id", "phrasing", *PART_NAMES]]
    for pair_id, by_phrasing in result["part_texts"].items():
        for ph in PHRASINGS:
            if ph in by_phrasing:
                rows.append([pair_id, PHRASING_LABELS[ph], *(by_phrasing[ph][p] for p in PART_NAMES)])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    """A GitHub Markdown table (pipes in cells escaped)."""
    cells = [[c.replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def html_table(rows: list[list[str]]) -> str:
    """An HTML table (cells escaped)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ----------------------------------------------------------------------------- plots and videos

def plot_pair(path: str | Path, pair: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """IK vs FK distributions of the deciding number, TMR similarity and foot skating, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PLOT_METRICS), figsize=(4.2 * len(PLOT_METRICS), 3.8), dpi=100)
    jitter = np.random.default_rng(0)
    for ax, metric in zip(axes, PLOT_METRICS):
        for i, ph in enumerate(PHRASINGS):
            values = np.array([v for v in metric_values(records, pair["id"], ph, metric) if v is not None], float)
            if values.size == 0:
                continue
            if values.size > 1:
                ax.boxplot([values], positions=[i], widths=0.5, showfliers=False,
                           medianprops={"color": COLOURS[ph]}, boxprops={"color": "#888888"})
            ax.scatter(i + jitter.uniform(-0.12, 0.12, values.size), values, s=18, color=COLOURS[ph], alpha=0.8,
                       zorder=3)
            summary = pair["summary"][metric][ph]
            ax.errorbar([i + 0.3], [summary["mean"]], yerr=[summary["ci95"]], fmt="D", color="black", ms=5,
                        capsize=4, zorder=4)
        ax.set_xticks(range(len(PHRASINGS)), [PHRASING_LABELS[ph] for ph in PHRASINGS])
        ax.set_xlim(-0.6, len(PHRASINGS) - 0.4)
        ax.set_title(metric_label(pair, metric), fontsize=9, wrap=True)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"pair {pair['id']}: {pair['description']} (winner: {winner_text(pair)})", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def video_titles(pair: dict[str, Any], records: list[dict[str, Any]], sample: int) -> list[str]:
    """Panel titles: the phrasing, its prompt and the shown sample's deciding number."""
    titles = []
    for ph in PHRASINGS:
        value = next(r["primary"] for r in records if r["pair"] == pair["id"] and r["phrasing"] == ph
                     and r["sample"] == sample)
        titles.append(f"{PHRASING_LABELS[ph]}: {pair[ph]} [{pair['primary']} = {fmt(value)}]")
    return titles


def render_pair(video: Path, frame_png: Path, pair: dict[str, Any], run: StudyRun, sample: int = 0) -> None:
    """The two phrasings' sample ``sample`` side by side as an mp4, and its middle frame as a PNG."""
    from motion.export.render import render_video, save_frame_png

    motions = [run.motions[(pair["id"], ph)][sample] for ph in PHRASINGS]
    titles = video_titles(pair, run.records, sample)
    caption = f"pair {pair['id']}: {pair['description']}"
    render_video(video, motions, titles, caption=caption, fps=run.settings.fps)
    save_frame_png(frame_png, motions, frame=max(len(m) for m in motions) // 2, titles=titles, caption=caption)


# ----------------------------------------------------------------------------- the reports

def markdown_report(result: dict[str, Any], plots: dict[str, str], videos: dict[str, str], meta: dict[str, Any]) -> str:
    """report.md: the settings, the results table, the per-pair plots and videos (relative links), details."""
    s, t = result["settings"], result["tally"]
    lines = ["# IK-vs-FK prompt study", "",
             f"{s['samples']} samples per prompt (seed {s['seed']}; every sample from its own noise); "
             f"intervals: {s['ci']} ({int(100 * (1 - s['alpha']))}%), difference = IK-like − FK-like.",
             "", *(f"- {k}: {v}" for k, v in sorted(meta.items())), "",
             f"IK-like wins {t['ik_wins']} pair(s) ({t['ik_significant_wins']} significant), FK-like wins "
             f"{t['fk_wins']} ({t['fk_significant_wins']} significant), ties {t['ties']}.", "",
             "## Results", "", markdown_table(results_table(result)), "",
             "## Per pair", ""]
    for p in result["pairs"]:
        lines += [f"### Pair {p['id']}: {p['constraint']}", "", f"![pair {p['id']}]({plots[p['id']]})", "",
                  f"Video (IK-like left, FK-like right): [{videos[p['id']]}]({videos[p['id']]})", ""]
    lines += ["## Constraint numbers and plausibility (mean ± 95% CI)", "", markdown_table(detail_table(result)), "",
              "## Part texts (splitter)", "", markdown_table(parts_table(result)), ""]
    return "\n".join(lines)


def data_uri(path: Path, mime: str) -> str:
    """A base64 data URI of a file."""
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:4px 6px;"
       "vertical-align:top}th{background:#f3f3f3}img,video{max-width:100%}")


def html_report(result: dict[str, Any], root: Path, plots: dict[str, str], videos: dict[str, str],
                meta: dict[str, Any], embed_video_bytes: int) -> str:
    """report.html, standalone: plots as base64 PNG, videos as data URIs when their total fits ``embed_video_bytes``."""
    total = sum((root / v).stat().st_size for v in videos.values())
    embed = total <= embed_video_bytes
    s, t = result["settings"], result["tally"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>IK-vs-FK prompt study</title>"
             f"<style>{CSS}</style></head><body><h1>IK-vs-FK prompt study</h1>",
             f"<p>{s['samples']} samples per prompt (seed {s['seed']}; every sample from its own noise); "
             f"intervals: {html.escape(s['ci'])} ({int(100 * (1 - s['alpha']))}%), "
             "difference = IK-like &minus; FK-like.</p><ul>",
             *(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in sorted(meta.items())), "</ul>",
             f"<p>IK-like wins {t['ik_wins']} pair(s) ({t['ik_significant_wins']} significant), FK-like wins "
             f"{t['fk_wins']} ({t['fk_significant_wins']} significant), ties {t['ties']}.</p>",
             "<h2>Results</h2>", html_table(results_table(result)), "<h2>Per pair</h2>"]
    for p in result["pairs"]:
        video = data_uri(root / videos[p["id"]], "video/mp4") if embed else html.escape(videos[p["id"]])
        parts += [f"<h3>Pair {html.escape(p['id'])}: {html.escape(p['constraint'])}</h3>",
                  f"<img alt='pair {html.escape(p['id'])}' src='{data_uri(root / plots[p['id']], 'image/png')}'>",
                  "<p>IK-like left, FK-like right:</p>",
                  f"<video controls loop muted playsinline src='{video}'></video>"]
    parts += ["<h2>Constraint numbers and plausibility (mean &plusmn; 95% CI)</h2>", html_table(detail_table(result)),
              "<h2>Part texts (splitter)</h2>", html_table(parts_table(result)), "</body></html>"]
    return "\n".join(parts) + "\n"


def save_motions(path: Path, run: StudyRun) -> None:
    """Every sampled motion in one .npz (key ``<pair>_<phrasing>_<sample>``), atomically."""
    arrays = {f"{pid}_{ph}_{k}": m for (pid, ph), ms in sorted(run.motions.items()) for k, m in enumerate(ms)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def write_study(out: str | Path, run: StudyRun, result: dict[str, Any], meta: dict[str, Any],
                video_sample: int = 0, embed_video_mb: float = 8.0, progress: bool = True) -> dict[str, Path]:
    """Write results.json, joints.npz, plots, videos, frames, report.md and report.html into ``out``."""
    from tqdm import tqdm

    root = Path(out)
    if not 0 <= video_sample < run.settings.samples:
        raise ValueError(f"video_sample {video_sample} is outside 0..{run.settings.samples - 1}")
    plots, videos, frames = {}, {}, {}
    for p in tqdm(result["pairs"], desc="prompt_study report", unit="pair", disable=not progress):
        plots[p["id"]], videos[p["id"]], frames[p["id"]] = (f"plots/pair_{p['id']}.png", f"videos/pair_{p['id']}.mp4",
                                                            f"frames/pair_{p['id']}.png")
        plot_pair(root / plots[p["id"]], p, run.records)
        render_pair(root / videos[p["id"]], root / frames[p["id"]], p, run, video_sample)
    write_json(root / "results.json", {**result, "meta": meta, "samples": run.records,
                                       "files": {"plots": plots, "videos": videos, "frames": frames}})
    save_motions(root / "joints.npz", run)
    write_text(root / "report.md", markdown_report(result, plots, videos, meta))
    write_text(root / "report.html", html_report(result, root, plots, videos, meta, int(embed_video_mb * 2**20)))
    return {"report.md": root / "report.md", "report.html": root / "report.html", "results.json": root / "results.json",
            **{f"frame_{k}": root / v for k, v in frames.items()}}
