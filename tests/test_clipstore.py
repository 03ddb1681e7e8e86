"""The packed clip store (one .npy per array + an id index) and its HumanML3D export."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from motion.core.errors import DataError
from motion.data.captions import read_captions
from motion.data.clipstore import _HEADER_BYTES, ClipStore, ClipWriter, _npy_header
from tests.support.stores import write_caption_files, write_feature_store, write_joint_store
from tools import export_humanml3d

LAYOUT = {"vecs": ((4,), np.float32), "joints": ((2, 3), np.float32)}


def _clips(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for clip_id, frames in (("M000001", 3), ("000002", 7), ("000001", 1), ("000000", 5)):  # any order
        out[clip_id] = {"vecs": rng.normal(size=(frames, 4)).astype(np.float32),
                        "joints": rng.normal(size=(frames, 2, 3)).astype(np.float32)}
    return out


def test_clips_read_back_by_id_as_written(tmp_path: Path) -> None:
    clips = _clips(np.random.default_rng(0))
    with ClipWriter(tmp_path, LAYOUT) as writer:
        for clip_id, arrays in clips.items():
            writer.add(clip_id, **arrays)
    store = ClipStore(tmp_path, "rerun the writer")
    assert store.ids == list(clips) and len(store) == 4 and "000002" in store and "000003" not in store
    for clip_id, arrays in clips.items():
        assert store.frames(clip_id) == len(arrays["vecs"])
        for name, array in arrays.items():
            got = store.load(clip_id, name)
            assert got.dtype == np.float32 and not got.flags.writeable
            np.testing.assert_array_equal(got, array)
            copy = store.read(clip_id, name)  # the same frames, read into memory of its own
            assert copy.flags.writeable and not np.shares_memory(copy, got)
            np.testing.assert_array_equal(copy, array)
    whole = np.load(tmp_path / "vecs.npy")  # a standard .npy: every clip's frames, in write order
    np.testing.assert_array_equal(whole, np.concatenate([a["vecs"] for a in clips.values()]))
    assert np.load(tmp_path / "joints.npy", mmap_mode="r").shape == (16, 2, 3)


def test_an_empty_store_is_valid(tmp_path: Path) -> None:
    with ClipWriter(tmp_path, LAYOUT):
        pass
    store = ClipStore(tmp_path, "fix")
    assert store.ids == [] and np.load(tmp_path / "vecs.npy").shape == (0, 4)


def test_header_is_numpys_own_format_for_full_size_shapes() -> None:
    header = _npy_header(np.dtype(np.float32), (10 ** 12, 263))
    assert len(header) == _HEADER_BYTES
    stream = io.BytesIO(header)
    assert np.lib.format.read_magic(stream) == (1, 0)
    assert np.lib.format.read_array_header_1_0(stream) == ((10 ** 12, 263), False, np.dtype(np.float32))


def test_writer_rejects_clips_that_do_not_fit_the_layout(tmp_path: Path) -> None:
    frames = {"vecs": np.zeros((3, 4)), "joints": np.zeros((3, 2, 3))}
    with ClipWriter(tmp_path, LAYOUT) as writer:
        with pytest.raises(ValueError, match="frames of shape"):
            writer.add("a", vecs=frames["vecs"], joints=np.zeros((3, 2, 2)))  # the second array is wrong
        with pytest.raises(ValueError, match="different lengths"):
            writer.add("a", vecs=np.zeros((2, 4)), joints=frames["joints"])
        with pytest.raises(ValueError, match="arrays"):
            writer.add("a", vecs=frames["vecs"])
        writer.add("a", **frames)
        with pytest.raises(ValueError, match="clip a is already in the store"):
            writer.add("a", **frames)
    assert ClipStore(tmp_path, "fix").ids == ["a"]  # the rejected clips wrote nothing
    assert np.load(tmp_path / "vecs.npy").shape == (3, 4)


def test_a_failed_writer_leaves_no_index(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ClipWriter(tmp_path, LAYOUT) as writer:
        writer.add("a", vecs=np.zeros((3, 4)), joints=np.zeros((3, 2, 3)))
        raise RuntimeError("interrupted")
    with pytest.raises(DataError, match=r"index\.parquet: clip index is missing -- fix: rerun the writer"):
        ClipStore(tmp_path, "rerun the writer")


def test_reader_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    write_feature_store(tmp_path, {"000000": np.zeros((5, 263), np.float32), "000001": np.ones((2, 263), np.float32)})
    store = ClipStore(tmp_path, "run `dvc repro features`")
    with pytest.raises(DataError, match=r"index\.parquet: clip 000009 is not in the store -- fix: run `dvc repro fea"):
        store.load("000009", "new_joint_vecs")
    with pytest.raises(DataError, match=r"new_joints\.npy: clip array is missing"):
        store.load("000000", "new_joints")
    np.save(tmp_path / "new_joint_vecs.npy", np.zeros((6, 263), np.float32))  # one frame short of the index
    with pytest.raises(DataError, match=r"new_joint_vecs\.npy: holds 6 frames, the index needs 7"):
        ClipStore(tmp_path, "fix").load("000000", "new_joint_vecs")
    (tmp_path / "index.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"index\.parquet: cannot be read as parquet"):
        ClipStore(tmp_path, "fix")


def test_a_store_pickles_without_its_memory_map(tmp_path: Path) -> None:
    clip = np.arange(5 * 263, dtype=np.float32).reshape(5, 263)
    write_feature_store(tmp_path, {"000000": clip})
    store = ClipStore(tmp_path, "fix")
    store.load("000000", "new_joint_vecs")
    payload = pickle.dumps(store)
    assert len(payload) < 2000  # the index, not the frames
    np.testing.assert_array_equal(pickle.loads(payload).load("000000", "new_joint_vecs"), clip)


def test_export_writes_humanml3ds_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    features, poses = tmp_path / "features", tmp_path / "poses"
    vecs = {i: rng.normal(size=(n, 263)).astype(np.float32) for i, n in (("000000", 4), ("M000000", 4))}
    joints = {i: rng.normal(size=(n + 1, 22, 3)).astype(np.float32) for i, n in (("000000", 4), ("M000000", 4))}
    write_feature_store(features, vecs)
    write_joint_store(poses, joints)
    write_caption_files(poses, {"000000": "a man walks#a/DET#0.0#0.0\n", "M000000": "a man walks#a/DET#0.0#2.5\n"})
    (features / "splits").mkdir()
    for name in ("train", "val", "test", "all"):
        (features / "splits" / f"{name}.txt").write_text("000000\nM000000\n" if name in ("train", "all") else "")
    for name in ("Mean.npy", "Std.npy"):
        np.save(features / name, np.ones(263, np.float32))
    # new_joints is not part of this tiny store: the export says which file is missing
    out = tmp_path / "HumanML3D"
    with pytest.raises(SystemExit):
        export_humanml3d.main([str(out), "--features", str(features), "--poses", str(poses)])
    assert "new_joints.npy: clip array is missing" in capsys.readouterr().err and not out.exists()

    with ClipWriter(features, {"new_joint_vecs": ((263,), np.float32), "new_joints": ((22, 3), np.float32)}) as w:
        for clip_id, v in vecs.items():
            w.add(clip_id, new_joint_vecs=v, new_joints=joints[clip_id][1:])
    export_humanml3d.main([str(out), "--features", str(features), "--poses", str(poses)])
    assert "new_joint_vecs/ 2 files" in capsys.readouterr().out
    for clip_id, v in vecs.items():
        expected = io.BytesIO()
        np.save(expected, v)
        assert (out / "new_joint_vecs" / f"{clip_id}.npy").read_bytes() == expected.getvalue()
        np.testing.assert_array_equal(np.load(out / "joints" / f"{clip_id}.npy"), joints[clip_id])
        np.testing.assert_array_equal(np.load(out / "new_joints" / f"{clip_id}.npy"), joints[clip_id][1:])
    assert read_captions(out / "texts" / "M000000.txt")[0].end == 2.5
    assert (out / "train.txt").read_text() == "000000\nM000000\n" and (out / "Mean.npy").is_file()

    with pytest.raises(SystemExit):
        export_humanml3d.main([str(out), "--features", str(features), "--poses", str(poses)])
    assert capsys.readouterr().err.strip().endswith("already exists -- fix: name a new folder (nothing is overwritten)")
