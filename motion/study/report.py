"""The prompt study's outputs: plots, side-by-side videos of the arms, a Markdown and a self-contained HTML report.

Layout of the output folder (written by ``write_study`` into a folder the caller renames into place):
``results.json`` (every sample's numbers, the summaries, every test), ``joints.npz`` (every motion on the floor,
key ``<pair>_<arm>_<sample>``), ``plots/<constraint>.png`` (the arms' distributions of the deciding number per
pair), ``videos/pair_<id>.mp4`` (the arms side by side, IK-like, FK-like, guided), ``frames/pair_<id>.png`` (its
middle frame), ``report.md`` and ``report.html`` (plots embedded as base64 PNG; videos embedded as data URIs while
their total size stays under a limit, else linked relative to the page).
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.io import atomic_path, write_json, write_text
from motion.core.parts import PART_NAMES
from motion.study.prompt_study import ARM_LABELS, PHRASINGS, SIMILARITY, StudyRun, values_of

COLOURS = {"ik": "#1f77b4", "fk": "#ff7f0e", "guided": "#2ca02c"}
PLAUSIBILITY_SHOWN = ("foot_skating_ratio", "ground_penetration", "bone_length_drift", "jerk", "floating",
                      "floor_offset")


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for the tables ('n/a' for None)."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}g}" if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3) else f"{value:.{digits}f}"


def p_text(p: float | None) -> str:
    """A p-value ('< 0.0001' below)."""
    return "n/a" if p is None else "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def mean_ci_text(summary: dict[str, Any]) -> str:
    """'mean [low, high]' of a summary."""
    if summary["mean"] is None:
        return "n/a"
    return f"{fmt(summary['mean'])} [{fmt(summary['low'])}, {fmt(summary['high'])}]"


def difference_text(test: dict[str, Any] | None) -> str:
    """'difference [low, high]' of a test."""
    if test is None:
        return "n/a"
    return f"{fmt(test['difference'])} [{fmt(test['ci_low'])}, {fmt(test['ci_high'])}]"


def verdict_text(test: dict[str, Any] | None) -> str:
    """The arm significantly better after Holm, or 'no significant difference', and 'underpowered' when flagged."""
    if test is None:
        return "n/a"
    text = f"{ARM_LABELS[test['better']]} better" if test["better"] else "no significant difference"
    return text + (" (underpowered)" if test["underpowered"] else "")


def direction(item: dict[str, Any]) -> str:
    """'higher is better' / 'lower is better' of a constraint or pair."""
    return "higher is better" if item["higher_is_better"] else "lower is better"


# ----------------------------------------------------------------------------- tables

def constraint_table(result: dict[str, Any]) -> list[list[str]]:
    """The closing table: per constraint every arm's satisfaction with its CI, the tests, the verdict."""
    arms = result["arms"]
    head = ["constraint (deciding number)", *(f"{ARM_LABELS[a]} mean [95% CI]" for a in arms),
            "IK − FK [95% CI]", "p (Holm)", "verdict IK vs FK"]
    if "guided" in arms:
        head += ["guided − FK [95% CI]", "p (Holm)", "verdict guided vs FK"]
    rows = [head]
    for c in result["constraints"]:
        s = c["summary"]["primary"]
        row = [f"{c['name']}: {c['primary']} ({direction(c)})", *(mean_ci_text(s[a]) for a in arms),
               difference_text(c["ik_vs_fk"]), p_text((c["ik_vs_fk"] or {}).get("p_holm")), verdict_text(c["ik_vs_fk"])]
        if "guided" in arms:
            row += [difference_text(c["guided_vs_fk"]), p_text((c["guided_vs_fk"] or {}).get("p_holm")),
                    verdict_text(c["guided_vs_fk"])]
        rows.append(row)
    return rows


def similarity_table(result: dict[str, Any]) -> list[list[str]]:
    """Per constraint: TMR similarity of every arm's motions to the neutral goal description, IK vs FK."""
    arms = result["arms"]
    rows = [["constraint", "goal description", *(ARM_LABELS[a] for a in arms), "IK − FK [95% CI]", "p (Holm)"]]
    for c in result["constraints"]:
        s, t = c["summary"][SIMILARITY], c["similarity_ik_vs_fk"]
        rows.append([c["name"], c["goal"], *(mean_ci_text(s[a]) for a in arms), difference_text(t),
                     p_text((t or {}).get("p_holm"))])
    return rows


def plausibility_table(result: dict[str, Any]) -> list[list[str]]:
    """Per constraint and arm: the plausibility checks (mean [CI]) and how far guidance moved the motion."""
    rows = [["constraint", "arm", *PLAUSIBILITY_SHOWN, "foot_sliding (m/s, grounded clips)", "moved from FK twin (m)"]]
    for c in result["constraints"]:
        for a in result["arms"]:
            s = c["summary"]
            rows.append([c["name"], ARM_LABELS[a], *(mean_ci_text(s[k][a]) for k in PLAUSIBILITY_SHOWN),
                         f"{mean_ci_text(s['foot_sliding'][a])} (n={s['foot_sliding'][a]['n']})",
                         mean_ci_text(s["moved"][a]) if a == "guided" else ""])
    return rows


SWEEP_SHOWN = ("foot_skating_ratio", "jerk", "floating")


def sweep_table(result: dict[str, Any], sweep: list[dict[str, Any]], strength: float) -> list[list[str]]:
    """Per constraint and guidance strength: the guided arm's deciding number and plausibility (the study's own
    strength from the main run, the others from the sweep's smaller samples)."""
    rows = [["constraint", "strength", "n", "deciding number mean [95% CI]", *SWEEP_SHOWN]]
    for c in result["constraints"]:
        s = c["summary"]
        own = {"strength": strength, "primary": s["primary"]["guided"], **{k: s[k]["guided"] for k in SWEEP_SHOWN}}
        entries = sorted([own] + [r for r in sweep if r["constraint"] == c["name"]], key=lambda r: r["strength"])
        for r in entries:
            rows.append([c["name"], fmt(r["strength"], 2), str(r["primary"]["n"]), mean_ci_text(r["primary"]),
                         *(mean_ci_text(r[k]) for k in SWEEP_SHOWN)])
    return rows


def pair_table(result: dict[str, Any]) -> list[list[str]]:
    """Per pair: both prompts, both means, the difference, Cliff's delta, the test and its Holm p."""
    rows = [["pair", "IK-like prompt", "FK-like prompt", "IK mean [CI]", "FK mean [CI]", "IK − FK [95% CI]",
             "Cliff's δ [95% CI]", "test", "p", "min p", "p (Holm)", "verdict"]]
    for p in result["pairs"]:
        s, t = p["summary"]["primary"], p["test"]
        delta = "n/a" if t is None else (f"{fmt(t['cliffs_delta'], 2)} [{fmt(t['delta_low'], 2)}, "
                                         f"{fmt(t['delta_high'], 2)}]")
        rows.append([p["id"], p["ik"], p["fk"], mean_ci_text(s["ik"]), mean_ci_text(s["fk"]), difference_text(t),
                     delta, "n/a" if t is None else t["method"], p_text((t or {}).get("p_value")),
                     p_text((t or {}).get("min_p")), p_text((t or {}).get("p_holm")), verdict_text(t)])
    return rows


def tests_table(result: dict[str, Any]) -> list[list[str]]:
    """Every test of the study with its raw and Holm-adjusted p."""
    rows = [["test", "method", "n a / b", "difference [95% CI]", "p", "p (Holm)", "underpowered"]]
    for t in result["tests"]:
        rows.append([t["id"], t["method"], f"{t['n_a']} / {t['n_b']}", difference_text(t), p_text(t["p_value"]),
                     p_text(t["p_holm"]), "yes" if t["underpowered"] else "no"])
    return rows


def parts_table(result: dict[str, Any]) -> list[list[str]]:
    """The six part texts each prompt was sampled with (given), and the splitter's output beside them."""
    rows = [["pair", "phrasing", "source", *PART_NAMES]]
    for p in result["pairs"]:
        for ph in PHRASINGS:
            rows.append([p["id"], ARM_LABELS[ph], "given (used)", *(p["parts"][ph][q] for q in PART_NAMES)])
            if p["split_parts"]:
                split = p["split_parts"][ph]
                rows.append(["", "", "splitter (not used)",
                             *(split[q] + ("" if split[q] == p["parts"][ph][q] else " ≠") for q in PART_NAMES)])
    return rows


def vocabulary_table(vocabulary: dict[str, Any]) -> list[list[str]]:
    """Per style: prompts found verbatim in the training captions, and the mean n-gram overlap."""
    rows = [["style", "prompts", "found in training captions", *(f"{n}-gram overlap (mean)" for n in
                                                                  vocabulary["orders"])]]
    for style, s in vocabulary["styles"].items():
        rows.append([ARM_LABELS.get(style, style), str(s["prompts"]), str(s["verbatim"]),
                     *(f"{s['overlap'][str(n)]:.3f}" for n in vocabulary["orders"])])
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


# ----------------------------------------------------------------------------- the conclusion

def conclusion(result: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """Paragraphs stating only what the tests support, with the data's provenance."""
    t, n = result["tally"], len(result["constraints"])
    synthetic = meta.get("data", "") == "synthetic"
    lines = []
    if synthetic:
        lines.append("**These results are from a model trained on the project's synthetic data "
                     "(motion.data.synthetic), not on HumanML3D: they describe this model and this data, not LGTM "
                     "as published.**")
    lines.append(f"Over {n} constraints ({len(result['pairs'])} matched pairs, {result['settings']['samples']} "
                 f"samples per prompt and arm, {len(result['tests'])} tests Holm-corrected at family-wise "
                 f"alpha = {result['settings']['alpha']}): IK-like phrasing is significantly better for "
                 f"{t['ik_better']} constraint(s), FK-like for {t['fk_better']}, and {t['no_significant_difference']} "
                 f"show no significant difference ({t['underpowered']} of the IK-vs-FK tests are flagged "
                 "underpowered). A non-significant difference is not evidence that the phrasings are equivalent.")
    if "guided" in result["arms"]:
        better = [c["name"] for c in result["constraints"] if (c["guided_vs_fk"] or {}).get("better") == "guided"]
        worse = [c["name"] for c in result["constraints"] if (c["guided_vs_fk"] or {}).get("better") == "fk"]
        lines.append(f"Constraint-guided sampling (explicit IK) satisfies the constraint significantly better than "
                     f"the unguided FK prompt for {len(better)} of {n} constraints "
                     f"({', '.join(better) or 'none'}), worse for {len(worse)} ({', '.join(worse) or 'none'}); its "
                     "plausibility cost and distance from the unguided twin are in the plausibility table.")
        costly = [c["name"] for c in result["constraints"]
                  if (c["summary"]["floating"]["guided"]["mean"] or 0) - (c["summary"]["floating"]["fk"]["mean"] or 0)
                  > 0.2]
        if costly:
            lines.append(f"Guidance left the clip without floor contact (floating) far more often than the unguided "
                         f"FK samples for {', '.join(costly)}: there the constraint was met (or missed) at the price "
                         "of an implausible motion.")
    else:
        lines.append("The guided arm (explicit IK by constraint-guided sampling) was not run: no guided sampler was "
                     "available to this run.")
    lines.append("The goal similarity uses one of the TMRs that also condition LGTM (its text encoder saw the same "
                 "captions), not an independent evaluator; the neutral goal descriptions name end effectors, which "
                 "may favour the IK-like style.")
    lines.append("To rerun on the released official weights: set `official.*` to the released files, switch with "
                 "`python -m tools.switch_source official` and run `dvc repro import_official prompt_study` "
                 "(docs/official.md); to rerun on a model trained on HumanML3D, set `download.source: amass_local` "
                 "and run `dvc repro`. The prompts, tests and metrics are the same.")
    return lines


# ----------------------------------------------------------------------------- plots and videos

def plot_constraint(path: str | Path, constraint: dict[str, Any], records: list[dict[str, Any]],
                    arms: list[str]) -> None:
    """Per pair of one constraint, every arm's deciding numbers (points, box) and mean with its CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pair_ids = constraint["pairs"]
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(pair_ids) * len(arms) / 2, 3.6), dpi=100)
    jitter = np.random.default_rng(0)
    width = 0.8 / len(arms)
    for i, pid in enumerate(pair_ids):
        for j, arm in enumerate(arms):
            values = np.array(values_of(records, "primary", arm, pair=pid), dtype=np.float64)
            if values.size == 0:
                continue
            x = i + (j - (len(arms) - 1) / 2) * width
            ax.scatter(x + jitter.uniform(-width / 4, width / 4, values.size), values, s=8, color=COLOURS[arm],
                       alpha=0.5, label=ARM_LABELS[arm] if i == 0 else None, zorder=3)
            ax.errorbar([x], [values.mean()], yerr=[[values.mean() - values.min()], [values.max() - values.mean()]],
                        fmt="none", ecolor="#bbbbbb", zorder=2)
            ax.plot([x], [values.mean()], "D", color="black", ms=4, zorder=4)
    ax.set_xticks(range(len(pair_ids)), pair_ids, fontsize=8)
    ax.set_ylabel(f"{constraint['primary']} ({direction(constraint)})", fontsize=9)
    ax.set_title(f"{constraint['name']}: {constraint['description']}", fontsize=9, wrap=True)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def video_titles(pair: dict[str, Any], records: list[dict[str, Any]], arms: list[str], sample: int) -> list[str]:
    """Panel titles: the arm and the shown sample's deciding number."""
    titles = []
    for arm in arms:
        value = next(r["primary"] for r in records if r["pair"] == pair["id"] and r["arm"] == arm
                     and r["sample"] == sample)
        titles.append(f"{ARM_LABELS[arm]} [{pair['primary']} = {fmt(value)}]")
    return titles


def render_pair(video: Path, frame_png: Path, pair: dict[str, Any], run: StudyRun, sample: int = 0) -> None:
    """Every arm's sample ``sample`` side by side as an mp4, and its middle frame as a PNG."""
    from motion.export.render import render_video, save_frame_png

    arms = list(run.arms)
    motions = [run.motions[(pair["id"], arm)][sample] for arm in arms]
    titles = video_titles(pair, run.records, arms, sample)
    caption = f"{pair['id']}: IK '{pair['ik']}' / FK '{pair['fk']}'"
    render_video(video, motions, titles, caption=caption, fps=run.settings.fps)
    save_frame_png(frame_png, motions, frame=max(len(m) for m in motions) // 2, titles=titles, caption=caption)


# ----------------------------------------------------------------------------- the reports

def _intro(result: dict[str, Any], meta: dict[str, Any]) -> str:
    s = result["settings"]
    return (f"{s['samples']} samples per prompt and arm (noise seed {s['seed']}; every sample from its own noise; "
            "the guided samples share the FK samples' noise). Every clip is put on the floor (lowest foot joint "
            "to y = 0) before it is measured. Tests: per pair IK vs FK (permutation test, exact when the splits "
            "are few, else Monte-Carlo with p = (b+1)/(m+1); Fisher's exact test for a binary outcome), per "
            "constraint the pairs pooled by a stratified permutation test (labels permuted within pairs); "
            f"Holm's correction over all {len(result['tests'])} tests at family-wise alpha = {s['alpha']}. "
            "'underpowered': the smallest attainable p times the number of tests exceeds alpha, or the power "
            "against a standardised effect of 0.8 at alpha / tests is below 0.8.")


def markdown_report(result: dict[str, Any], plots: dict[str, str], videos: dict[str, str], meta: dict[str, Any],
                    vocabulary: dict[str, Any] | None, sweep: list[dict[str, Any]] | None = None) -> str:
    """report.md: conclusion, the closing tables, per-constraint plots and per-pair videos (relative links)."""
    lines = ["# IK-vs-FK prompt study", "", _intro(result, meta), "",
             *(f"- {k}: {v}" for k, v in sorted(meta.items())), "", "## Conclusion", ""]
    for paragraph in conclusion(result, meta):
        lines += [paragraph, ""]
    lines += ["## Satisfaction per constraint", "", markdown_table(constraint_table(result)), "",
              "## Similarity to the neutral goal description (TMR)", "", markdown_table(similarity_table(result)), "",
              "## Plausibility per arm", "", markdown_table(plausibility_table(result)), ""]
    if sweep:
        lines += ["## Guidance strength sweep (guided arm)", "",
                  markdown_table(sweep_table(result, sweep, meta["guidance_strength"])), ""]
    if vocabulary:
        lines += ["## Vocabulary of the prompts against the training captions", "", vocabulary["note"], "",
                  markdown_table(vocabulary_table(vocabulary)), ""]
    lines += ["## Per pair", "", markdown_table(pair_table(result)), ""]
    for c in result["constraints"]:
        lines += [f"### {c['name']}", "", f"Goal: {c['goal']}. Guided constraint: `{c['guided']}`.", "",
                  f"![{c['name']}]({plots[c['name']]})", ""]
        lines += [f"- {pid}: [{videos[pid]}]({videos[pid]})" for pid in c["pairs"]] + [""]
    lines += ["## All tests", "", markdown_table(tests_table(result)), "",
              "## Part texts (given, and the splitter's for comparison)", "", markdown_table(parts_table(result)), ""]
    return "\n".join(lines)


def data_uri(path: Path, mime: str) -> str:
    """A base64 data URI of a file."""
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


CSS = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:12px}th,td{border:1px solid #ccc;padding:3px 5px;"
       "vertical-align:top}th{background:#f3f3f3}img,video{max-width:100%}")


def html_report(result: dict[str, Any], root: Path, plots: dict[str, str], videos: dict[str, str],
                meta: dict[str, Any], vocabulary: dict[str, Any] | None, embed_video_bytes: int,
                sweep: list[dict[str, Any]] | None = None) -> str:
    """report.html, standalone: plots as base64 PNG, videos as data URIs when their total fits ``embed_video_bytes``."""
    total = sum((root / v).stat().st_size for v in videos.values())
    embed = total <= embed_video_bytes
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>IK-vs-FK prompt study</title>"
             f"<style>{CSS}</style></head><body><h1>IK-vs-FK prompt study</h1>",
             f"<p>{html.escape(_intro(result, meta))}</p><ul>",
             *(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in sorted(meta.items())), "</ul>",
             "<h2>Conclusion</h2>",
             *(f"<p>{html.escape(p).replace('**', '')}</p>" for p in conclusion(result, meta)),
             "<h2>Satisfaction per constraint</h2>", html_table(constraint_table(result)),
             "<h2>Similarity to the neutral goal description (TMR)</h2>", html_table(similarity_table(result)),
             "<h2>Plausibility per arm</h2>", html_table(plausibility_table(result))]
    if sweep:
        parts += ["<h2>Guidance strength sweep (guided arm)</h2>",
                  html_table(sweep_table(result, sweep, meta["guidance_strength"]))]
    if vocabulary:
        parts += ["<h2>Vocabulary of the prompts against the training captions</h2>",
                  f"<p>{html.escape(vocabulary['note'])}</p>", html_table(vocabulary_table(vocabulary))]
    parts += ["<h2>Per pair</h2>", html_table(pair_table(result))]
    for c in result["constraints"]:
        parts += [f"<h3>{html.escape(c['name'])}</h3>",
                  f"<p>Goal: {html.escape(c['goal'])}. Guided constraint: <code>{html.escape(c['guided'])}</code>.</p>",
                  f"<img alt='{html.escape(c['name'])}' src='{data_uri(root / plots[c['name']], 'image/png')}'>"]
        for pid in c["pairs"]:
            src = data_uri(root / videos[pid], "video/mp4") if embed else html.escape(videos[pid])
            parts += [f"<p>{html.escape(pid)} ({' | '.join(ARM_LABELS[a] for a in result['arms'])}):</p>",
                      f"<video controls loop muted playsinline src='{src}'></video>"]
    parts += ["<h2>All tests</h2>", html_table(tests_table(result)),
              "<h2>Part texts (given, and the splitter's for comparison)</h2>", html_table(parts_table(result)),
              "</body></html>"]
    return "\n".join(parts) + "\n"


def save_motions(path: Path, run: StudyRun) -> None:
    """Every sampled motion (on the floor) in one .npz (key ``<pair>_<arm>_<sample>``), atomically."""
    arrays = {f"{pid}_{arm}_{k}": m.astype(np.float32) for (pid, arm), ms in sorted(run.motions.items())
              for k, m in enumerate(ms)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def write_study(out: str | Path, run: StudyRun, result: dict[str, Any], meta: dict[str, Any],
                vocabulary: dict[str, Any] | None = None, video_sample: int = 0, embed_video_mb: float = 8.0,
                progress: bool = True, sweep: list[dict[str, Any]] | None = None) -> dict[str, Path]:
    """Write results.json, joints.npz, plots, videos, frames, report.md and report.html into ``out``."""
    from tqdm import tqdm

    root = Path(out)
    if not 0 <= video_sample < run.settings.samples:
        raise ValueError(f"video_sample {video_sample} is outside 0..{run.settings.samples - 1}")
    plots = {c["name"]: f"plots/{c['name']}.png" for c in result["constraints"]}
    for c in result["constraints"]:
        plot_constraint(root / plots[c["name"]], c, run.records, result["arms"])
    videos, frames = {}, {}
    for p in tqdm(result["pairs"], desc="prompt_study videos", unit="pair", disable=not progress):
        videos[p["id"]], frames[p["id"]] = f"videos/pair_{p['id']}.mp4", f"frames/pair_{p['id']}.png"
        render_pair(root / videos[p["id"]], root / frames[p["id"]], p, run, video_sample)
    write_json(root / "results.json", {**result, "meta": meta, "vocabulary": vocabulary, "guidance_sweep": sweep,
                                       "samples": run.records,
                                       "files": {"plots": plots, "videos": videos, "frames": frames}})
    save_motions(root / "joints.npz", run)
    write_text(root / "report.md", markdown_report(result, plots, videos, meta, vocabulary, sweep))
    write_text(root / "report.html", html_report(result, root, plots, videos, meta, vocabulary,
                                                 int(embed_video_mb * 2**20), sweep))
    return {"report.md": root / "report.md", "report.html": root / "report.html", "results.json": root / "results.json",
            **{f"frame_{k}": root / v for k, v in frames.items()}}
