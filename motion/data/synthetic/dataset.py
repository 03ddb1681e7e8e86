"""Write the synthetic dataset: AMASS-format .npz files plus HumanML3D-format annotations.

Layout (the download stage's contract):
  <amass>/Synthetic/subject_XX/<name>_poses.npz       poses, trans, betas, gender, mocap_framerate, dmpls
  <annotations>/index.csv, texts/<id>.txt, splits/{train,val,test}.txt
  <annotations>/part_texts.json (ground-truth part texts per seg_id), synthetic_labels.json
Every motion draws from its own random stream (seed, index), so the bytes depend only on the seed
and the motion's index; files are written atomically and .npz members carry a fixed timestamp.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from motion.core.io import atomic_path, write_json, write_text
from motion.core.parts import PART_NAMES
from motion.data.captions import format_captions
from motion.data.synthetic.actions import ACTIONS
from motion.data.synthetic.body import Body, betas_from_body_scale
from motion.data.synthetic.captions import make_captions, part_annotation
from motion.data.synthetic.compose import COMPOSITIONS, caption_order, pose_track, sample_motion, to_amass

DATASET = "Synthetic"
SOURCE_FPS = (60, 100, 120)  # AMASS-like capture rates, one per subject in turn
COMPOSITION_SHARES = (0.4, 0.35, 0.25)  # single, simultaneous, sequential
SPLIT_SHARES = (0.8, 0.1, 0.1)  # train, val, test
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Subject:
    """A synthetic performer: folder name, body scale, gender and capture frame rate."""

    name: str
    scale: float
    gender: str
    fps: int


def make_subjects(count: int, rng: np.random.Generator) -> list[Subject]:
    """``count`` subjects with varied size (scale 0.88-1.12), gender and frame rate."""
    subjects = []
    for i in range(count):
        gender = ("male", "female")[int(rng.integers(2))]
        scale = float(rng.uniform(0.96, 1.12) if gender == "male" else rng.uniform(0.88, 1.02))
        subjects.append(Subject(f"subject_{i + 1:02d}", round(scale, 3), gender, SOURCE_FPS[i % len(SOURCE_FPS)]))
    return subjects


def plan_motions(count: int, rng: np.random.Generator) -> list[tuple[str, str | None]]:
    """(composition, first action) per motion; single-action motions cycle through every action."""
    compositions = rng.choice(len(COMPOSITIONS), size=count, p=COMPOSITION_SHARES)
    names = sorted(ACTIONS)
    queue: list[str] = []
    plan: list[tuple[str, str | None]] = []
    for c in compositions:
        if COMPOSITIONS[c] == "single":
            if not queue:
                queue = [names[i] for i in rng.permutation(len(names))]
            plan.append(("single", queue.pop()))
        else:
            plan.append((COMPOSITIONS[c], None))
    return plan


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with a fixed member order and timestamp: same arrays, same bytes."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w") as archive:
            for key, value in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
                archive.writestr(info, buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


def split_ids(ids: list[str], rng: np.random.Generator) -> dict[str, list[str]]:
    """Deterministic 80/10/10 train/val/test split (each list sorted)."""
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_val = max(1, int(round(SPLIT_SHARES[1] * len(ids)))) if len(ids) >= 3 else 0
    n_test = n_val
    return {"val": sorted(order[:n_val]), "test": sorted(order[n_val:n_val + n_test]),
            "train": sorted(order[n_val + n_test:])}


def generate_dataset(amass_dir: Path, annotations_dir: Path, num_motions: int, seed: int) -> dict:
    """Write ``num_motions`` synthetic motions (AMASS .npz + HumanML3D annotations); return a summary."""
    if num_motions < 1:
        raise ValueError(f"num_motions must be at least 1, got {num_motions}")
    amass_dir, annotations_dir = Path(amass_dir), Path(annotations_dir)
    rng = np.random.default_rng([seed, 0])
    subjects = make_subjects(int(np.clip(num_motions // 20, 3, 20)), rng)
    plan = plan_motions(num_motions, rng)

    index_lines = ["source_path,start_frame,end_frame,new_name"]
    part_texts: dict[str, dict] = {}
    labels: dict[str, dict] = {}
    for i, (composition, first) in enumerate(tqdm(plan, desc="synthetic motions", unit="motion")):
        motion_rng = np.random.default_rng([seed, 1, i])
        subject = subjects[i % len(subjects)]
        spec = sample_motion(motion_rng, composition, first)
        before, after = (int(v) for v in motion_rng.integers(6, 21, size=2))
        body = Body(subject.scale)
        track = pose_track(spec, body, subject.fps, before, after)
        heading = float(motion_rng.uniform(-np.pi, np.pi))
        poses, trans, _ = to_amass(track, heading, motion_rng.uniform(-1.5, 1.5, size=2))
        ordered = caption_order(spec.segments, composition)
        captions = make_captions(ordered, composition, subject.gender, motion_rng)

        motion_id = f"{i:06d}"
        joiner = "_then_" if composition == "sequential" else "_and_"
        name = f"{i:04d}_{joiner.join(s.action for s in ordered)}"
        relative = f"{DATASET}/{subject.name}/{name}_poses"
        save_npz(amass_dir / f"{relative}.npz", {
            "poses": poses,
            "trans": trans,
            "betas": betas_from_body_scale(subject.scale),
            "gender": np.array(subject.gender),
            "mocap_framerate": np.array(float(subject.fps)),
            "dmpls": np.zeros((len(poses), 8)),
        })
        write_text(annotations_dir / "texts" / f"{motion_id}.txt", format_captions(captions))
        index_lines.append(f"./pose_data/{relative}.npy,{before},{before + spec.frames},{motion_id}.npy")
        annotation = part_annotation(spec.segments)
        for k in range(len(captions)):
            part_texts[f"{motion_id}_{k}"] = annotation
        owner = {p: s.action for s in spec.segments for p in ACTIONS[s.action].parts}
        labels[motion_id] = {
            "parts": {p: owner.get(p, "idle") for p in PART_NAMES},
            "composition": composition,
            "segments": [{"action": s.action, "parts": list(ACTIONS[s.action].parts), "start": round(s.start, 3),
                          "end": round(s.end, 3), "params": s.params} for s in ordered],
            "body_scale": subject.scale,
            "subject": subject.name,
            "gender": subject.gender,
            "mocap_framerate": subject.fps,
            "source_path": f"./pose_data/{relative}.npy",
            "start_frame": before,
            "end_frame": before + spec.frames,
            "frames": spec.frames,
            "duration": spec.duration,
            "turn_180": any(s.action in ("walk_turn", "turn_around") for s in spec.segments),
            "heading": round(heading, 6),
        }

    write_text(annotations_dir / "index.csv", "\n".join(index_lines) + "\n")
    for split, ids in split_ids(sorted(labels), rng).items():
        write_text(annotations_dir / "splits" / f"{split}.txt", "".join(f"{m}\n" for m in ids))
    write_json(annotations_dir / "part_texts.json", part_texts)
    write_json(annotations_dir / "synthetic_labels.json", labels)
    used = {s["action"] for lab in labels.values() for s in lab["segments"]}
    return {
        "motions": len(labels),
        "captions": 3 * len(labels),
        "actions": len(used),
        "subjects": len(subjects),
        "frames": int(sum(lab["frames"] for lab in labels.values())),
        "compositions": {c: sum(lab["composition"] == c for lab in labels.values()) for c in COMPOSITIONS},
        "turns": int(sum(lab["turn_180"] for lab in labels.values())),
    }
