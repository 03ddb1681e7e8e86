"""AMASS "SMPL+H G" sequences: HumanML3D's index.csv, locating the files, checking and reading them.

HumanML3D names its source files ``./pose_data/<Dataset>/<subject>/<name>_poses.npy``; the motion
behind one is the AMASS file ``<amass root>/<Dataset>/<subject>/<name>_poses.npz``. Several AMASS
archives now extract to other folder names than the ones HumanML3D used (``DATASET_ALIASES``).
HumanAct12 clips are not AMASS: HumanML3D ships them as joint positions, read from
``<amass root>/humanact12/humanact12/<name>.npy``.

``check_motion_file`` is the cheap preflight (keys, shapes, frame rate, gender: no pose data is
read); ``load_amass`` reads a sequence and rejects non-finite values.
"""
from __future__ import annotations

import csv
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from motion.core.errors import DataError

AMASS_SITE = "amass.is.tue.mpg.de"
USE_SMPLH_G = f"use AMASS 'SMPL+H G' files from {AMASS_SITE}"  # the fix for a file in another format
REDOWNLOAD = f"download and extract this file again from {AMASS_SITE}"  # the fix for a damaged file
POSE_DIM = 156  # SMPL+H: root 3 + body 63 + hands 90 (axis-angle)
SMPLX_POSE_DIM = 165  # SMPL-X: + jaw and eyes
REQUIRED_KEYS: tuple[str, ...] = ("poses", "trans", "betas", "gender", "mocap_framerate")
INDEX_COLUMNS: tuple[str, ...] = ("source_path", "start_frame", "end_frame", "new_name")
HUMANACT12 = "humanact12"

# HumanML3D's dataset folder -> the folder names AMASS archives extract to today (tried in order
# after the HumanML3D name itself). Sources: the AMASS download page's archive names, and
# HumanML3D-derived repositories that list "archive (HumanML3D folder)" pairs.
DATASET_ALIASES: dict[str, tuple[str, ...]] = {
    "BioMotionLab_NTroje": ("BMLrub",),
    "DFaust_67": ("DFaust",),
    "Eyes_Japan_Dataset": ("EyesJapanDataset",),
    "MPI_HDM05": ("HDM05",),
    "MPI_Limits": ("PosePrior",),
    "MPI_mosh": ("MoSh",),
    "SSM_synced": ("SSM",),
    "TCD_handMocap": ("TCDHands",),
    "Transitions_mocap": ("Transitions",),
}

# Files shipped inside AMASS archives that hold no motion.
NON_MOTION_FILES: frozenset[str] = frozenset(
    {"shape.npz", "license.txt", "license", "readme.txt", "readme.md", "readme"})


@dataclass(frozen=True)
class ClipSpec:
    """One row of HumanML3D's index.csv: a clip cut from one source sequence (frames at 20 fps)."""

    clip_id: str
    source_path: str
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class MotionHeader:
    """What the preflight learns about a motion file without reading its poses."""

    path: Path
    kind: str  # "amass" | "pose_data"
    frames: int
    fps: float
    gender: str


@dataclass(frozen=True)
class AmassSequence:
    """A whole AMASS sequence at its capture rate (z-up world)."""

    path: Path
    poses: np.ndarray  # (T, 156) axis-angle
    trans: np.ndarray  # (T, 3)
    betas: np.ndarray  # (16,)
    gender: str
    fps: float


CLIP_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


def check_source_path(source_path: str) -> str | None:
    """Why an index.csv ``source_path`` is unsafe (absolute, a drive, ``~`` or ``..``), or None when it is fine."""
    text = source_path.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or text.startswith("~"):
        return "is an absolute path"
    if ".." in text.split("/"):
        return "goes up a folder ('..')"
    return None


def _index_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file read as UTF-8 (a byte-order mark is accepted); DataError otherwise."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    except UnicodeDecodeError as e:
        raise DataError(path, f"is not UTF-8 text (byte {e.start}: {e.reason})",
                        f"convert it, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.csv, or restore HumanML3D's "
                        "index.csv") from None
    except csv.Error as e:
        raise DataError(path, f"is not a readable CSV file ({e})", "restore HumanML3D's index.csv") from None


def read_index(path: str | Path) -> list[ClipSpec]:
    """Read HumanML3D's ``index.csv`` (source_path, start_frame, end_frame, new_name), every row checked.

    Frames: ``start_frame >= 0`` and ``end_frame > start_frame``, or ``end_frame == -1`` (to the end).
    ``source_path`` stays below the AMASS root (no absolute path, no ``..``); ``new_name`` is a plain
    clip name and unique. UTF-8 with or without a byte-order mark is read; other encodings are a DataError.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "index.csv is missing", "run the download stage (it writes HumanML3D's index.csv)")
    fieldnames, records = _index_rows(path)
    missing = [c for c in INDEX_COLUMNS if c not in fieldnames]
    if missing:
        raise DataError(path, f"columns {missing} are missing (found {fieldnames})",
                        "use HumanML3D's index.csv: source_path,start_frame,end_frame,new_name")
    rows = []
    for line, row in enumerate(records, start=2):
        if any(row[c] is None for c in INDEX_COLUMNS):
            raise DataError(path, f"line {line} has fewer than {len(INDEX_COLUMNS)} fields", "fix the row")
        try:
            start, end = int(row["start_frame"]), int(row["end_frame"])
        except (TypeError, ValueError):
            raise DataError(path, f"line {line}: start_frame/end_frame are not integers: {row}",
                            "fix the row or restore HumanML3D's index.csv") from None
        if start < 0:
            raise DataError(path, f"line {line}: start_frame {start} is negative", "fix the row (frames count from 0)")
        if end != -1 and end <= start:
            raise DataError(path, f"line {line}: end_frame {end} is not after start_frame {start}",
                            "fix the row (end_frame > start_frame, or -1 for the end of the sequence)")
        source, name = row["source_path"].strip(), row["new_name"].strip()
        clip_id = Path(name).stem
        if not clip_id or not source:
            raise DataError(path, f"line {line}: empty source_path or new_name", "fix the row")
        unsafe = check_source_path(source)
        if unsafe:
            raise DataError(path, f"line {line}: source_path {source!r} {unsafe}",
                            "source paths are relative to the AMASS root, e.g. ./pose_data/CMU/01/01_01_poses.npy")
        if Path(name).name != name or not CLIP_NAME.match(clip_id):
            raise DataError(path, f"line {line}: new_name {name!r} is not a plain clip name",
                            "use names like 000123.npy (letters, digits, _ and -)")
        rows.append(ClipSpec(clip_id, source, start, end))
    duplicates = sorted(i for i, n in Counter(r.clip_id for r in rows).items() if n > 1)
    if duplicates:
        raise DataError(path, f"new_name is not unique (e.g. {duplicates[:3]})", "give every clip its own new_name")
    return rows


def source_parts(source_path: str) -> tuple[str, ...]:
    """Path components of a HumanML3D source below ``pose_data`` (``./pose_data/A/b/c.npy`` -> A, b, c.npy)."""
    parts = [p for p in source_path.replace("\\", "/").split("/") if p not in ("", ".")]
    if "pose_data" in parts:
        parts = parts[parts.index("pose_data") + 1:]
    return tuple(parts)


def dataset_of(source_path: str) -> str:
    """HumanML3D's dataset folder name of a source path."""
    parts = source_parts(source_path)
    return parts[0] if parts else ""


def candidate_paths(amass_root: str | Path, source_path: str) -> list[Path]:
    """Files that may hold a source's motion: the HumanML3D folder name first, then its aliases."""
    parts = source_parts(source_path)
    if not parts:
        return []
    root = Path(amass_root)
    if parts[0] == HUMANACT12:
        return [root.joinpath(*parts)]
    name = Path(parts[-1]).with_suffix(".npz").name
    folders = (parts[0],) + DATASET_ALIASES.get(parts[0], ())
    return [root.joinpath(folder, *parts[1:-1], name) for folder in folders]


def resolve_source(amass_root: str | Path, source_path: str) -> Path | None:
    """The existing motion file of a source, or None when no candidate exists."""
    for path in candidate_paths(amass_root, source_path):
        if path.is_file():
            return path
    return None


def smplx_variant_of(amass_root: str | Path, source_path: str) -> Path | None:
    """The SMPL-X archive's file (``*_stageii.npz``) for a source whose SMPL+H file is missing, if present."""
    for path in candidate_paths(amass_root, source_path):
        if path.name.endswith("_poses.npz"):
            stageii = path.with_name(path.name[: -len("_poses.npz")] + "_stageii.npz")
            if stageii.is_file():
                return stageii
    return None


def is_motion_file(path: str | Path) -> bool:
    """True for AMASS sequence files; False for the shape/licence/readme files archives also carry."""
    path = Path(path)
    return path.suffix == ".npz" and path.name.lower() not in NON_MOTION_FILES


def _smplx_error(path: Path, dataset: str) -> DataError:
    return DataError(path, "this is AMASS's SMPL-X format (SMPL-X G/N archive), not the SMPL+H one HumanML3D uses",
                     f"download the 'SMPL+H G' archive of {dataset or 'this dataset'} from {AMASS_SITE} "
                     "and extract it in its place")


def _npy_shape(archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an .npz, read from its .npy header only."""
    with archive.open(key + ".npy") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype


def _scalar(value: np.ndarray) -> object:
    item = np.asarray(value).reshape(-1)
    if item.size != 1:
        raise ValueError(f"expected one value, got shape {np.asarray(value).shape}")
    item = item[0]
    return item.decode("utf-8") if isinstance(item, bytes) else item


def read_gender(value: np.ndarray, path: str | Path) -> str:
    """AMASS ``gender`` (0-d str or bytes array) as 'male' | 'female' | 'neutral'."""
    try:
        gender = str(_scalar(value)).strip().lower()
    except ValueError as e:
        raise DataError(path, f"gender is not one string ({e})", USE_SMPLH_G) from None
    if gender not in ("male", "female", "neutral"):
        raise DataError(path, f"gender {gender!r} is not male, female or neutral", USE_SMPLH_G)
    return gender


def read_fps(value: np.ndarray, path: str | Path) -> float:
    """AMASS ``mocap_framerate`` as a float (DataError when it is not one finite number)."""
    try:
        fps = float(_scalar(value))
    except (ValueError, TypeError):
        raise DataError(path, "mocap_framerate is not a number", USE_SMPLH_G) from None
    if not np.isfinite(fps) or fps <= 0:
        raise DataError(path, f"mocap frame rate {fps!r} is unknown", USE_SMPLH_G)
    return fps


def check_amass_file(path: str | Path, dataset: str = "") -> MotionHeader:
    """Preflight of one AMASS .npz: a readable archive with SMPL+H keys and consistent shapes."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(path, f"cannot be read as an .npz archive (truncated or corrupt: {type(e).__name__})",
                        REDOWNLOAD) from None
    with npz:
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(path, "is a single .npy array, not an AMASS .npz archive", USE_SMPLH_G)
        keys = set(npz.files)
        if "surface_model_type" in keys or "mocap_frame_rate" in keys or path.name.endswith("_stageii.npz"):
            raise _smplx_error(path, dataset)
        try:
            shapes = {k: _npy_shape(npz.zip, k) for k in ("poses", "trans", "betas") if k in keys}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
            raise DataError(path, f"an array header is unreadable ({type(e).__name__}: {e})",
                            REDOWNLOAD) from None
        if "poses" in shapes and len(shapes["poses"][0]) == 2 and shapes["poses"][0][1] == SMPLX_POSE_DIM:
            raise _smplx_error(path, dataset)
        missing = [k for k in REQUIRED_KEYS if k not in keys]
        if missing:
            raise DataError(path, f"keys {missing} are missing (found {sorted(keys)})",
                            f"{USE_SMPLH_G}; shape.npz-like files are not motions")
        (pose_shape, pose_dtype), (trans_shape, trans_dtype) = shapes["poses"], shapes["trans"]
        betas_shape = shapes["betas"][0]
        if len(pose_shape) != 2 or pose_shape[1] != POSE_DIM or pose_dtype.kind != "f":
            raise DataError(path, f"poses has shape {pose_shape} {pose_dtype}, expected (T, {POSE_DIM}) floats",
                            USE_SMPLH_G)
        if trans_shape != (pose_shape[0], 3) or trans_dtype.kind != "f":
            raise DataError(path, f"trans has shape {trans_shape}, expected ({pose_shape[0]}, 3)",
                            REDOWNLOAD)
        if len(betas_shape) != 1 or betas_shape[0] < 10:
            raise DataError(path, f"betas has shape {betas_shape}, expected (>=10,)", USE_SMPLH_G)
        try:
            fps = read_fps(npz["mocap_framerate"], path)
            gender = read_gender(npz["gender"], path)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(path, f"cannot be read ({type(e).__name__}: {e})", REDOWNLOAD) from None
    return MotionHeader(path, "amass", int(pose_shape[0]), fps, gender)


def check_pose_data_file(path: str | Path) -> MotionHeader:
    """Preflight of one HumanML3D ``pose_data`` joint file (HumanAct12): an .npy of shape (T, J>=22, 3)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(f)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(path, f"cannot be read as an .npy array ({type(e).__name__})",
                        "extract HumanML3D's humanact12 pose_data again") from None
    if len(shape) != 3 or shape[1] < 22 or shape[2] != 3 or dtype.kind != "f":
        raise DataError(path, f"has shape {shape} {dtype}, expected joint positions (T, >=22, 3)",
                        "extract HumanML3D's humanact12 pose_data again")
    return MotionHeader(path, "pose_data", int(shape[0]), 20.0, "neutral")


def check_motion_file(path: str | Path, source_path: str) -> MotionHeader:
    """Preflight of the file behind one index.csv source (AMASS .npz, or HumanAct12 pose_data .npy)."""
    if dataset_of(source_path) == HUMANACT12:
        return check_pose_data_file(path)
    if not is_motion_file(path):
        raise DataError(path, "is not a motion sequence (archives also ship shape, licence and readme files)",
                        "point index.csv at the *_poses.npz sequence files")
    return check_amass_file(path, dataset_of(source_path))


def _finite(name: str, array: np.ndarray, path: Path) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        bad = int(np.argwhere(~np.isfinite(array.reshape(array.shape[0], -1) if array.ndim > 1 else array))[0][0])
        raise DataError(path, f"{name} holds NaN or inf values (first at index {bad})",
                        f"download this file again from {AMASS_SITE}, or set poses.on_invalid: skip")
    return array


# Plausible magnitudes: far beyond any real capture, far below what overflows float32 kinematics.
PLAUSIBLE_LIMITS: dict[str, float] = {"poses": 100.0,  # axis-angle radians (about 16 turns)
                                      "trans": 1e4,  # metres from the capture origin
                                      "betas": 100.0,  # shape coefficients (real ones are within +-5)
                                      "joints": 1e4}  # joint positions in metres (HumanAct12 pose_data)


def _plausible(name: str, array: np.ndarray, path: Path) -> np.ndarray:
    limit = PLAUSIBLE_LIMITS[name]
    worst = float(np.max(np.abs(array))) if array.size else 0.0
    if worst > limit:
        raise DataError(path, f"{name} holds an implausible value {worst:.3g} (a real capture stays within "
                        f"+-{limit:g})", f"download this file again from {AMASS_SITE}, or set poses.on_invalid: skip")
    return array


def load_amass(path: str | Path) -> AmassSequence:
    """Read an AMASS SMPL+H sequence (run ``check_amass_file`` first for clear format errors)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            poses = np.asarray(npz["poses"], dtype=np.float64)
            trans = np.asarray(npz["trans"], dtype=np.float64)
            betas = np.asarray(npz["betas"], dtype=np.float64).reshape(-1)
            gender = read_gender(npz["gender"], path)
            fps = read_fps(npz["mocap_framerate"], path)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DataError(path, f"cannot be read ({type(e).__name__}: {str(e)[:80]})",
                        f"{REDOWNLOAD}, or set poses.on_invalid: skip") from None
    if poses.ndim != 2 or poses.shape[1] < 66 or trans.shape != (poses.shape[0], 3):
        raise DataError(path, f"poses {poses.shape} / trans {trans.shape} are not (T, {POSE_DIM}) / (T, 3)",
                        USE_SMPLH_G)
    checked = {name: _plausible(name, _finite(name, array, path), path)
               for name, array in (("poses", poses), ("trans", trans), ("betas", betas))}
    return AmassSequence(path, checked["poses"], checked["trans"], checked["betas"], gender, fps)


def load_pose_data(path: str | Path) -> np.ndarray:
    """Read a HumanML3D ``pose_data`` joint file (T, J, 3); the first 22 joints, float64, finite."""
    path = Path(path)
    try:
        joints = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(path, f"cannot be read ({type(e).__name__})",
                        "extract HumanML3D's humanact12 pose_data again") from None
    return _plausible("joints", _finite("joints", np.asarray(joints[:, :22], dtype=np.float64), path), path)


def downsample(sequence: AmassSequence, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``step``-th frame of poses and trans, from frame 0 (HumanML3D's down-sampling)."""
    return sequence.poses[::step], sequence.trans[::step]
