"""Stick-figure rendering: camera, frames, side-by-side panels, mp4 through ffmpeg, PNG."""
from __future__ import annotations

import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.export.render import (
    StickFigureRenderer,
    camera_axes,
    encode_mp4,
    ffmpeg_exe,
    project,
    render_video,
    save_frame_png,
    wrap_lines,
)
from tests.oracles.video import decode_first_frame


def walking_body(frames: int, seed: int = 0) -> np.ndarray:
    """A rigid body (frames, 22, 3) swinging its limbs while walking forward along +z."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    aa = 0.4 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 22, 3)))
    aa[:, 0] = 0.0
    trans = np.stack([np.zeros(frames), np.full(frames, 0.95), np.linspace(0, 1.5, frames)], axis=-1)
    return forward_kinematics(axis_angle_to_matrix(aa), trans)


def count_frames(path: Path, width: int, height: int) -> int:
    """Decode every frame of a video to raw RGB and count them."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    assert len(out.stdout) % (width * height * 3) == 0
    return len(out.stdout) // (width * height * 3)


def test_camera_front_view() -> None:
    right, up, towards = camera_axes(0.0, 0.0)
    assert np.allclose(right, [1, 0, 0]) and np.allclose(up, [0, 1, 0]) and np.allclose(towards, [0, 0, 1])
    # facing the camera, the body's left (+x) is on the viewer's right; the head is above the feet
    xy, depth = project(np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]]), 0.0, 0.0)
    assert np.allclose(xy, [[1, 0], [0, 2], [0, 0]]) and np.allclose(depth, [0, 0, 1])
    right, up, towards = camera_axes(35.0, 20.0)
    assert np.allclose(np.stack([right, up, towards]) @ np.stack([right, up, towards]).T, np.eye(3))


def test_frames_move_and_hold(tmp_path: Path) -> None:
    a, b = walking_body(12), walking_body(6, seed=1)
    r = StickFigureRenderer([a, b], ["a person walks", "another person walks"], caption="side by side")
    try:
        assert r.num_frames == 12 and r.width == 960 and r.height == 480 + 2 * (12 + 20)  # caption + titles
        f0, f5, f8, f11 = r.frame(0), r.frame(5), r.frame(8), r.frame(11)
        assert f0.shape == (r.height, 960, 3) and f0.dtype == np.uint8
        assert (f0 < 200).any(axis=-1).sum() > 500  # dark bone pixels drawn
        left, right = slice(0, 480), slice(480, 960)
        body = slice(r.height - 480, r.height)  # below the titles
        assert not np.array_equal(f0[body, left], f5[body, left])  # the first body moves
        assert np.array_equal(f8[body, right], f11[body, right])  # the shorter one holds its last frame
        assert not np.array_equal(f8[body, left], f11[body, left])
        assert np.array_equal(r.frame(5), f5)  # redrawing a frame is deterministic (blitting restores)
    finally:
        r.close()


def test_titles_burned_in() -> None:
    body = walking_body(3)
    with_title = StickFigureRenderer([body], ["a person waves the right hand " * 6])
    without = StickFigureRenderer([body], [""])
    try:
        assert with_title.height == 480 + 12 + 3 * 20 and without.height == 480  # long titles stop at 3 lines
        top = slice(0, 72)
        assert (with_title.frame(0)[top] < 128).any()
    finally:
        with_title.close()
        without.close()


def test_render_video_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "v" / "study.mp4"
    frames = render_video(out, [walking_body(20), walking_body(14, 2)], ["IK phrasing", "FK phrasing"], fps=20)
    assert frames == 20 and out.stat().st_size > 1000
    assert [p.name for p in out.parent.iterdir()] == ["study.mp4"]  # no temporary left
    first = decode_first_frame(out)
    assert first.shape == (512, 960, 3) and (first < 128).any()
    assert count_frames(out, 960, 512) == 20
    check = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(out), "-frames:v", "1", "-f", "null", "-"],
                           capture_output=True)
    assert check.returncode == 0


def test_encode_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bad.mp4"
    frames = iter([np.zeros((8, 8, 3), np.uint8), np.zeros((4, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="frame 1"):
        encode_mp4(out, frames, 8, 8)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="even"):
        encode_mp4(out, iter([]), 7, 8)


def test_wrap_lines() -> None:
    assert wrap_lines("a  person\nwalks", 40, 2) == ["a person walks"]
    lines = wrap_lines("word " * 50, 20, 2)
    assert len(lines) == 2 and all(len(line) <= 20 for line in lines) and lines[-1].endswith("...")
    assert wrap_lines("", 20, 2) == []


def test_bad_motions_rejected() -> None:
    with pytest.raises(ValueError):
        StickFigureRenderer([np.zeros((5, 21, 3))])
    with pytest.raises(ValueError, match="titles"):
        StickFigureRenderer([walking_body(3)], ["a", "b"])
    with pytest.raises(ValueError):
        StickFigureRenderer([])


def test_save_frame_png(tmp_path: Path) -> None:
    path = tmp_path / "f.png"
    save_frame_png(path, [walking_body(10)], frame=4, titles=["a person walks"])
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (512, 480)
    assert (image[..., :3] < 0.5).any()
