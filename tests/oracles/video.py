"""Test oracle: decode a frame of a written video with ffmpeg, to check what ``motion.export.render`` encodes."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np

from motion.export.render import ffmpeg_exe


def decode_first_frame(path: str | Path) -> np.ndarray:
    """Decode the first frame of a video with ffmpeg as RGB (H, W, 3) uint8 (no ffprobe needed)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-frames:v", "1",
                          "-f", "image2pipe", "-vcodec", "png", "-"], capture_output=True, check=False)
    if out.returncode != 0 or not out.stdout:
        raise RuntimeError(f"ffmpeg could not decode {path}: {out.stderr.decode(errors='replace').strip()}")
    import matplotlib.image

    image = matplotlib.image.imread(io.BytesIO(out.stdout), format="png")
    return (image[..., :3] * 255).round().astype(np.uint8) if image.dtype != np.uint8 else image[..., :3]
