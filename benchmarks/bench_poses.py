"""Speed of the poses stage: whole-stage throughput with the built-in skeleton and with SMPL+H (smplx).

Run: ``python -m benchmarks.bench_poses [--files 40] [--device auto]``. Prints AMASS frames read per
second and 20 fps output frames per second. The AMASS tree, captions and the SMPL+H model file are
generated (random but well-formed; real SMPL+H files are licence-gated).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import settings_for
from motion.core.device import resolve_device
from motion.core.settings import convert
from motion.data.body_model import make_body_model
from motion.data.poses import PoseSettings, extract_poses
from tests.support.amass import write_amass_npz
from tests.support.body_model import write_smplh_model


def make_tree(root: Path, files: int, frames: int) -> None:
    """``files`` AMASS sequences of ``frames`` frames at 120 fps, two clips each, with captions."""
    rows = []
    for i in range(files):
        write_amass_npz(root / "amass" / "CMU" / f"{i:02d}" / f"{i:02d}_01_poses.npz", frames=frames, fps=120.0,
                        gender=("male", "female")[i % 2], seed=i)
        for j, (start, end) in enumerate(((0, frames // 12), (frames // 60, -1))):
            rows.append(f"./pose_data/CMU/{i:02d}/{i:02d}_01_poses.npy,{start},{end},{2 * i + j:06d}.npy")
    texts = root / "annotations" / "texts"
    texts.mkdir(parents=True)
    header = "source_path,start_frame,end_frame,new_name\n"
    (root / "annotations" / "index.csv").write_text(header + "\n".join(rows) + "\n")
    for k in range(2 * files):
        (texts / f"{k:06d}.txt").write_text("a person walks to the left#a/DET#0.0#0.0\n")
    write_smplh_model(root / "smplh" / "male" / "model.npz", seed=1)
    write_smplh_model(root / "smplh" / "female" / "model.npz", seed=2)


def main() -> None:
    """Time the whole extraction for each body model and print frames/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--frames", type=int, default=2400, help="frames per file at 120 fps")
    parser.add_argument("--device", default="auto", help="device for smplh: auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, args.files, args.frames)
        poses = settings_for().poses
        for kind in ("builtin", "smplh"):
            settings = convert(PoseSettings, poses, body_model=kind, smplh_dir=str(root / "smplh"))
            model = make_body_model(kind, root / "smplh", device if kind == "smplh" else "cpu", settings.batch_frames)
            model.check(["male", "female"])
            if kind == "smplh":
                model.model("male"), model.model("female")  # load outside the timing
            start = time.perf_counter()
            report = extract_poses(root / "annotations" / "index.csv", root / "amass", root / "annotations",
                                   root / f"out_{kind}", model, settings)
            seconds = time.perf_counter() - start
            source_frames = args.files * args.frames
            print(f"{kind:8s} on {device if kind == 'smplh' else 'cpu':6s}: {seconds:6.2f} s, "
                  f"{source_frames / seconds:9.0f} AMASS frames/s, "
                  f"{source_frames / 6 / seconds:8.0f} frames/s at 20 fps "
                  f"({report['clips_written']} clips)")


if __name__ == "__main__":
    main()
