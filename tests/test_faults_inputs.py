"""Untrusted input files: no code runs from a model file, index.csv rows are checked, extracted folders and
archives stay inside their bounds, absurd values are refused with the file named."""
from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from motion.core.errors import DataError
from motion.core.settings import build
from motion.data.amass import load_amass, load_pose_data, read_index
from motion.data.body_model import BuiltinSkeleton, load_smplh_data
from motion.data.download.amass_tree import bring_humanact12, copy_dataset_folder
from motion.data.download.archives import ArchiveLimits, extract_archive
from motion.data.poses import PoseSettings, extract_poses
from tests.support.amass import make_tar, write_amass_npz
from tests.support.body_model import write_smplh_model
from tests.support.params import real_params

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADER = "source_path,start_frame,end_frame,new_name\n"


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def crafted_model(tmp_path: Path, field: str) -> tuple[Path, Path]:
    """A valid SMPL+H model file whose ``field`` holds a pickle that would create a marker file."""
    good = write_smplh_model(tmp_path / "good.npz")
    marker = tmp_path / "pwned"
    with np.load(good) as z:
        data = {k: z[k] for k in z.files}
    data[field] = np.array([Payload(marker)], dtype=object)
    path = tmp_path / "male" / "model.npz"
    path.parent.mkdir()
    np.savez(path, **data)  # np.savez pickles object arrays
    return path, marker


@pytest.mark.parametrize("field", ["J_regressor", "bs_style"])  # a needed field, an extra one
def test_a_crafted_model_file_runs_no_code(tmp_path, field):
    path, marker = crafted_model(tmp_path, field)
    with np.load(path, allow_pickle=True) as z:  # the old way: the payload runs
        z[field]
    assert marker.exists()
    marker.unlink()
    if field == "J_regressor":
        with pytest.raises(DataError, match=r"\['J_regressor'\] are pickled Python objects"):
            load_smplh_data(path)
    else:
        data = load_smplh_data(path)  # the extra field is left out, the model loads
        assert field not in data and data["J_regressor"].shape[0] == 52
    assert not marker.exists()


def index(tmp_path: Path, body: str, encoding: str = "utf-8", bom: bool = False) -> Path:
    path = tmp_path / "index.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (HEADER + body).encode(encoding))
    return path


@pytest.mark.parametrize("row, words", [
    ("./pose_data/CMU/01/01_01_poses.npy,-5,100,000001.npy", "start_frame -5 is negative"),
    ("./pose_data/CMU/01/01_01_poses.npy,100,50,000001.npy", "end_frame 50 is not after start_frame 100"),
    ("./pose_data/CMU/01/01_01_poses.npy,100,100,000001.npy", "end_frame 100 is not after"),
    ("./pose_data/CMU/01/01_01_poses.npy,0,-7,000001.npy", "end_frame -7 is not after"),
    ("./pose_data/../../secret/x_poses.npy,0,100,000001.npy", "goes up a folder"),
    ("../outside_poses.npy,0,100,000001.npy", "goes up a folder"),
    ("/etc/x_poses.npy,0,100,000001.npy", "is an absolute path"),
    ("C:\\data\\x_poses.npy,0,100,000001.npy", "is an absolute path"),
    ("~/x_poses.npy,0,100,000001.npy", "is an absolute path"),
    ("./pose_data/CMU/01/01_01_poses.npy,0,100,../000001.npy", "is not a plain clip name"),
    ("./pose_data/CMU/01/01_01_poses.npy,0,100,..", "is not a plain clip name"),
    ("./pose_data/CMU/01/01_01_poses.npy,0,100,000001.npy\n./pose_data/CMU/01/01_02_poses.npy,0,90,000001.npy",
     "new_name is not unique"),
    ("./pose_data/CMU/01/01_01_poses.npy,0", "fewer than 4 fields"),
    ("./pose_data/CMU/01/01_01_poses.npy,zero,100,000001.npy", "not integers"),
])
def test_malformed_index_rows_are_one_line_errors(tmp_path, row, words):
    path = index(tmp_path, row + "\n")
    with pytest.raises(DataError) as err:
        read_index(path)
    assert str(err.value).startswith(str(path)) and words in str(err.value) and "\n" not in str(err.value)


def test_an_index_with_a_byte_order_mark_is_read(tmp_path):
    rows = read_index(index(tmp_path, "./pose_data/CMU/01/01_01_poses.npy,0,-1,000001.npy\n", bom=True))
    assert [(r.clip_id, r.start_frame, r.end_frame) for r in rows] == [("000001", 0, -1)]


def test_a_latin1_index_names_the_file_and_the_encoding_fix(tmp_path):
    path = index(tmp_path, "./pose_data/CMU/01/caf\xe9_poses.npy,0,100,000001.npy\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"index\.csv: is not UTF-8 text .* -- fix: convert it, e\.g\. iconv"):
        read_index(path)


def test_a_start_past_the_end_of_the_sequence_is_an_error_or_counted(tmp_path):
    amass, annotations = tmp_path / "amass", tmp_path / "annotations"
    write_amass_npz(amass / "CMU" / "01" / "01_01_poses.npz", frames=600, fps=120.0)  # 100 frames at 20 fps
    (annotations / "texts").mkdir(parents=True)
    for clip in ("000001", "000002"):
        (annotations / "texts" / f"{clip}.txt").write_text("a person waves#a/DET#0.0#0.0\n")
    (annotations / "index.csv").write_text(HEADER + "./pose_data/CMU/01/01_01_poses.npy,0,80,000001.npy\n"
                                           "./pose_data/CMU/01/01_01_poses.npy,500,600,000002.npy\n")
    section = {**real_params()["poses"], "on_invalid": "error", "min_frames": 40}
    settings = build(PoseSettings, section)
    with pytest.raises(DataError, match="clip 000002: start_frame 500 is past the end"):
        extract_poses(annotations / "index.csv", amass, annotations, tmp_path / "out", BuiltinSkeleton(), settings)
    settings = build(PoseSettings, {**section, "on_invalid": "skip"})
    report = extract_poses(annotations / "index.csv", amass, annotations, tmp_path / "out2", BuiltinSkeleton(),
                           settings)
    assert report["skipped"]["past_end"] == 1 and report["skipped"]["too_short"] == 0


def test_links_out_of_an_extracted_dataset_folder_are_refused(tmp_path):
    secret = tmp_path / "home" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    dataset = tmp_path / "in" / "CMU"
    write_amass_npz(dataset / "01" / "01_01_poses.npz", frames=24)
    (dataset / "01" / "inside_link.npz").symlink_to(dataset / "01" / "01_01_poses.npz")  # inside: fine
    copy_dataset_folder(dataset, tmp_path / "ok", link=False)
    (dataset / "01" / "leak.npz").symlink_to(secret)
    with pytest.raises(DataError, match="outside the dataset folder"):
        copy_dataset_folder(dataset, tmp_path / "out", link=False)
    (dataset / "01" / "leak.npz").unlink()
    (dataset / "02").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(DataError, match="outside the dataset folder"):
        copy_dataset_folder(dataset, tmp_path / "out2", link=False)
    assert not any("PRIVATE" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file()
                   and p != secret and not p.is_symlink())


def test_a_linked_dataset_folder_itself_is_allowed(tmp_path):
    real = tmp_path / "disk" / "CMU"
    write_amass_npz(real / "01" / "01_01_poses.npz", frames=24)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "CMU").symlink_to(real, target_is_directory=True)
    assert copy_dataset_folder(tmp_path / "in" / "CMU", tmp_path / "out", link=False) == [
        PurePosixPath("CMU/01/01_01_poses.npz")]


def test_humanact12_folder_links_out_are_refused(tmp_path):
    (tmp_path / "outside.npy").write_bytes(b"x")
    folder = tmp_path / "pose_data" / "humanact12"
    folder.mkdir(parents=True)
    (folder / "P01.npy").symlink_to(tmp_path / "outside.npy")
    with pytest.raises(DataError, match="outside the dataset folder"):
        bring_humanact12(folder, tmp_path / "out")


def bomb_tar(path: Path, members: int, size: int = 1) -> Path:
    return make_tar(path, {f"CMU/01/f{i:05d}.txt": b"x" * size for i in range(members)}, mode="w")


def test_archive_member_count_is_limited(tmp_path):
    archive = bomb_tar(tmp_path / "bomb.tar", 2000)
    with pytest.raises(DataError, match="more than 1000 members"):
        extract_archive(archive, tmp_path / "out", progress=False, limits=ArchiveLimits(1000, 10**9))
    assert len(extract_archive(archive, tmp_path / "ok", progress=False, limits=ArchiveLimits(2000, 10**9))) == 2000


def test_archive_total_size_is_limited_tar_and_zip(tmp_path):
    archive = make_tar(tmp_path / "big.tar.gz", {"CMU/a.bin": b"\0" * 3_000_000}, mode="w:gz")
    with pytest.raises(DataError, match="more than 1000000 bytes"):
        extract_archive(archive, tmp_path / "out", progress=False, limits=ArchiveLimits(10, 1_000_000))
    zipped = tmp_path / "big.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("CMU/a.bin", b"\0" * 3_000_000)
        zf.writestr("CMU/b.bin", b"1")
    with pytest.raises(DataError, match="more than 1000000 bytes"):
        extract_archive(zipped, tmp_path / "out2", progress=False, limits=ArchiveLimits(10, 1_000_000))
    with pytest.raises(DataError, match="more than 1 members"):
        extract_archive(zipped, tmp_path / "out3", progress=False, limits=ArchiveLimits(1, 10**9))


@pytest.mark.slow
def test_a_20000_file_tar_bomb_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i in range(20_000):
            info = tarfile.TarInfo(f"CMU/{i}.txt")
            info.size = 0
            tar.addfile(info, io.BytesIO(b""))
    (tmp_path / "bomb.tar").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="more than 10000 members"):
        extract_archive(tmp_path / "bomb.tar", tmp_path / "out", progress=False, limits=ArchiveLimits(10_000, 10**9))
    assert len(list((tmp_path / "out").rglob("*"))) <= 10_001


@pytest.mark.parametrize("key, value, name", [("poses", 1e30, "poses"), ("trans", 1e300, "trans"),
                                               ("betas", -1e30, "betas"), ("poses", 1e6, "poses")])
def test_absurd_finite_values_are_refused_naming_the_file(tmp_path, key, value, name):
    path = tmp_path / "CMU" / "01" / "01_01_poses.npz"
    write_amass_npz(path, frames=24)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data[key] = data[key].copy()
    data[key].flat[3] = value
    np.savez(path, **data)
    with pytest.raises(DataError) as err:
        load_amass(path)
    assert str(err.value).startswith(str(path)) and f"{name} holds an implausible value" in str(err.value)


def test_real_looking_motion_passes_and_absurd_joints_are_refused(tmp_path):
    load_amass(write_amass_npz(tmp_path / "ok_poses.npz", frames=24))
    path = tmp_path / "P01.npy"
    joints = np.zeros((30, 24, 3))
    joints[3, 4, 1] = 1e30
    np.save(path, joints)
    with pytest.raises(DataError, match="joints holds an implausible value"):
        load_pose_data(path)


UNSAFE_LOADS = re.compile(r"allow_pickle\s*=\s*True|pickle\.loads?\(|yaml\.load\(|yaml\.unsafe_load|"
                          r"yaml\.full_load|weights_only\s*=\s*False|torch\.load\((?![^)]*weights_only=True)")
KNOWN_UNSAFE: set[str] = set()


def test_no_unsafe_deserialisation_in_the_project():
    found = set()
    for folder in ("motion", "models", "stages", "tools", "pipelines", "benchmarks"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if UNSAFE_LOADS.search(path.read_text(encoding="utf-8")):
                found.add(path.relative_to(REPO_ROOT).as_posix())
    assert found == KNOWN_UNSAFE, f"unsafe: {sorted(found - KNOWN_UNSAFE)}; fixed: {sorted(KNOWN_UNSAFE - found)}"


def test_glove_pickles_are_read_without_running_code(tmp_path):
    import os
    import pickle

    from motion.core.io import load_plain_pickle

    plain = tmp_path / "words.pkl"
    plain.write_bytes(pickle.dumps(["unk", "walk"]))
    assert load_plain_pickle(plain) == ["unk", "walk"]
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    crafted = tmp_path / "crafted.pkl"
    crafted.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataError, match="not a plain-data pickle"):
        load_plain_pickle(crafted)
    assert not marker.exists()
