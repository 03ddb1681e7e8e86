"""A full-size stand-in of HumanML3D's inputs, generated (benchmark support, not the default pipeline).

Run: ``python -m benchmarks.fullsize OUT [--fraction 1.0] [--skip-datasets SSM_synced]``.

Writes, for every row of HumanML3D's real ``index.csv`` (``../shared/reference/humanml3d``):

- ``OUT/amass/<AMASS folder>/<subject>/<name>_poses.npz``: one AMASS 'SMPL+H G' file per source path,
  under the folder name today's AMASS archive extracts to (``BMLrub`` for HumanML3D's
  ``BioMotionLab_NTroje`` etc.: the download stage renames them back), with ``poses (T, 156)``,
  ``trans (T, 3)``, ``betas (16,)``, ``gender`` and ``mocap_framerate`` (float32 arrays; real AMASS
  is float64). T covers the index's frame ranges at the dataset's capture rate (``DATASET_FPS``)
  after HumanML3D's leading trim. The motion is the synthetic actions of ``motion.data.synthetic``
  chained end to end (each next action turned and moved to continue where the last one ended).
- ``OUT/humanml3d/``: a HumanML3D checkout: ``index.csv``, ``HumanML3D/texts/<id>.txt`` (captions of
  the synthetic action each clip starts in; 44,970 captions over the 14,616 clips, as HumanML3D
  has), the official ``HumanML3D/{train,val,test,all}.txt`` and ``pose_data/humanact12/`` joint
  files ``(T, 24, 3)`` for HumanAct12's rows.

``--fraction`` keeps every k-th source (a smaller stand-in with the same mix); ``--skip-datasets``
leaves dataset folders out (to add them later: the incremental rerun of ``bench_fullscale``).
"""
from __future__ import annotations

import argparse
import shutil
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from motion.core.conventions import TRIM_FRAMES, amass_to_pose_data, downsample_step
from motion.core.kinematics import smpl_forward_kinematics
from motion.data.amass import DATASET_ALIASES, HUMANACT12, ClipSpec, dataset_of, read_index, source_parts
from motion.data.captions import Caption, format_captions
from motion.data.synthetic.body import Body, betas_from_body_scale
from motion.data.synthetic.captions import make_captions
from motion.data.synthetic.compose import COMPOSITIONS, caption_order, pose_track, sample_motion, to_amass

REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "humanml3d"
HUMANML3D_CAPTIONS = 44_970  # captions of HumanML3D's 14,616 clips (texts/*.txt lines)
HUMANML3D_CLIPS = 14_616

# Capture rate of each HumanML3D dataset folder in the stand-in (AMASS: KIT and EKUT at 100 fps,
# TotalCapture and DFAUST at 60, the Vicon datasets at 120, BMLhandball recorded faster).
DATASET_FPS: dict[str, int] = {
    "KIT": 100, "EKUT": 100, "TotalCapture": 60, "DFaust_67": 60, "BMLhandball": 250,
}
DEFAULT_FPS = 120
LIBRARY_SIZE = 48  # synthetic motions per capture rate, chained to make every sequence


@dataclass(frozen=True)
class LibraryMotion:
    """One synthetic motion at a capture rate: AMASS poses/trans (z-up) and four captions."""

    poses: np.ndarray  # (T, 156)
    trans: np.ndarray  # (T, 3)
    captions: tuple[Caption, ...]


def _resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of a (T, D) curve in time."""
    t_in = np.arange(len(x)) / fps_in
    t_out = np.arange(int(t_in[-1] * fps_out) + 1) / fps_out
    return np.stack([np.interp(t_out, t_in, x[:, d]) for d in range(x.shape[1])], axis=1)


def motion_library(fps: int, count: int, seed: int) -> list[LibraryMotion]:
    """``count`` synthetic motions captured at ``fps`` (rates that are not multiples of 20 are resampled
    from 120 fps)."""
    render_fps = fps if fps % 20 == 0 else DEFAULT_FPS
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, fps, i])
        composition = COMPOSITIONS[i % len(COMPOSITIONS)]
        spec = sample_motion(rng, composition, None)
        track = pose_track(spec, Body(float(rng.uniform(0.9, 1.1))), render_fps, 4, 4)
        poses, trans, _ = to_amass(track, 0.0, np.zeros(2))
        if render_fps != fps:
            poses, trans = _resample(poses, render_fps, fps), _resample(trans, render_fps, fps)
        captions = make_captions(caption_order(spec.segments, composition), composition,
                                 ("male", "female")[i % 2], rng, count=4)
        out.append(LibraryMotion(poses, trans, tuple(captions)))
    return out


def _yaw(root: Rotation) -> np.ndarray:
    """Heading about world +z of AMASS root rotations (the body faces its local +z)."""
    forward = root.apply([0.0, 0.0, 1.0])
    return np.arctan2(forward[..., 1], forward[..., 0])


def chain_motions(library: list[LibraryMotion], frames: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """A sequence of ``frames`` frames: library motions end to end, each turned about +z and moved so it
    starts facing and standing where the previous one ended. Returns poses, trans and (start frame,
    library index) of every piece."""
    poses, trans, pieces = [], [], []
    total, heading, position = 0, float(rng.uniform(-np.pi, np.pi)), rng.uniform(-2.0, 2.0, size=2)
    while total < frames:
        k = int(rng.integers(len(library)))
        motion = library[k]
        root = Rotation.from_rotvec(motion.poses[:, :3])
        turn = Rotation.from_euler("z", heading - _yaw(root[0]))
        piece = motion.poses.copy()
        piece[:, :3] = (turn * root).as_rotvec()
        xy = turn.apply(motion.trans - motion.trans[0])[:, :2] + position
        poses.append(piece)
        trans.append(np.concatenate([xy, motion.trans[:, 2:]], axis=1))
        pieces.append((total, k))
        total += len(piece)
        heading = float(_yaw(turn * root[-1]))
        position = xy[-1]
    return np.concatenate(poses)[:frames], np.concatenate(trans)[:frames], pieces


def amass_folder(dataset: str) -> str:
    """The folder today's AMASS archive of a HumanML3D dataset extracts to."""
    return DATASET_ALIASES.get(dataset, (dataset,))[0]


def _rng(source: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(source.encode())])


def _captions_for(clip: ClipSpec, step: int, pieces: list[tuple[int, int]], library: list[LibraryMotion],
                  count: int) -> list[Caption]:
    """Captions of the library motion the clip starts in."""
    start = (clip.start_frame + TRIM_FRAMES.get(dataset_of(clip.source_path), 0)) * step
    k = next(k for s, k in reversed(pieces) if s <= start)
    return list(library[k].captions[:count])


def caption_counts(clip_ids: list[str]) -> dict[str, int]:
    """3 captions per clip, 4 for as many clips as make HumanML3D's 44,970 over its 14,616 clips."""
    extra = round(len(clip_ids) * (HUMANML3D_CAPTIONS - 3 * HUMANML3D_CLIPS) / HUMANML3D_CLIPS)
    ranked = sorted(clip_ids, key=lambda i: zlib.crc32(i.encode()))
    return {i: 4 if r < extra else 3 for r, i in enumerate(ranked)}


def write_source(source: str, clips: list[ClipSpec], amass_root: Path, humanact12_dir: Path, texts_dir: Path,
                 libraries: dict[int, list[LibraryMotion]], counts: dict[str, int], seed: int) -> int:
    """Write one source's motion file and its clips' caption files; returns the bytes written."""
    rng = _rng(source, seed)
    dataset = dataset_of(source)
    if dataset == HUMANACT12:  # HumanML3D ships these as 20 fps joints (T, 24, 3), y-up, used whole
        library = libraries[DEFAULT_FPS]
        poses, trans, pieces = chain_motions(library, int(rng.integers(40, 201)) * 6, rng)
        joints = amass_to_pose_data(smpl_forward_kinematics(poses[::6], trans[::6]))
        joints = np.concatenate([joints, joints[:, 20:22]], axis=1).astype(np.float32)  # + 2 hand joints
        path = humanact12_dir / source_parts(source)[-1]
        np.save(path, joints)
        step = 6
    else:
        fps = DATASET_FPS.get(dataset, DEFAULT_FPS)
        library = libraries[fps]
        step = downsample_step(fps)
        ends = [c.end_frame if c.end_frame != -1 else c.start_frame + 200 for c in clips]
        frames20 = TRIM_FRAMES.get(dataset, 0) + max(ends) + int(rng.integers(0, 40))
        poses, trans, pieces = chain_motions(library, frames20 * step + int(rng.integers(0, step)), rng)
        parts = source_parts(source)
        path = amass_root.joinpath(amass_folder(dataset), *parts[1:-1], Path(parts[-1]).with_suffix(".npz").name)
        path.parent.mkdir(parents=True, exist_ok=True)
        gender = ("male", "female")[int(rng.integers(2))]
        np.savez(path, poses=poses.astype(np.float32), trans=trans.astype(np.float32),
                 betas=betas_from_body_scale(float(rng.uniform(0.9, 1.1))).astype(np.float32),
                 gender=np.array(gender), mocap_framerate=np.array(float(fps)))
    for clip in clips:
        captions = _captions_for(clip, step, pieces, library, counts[clip.clip_id])
        (texts_dir / f"{clip.clip_id}.txt").write_text(format_captions(captions), encoding="utf-8")
    return path.stat().st_size


def write_standin(out: str | Path, fraction: float = 1.0, skip_datasets: tuple[str, ...] = (), seed: int = 0,
                  reference: Path = REFERENCE, progress: bool = True) -> dict:
    """Write the stand-in (see the module docstring) into ``out``; returns its summary."""
    start = time.perf_counter()
    out = Path(out)
    rows = read_index(reference / "index.csv")
    by_source: dict[str, list[ClipSpec]] = defaultdict(list)
    for row in rows:
        by_source[row.source_path].append(row)
    sources = sorted(by_source)
    keep_every = max(1, round(1.0 / fraction))
    sources = [s for i, s in enumerate(sources) if i % keep_every == 0 and dataset_of(s) not in skip_datasets]
    kept = [c for s in sources for c in by_source[s]]
    kept_ids = {c.clip_id for c in kept}

    amass_root, humanml3d = out / "amass", out / "humanml3d"
    humanact12_dir = humanml3d / "pose_data" / HUMANACT12 / HUMANACT12
    texts_dir = humanml3d / "HumanML3D" / "texts"
    for folder in (amass_root, humanact12_dir, texts_dir):
        folder.mkdir(parents=True, exist_ok=True)
    libraries = {fps: motion_library(fps, LIBRARY_SIZE, seed) for fps in {DEFAULT_FPS, *DATASET_FPS.values()}}
    counts = caption_counts([c.clip_id for c in rows])
    written = 0
    for n, source in enumerate(sources):
        written += write_source(source, by_source[source], amass_root, humanact12_dir, texts_dir, libraries,
                                counts, seed)
        if progress and n % 1000 == 0:
            print(f"  {n}/{len(sources)} sources, {written / 1e9:.2f} GB, {time.perf_counter() - start:.0f} s",
                  flush=True)

    index_lines = (reference / "index.csv").read_text(encoding="utf-8").splitlines()
    header, body = index_lines[0], index_lines[1:]
    (humanml3d / "index.csv").write_text("\n".join([header] + [line for line in body if line and
                                         Path(line.rsplit(",", 1)[-1]).stem in kept_ids]) + "\n")
    official: dict[str, int] = {}
    for split in ("train", "val", "test", "all"):
        ids = (reference / "splits" / f"{split}.txt").read_text(encoding="utf-8").split()
        ids = [i for i in ids if i.lstrip("M") in kept_ids]
        (humanml3d / "HumanML3D" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        official[split] = len(ids)
    files = sum(1 for _ in amass_root.rglob("*.npz")) + sum(1 for _ in humanact12_dir.glob("*.npy"))
    return {
        "sources": len(sources),
        "clips": len(kept),
        "captions": sum(counts[i] for i in kept_ids),
        "motion_files": files,
        "datasets": sorted({amass_folder(dataset_of(s)) for s in sources}),
        "bytes": written + sum(p.stat().st_size for p in texts_dir.iterdir()),
        "official_split_ids": official,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    """Write the stand-in into the folder given on the command line and print its summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--fraction", type=float, default=1.0, help="keep every round(1/fraction)-th source")
    parser.add_argument("--skip-datasets", nargs="*", default=[], help="HumanML3D dataset folders to leave out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    summary = write_standin(args.out, args.fraction, tuple(args.skip_datasets), args.seed)
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
