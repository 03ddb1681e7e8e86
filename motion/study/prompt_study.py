"""The IK-vs-FK prompt study: does an end-effector ("IK-like") or a joint-rotation ("FK-like") phrasing of the
same end state give motions that better reach it, and how does explicit IK (constraint-guided sampling) compare?

The design (``prompts/ik_fk_pairs.yaml``, ``load_design``): per constraint a neutral goal description (every
motion of that constraint is scored against it, never against its own prompt), the explicit constraint of the
guided arm (``near right_wrist left_shoulder 0.05 frames 24-44``, the syntax of ``tools.generate --constraint``),
the clip length, and at least three matched prompt pairs whose IK-like and FK-like prompts specify the same end
state, each prompt with its six part texts written out by hand (a splitter's output is only shown beside them).

Arms (``ARMS``): ``ik`` and ``fk`` sample the pair's two prompts; ``guided`` samples the FK prompt with the
constraint enforced during sampling, from the same noise as the ``fk`` samples (so "how far guidance moved the
motion" is measured against its unguided twin). Samplers are passed in, so the study runs on any generator (the
trained LGTM in the stage, hand-built motions in tests); without a guided sampler the study has two arms.

Every motion is put on the floor (``constraints.put_on_floor``) and measured: the constraint's numbers and its
deciding one (``primary``), the TMR similarity to the goal description, plausibility (skating, penetration,
bone-length drift, jerk, floating). The unit of analysis is the pair: per pair IK vs FK (permutation test, or
Fisher's exact test for a binary primary), per constraint the pairs pooled by a stratified permutation test
(labels permuted within pairs), and guided vs FK per constraint; Holm's correction runs over every test of the
study (``motion.study.statistics``).
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import yaml

from motion.core.conventions import TARGET_FPS
from motion.core.errors import DataError
from motion.core.parts import PART_NAMES
from motion.core.skeleton import NUM_JOINTS
from motion.study import statistics as st
from motion.study.constraints import CONSTRAINTS, measure_constraint, plausibility, put_on_floor

ARMS: tuple[str, ...] = ("ik", "fk", "guided")
PHRASINGS: tuple[str, ...] = ("ik", "fk")  # the arms with their own prompt
ARM_LABELS = {"ik": "IK-like", "fk": "FK-like", "guided": "FK + constraint (guided)"}
SIMILARITY = "goal_similarity"
PLAUSIBILITY_KEYS = ("foot_sliding", "foot_skating_ratio", "ground_penetration", "bone_length_drift", "jerk",
                     "contact_fraction", "floating", "floor_offset")
FK_SEED_OFFSET = 7919  # the FK (and guided) samples' noise seed is noise_seed + this: independent of the IK ones

# (prompts, their six part texts, their frames, seed) -> one motion per prompt, joint positions (frames, 22, 3)
# (HumanML3D frame, 20 fps); a repeated prompt must get a new noise draw each time; the seed fixes them all.
MotionSampler = Callable[[list[str], list[dict[str, str]], list[int], int], Sequence[np.ndarray]]
# the same with one constraint string per prompt, enforced during sampling (explicit IK)
GuidedSampler = Callable[[list[str], list[dict[str, str]], list[int], int, list[str]], Sequence[np.ndarray]]
# prompt -> its six part texts (the configured splitter).
PartSplitter = Callable[[str], dict[str, str]]
# (text, joints (T, 22, 3)) -> text-motion similarity (cosine of TMR latents).
TextMotionSimilarity = Callable[[str, np.ndarray], float]


# ----------------------------------------------------------------------------- the design file

@dataclass(frozen=True)
class Prompt:
    """One caption and its six hand-written part texts."""

    text: str
    parts: dict[str, str]


@dataclass(frozen=True)
class Goal:
    """One constraint of the study: its neutral description, the guided arm's constraint string and the length."""

    name: str
    goal: str
    guided: str
    frames: int


@dataclass(frozen=True)
class PromptPair:
    """An end state phrased IK-like and FK-like, measured by ``constraint``."""

    id: str
    constraint: str
    ik: Prompt
    fk: Prompt

    def prompt(self, arm: str) -> Prompt:
        """The prompt an arm samples: its own phrasing, the FK one for the guided arm."""
        return {"ik": self.ik, "fk": self.fk, "guided": self.fk}[arm]


@dataclass(frozen=True)
class Design:
    """Every goal (file order) and every pair (file order)."""

    goals: dict[str, Goal]
    pairs: list[PromptPair]

    def pairs_of(self, constraint: str) -> list[PromptPair]:
        """The pairs measured by one constraint."""
        return [p for p in self.pairs if p.constraint == constraint]


FIX = "edit the file: see the comment at the top of prompts/ik_fk_pairs.yaml"


def _text(value: Any, source: str | Path, where: str) -> str:
    """A non-empty caption with its whitespace collapsed."""
    if not isinstance(value, str) or not value.strip():
        raise DataError(source, f"{where} must be a non-empty text", FIX)
    return " ".join(value.split())


def _keys(item: Any, required: set[str], source: str | Path, where: str) -> dict[str, Any]:
    """A mapping with exactly the required keys."""
    if not isinstance(item, dict):
        raise DataError(source, f"{where} is not a mapping", FIX)
    missing, unknown = sorted(required - set(item)), sorted(set(item) - required)
    if missing or unknown:
        raise DataError(source, f"{where}: missing keys {missing}, unknown keys {unknown}", FIX)
    return item


def _prompt(item: Any, source: str | Path, where: str) -> Prompt:
    """``{text, parts: {<six part names>}}``."""
    item = _keys(item, {"text", "parts"}, source, where)
    parts = _keys(item["parts"], set(PART_NAMES), source, f"{where} parts")
    return Prompt(_text(item["text"], source, f"{where} text"),
                  {p: _text(parts[p], source, f"{where} part {p}") for p in PART_NAMES})


def parse_design(data: Any, source: str | Path) -> Design:
    """Validate the parsed YAML ``{constraints: {name: {goal, guided, frames}}, pairs: [{id, constraint, ik, fk}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("constraints"), dict) or not data["constraints"]:
        raise DataError(source, "expected a top-level 'constraints:' mapping with at least one constraint", FIX)
    if not isinstance(data.get("pairs"), list) or not data["pairs"]:
        raise DataError(source, "expected a top-level 'pairs:' list with at least one pair", FIX)
    goals: dict[str, Goal] = {}
    for name, item in data["constraints"].items():
        if name not in CONSTRAINTS:
            raise DataError(source, f"unknown constraint {name!r}",
                            f"use one of {', '.join(sorted(CONSTRAINTS))} (motion/study/constraints.py)")
        item = _keys(item, {"goal", "guided", "frames"}, source, f"constraint {name!r}")
        frames = item["frames"]
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 4:
            raise DataError(source, f"constraint {name!r}: frames must be an integer >= 4, got {frames!r}", FIX)
        goals[name] = Goal(name, _text(item["goal"], source, f"constraint {name!r} goal"),
                           _text(item["guided"], source, f"constraint {name!r} guided"), frames)
    pairs: list[PromptPair] = []
    for i, item in enumerate(data["pairs"]):
        item = _keys(item, {"id", "constraint", "ik", "fk"}, source, f"pair #{i + 1}")
        pair_id = str(item["id"]).strip()
        where = f"pair {pair_id!r}"
        if not pair_id or any(c in pair_id for c in "/\\ "):
            raise DataError(source, f"{where}: the id must be non-empty without spaces or slashes", FIX)
        if item["constraint"] not in goals:
            raise DataError(source, f"{where}: constraint {item['constraint']!r} is not under 'constraints:'",
                            f"use one of {', '.join(goals)} or describe it under constraints:")
        pairs.append(PromptPair(pair_id, item["constraint"], _prompt(item["ik"], source, f"{where} ik"),
                                _prompt(item["fk"], source, f"{where} fk")))
    ids = [p.id for p in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DataError(source, f"duplicate pair ids {duplicates}", "give every pair its own id")
    unused = [g for g in goals if g not in {p.constraint for p in pairs}]
    if unused:
        raise DataError(source, f"constraints without a pair: {unused}", "add pairs or remove them")
    return Design(goals, pairs)


def load_design(path: str | Path) -> Design:
    """Read and validate the study design of a YAML file (DataError naming the file on any problem)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "prompt pair file is missing", "create it (see prompts/ik_fk_pairs.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(path, f"is not valid YAML ({' '.join(str(err).split())})", "fix the syntax") from None
    return parse_design(data, path)


# ----------------------------------------------------------------------------- sampling and measuring

@dataclass(frozen=True)
class StudySettings:
    """Samples per prompt, their seed, and the tests' level and permutations."""

    samples: int          # K motions per prompt and arm
    seed: int             # noise seed of the IK samples (FK and guided: seed + FK_SEED_OFFSET); permutation seed
    alpha: float          # family-wise level of the Holm-corrected tests, and 1 - confidence of the intervals
    n_permutations: int = st.N_PERMUTATIONS  # Monte-Carlo permutations when exact enumeration is too large
    fps: float = float(TARGET_FPS)  # the HumanML3D frame rate of the sampled motions

    def __post_init__(self) -> None:
        if self.samples < 2:
            raise ValueError(f"prompt_study.samples must be >= 2 (a test needs two samples per arm), "
                             f"got {self.samples}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")


def check_motion(joints: np.ndarray, frames: int, where: str) -> np.ndarray:
    """A sampled motion as float64 (frames, 22, 3); ValueError naming ``where`` otherwise."""
    x = np.asarray(joints, dtype=np.float64)
    if x.shape != (frames, NUM_JOINTS, 3):
        raise ValueError(f"{where}: the sampler returned shape {x.shape}, expected {(frames, NUM_JOINTS, 3)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{where}: the sampled motion contains NaN or inf")
    return x


def measure_sample(constraint: str, joints: np.ndarray, fps: float = float(TARGET_FPS)) -> dict[str, Any]:
    """Put the motion on the floor, then its constraint numbers, deciding number and plausibility."""
    floored, offset = put_on_floor(joints)
    numbers = measure_constraint(constraint, floored, fps)
    return {"joints": floored, "numbers": numbers, "primary": numbers[CONSTRAINTS[constraint].primary],
            "plausibility": {**plausibility(floored, fps=fps), "floor_offset": offset}}


@dataclass
class StudyRun:
    """Everything sampled and measured: one record per sample and the (floored) motions."""

    design: Design
    settings: StudySettings
    arms: tuple[str, ...]
    records: list[dict[str, Any]]
    motions: dict[tuple[str, str], list[np.ndarray]]  # (pair id, arm) -> K joint arrays, on the floor
    split_parts: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # pair -> phrasing -> splitter's


def _sample_arm(design: Design, arm: str, sampler: Callable[..., Sequence[np.ndarray]], seed: int,
                samples: int, extra: bool) -> list[tuple[PromptPair, int, np.ndarray]]:
    """K motions of every pair for one arm, in one sampler call."""
    jobs = [(pair, k) for pair in design.pairs for k in range(samples)]
    args: list[Any] = [[p.prompt(arm).text for p, _ in jobs], [p.prompt(arm).parts for p, _ in jobs],
                       [design.goals[p.constraint].frames for p, _ in jobs], seed]
    if extra:
        args.append([design.goals[p.constraint].guided for p, _ in jobs])
    motions = list(sampler(*args))
    if len(motions) != len(jobs):
        raise ValueError(f"the {arm} sampler returned {len(motions)} motions, {len(jobs)} were asked for")
    return [(p, k, m) for (p, k), m in zip(jobs, motions)]


def run_study(design: Design, sampler: MotionSampler, settings: StudySettings,
              similarity: TextMotionSimilarity | None = None, guided: GuidedSampler | None = None,
              splitter: PartSplitter | None = None, progress: bool = True) -> StudyRun:
    """Sample K motions per prompt and arm (one sampler call per arm), put them on the floor and measure them."""
    from tqdm import tqdm

    arms = ARMS if guided is not None else PHRASINGS
    run = StudyRun(design, settings, arms, [], {})
    if splitter is not None:
        run.split_parts = {p.id: {ph: dict(splitter(p.prompt(ph).text)) for ph in PHRASINGS} for p in design.pairs}
    seeds = {"ik": settings.seed, "fk": settings.seed + FK_SEED_OFFSET, "guided": settings.seed + FK_SEED_OFFSET}
    sampled = {arm: _sample_arm(design, arm, guided if arm == "guided" else sampler, seeds[arm], settings.samples,
                                arm == "guided") for arm in arms}
    for arm in arms:
        for pair, k, joints in tqdm(sampled[arm], desc=f"prompt_study measures {arm}", unit="motion",
                                    disable=not progress):
            goal = design.goals[pair.constraint]
            joints = check_motion(joints, goal.frames, f"pair {pair.id} {arm} sample {k}")
            measured = measure_sample(pair.constraint, joints, settings.fps)
            run.motions.setdefault((pair.id, arm), []).append(measured.pop("joints"))
            record = {"pair": pair.id, "constraint": pair.constraint, "arm": arm, "prompt": pair.prompt(arm).text,
                      "seed": seeds[arm], "sample": k, "frames": goal.frames, **measured}
            record[SIMILARITY] = None if similarity is None else float(similarity(goal.goal, run.motions[
                (pair.id, arm)][-1]))
            if arm == "guided":  # mean joint distance (m) to the unguided FK sample drawn from the same noise
                twin = run.motions[(pair.id, "fk")][k]
                record["moved"] = float(np.linalg.norm(run.motions[(pair.id, arm)][-1] - twin, axis=-1).mean())
            run.records.append(record)
    return run


def guidance_sweep(design: Design, samplers: dict[float, GuidedSampler], settings: StudySettings,
                   samples: int) -> list[dict[str, Any]]:
    """The guided arm at other guidance strengths, ``samples`` per pair (noise of the FK samples' seed): per
    strength and constraint the deciding number and the plausibility checks (mean and interval)."""
    rows: list[dict[str, Any]] = []
    for strength, sampler in samplers.items():
        records = []
        for pair, k, joints in _sample_arm(design, "guided", sampler, settings.seed + FK_SEED_OFFSET, samples, True):
            goal = design.goals[pair.constraint]
            measured = measure_sample(pair.constraint, check_motion(joints, goal.frames,
                                                                    f"sweep {strength} pair {pair.id} sample {k}"),
                                      settings.fps)
            records.append({"pair": pair.id, "constraint": pair.constraint, "arm": "guided", **measured})
        for name in design.goals:
            binary = CONSTRAINTS[name].binary
            rows.append({"strength": strength, "constraint": name, **{
                m: summarise(values_of(records, m, "guided", constraint=name), binary=(m == "primary" and binary)
                             or m == "floating", alpha=settings.alpha)
                for m in ("primary", "foot_skating_ratio", "jerk", "floating", "bone_length_drift")}})
    return rows


# ----------------------------------------------------------------------------- summaries

def values_of(records: Sequence[dict[str, Any]], metric: str, arm: str, pair: str | None = None,
              constraint: str | None = None) -> list[float]:
    """One metric's non-None values of an arm's samples (of one pair or of one constraint's pairs).

    ``metric``: 'primary', 'goal_similarity', 'moved', a plausibility key or 'constraint.<name>'."""
    out: list[float] = []
    for r in records:
        if r["arm"] != arm or (pair is not None and r["pair"] != pair) or (
                constraint is not None and r["constraint"] != constraint):
            continue
        if metric.startswith("constraint."):
            value = r["numbers"][metric.split(".", 1)[1]]
        elif metric in PLAUSIBILITY_KEYS:
            value = r["plausibility"][metric]
        else:
            value = r.get(metric)
        if value is not None:
            out.append(float(value))
    return out


def summarise(values: Sequence[float], binary: bool = False, alpha: float = 0.05) -> dict[str, Any]:
    """n, mean and its (1 - alpha) interval: Wilson's for a 0/1 metric, Student's t otherwise."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    mean = float(x.mean())
    if binary:
        z = float(scipy.stats.norm.ppf(1 - alpha / 2))
        low, high = st.wilson_interval(int(round(x.sum())), x.size, z)
    elif x.size > 1:
        half = float(scipy.stats.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
        low, high = mean - half, mean + half
    else:
        low, high = -math.inf, math.inf
    return {"n": int(x.size), "mean": mean, "low": float(low), "high": float(high)}


# ----------------------------------------------------------------------------- the tests

def _rng(settings: StudySettings, name: str) -> np.random.Generator:
    """A permutation stream of its own per test (seeded by the study seed and the test's name)."""
    return np.random.default_rng([settings.seed, zlib.crc32(name.encode())])


def compare_arms(name: str, strata: list[tuple[list[float], list[float]]], binary: bool,
                 settings: StudySettings) -> dict[str, Any] | None:
    """One test of arm a against arm b (one stratum: a pair; several: the pairs of a constraint, pooled)."""
    strata = [(a, b) for a, b in strata if a and b]
    if not strata:
        return None
    rng = _rng(settings, name)
    a_all, b_all = [v for a, _ in strata for v in a], [v for _, b in strata for v in b]
    if len(strata) == 1:
        a, b = strata[0]
        if binary:
            test = st.fisher_exact(int(round(sum(a))), len(a), int(round(sum(b))), len(b))
            ci = st.proportion_difference_ci(int(round(sum(a))), len(a), int(round(sum(b))), len(b), settings.alpha)
        else:
            test = st.permutation_test(a, b, rng, settings.n_permutations)
            ci = st.difference_ci(a, b, settings.alpha)
        delta = st.cliffs_delta(a, b, settings.alpha)
        effect = {"cliffs_delta": delta.estimate, "delta_low": delta.low, "delta_high": delta.high}
    else:
        test = st.stratified_permutation_test(strata, rng, settings.n_permutations)
        ci = st.stratified_difference_ci(strata, settings.alpha)
        delta = st.stratified_cliffs_delta(strata, settings.alpha)
        effect = {"cliffs_delta": delta.estimate, "delta_low": delta.low, "delta_high": delta.high}
    return {"difference": ci.estimate, "ci_low": ci.low, "ci_high": ci.high, **effect, **test.to_dict(),
            "n_a": len(a_all), "n_b": len(b_all), "mean_a": float(np.mean(a_all)), "mean_b": float(np.mean(b_all))}


def study_tests(run: StudyRun) -> list[dict[str, Any]]:
    """Every test of the study, Holm-corrected together: per pair IK vs FK (deciding number); per constraint,
    pooled over its pairs, IK vs FK (deciding number and goal similarity) and guided vs FK (deciding number)."""
    plan: list[tuple[str, str, str | None, str, str, str]] = []  # (scope, constraint, pair, metric, a, b)
    for name in run.design.goals:
        plan += [("pair", name, p.id, "primary", "ik", "fk") for p in run.design.pairs_of(name)]
        plan.append(("constraint", name, None, "primary", "ik", "fk"))
        plan.append(("constraint", name, None, SIMILARITY, "ik", "fk"))
        if "guided" in run.arms:
            plan.append(("constraint", name, None, "primary", "guided", "fk"))
    tests: list[dict[str, Any]] = []
    for scope, name, pair, metric, a, b in plan:
        pairs = [pair] if pair is not None else [p.id for p in run.design.pairs_of(name)]
        strata = [(values_of(run.records, metric, a, pair=pid), values_of(run.records, metric, b, pair=pid))
                  for pid in pairs]
        constraint = CONSTRAINTS[name]
        binary = metric == "primary" and constraint.binary
        test_id = f"{a}_vs_{b}/{name}/{pair or 'pooled'}/{metric}"
        result = compare_arms(test_id, strata, binary, run.settings)
        if result is None:
            continue
        higher = constraint.higher_is_better if metric == "primary" else True
        tests.append({"id": test_id, "scope": scope, "constraint": name, "pair": pair, "metric": metric,
                      "a": a, "b": b, "higher_is_better": higher, **result})
    adjusted = st.holm([t["p_value"] for t in tests])
    for t, p in zip(tests, adjusted):
        t["p_holm"] = p
        t["significant"] = bool(p <= run.settings.alpha)
        t["underpowered"] = st.underpowered(st.TestResult(t["statistic"], t["p_value"], t["method"], t["n_splits"],
                                                          t["min_p"]), t["n_a"], t["n_b"], len(tests),
                                            run.settings.alpha)
        better = t["a"] if (t["difference"] > 0) == t["higher_is_better"] else t["b"]
        t["better"] = better if t["significant"] and t["difference"] != 0 else None
    return tests


# ----------------------------------------------------------------------------- aggregating

SUMMARY_METRICS = ("primary", SIMILARITY, "moved") + PLAUSIBILITY_KEYS


def aggregate(run: StudyRun) -> dict[str, Any]:
    """Per pair and per constraint summaries of every arm, all tests (Holm over all), and the verdicts."""
    alpha = run.settings.alpha
    tests = study_tests(run)
    by_key = {(t["scope"], t["constraint"], t["pair"], t["metric"], t["a"]): t for t in tests}

    def summaries(**where: str) -> dict[str, dict[str, Any]]:
        first = next(r for r in run.records if all(r[k] == v for k, v in where.items()))
        binary_primary = CONSTRAINTS[first["constraint"]].binary
        metrics = list(SUMMARY_METRICS) + [f"constraint.{k}" for k in first["numbers"]]
        return {m: {arm: summarise(values_of(run.records, m, arm, **where),
                                   binary=(m == "primary" and binary_primary) or m == "floating", alpha=alpha)
                    for arm in run.arms} for m in metrics}

    pairs = []
    for p in run.design.pairs:
        c = CONSTRAINTS[p.constraint]
        pairs.append({"id": p.id, "constraint": p.constraint, "ik": p.ik.text, "fk": p.fk.text,
                      "parts": {"ik": p.ik.parts, "fk": p.fk.parts}, "split_parts": run.split_parts.get(p.id),
                      "primary": c.primary, "higher_is_better": c.higher_is_better, "binary": c.binary,
                      "summary": summaries(pair=p.id),
                      "test": by_key.get(("pair", p.constraint, p.id, "primary", "ik"))})
    constraints = []
    for name, goal in run.design.goals.items():
        c = CONSTRAINTS[name]
        constraints.append({
            "name": name, "goal": goal.goal, "guided": goal.guided, "frames": goal.frames,
            "description": c.description, "primary": c.primary, "higher_is_better": c.higher_is_better,
            "binary": c.binary, "pairs": [p.id for p in run.design.pairs_of(name)],
            "summary": summaries(constraint=name),
            "ik_vs_fk": by_key.get(("constraint", name, None, "primary", "ik")),
            "similarity_ik_vs_fk": by_key.get(("constraint", name, None, SIMILARITY, "ik")),
            "guided_vs_fk": by_key.get(("constraint", name, None, "primary", "guided")),
        })
    tally = {"ik_better": 0, "fk_better": 0, "no_significant_difference": 0, "underpowered": 0}
    for c in constraints:
        test = c["ik_vs_fk"]
        if test is None:
            continue
        key = {"ik": "ik_better", "fk": "fk_better", None: "no_significant_difference"}[test["better"]]
        tally[key] += 1
        tally["underpowered"] += int(test["underpowered"])
    return {"settings": asdict(run.settings), "arms": list(run.arms), "pairs": pairs, "constraints": constraints,
            "tests": tests, "tally": tally}


def dvc_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The compact metrics file: per constraint the arms' mean deciding number, IK - FK, its Holm p and verdict."""
    out: dict[str, Any] = {"samples_per_prompt": result["settings"]["samples"], "arms": result["arms"],
                           "tests": len(result["tests"]), "tally": result["tally"], "constraints": {}}
    for c in result["constraints"]:
        s, t = c["summary"], c["ik_vs_fk"] or {}
        g = c["guided_vs_fk"] or {}
        row = {f"{arm}_mean": s["primary"][arm]["mean"] for arm in result["arms"]}
        row.update({"difference": t.get("difference"), "p_holm": t.get("p_holm"), "better": t.get("better"),
                    "underpowered": t.get("underpowered")})
        if g:
            row.update({"guided_difference": g["difference"], "guided_p_holm": g["p_holm"],
                        "guided_better": g["better"]})
        out["constraints"][c["name"]] = row
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
