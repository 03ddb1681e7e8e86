"""Body models: the built-in skeleton and SMPL+H through the real smplx forward pass.

SMPL+H files are licence-gated, so the tests write a random but well-formed SMPL+H model file
(the layout of AMASS's extended SMPL+H ``model.npz``) and check smplx's joints against our own FK.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from motion.core.errors import DataError
from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.skeleton import PARENTS, TARGET_OFFSETS
from motion.data.body_model import (
    BuiltinSkeleton,
    SmplhBodyModel,
    body_scale,
    load_smplh_data,
    make_body_model,
    smplh_model_path,
)
from tests.support.body_model import write_smplh_model


def expected_joints(model_file: Path, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """SMPL+H body joints by our own FK on the model's shaped rest joints (what smplx must match)."""
    with np.load(model_file) as m:
        shaped = m["v_template"] + m["shapedirs"][:, :, :10] @ betas[:10]
        rest = m["J_regressor"] @ shaped
    offsets = rest[:22].copy()
    offsets[1:] -= rest[list(PARENTS[1:])]
    rotations = axis_angle_to_matrix(poses[:, :66].reshape(-1, 22, 3))
    return forward_kinematics(rotations, trans, offsets)


@pytest.fixture(scope="module")
def smplh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AMASS layout (male/model.npz, no hand PCA keys) plus smplx naming (SMPLH_FEMALE.npz, with them)."""
    root = tmp_path_factory.mktemp("smplh")
    write_smplh_model(root / "male" / "model.npz", seed=1)
    write_smplh_model(root / "SMPLH_FEMALE.npz", seed=2, with_hands=True)
    return root


def random_motion(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AMASS-like poses (T, 156), trans (T, 3), betas (16,)."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.4, size=(frames, 156)), rng.normal(size=(frames, 3)), rng.normal(size=16)


@pytest.mark.parametrize("full_forward", [True, False])
@pytest.mark.parametrize("gender", ["male", "female"])
def test_smplh_joints_match_forward_kinematics(smplh_dir: Path, gender: str, full_forward: bool) -> None:
    poses, trans, betas = random_motion(19, seed=3)
    model = SmplhBodyModel(smplh_dir, device="cpu", batch_frames=8, full_forward=full_forward)  # 3 batches
    joints = model.joints(poses, trans, betas, gender)
    assert joints.shape == (19, 22, 3)
    expected = expected_joints(smplh_model_path(smplh_dir, gender), poses, trans, betas)
    np.testing.assert_allclose(joints, expected, atol=2e-5)


def test_skeleton_only_pass_equals_smplx_full_forward(smplh_dir: Path) -> None:
    poses, trans, betas = random_motion(20, seed=7)
    full = SmplhBodyModel(smplh_dir, full_forward=True).joints(poses, trans, betas, "male")
    fast = SmplhBodyModel(smplh_dir).joints(poses, trans, betas, "male")
    np.testing.assert_allclose(fast, full, atol=1e-6)


def test_smplh_uses_first_ten_betas_and_ignores_hands(smplh_dir: Path) -> None:
    poses, trans, betas = random_motion(5, seed=4)
    model = SmplhBodyModel(smplh_dir, device="cpu")
    base = model.joints(poses, trans, betas, "male")
    other = betas.copy()
    other[10:] += 5.0
    hands = poses.copy()
    hands[:, 66:] += 1.0
    np.testing.assert_allclose(model.joints(poses, trans, other, "male"), base, atol=1e-6)
    np.testing.assert_allclose(model.joints(hands, trans, betas, "male"), base, atol=1e-6)
    other[0] += 5.0
    assert np.abs(model.joints(poses, trans, other, "male") - base).max() > 1e-3


def test_neutral_files_use_the_female_model(smplh_dir: Path) -> None:
    poses, trans, betas = random_motion(4, seed=6)
    model = SmplhBodyModel(smplh_dir)
    np.testing.assert_array_equal(model.joints(poses, trans, betas, "neutral"),
                                  model.joints(poses, trans, betas, "female"))


def test_missing_smplh_file_names_path_and_site(smplh_dir: Path, tmp_path: Path) -> None:
    SmplhBodyModel(smplh_dir).check(["male", "female", "neutral"])
    (tmp_path / "male").mkdir()
    write_smplh_model(tmp_path / "male" / "model.npz")
    model = SmplhBodyModel(tmp_path)
    model.check(["male"])
    for gender in ("female", "neutral"):
        missing = r"female/model\.npz: SMPL\+H body model file \(female\) is missing.*mano\.is\.tue\.mpg\.de"
        with pytest.raises(DataError, match=missing):
            model.check([gender])
    with pytest.raises(DataError, match="smplh_dir"):
        make_body_model("smplh", "").check(["male"])
    with pytest.raises(DataError, match="body_model"):
        make_body_model("smpl")


def test_bad_smplh_file(tmp_path: Path) -> None:
    path = tmp_path / "male" / "model.npz"
    path.parent.mkdir()
    np.savez(path, v_template=np.zeros((10, 3)))
    with pytest.raises(DataError, match="not an SMPL\\+H model file"):
        load_smplh_data(path)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="cannot be read"):
        load_smplh_data(path)


def test_builtin_skeleton_rest_pose_and_batches() -> None:
    model = BuiltinSkeleton(batch_frames=4)
    poses, trans, betas = random_motion(10, seed=5)
    joints = model.joints(poses, trans, betas, "female")
    offsets = TARGET_OFFSETS * body_scale(betas)
    np.testing.assert_allclose(joints, forward_kinematics(axis_angle_to_matrix(poses[:, :66].reshape(-1, 22, 3)),
                                                          trans, offsets), atol=1e-6)
    rest = model.joints(np.zeros((1, 156)), np.zeros((1, 3)), betas, "male")[0]
    assert rest[15, 1] > rest[0, 1] > rest[7, 1]  # head above pelvis above ankle (y-up rest pose)


def test_body_scale_falls_back_only_when_the_module_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "motion.data.synthetic", None)  # import -> ModuleNotFoundError
    assert body_scale(np.full(16, 3.0)) == 1.0
