"""Packed clips: many variable-length clips in one ``.npy`` per array, with an id index.

HumanML3D keeps one file per clip (``new_joint_vecs/<id>.npy``, 29,228 of them at full size, times four
folders). DVC then hashes, stats and links every file on each ``dvc status``: 16 s for 115k files on a
2-core machine. A store keeps the same clips as a handful of files instead:

- ``<array>.npy``: every clip's frames concatenated along axis 0 (a standard .npy, memory-mapped on read);
- ``index.parquet``: ``id``, ``offset`` (first frame in the arrays) and ``frames`` of each clip.

All arrays of a store share the index (each clip has the same number of frames in each). Clips are
appended in any order and read back by id as read-only views of the memory map, so a reader touches
only the frames it uses. ``tools.export_humanml3d`` writes the per-file HumanML3D layout from a store.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from motion.core.errors import DataError
from motion.core.io import read_table

INDEX = "index.parquet"
_HEADER_BYTES = 128  # a version 1.0 .npy header, rewritten with the final shape when the writer closes


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header of exactly ``_HEADER_BYTES`` bytes (space padded, as numpy's)."""
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape})
    prefix = np.lib.format.MAGIC_PREFIX + bytes([1, 0])
    room = _HEADER_BYTES - len(prefix) - 2
    body = text.encode("latin1").ljust(room - 1) + b"\n"
    if len(body) != room:
        raise ValueError(f"shape {shape} does not fit a {_HEADER_BYTES}-byte .npy header")
    return prefix + len(body).to_bytes(2, "little") + body


class ClipWriter:
    """Append clips to a new store in ``folder``; ``close`` writes the headers and the index.

    ``arrays`` names each array with its per-frame shape and dtype, e.g.
    ``{"joints": ((22, 3), np.float32)}``. Use it as a context manager; the folder is expected to be a
    fresh temporary one (``atomic_dir``), so an exception leaves nothing a reader would take for a store.
    """

    def __init__(self, folder: str | Path, arrays: dict[str, tuple[tuple[int, ...], Any]]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.layout = {name: (tuple(shape), np.dtype(dtype)) for name, (shape, dtype) in arrays.items()}
        self.files: dict[str, BinaryIO] = {}
        for name in self.layout:
            f = open(self.folder / f"{name}.npy", "wb")  # noqa: SIM115 - closed in close()
            f.write(b"\0" * _HEADER_BYTES)
            self.files[name] = f
        self.ids: list[str] = []
        self._seen: set[str] = set()
        self.offsets: list[int] = []
        self.frames: list[int] = []
        self.total = 0

    def add(self, clip_id: str, **arrays: np.ndarray) -> None:
        """Append one clip: an array per store array, all with the same number of frames."""
        if clip_id in self._seen:
            raise ValueError(f"clip {clip_id} is already in the store")
        if set(arrays) != set(self.layout):
            raise ValueError(f"clip {clip_id}: arrays {sorted(arrays)}, the store has {sorted(self.layout)}")
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"clip {clip_id}: arrays of different lengths {sorted(lengths)}")
        for name, array in arrays.items():  # every check before the first byte is written
            if array.shape[1:] != self.layout[name][0]:
                raise ValueError(f"clip {clip_id}: {name} has frames of shape {array.shape[1:]}, "
                                 f"expected {self.layout[name][0]}")
        for name, array in arrays.items():
            self.files[name].write(np.ascontiguousarray(array, dtype=self.layout[name][1]).tobytes())
        self.ids.append(clip_id)
        self._seen.add(clip_id)
        self.offsets.append(self.total)
        self.frames.append(lengths.pop())
        self.total += self.frames[-1]

    def close(self) -> None:
        """Write each array's final header and the index."""
        for name, f in self.files.items():
            shape, dtype = self.layout[name]
            f.seek(0)
            f.write(_npy_header(dtype, (self.total, *shape)))
            f.close()
        index = pd.DataFrame({"id": self.ids, "offset": np.asarray(self.offsets, np.int64),
                              "frames": np.asarray(self.frames, np.int64)})
        index.to_parquet(self.folder / INDEX, index=False)

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            for f in self.files.values():
                f.close()


class ClipStore:
    """Read clips of a store by id; ``fix`` is the command that writes it (named in every error).

    Arrays are memory-mapped on first use and the map is not pickled, so a store passed to a worker
    process reopens its files there.
    """

    def __init__(self, folder: str | Path, fix: str) -> None:
        self.folder = Path(folder)
        self.fix = fix
        index = read_table(self.folder / INDEX, "clip index", ("id", "offset", "frames"), fix)
        self._span = {str(i): (int(o), int(n)) for i, o, n in zip(index["id"], index["offset"], index["frames"])}
        self._maps: dict[str, np.ndarray] = {}

    @property
    def ids(self) -> list[str]:
        """Clip ids in the order they were written."""
        return list(self._span)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._span

    def __len__(self) -> int:
        return len(self._span)

    def frames(self, clip_id: str) -> int:
        """Number of frames of one clip."""
        return self._lookup(clip_id)[1]

    def load(self, clip_id: str, array: str) -> np.ndarray:
        """One clip of ``array``: a read-only view of the memory map, (frames, ...)."""
        offset, frames = self._lookup(clip_id)
        return self._array(array)[offset:offset + frames]

    def read(self, clip_id: str, array: str) -> np.ndarray:
        """One clip of ``array`` as a fresh copy read from the file, without mapping it: a pass over every
        clip keeps only the clip in memory (mapped pages would count towards the process's RSS)."""
        offset, frames = self._lookup(clip_id)
        data = self._array(array)
        per_frame = int(np.prod(data.shape[1:], dtype=np.int64))
        flat = np.fromfile(data.filename, dtype=data.dtype, count=frames * per_frame,
                           offset=data.offset + offset * per_frame * data.dtype.itemsize)
        return flat.reshape(frames, *data.shape[1:])

    def _lookup(self, clip_id: str) -> tuple[int, int]:
        try:
            return self._span[clip_id]
        except KeyError:
            raise DataError(self.folder / INDEX, f"clip {clip_id} is not in the store", self.fix) from None

    def _array(self, name: str) -> np.ndarray:
        if name not in self._maps:
            path = self.folder / f"{name}.npy"
            if not path.is_file():
                raise DataError(path, "clip array is missing", self.fix)
            data = np.load(path, mmap_mode="r")
            end = max((o + n for o, n in self._span.values()), default=0)
            if data.shape[0] < end:
                raise DataError(path, f"holds {data.shape[0]} frames, the index needs {end}", self.fix)
            self._maps[name] = data
        return self._maps[name]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": {}}



# The pipeline's stores and their arrays.
POSE_JOINTS = "joints"             # ${paths.poses}: (T, 22, 3) float32 joint clips at 20 fps, mirrors included
FEATURE_VECS = "new_joint_vecs"    # ${paths.features}: (T - 1, 263) float32 HumanML3D features
FEATURE_JOINTS = "new_joints"      # ${paths.features}: (T - 1, 22, 3) float32 joints recovered from them
CAPTION_TABLE = "texts.parquet"    # ${paths.poses}: every clip's captions (``motion.data.captions``)


def open_poses(poses_dir: str | Path) -> ClipStore:
    """The poses stage's joint clips."""
    return ClipStore(poses_dir, "run `dvc repro poses`")


def open_features(features_dir: str | Path) -> ClipStore:
    """The features stage's clips (``new_joint_vecs``, ``new_joints``)."""
    return ClipStore(features_dir, "run `dvc repro features`")
