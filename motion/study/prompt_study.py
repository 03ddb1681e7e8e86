"""The IK-vs-FK prompt study: does an end-effector ("IK-like") or a joint-rotation ("FK-like") phrasing of the
same goal give motions that better satisfy its spatial constraint?

For every prompt pair (``prompts/ik_fk_pairs.yaml``) and both phrasings, K motions are sampled (all prompts'
motions go to the sampler at once, with the study's seed; every motion starts from its own noise, so the
samples are independent as the unpaired comparisons assume), each prompt's six part texts come from
the configured splitter, and each sample is measured: the pair's constraint (``motion.study.constraints``), its
text-motion similarity under a TMR model, foot skating and physical plausibility (ground penetration, bone
length drift). Per pair, the two distributions of the constraint's deciding number are compared: the
difference IK - FK with a 95% interval (bootstrap or Welch, ``motion.eval.confidence``), and the phrasing that wins
(respecting whether higher or lower is better). Sampling, splitting and similarity are passed in as
functions, so the study runs on any generator (the trained LGTM in the stage, hand-built motions in tests).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from motion.core.conventions import TARGET_FPS
from motion.core.errors import DataError
from motion.core.skeleton import NUM_JOINTS
from motion.eval.confidence import Comparison, bootstrap_difference, mean_ci95, welch_test
from motion.study.constraints import CONSTRAINTS, measure_constraint, plausibility

PHRASINGS: tuple[str, ...] = ("ik", "fk")
PHRASING_LABELS = {"ik": "IK-like", "fk": "FK-like"}
CI_METHODS = ("bootstrap", "welch")
SIMILARITY = "tmr_similarity"
PLAUSIBILITY_KEYS = ("foot_sliding", "foot_skating_ratio", "ground_penetration", "bone_length_drift")

# (prompts, their six part texts, their frames, seed) -> one motion per prompt, joint positions (frames, 22, 3)
# (HumanML3D frame, 20 fps); a repeated prompt must get a new noise draw each time; the seed fixes them all.
MotionSampler = Callable[[list[str], list[dict[str, str]], list[int], int], Sequence[np.ndarray]]
# prompt -> its six part texts (the configured splitter).
PartSplitter = Callable[[str], dict[str, str]]
# (prompt, joints (T, 22, 3)) -> text-motion similarity (cosine of TMR latents).
TextMotionSimilarity = Callable[[str, np.ndarray], float]


# ----------------------------------------------------------------------------- the prompt pairs

@dataclass(frozen=True)
class PromptPair:
    """One goal phrased two ways, the constraint that measures it, and the length to generate."""

    id: str
    ik: str
    fk: str
    constraint: str
    frames: int

    def prompt(self, phrasing: str) -> str:
        """The caption of ``phrasing`` ('ik' or 'fk')."""
        return {"ik": self.ik, "fk": self.fk}[phrasing]


def parse_pairs(data: Any, source: str | Path) -> list[PromptPair]:
    """Validate the parsed YAML ``{pairs: [{id, ik, fk, constraint, frames}, ...]}``; DataError names ``source``."""
    fix = "edit the file: pairs: [{id, ik, fk, constraint, frames}, ...]"
    if not isinstance(data, dict) or not isinstance(data.get("pairs"), list) or not data["pairs"]:
        raise DataError(source, "expected a top-level 'pairs:' list with at least one pair", fix)
    pairs: list[PromptPair] = []
    for i, item in enumerate(data["pairs"]):
        where = f"pair #{i + 1}"
        if not isinstance(item, dict):
            raise DataError(source, f"{where} is not a mapping", fix)
        missing = [k for k in ("id", "ik", "fk", "constraint", "frames") if k not in item]
        unknown = sorted(set(item) - {"id", "ik", "fk", "constraint", "frames"})
        if missing or unknown:
            raise DataError(source, f"{where}: missing keys {missing}, unknown keys {unknown}", fix)
        pair_id = str(item["id"]).strip()
        where = f"pair {pair_id!r}"
        if not pair_id or any(c in pair_id for c in "/\\ "):
            raise DataError(source, f"{where}: the id must be non-empty without spaces or slashes", fix)
        for key in ("ik", "fk"):
            if not isinstance(item[key], str) or not item[key].strip():
                raise DataError(source, f"{where}: '{key}' must be a non-empty caption", fix)
        if item["constraint"] not in CONSTRAINTS:
            raise DataError(source, f"{where}: unknown constraint {item['constraint']!r}",
                            f"use one of {', '.join(sorted(CONSTRAINTS))} (motion/study/constraints.py)")
        frames = item["frames"]
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
            raise DataError(source, f"{where}: frames must be an integer >= 2, got {frames!r}", fix)
        pairs.append(PromptPair(pair_id, " ".join(item["ik"].split()), " ".join(item["fk"].split()),
                                item["constraint"], frames))
    ids = [p.id for p in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DataError(source, f"duplicate pair ids {duplicates}", "give every pair its own id")
    return pairs


def load_pairs(path: str | Path) -> list[PromptPair]:
    """Read and validate the prompt pairs of a YAML file (DataError naming the file on any problem)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "prompt pair file is missing", "create it (see prompts/ik_fk_pairs.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({' '.join(str(err).split())})", "fix the syntax") from None
    return parse_pairs(data, path)


# ----------------------------------------------------------------------------- sampling and measuring

@dataclass(frozen=True)
class StudySettings:
    """How many samples per prompt, their seed, and how the two phrasings are compared."""

    samples: int          # K motions per prompt
    seed: int             # sampling and bootstrap seed
    ci: str               # bootstrap | welch
    n_resamples: int      # bootstrap resamples
    alpha: float          # 1 - confidence of the intervals
    fps: float = float(TARGET_FPS)  # the HumanML3D frame rate of the sampled motions

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.ci not in CI_METHODS:
            raise ValueError(f"ci must be one of {CI_METHODS}, got {self.ci!r}")
        if self.ci == "welch" and self.samples < 2:
            raise ValueError("Welch's test needs at least 2 samples per prompt")


def measure_sample(constraint: str, joints: np.ndarray, fps: float = float(TARGET_FPS)) -> dict[str, Any]:
    """The constraint's numbers, its deciding number (``primary``) and the plausibility checks of one motion."""
    numbers = measure_constraint(constraint, joints, fps)
    return {"constraint": numbers, "primary": numbers[CONSTRAINTS[constraint].primary],
            "plausibility": plausibility(joints, fps=fps)}


def check_motion(joints: np.ndarray, frames: int, where: str) -> np.ndarray:
    """A sampled motion as float32 (frames, 22, 3); ValueError naming ``where`` otherwise."""
    x = np.asarray(joints, dtype=np.float32)
    if x.shape != (frames, NUM_JOINTS, 3):
        raise ValueError(f"{where}: the sampler returned shape {x.shape}, expected {(frames, NUM_JOINTS, 3)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{where}: the sampled motion contains NaN or inf")
    return x


@dataclass
class StudyRun:
    """Everything sampled and measured: part texts per prompt, one record per sample, and the motions."""

    pairs: list[PromptPair]
    settings: StudySettings
    part_texts: dict[str, dict[str, dict[str, str]]]  # pair id -> phrasing -> part -> text
    records: list[dict[str, Any]]
    motions: dict[tuple[str, str], list[np.ndarray]]  # (pair id, phrasing) -> K joint arrays


def run_study(pairs: Sequence[PromptPair], sampler: MotionSampler, splitter: PartSplitter,
              similarity: TextMotionSimilarity | None, settings: StudySettings, progress: bool = True) -> StudyRun:
    """Split every prompt, sample K motions per prompt (one sampler call for all) and measure each motion."""
    from tqdm import tqdm

    run = StudyRun(list(pairs), settings, {}, [], {})
    for pair in pairs:
        run.part_texts[pair.id] = {ph: dict(splitter(pair.prompt(ph))) for ph in PHRASINGS}
    jobs = [(pair, ph, k) for pair in pairs for ph in PHRASINGS for k in range(settings.samples)]
    motions = list(sampler([p.prompt(ph) for p, ph, _ in jobs], [run.part_texts[p.id][ph] for p, ph, _ in jobs],
                           [p.frames for p, _, _ in jobs], settings.seed))
    if len(motions) != len(jobs):
        raise ValueError(f"the sampler returned {len(motions)} motions, {len(jobs)} were asked for")
    for (pair, phrasing, k), joints in tqdm(list(zip(jobs, motions)), desc="prompt_study measures", unit="motion",
                                           disable=not progress):
        joints = check_motion(joints, pair.frames, f"pair {pair.id} {phrasing} sample {k}")
        run.motions.setdefault((pair.id, phrasing), []).append(joints)
        prompt = pair.prompt(phrasing)
        record = {"pair": pair.id, "phrasing": phrasing, "prompt": prompt, "seed": settings.seed, "sample": k,
                  "frames": pair.frames, **measure_sample(pair.constraint, joints, settings.fps)}
        record[SIMILARITY] = None if similarity is None else float(similarity(prompt, joints))
        run.records.append(record)
    return run


# ----------------------------------------------------------------------------- aggregating and comparing

def summarise(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, 95% CI half-width, std, min, max over the values that are not None (n = their count)."""
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "mean": None, "ci95": None, "std": None, "min": None, "max": None}
    mean, half = mean_ci95(x)
    return {"n": int(x.size), "mean": mean, "ci95": half, "std": float(x.std()), "min": float(x.min()),
            "max": float(x.max())}


def compare(a: Sequence[float], b: Sequence[float], settings: StudySettings, salt: str) -> Comparison | None:
    """Difference mean(a) - mean(b) with its interval by ``settings.ci`` (None when a sample is too small)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if settings.ci == "welch":
        return welch_test(x, y, settings.alpha) if min(x.size, y.size) >= 2 else None
    if min(x.size, y.size) < 1:
        return None
    rng = np.random.default_rng([settings.seed, zlib.crc32(salt.encode())])
    return bootstrap_difference(x, y, rng, settings.n_resamples, settings.alpha)


def winner(difference: float, higher_is_better: bool) -> str:
    """'ik', 'fk' or 'tie' from the difference IK - FK of the deciding number."""
    if difference == 0.0:
        return "tie"
    return "ik" if (difference > 0) == higher_is_better else "fk"


def metric_values(records: Sequence[dict[str, Any]], pair: str, phrasing: str, metric: str) -> list[float | None]:
    """One metric of a prompt's samples: 'primary', 'tmr_similarity', a plausibility key or 'constraint.<name>'."""
    out: list[float | None] = []
    for r in records:
        if r["pair"] != pair or r["phrasing"] != phrasing:
            continue
        if metric.startswith("constraint."):
            out.append(r["constraint"][metric.split(".", 1)[1]])
        elif metric in PLAUSIBILITY_KEYS:
            out.append(r["plausibility"][metric])
        else:
            out.append(r[metric])
    return out


def compare_pair(pair: PromptPair, records: Sequence[dict[str, Any]], settings: StudySettings) -> dict[str, Any]:
    """Both phrasings' summaries of every measure, and IK - FK with its interval for the deciding ones."""
    constraint = CONSTRAINTS[pair.constraint]
    first = next(r for r in records if r["pair"] == pair.id)
    metrics = (["primary"] + [f"constraint.{k}" for k in first["constraint"]] + [SIMILARITY]
               + list(PLAUSIBILITY_KEYS))
    summary = {m: {ph: summarise(metric_values(records, pair.id, ph, m)) for ph in PHRASINGS} for m in metrics}
    comparisons: dict[str, Any] = {}
    for m in ("primary", SIMILARITY, "foot_skating_ratio"):
        a, b = (metric_values(records, pair.id, ph, m) for ph in PHRASINGS)
        a_ok, b_ok = [v for v in a if v is not None], [v for v in b if v is not None]
        result = compare(a_ok, b_ok, settings, f"{pair.id}/{m}") if a_ok and b_ok else None
        comparisons[m] = None if result is None else result.to_dict()
    primary = comparisons["primary"]
    return {
        "id": pair.id, "ik": pair.ik, "fk": pair.fk, "frames": pair.frames,
        "constraint": pair.constraint, "description": constraint.description, "primary": constraint.primary,
        "higher_is_better": constraint.higher_is_better,
        "winner": None if primary is None else winner(primary["difference"], constraint.higher_is_better),
        "significant": None if primary is None else bool(primary["significant"]),
        "comparisons": comparisons, "summary": summary,
    }


def aggregate(run: StudyRun) -> dict[str, Any]:
    """Per-pair comparisons and the tally of wins over all pairs."""
    pairs = [compare_pair(p, run.records, run.settings) for p in run.pairs]
    tally = {"ik_wins": 0, "fk_wins": 0, "ties": 0, "ik_significant_wins": 0, "fk_significant_wins": 0}
    for p in pairs:
        if p["winner"] in ("ik", "fk"):
            tally[f"{p['winner']}_wins"] += 1
            tally[f"{p['winner']}_significant_wins"] += int(bool(p["significant"]))
        elif p["winner"] == "tie":
            tally["ties"] += 1
    return {"settings": asdict(run.settings), "pairs": pairs, "tally": tally, "part_texts": run.part_texts}


def dvc_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The compact metrics file: per pair the deciding number per phrasing, the difference, its CI and the winner."""
    out: dict[str, Any] = {"tally": result["tally"], "samples_per_prompt": result["settings"]["samples"],
                           "ci": result["settings"]["ci"], "pairs": {}}
    for p in result["pairs"]:
        s, c = p["summary"], p["comparisons"]["primary"] or {}
        sim = p["summary"][SIMILARITY]
        out["pairs"][p["id"]] = {
            "constraint": p["constraint"], "primary": p["primary"], "higher_is_better": p["higher_is_better"],
            "ik_mean": s["primary"]["ik"]["mean"], "fk_mean": s["primary"]["fk"]["mean"],
            "difference": c.get("difference"), "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"),
            "p_value": c.get("p_value"), "winner": p["winner"], "significant": p["significant"],
            "ik_tmr_similarity": sim["ik"]["mean"], "fk_tmr_similarity": sim["fk"]["mean"],
            "ik_foot_skating_ratio": s["foot_skating_ratio"]["ik"]["mean"],
            "fk_foot_skating_ratio": s["foot_skating_ratio"]["fk"]["mean"],
        }
    return out


# ----------------------------------------------------------------------------- TMR text-motion similarity

def tmr_similarity(model: Any, tokens: Callable[[str], np.ndarray], mean: np.ndarray, std: np.ndarray,
                   device: str = "cpu") -> TextMotionSimilarity:
    """Cosine of the TMR latents of a text and a motion (joints -> HumanML3D features -> normalised -> encoder)."""
    import torch

    from motion.data.features import extract_features

    text_cache: dict[str, torch.Tensor] = {}

    def score(text: str, joints: np.ndarray) -> float:
        with torch.no_grad():
            if text not in text_cache:
                tok = torch.from_numpy(np.asarray(tokens(text), dtype=np.float32))[None].to(device)
                text_cache[text] = model.encode_text(tok, torch.ones(tok.shape[:2], dtype=torch.bool, device=device))[0]
            features = (extract_features(joints) - mean) / std
            motion = torch.from_numpy(features.astype(np.float32))[None].to(device)
            latent = model.encode_motion(motion, torch.ones(motion.shape[:2], dtype=torch.bool, device=device))[0]
            return float(torch.nn.functional.cosine_similarity(text_cache[text], latent, dim=0).cpu())

    return score
