"""Tiny AMASS and HumanML3D inputs: 'SMPL+H G' motion files, archives of them, a HumanML3D checkout."""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np


def write_amass_npz(path: Path, frames: int = 240, fps: float = 120.0, gender: str = "male", seed: int = 0,
                    **overrides: object) -> Path:
    """Write an AMASS 'SMPL+H G' file: a person standing upright (z-up) who turns and swings the limbs."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    poses = np.zeros((frames, 156))
    poses[:, 0] = np.pi / 2  # root: y-up body -> z-up world, as AMASS files store it
    poses[:, 3:66] = 0.2 * np.sin(2 * np.pi * 0.5 * t)[:, None] * rng.normal(size=63)
    trans = np.stack([0.3 * t, 0.1 * np.sin(t), np.full(frames, 0.93)], axis=1)
    data: dict[str, object] = {
        "poses": poses, "trans": trans, "betas": rng.normal(scale=0.5, size=16), "gender": np.array(gender),
        "mocap_framerate": np.array(fps), "dmpls": np.zeros((frames, 8)),
    }
    data.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def amass_npz_bytes(frames: int = 24, seed: int = 0, gender: str = "male") -> bytes:
    """A tiny file in AMASS 'SMPL+H G' format (the keys and shapes of CONTRACT.md)."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    np.savez(buffer, poses=rng.normal(0, 0.1, (frames, 156)), trans=rng.normal(0, 0.1, (frames, 3)),
             betas=rng.normal(0, 1, 16), gender=np.array(gender), mocap_framerate=np.array(120.0),
             dmpls=np.zeros((frames, 8)))
    return buffer.getvalue()


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w:bz2",
             extra: list[tarfile.TarInfo] | None = None) -> Path:
    """Write a tar archive holding ``files`` (name -> bytes) plus raw ``extra`` members."""
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return path


def amass_archive(path: Path, dataset: str, seed: int = 0) -> Path:
    """An AMASS-like archive: <dataset>/<subject>/<name>_poses.npz files, a shape.npz and a LICENSE."""
    return make_tar(path, {
        f"{dataset}/s1/walk_poses.npz": amass_npz_bytes(seed=seed),
        f"{dataset}/s1/run_poses.npz": amass_npz_bytes(seed=seed + 1, gender="female"),
        f"{dataset}/s1/shape.npz": amass_npz_bytes(frames=1, seed=seed + 2),
        f"{dataset}/LICENSE.txt": b"licence text\n",
    })


def fake_humanml3d(root: Path, ids: list[str], sources: list[str], humanact12: dict[str, bytes] | None = None) -> Path:
    """A HumanML3D checkout: index.csv at the root, HumanML3D/texts.zip, split files with M ids and
    pose_data/humanact12.zip."""
    (root / "HumanML3D").mkdir(parents=True)
    if humanact12:
        (root / "pose_data").mkdir()
        with zipfile.ZipFile(root / "pose_data" / "humanact12.zip", "w") as zf:
            for name, data in humanact12.items():
                zf.writestr(f"humanact12/{name}", data)
    rows = [f"./pose_data/{src},0,-1,{i}.npy" for i, src in zip(ids, sources)]
    (root / "index.csv").write_text("source_path,start_frame,end_frame,new_name\n" + "\n".join(rows) + "\n")
    with zipfile.ZipFile(root / "HumanML3D" / "texts.zip", "w") as zf:
        for i in ids:
            for name in (i, f"M{i}"):
                zf.writestr(f"texts/{name}.txt", "a person walks.#a/DET person/NOUN walk/VERB#0.0#0.0\n")
    half = max(len(ids) - 1, 1)
    splits = {"train": ids[:half], "val": ids[half:], "test": ids[half:]}
    for split, names in splits.items():
        lines = names + [f"M{i}" for i in names]
        (root / "HumanML3D" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
