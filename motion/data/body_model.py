"""Body models that turn AMASS pose parameters into the 22 body joints (z-up world, metres).

- ``builtin``: forward kinematics of HumanML3D's target skeleton (``motion.core.skeleton.TARGET_OFFSETS``)
  scaled by the body size that the shape ``betas`` encode; needs no licensed files.
- ``smplh``: the SMPL+H model through ``smplx``, as HumanML3D does it (gender per file, first 10
  betas, joints from the model's regressor; the first 22 are the body joints). The model files are
  licence-gated: the user downloads them (``SMPLH_SITE``).
"""
from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from motion.core.errors import DataError
from motion.core.kinematics import smpl_forward_kinematics
from motion.core.skeleton import NUM_JOINTS, TARGET_OFFSETS

SMPLH_SITE = "mano.is.tue.mpg.de"
NUM_BETAS = 10
NUM_HAND_POSE = 45  # 15 hand joints x 3 (axis-angle), per hand
# HumanML3D picks the male model for male files and the female model for every other file.
MODEL_GENDER: dict[str, str] = {"male": "male", "female": "female", "neutral": "female"}
SMPLH_KEYS: tuple[str, ...] = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs")


class BodyModel(Protocol):
    """Anything that maps AMASS poses (T, 156), trans (T, 3), betas and gender to joints (T, 22, 3)."""

    name: str

    def check(self, genders: Iterable[str]) -> None:
        """Raise DataError before any heavy work when a needed model file is missing."""

    def joints(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, gender: str) -> np.ndarray:
        """Body joint positions (T, 22, 3) float64 in the AMASS (z-up) world."""


def body_scale(betas: np.ndarray) -> float:
    """Body size factor of ``betas`` (motion.data.synthetic's convention; 1.0 until that module exists)."""
    try:
        from motion.data.synthetic import body_scale_from_betas
    except ModuleNotFoundError as e:
        if e.name not in ("motion.data.synthetic", "motion"):
            raise
        return 1.0
    return float(body_scale_from_betas(np.asarray(betas)))


def _chunks(frames: int, batch_frames: int) -> list[slice]:
    step = max(1, int(batch_frames))
    return [slice(i, min(i + step, frames)) for i in range(0, max(frames, 1), step)]


class BuiltinSkeleton:
    """Forward kinematics of HumanML3D's target skeleton, scaled by ``body_scale(betas)``."""

    name = "builtin"

    def __init__(self, batch_frames: int = 1024) -> None:
        self.batch_frames = batch_frames

    def check(self, genders: Iterable[str]) -> None:
        """Nothing to check: the skeleton is built in."""

    def joints(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, gender: str) -> np.ndarray:
        """Joints (T, 22, 3) by FK over frame batches; gender is not used by this skeleton."""
        offsets = TARGET_OFFSETS.astype(np.float64) * body_scale(betas)
        out = np.empty((poses.shape[0], NUM_JOINTS, 3), dtype=np.float64)
        for part in _chunks(poses.shape[0], self.batch_frames):
            out[part] = smpl_forward_kinematics(poses[part], trans[part], offsets)
        return out


def smplh_model_candidates(smplh_dir: str | Path, gender: str) -> list[Path]:
    """Where a gender's SMPL+H file may be: AMASS's ``<g>/model.npz`` first, then smplx's names."""
    root = Path(smplh_dir)
    smplx_name = f"SMPLH_{gender.upper()}.npz"
    return [root / gender / "model.npz", root / smplx_name, root / "smplh" / smplx_name]


def smplh_model_path(smplh_dir: str | Path, gender: str) -> Path:
    """The SMPL+H model file of one gender; DataError naming the expected path when absent."""
    if not str(smplh_dir):
        raise DataError("params.yaml poses.smplh_dir", "is empty but poses.body_model is smplh",
                        f"download the 'Extended SMPL+H model' from {SMPLH_SITE}, extract it and set poses.smplh_dir "
                        "to the folder holding male/ female/ neutral/ (or set poses.body_model: builtin)")
    for path in smplh_model_candidates(smplh_dir, gender):
        if path.is_file():
            return path
    expected = smplh_model_candidates(smplh_dir, gender)[0]
    raise DataError(expected, f"SMPL+H body model file ({gender}) is missing",
                    f"download the 'Extended SMPL+H model' from {SMPLH_SITE} (licence required) and extract it so that "
                    f"{expected} exists, or set poses.body_model: builtin")


def load_smplh_data(path: str | Path) -> dict[str, np.ndarray]:
    """SMPL+H model arrays from an .npz, with flat hand PCA keys added when the file has none.

    AMASS's extended SMPL+H files carry no ``hands_components*``/``hands_mean*``; with full
    axis-angle hand poses (``use_pca=False``, flat mean) smplx only needs them to exist.
    """
    path = Path(path)
    data: dict[str, np.ndarray] = {}
    pickled: list[str] = []  # fields stored as pickled Python objects: never unpickled (that can run code)
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    data[key] = npz[key]
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    pickled.append(key)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(path, f"SMPL+H model file cannot be read ({type(e).__name__})",
                        f"download the 'Extended SMPL+H model' from {SMPLH_SITE} again") from None
    needed = [k for k in SMPLH_KEYS if k in pickled]
    if needed:
        raise DataError(path, f"fields {needed} are pickled Python objects, which are not loaded (a crafted file "
                        "could run code)", f"use the 'Extended SMPL+H model' .npz from {SMPLH_SITE} (plain arrays), "
                        "or re-save each field as a numeric array on a trusted machine")
    missing = [k for k in SMPLH_KEYS if k not in data]
    if missing:
        raise DataError(path, f"is not an SMPL+H model file: keys {missing} are missing",
                        f"use the 'Extended SMPL+H model' (.npz) from {SMPLH_SITE}")
    if data["kintree_table"].shape[-1] < 52:
        raise DataError(path, f"has {data['kintree_table'].shape[-1]} joints, SMPL+H has 52",
                        f"use the 'Extended SMPL+H model' from {SMPLH_SITE} (not SMPL or SMPL-X)")
    for side in ("l", "r"):
        data.setdefault(f"hands_components{side}", np.eye(NUM_HAND_POSE))
        data.setdefault(f"hands_mean{side}", np.zeros(NUM_HAND_POSE))
    return data


class SmplhBodyModel:
    """SMPL+H through ``smplx`` (one model per gender, built on first use), batched over frames.

    By default only the skeleton is posed, with smplx's own functions (shaped rest joints from the
    joint regressor, Rodrigues, the rigid-transform chain): the same joints as smplx's full forward
    pass, without skinning the 6,890 vertices of every frame. ``full_forward=True`` runs the full pass.
    """

    name = "smplh"

    def __init__(self, smplh_dir: str | Path, device: str = "cpu", batch_frames: int = 1024,
                 full_forward: bool = False) -> None:
        self._dir_param = str(smplh_dir)
        self.device = device
        self.batch_frames = batch_frames
        self.full_forward = full_forward
        self._models: dict[str, object] = {}

    def check(self, genders: Iterable[str]) -> None:
        """Every gender used by the data has a model file."""
        for gender in sorted({MODEL_GENDER[g] for g in genders}):
            smplh_model_path(self._dir_param, gender)

    def model(self, gender: str) -> torch.nn.Module:  # noqa: F821
        """The smplx SMPL+H model used for files of one gender (``MODEL_GENDER``), on this model's device."""
        gender = MODEL_GENDER[gender]
        if gender not in self._models:
            import smplx
            from smplx.utils import Struct

            path = smplh_model_path(self._dir_param, gender)
            data = load_smplh_data(path)
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a notice about 16 betas
                model = smplx.SMPLH(model_path=str(path), data_struct=Struct(**data), gender=gender, ext="npz",
                                    use_pca=False, flat_hand_mean=True, num_betas=NUM_BETAS, batch_size=1)
            self._models[gender] = model.to(self.device).eval()
        return self._models[gender]

    def joints(self, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, gender: str) -> np.ndarray:
        """Joints (T, 22, 3): the first 22 SMPL+H joints of ``betas[:10]`` posed by ``poses``, plus ``trans``."""
        import torch
        from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, vertices2joints

        model = self.model(gender)
        dtype = torch.float32
        out = np.empty((poses.shape[0], NUM_JOINTS, 3), dtype=np.float64)
        beta = torch.as_tensor(np.asarray(betas)[:NUM_BETAS], dtype=dtype, device=self.device)[None]
        with torch.no_grad():
            shaped = model.v_template[None] + blend_shapes(beta, model.shapedirs)
            rest = vertices2joints(model.J_regressor, shaped)[:, :NUM_JOINTS]  # (1, 22, 3)
            parents = model.parents[:NUM_JOINTS]
            for part in _chunks(poses.shape[0], self.batch_frames):
                p = torch.as_tensor(poses[part], dtype=dtype, device=self.device)
                t = torch.as_tensor(trans[part], dtype=dtype, device=self.device)
                if self.full_forward:
                    joints = model(betas=beta.expand(p.shape[0], -1), global_orient=p[:, :3], body_pose=p[:, 3:66],
                                   left_hand_pose=p[:, 66:111], right_hand_pose=p[:, 111:156], transl=t,
                                   return_verts=False).joints[:, :NUM_JOINTS]
                else:
                    rotations = batch_rodrigues(p[:, : 3 * NUM_JOINTS].reshape(-1, 3)).view(-1, NUM_JOINTS, 3, 3)
                    posed, _ = batch_rigid_transform(rotations, rest.expand(p.shape[0], -1, -1), parents, dtype=dtype)
                    joints = posed + t[:, None]
                out[part] = joints.double().cpu().numpy()
        return out


def make_body_model(kind: str, smplh_dir: str | Path = "", device: str = "cpu", batch_frames: int = 1024) -> BodyModel:
    """The body model named by ``poses.body_model``: 'builtin' or 'smplh'."""
    if kind == "builtin":
        return BuiltinSkeleton(batch_frames)
    if kind == "smplh":
        return SmplhBodyModel(smplh_dir, device, batch_frames)
    raise DataError("params.yaml poses.body_model", f"unknown body model {kind!r}", "use builtin or smplh")
