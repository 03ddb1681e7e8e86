"""Stick-figure videos of joint positions: matplotlib frames piped as raw RGB into ffmpeg (libx264).

Each motion (T, 22, 3) (HumanML3D frame: y up, metres) is drawn in its own panel through a fixed
orthographic camera (azimuth about y, elevation above the floor) that follows the root over the
ground, with a floor grid and the root's trajectory so far, and its title (the caption) burned in
above. Several motions go side by side in one video (e.g. two phrasings of one prompt); shorter ones
hold their last frame. The figure is drawn once; each frame only restores the static background
(titles) and redraws the moving lines (blitting), which keeps rendering fast. ffmpeg is the binary
shipped by imageio-ffmpeg (no ffprobe needed); videos are written to a temporary file and renamed
(motion.core.io.atomic_path).
"""
from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from motion.core.io import atomic_path  # noqa: E402
from motion.core.skeleton import KINEMATIC_CHAINS, NUM_JOINTS  # noqa: E402

# Colours of HumanML3D's chains: right leg, left leg, spine, right arm, left arm (right = warm, left = cool).
CHAIN_COLOURS: tuple[str, ...] = ("#d62728", "#1f77b4", "#222222", "#ff7f0e", "#17becf")
PANEL_PIXELS = (480, 480)  # width, height of one panel's drawing area
LINE_PIXELS = 20           # height of one text line above the panels
TEXT_MARGIN = 12           # pixels around each text block
MAX_TITLE_LINES = 3        # a panel title is wrapped to at most this many lines (then cut with "...")
MAX_CAPTION_LINES = 2      # the shared caption likewise
DPI = 100
GRID_STEP = 0.5            # metres between floor grid lines


def camera_axes(azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Screen right, screen up and towards-camera unit vectors of an orthographic camera (degrees).

    Azimuth 0 looks at the body's front (the camera sits on +z); positive azimuth moves it to the body's left."""
    az, el = np.radians(azimuth), np.radians(elevation)
    towards = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    right = np.cross(-towards, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, -towards)
    return right, up, towards


def project(points: np.ndarray, azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray]:
    """Screen coordinates (..., 2) and depth (...) towards the camera of 3D points (..., 3)."""
    axes = np.stack(camera_axes(azimuth, elevation), axis=-1)  # (3, 3): right, up, towards as columns
    out = points @ axes
    return out[..., :2], out[..., 2]


def wrap_lines(text: str, width: int, max_lines: int) -> list[str]:
    """Wrap text to lines of ``width`` characters, at most ``max_lines`` (the last one cut with '...')."""
    lines = textwrap.wrap(" ".join(text.split()), max(width, 10))
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = textwrap.shorten(lines[-1] + " ...", max(width, 10), placeholder=" ...")
        if not lines[-1].endswith("..."):
            lines[-1] = lines[-1][: max(width, 10) - 4] + " ..."
    return lines


def floor_grid(centre_xz: np.ndarray, floor: float, radius: float) -> np.ndarray:
    """Floor grid lines at world-fixed multiples of GRID_STEP within ``radius`` of a ground point,
    as one polyline (N, 3) with NaN rows between the lines."""
    lo = np.floor((centre_xz - radius) / GRID_STEP) * GRID_STEP
    hi = np.ceil((centre_xz + radius) / GRID_STEP) * GRID_STEP
    gap = np.full((1, 3), np.nan)
    pieces = []
    for x in np.arange(lo[0], hi[0] + 1e-9, GRID_STEP):
        pieces += [np.array([[x, floor, lo[1]], [x, floor, hi[1]]]), gap]
    for z in np.arange(lo[1], hi[1] + 1e-9, GRID_STEP):
        pieces += [np.array([[lo[0], floor, z], [hi[0], floor, z]]), gap]
    return np.concatenate(pieces)


class StickFigureRenderer:
    """A reusable figure that draws frame t of one or more motions as an RGB image.

    The camera follows each body's root over the ground (its height and zoom stay fixed), so the
    figure stays large while the floor grid and the root trajectory slide underneath."""

    def __init__(self, motions: Sequence[np.ndarray], titles: Sequence[str] | None = None, caption: str | None = None,
                 azimuth: float = 35.0, elevation: float = 20.0) -> None:
        self.motions = [np.asarray(m, dtype=np.float64) for m in motions]
        if not self.motions:
            raise ValueError("give at least one motion")
        for m in self.motions:
            if m.ndim != 3 or m.shape[1:] != (NUM_JOINTS, 3) or len(m) < 1 or not np.isfinite(m).all():
                raise ValueError(f"each motion must be finite with shape (T, {NUM_JOINTS}, 3), got {m.shape}")
        titles = list(titles) if titles is not None else [""] * len(self.motions)
        if len(titles) != len(self.motions):
            raise ValueError(f"{len(titles)} titles for {len(self.motions)} motions")
        self.azimuth, self.elevation = azimuth, elevation
        self.num_frames = max(len(m) for m in self.motions)
        n = len(self.motions)
        self.width = PANEL_PIXELS[0] * n
        caption_lines = wrap_lines(caption or "", int(self.width / 11), MAX_CAPTION_LINES)
        title_lines = [wrap_lines(t, int(PANEL_PIXELS[0] / 8.5), MAX_TITLE_LINES) for t in titles]
        caption_px = TEXT_MARGIN + LINE_PIXELS * len(caption_lines) if caption_lines else 0
        most = max(len(t) for t in title_lines)
        title_px = TEXT_MARGIN + LINE_PIXELS * most if most else 0
        top = caption_px + title_px
        top += top % 2  # yuv420p needs an even height
        self.height = PANEL_PIXELS[1] + top
        self.fig = plt.figure(figsize=(self.width / DPI, self.height / DPI), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        if caption_lines:
            self.fig.text(0.5, 1 - 0.5 * caption_px / self.height, "\n".join(caption_lines),
                          ha="center", va="center", fontsize=13, weight="bold", linespacing=1.1)
        for i, lines in enumerate(title_lines):
            if lines:
                self.fig.text((i + 0.5) / n, 1 - (caption_px + 0.5 * title_px) / self.height, "\n".join(lines),
                              ha="center", va="center", fontsize=11, linespacing=1.1)
        self.panels = [self._panel(i, m, n) for i, m in enumerate(self.motions)]
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def _panel(self, i: int, joints: np.ndarray, n: int) -> dict:
        ax = self.fig.add_axes((i / n, 0.0, 1.0 / n, PANEL_PIXELS[1] / self.height))
        ax.set_axis_off()
        floor = float(joints[..., 1].min())
        centre = joints[:, 0].copy()  # the camera target: the root over the floor, at a fixed height
        centre[:, 1] = floor + 0.5 * float(np.ptp(joints[..., 1]) if len(joints) else 1.0)
        screen, depth = project(joints - centre[:, None], self.azimuth, self.elevation)
        half = max(float(np.abs(screen).max()), 0.9) * 1.1
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ground = joints[:, 0].copy()
        ground[:, 1] = floor
        grid, = ax.plot([], [], color="#cccccc", lw=0.8, animated=True)
        track, = ax.plot([], [], color="#9467bd", lw=1.5, alpha=0.6, animated=True)
        shadow, = ax.plot([], [], "o", color="#9467bd", ms=6, animated=True)
        bones = [ax.plot([], [], "-o", color=c, lw=3, ms=3, animated=True, solid_capstyle="round")[0]
                 for c in CHAIN_COLOURS]
        return {"ax": ax, "screen": screen, "depth": depth, "centre": centre, "ground": ground, "floor": floor,
                "radius": 2.0 * half, "grid": grid, "track": track, "shadow": shadow, "bones": bones}

    def frame(self, t: int) -> np.ndarray:
        """The RGB image (H, W, 3) uint8 of frame t (shorter motions hold their last frame)."""
        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for panel, motion in zip(self.panels, self.motions):
            k = min(t, len(motion) - 1)
            centre = panel["centre"][k]
            grid = floor_grid(centre[[0, 2]], panel["floor"], panel["radius"])
            moving = (("grid", grid), ("track", panel["ground"][:k + 1]), ("shadow", panel["ground"][k:k + 1]))
            for name, points in moving:
                xy, _ = project(points - centre, self.azimuth, self.elevation)
                panel[name].set_data(xy[:, 0], xy[:, 1])
                panel[name].draw(renderer)
            xy, depth = panel["screen"][k], panel["depth"][k]
            order = np.argsort([depth[list(chain)].mean() for chain in KINEMATIC_CHAINS])  # far chains first
            for c in order:
                chain = list(KINEMATIC_CHAINS[c])
                panel["bones"][c].set_data(xy[chain, 0], xy[chain, 1])
                panel["bones"][c].draw(renderer)
        rgba = np.asarray(self.canvas.buffer_rgba())
        return rgba[..., :3].copy()

    def frames(self) -> Iterator[np.ndarray]:
        """All frames in order."""
        for t in range(self.num_frames):
            yield self.frame(t)

    def close(self) -> None:
        """Release the figure."""
        plt.close(self.fig)


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode_mp4(path: str | Path, frames: Iterator[np.ndarray], width: int, height: int, fps: float = 20.0,
               crf: int = 20) -> int:
    """Pipe RGB frames (H, W, 3) uint8 into ffmpeg (libx264, yuv420p, faststart) writing ``path`` atomically;
    returns the number of frames."""
    import ffmpeg

    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
    count = 0
    with atomic_path(path) as tmp:
        stream = (ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
                  .output(str(tmp), format="mp4", vcodec="libx264", pix_fmt="yuv420p", crf=crf, preset="veryfast",
                          movflags="+faststart", fflags="+bitexact")
                  .overwrite_output().global_args("-loglevel", "error", "-nostdin"))
        proc = stream.run_async(pipe_stdin=True, pipe_stderr=True, cmd=ffmpeg_exe())
        try:
            for image in frames:
                if image.shape != (height, width, 3):
                    raise ValueError(f"frame {count} has shape {image.shape}, expected {(height, width, 3)}")
                proc.stdin.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
                count += 1
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0:
                raise RuntimeError(f"ffmpeg failed writing {path}: {err.strip()}")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return count


def render_video(path: str | Path, motions: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                 caption: str | None = None, fps: float = 20.0, azimuth: float = 35.0, elevation: float = 20.0,
                 progress: bool = False) -> int:
    """Render one or more motions (T, 22, 3) side by side to an mp4 with their titles burned in; returns frames."""
    renderer = StickFigureRenderer(motions, titles, caption, azimuth, elevation)
    try:
        frames: Iterator[np.ndarray] = renderer.frames()
        if progress:
            from tqdm import tqdm

            frames = iter(tqdm(frames, total=renderer.num_frames, desc="render", unit="frame"))
        return encode_mp4(path, frames, renderer.width, renderer.height, fps)
    finally:
        renderer.close()


def save_frame_png(path: str | Path, motions: Sequence[np.ndarray], frame: int = 0, titles: Sequence[str] | None = None,
                   caption: str | None = None, azimuth: float = 35.0, elevation: float = 20.0) -> None:
    """Save frame ``frame`` of the side-by-side rendering as a PNG, atomically."""
    import matplotlib.image

    renderer = StickFigureRenderer(motions, titles, caption, azimuth, elevation)
    try:
        image = renderer.frame(frame)
    finally:
        renderer.close()
    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, image, format="png")
