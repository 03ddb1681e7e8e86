"""run_stage: expected failures become one line ``<stage>: ...``; programming errors keep their traceback."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from motion.core.errors import DataError, one_line, run_stage

REPO_ROOT = Path(__file__).resolve().parents[1]


def exit_message(fn) -> str:
    with pytest.raises(SystemExit) as exit_:
        run_stage("poses", fn)
    message = exit_.value.code
    assert isinstance(message, str) and "\n" not in message and message.startswith("poses: ")
    return message


def test_data_error_is_one_line():
    def fail():
        raise DataError("data/raw/annotations/index.csv", "row 3: start_frame -1 is negative\nsecond line", "fix it")

    assert exit_message(fail) == ("poses: data/raw/annotations/index.csv: row 3: start_frame -1 is negative "
                                  "second line -- fix: fix it")


def test_os_errors_on_user_paths_name_the_path(tmp_path):
    missing = tmp_path / "nope.npz"
    assert exit_message(lambda: open(missing)) == (f"poses: {missing}: No such file or directory -- fix: check the "
                                                   "path and its permissions")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        if not (tmp_path / "ro" / "x").exists():
            try:
                (tmp_path / "ro" / "x").write_text("probe")
                pytest.skip("running as a user who can write anywhere")
            except PermissionError:
                pass
        assert "Permission denied" in exit_message(lambda: (tmp_path / "ro" / "x").write_text("x"))
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_decode_errors_say_how_to_fix_the_encoding(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("caf\xe9".encode("latin-1"))
    message = exit_message(lambda: path.read_text(encoding="utf-8"))
    assert "not UTF-8" in message and "iconv" in message


def test_programming_errors_keep_their_traceback():
    with pytest.raises(KeyError):
        run_stage("poses", lambda: {}["missing"])
    with pytest.raises(OSError):  # an OSError without a file name is not about a user path
        run_stage("poses", lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))


def test_success_returns_the_value():
    assert run_stage("poses", lambda: 42) == 42


def test_one_line_folds_newlines():
    assert one_line(ValueError("a\n  b")) == "a b"
    assert one_line(ValueError()) == "ValueError"


def test_a_stage_process_prints_one_line_and_exits_1(tmp_path):
    script = textwrap.dedent("""
        from motion.core.errors import DataError, run_stage
        def body():
            raise DataError("params.yaml", "download.source 'x' is unknown", "use synthetic")
        run_stage("download", body)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == "download: params.yaml: download.source 'x' is unknown -- fix: use synthetic\n"


def test_data_errors_cross_a_process_boundary() -> None:
    import pickle

    from motion.core.errors import DataError
    from motion.core.settings import SettingsError

    for error in (DataError("a.npy", "is empty", "rerun poses"), SettingsError("p.yaml", "seed", "must be >= 0")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
