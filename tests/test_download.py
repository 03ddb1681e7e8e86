"""motion.data.download against a real HTTP server on 127.0.0.1.

Resume, checksums, retries, credentials, safe extraction, Drive assets and the remote source end to end.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest

from motion.core.errors import DataError
from motion.data.download import (
    AssetItem,
    Credentials,
    archive_url,
    build_amass_tree,
    credentials_from_env,
    download_file,
    extract_archive,
    fetch_asset,
    prepare_annotations,
    safe_member_path,
)
from tests.support.amass import amass_archive, amass_npz_bytes, fake_humanml3d, make_tar
from tests.support.params import settings_with

# ----------------------------------------------------------------------------- test data builders


# ----------------------------------------------------------------------------- the HTTP server


class FileServer:
    """http.server on 127.0.0.1 serving bytes with Range support, dropped connections, failures and auth."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drops: dict[str, list[int]] = {}      # path -> byte counts after which to cut (one per request)
        self.statuses: dict[str, list[int]] = {}   # path -> HTTP statuses to answer first (one per request)
        self.ignore_range: set[str] = set()
        self.content_type: dict[str, str] = {}
        self.chunked: set[str] = set()              # paths sent with Transfer-Encoding: chunked (no length)
        self.drip: dict[str, str] = {}              # path -> "body" | "headers": one byte every 0.05 s, for ever
        self.auth: tuple[str, str, str] = ("none", "", "")  # mode, user/token, password
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.serve(self, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                server.serve(self, {k: v[0] for k, v in parse_qs(body).items()})

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that hang up early (refused downloads) are expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def authorised(self, handler: BaseHTTPRequestHandler, form: dict[str, str]) -> bool:
        mode, user, password = self.auth
        header = handler.headers.get("Authorization", "")
        if mode == "basic":
            return header == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if mode == "bearer":
            return header == f"Bearer {user}"
        if mode == "cookie":
            return handler.headers.get("Cookie", "") == user
        if mode == "form":
            return form.get("username") == user and form.get("password") == password
        return True

    def serve(self, handler: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        path = handler.path.split("?")[0]
        range_header = handler.headers.get("Range")
        self.log.append((handler.command, path, range_header))
        if self.statuses.get(path):
            self.reply(handler, self.statuses[path].pop(0), b"busy")
            return
        if not self.authorised(handler, form):
            self.reply(handler, 401, b"unauthorised")
            return
        if path not in self.files:
            self.reply(handler, 404, b"missing")
            return
        data = self.files[path]
        if self.drip.get(path) == "headers":
            handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self._drip(handler, b"X-Slow: " + b"a" * 10_000_000)
            return
        start = 0
        if range_header and path not in self.ignore_range:
            start = int(range_header.split("=")[1].split("-")[0])
            if start >= len(data):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(data)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
        body = data[start:]
        handler.send_response(206 if start else 200)
        handler.send_header("Content-Type", self.content_type.get(path, "application/octet-stream"))
        if path in self.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for i in range(0, len(body), 7000):
                piece = body[i:i + 7000]
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.write(b"0\r\n\r\n")
            return
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if self.drip.get(path) == "body":
            self._drip(handler, body)
            return
        cut = self.drops[path].pop(0) if self.drops.get(path) else None
        if cut is None:
            handler.wfile.write(body)
            return
        handler.wfile.write(body[:cut])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _drip(handler: BaseHTTPRequestHandler, data: bytes) -> None:
        """Send ``data`` one byte every 0.05 s until the client goes away."""
        try:
            for i in range(len(data)):
                handler.wfile.write(data[i:i + 1])
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass
        handler.close_connection = True

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def server() -> Iterator[FileServer]:
    """A FileServer running for one test."""
    srv = FileServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def payload(size: int = 300_000, seed: int = 0) -> bytes:
    """Incompressible test bytes."""
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


# ----------------------------------------------------------------------------- HTTP download


def test_resume_after_dropped_connection_gives_identical_bytes(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/CMU.tar.bz2"] = data
    server.drops["/CMU.tar.bz2"] = [100_000, 50_000]  # two cuts, then a full answer
    out = download_file(f"{server.url}/CMU.tar.bz2", tmp_path / "CMU.tar.bz2", sha256=hashlib.sha256(data).hexdigest(),
                        size=len(data), backoff_s=0, progress=False)
    assert out.read_bytes() == data
    assert not (tmp_path / "CMU.tar.bz2.part").exists()
    starts = [int(r.split("=")[1].rstrip("-")) if r else 0 for _, _, r in server.log]
    assert len(starts) == 3 and 0 == starts[0] < starts[1] < starts[2] <= 150_000  # resumed, not restarted


def test_resumes_a_part_file_left_by_an_earlier_run(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/KIT.tar.bz2"] = data
    (tmp_path / "KIT.tar.bz2.part").write_bytes(data[:123_456])
    out = download_file(f"{server.url}/KIT.tar.bz2", tmp_path / "KIT.tar.bz2", progress=False)
    assert out.read_bytes() == data
    assert server.log == [("GET", "/KIT.tar.bz2", "bytes=123456-")]


def test_complete_part_file_is_finished_without_a_body(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    server.files["/a.bin"] = data
    (tmp_path / "a.bin.part").write_bytes(data)
    assert download_file(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False).read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/a.bin"] = data
    server.ignore_range.add("/a.bin")
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes from somewhere else")
    assert download_file(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False).read_bytes() == data


def test_chunked_transfer_without_length(server: FileServer, tmp_path: Path) -> None:
    data = payload(50_000)
    server.files["/a.bin"] = data
    server.chunked.add("/a.bin")
    out = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=hashlib.sha256(data).hexdigest(),
                        progress=False)
    assert out.read_bytes() == data


def test_transient_http_errors_are_retried(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = payload(5000)
    server.statuses["/a.bin"] = [503, 429]
    out = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", backoff_s=0, progress=False)
    assert out.read_bytes() == server.files["/a.bin"]
    assert len(server.log) == 3


def test_gives_up_after_retries_without_a_file(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = payload(5000)
    server.statuses["/a.bin"] = [503] * 10
    with pytest.raises(DataError, match="failed 3 times in a row"):
        download_file(f"{server.url}/a.bin", tmp_path / "a.bin", retries=2, backoff_s=0, progress=False)
    assert not (tmp_path / "a.bin").exists()


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = payload(5000)
    with pytest.raises(DataError, match="sha256 mismatch") as err:
        download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256="0" * 64, progress=False)
    assert "a.bin" in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_is_refused_and_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    server.files["/a.bin"] = payload(5000)
    with pytest.raises(DataError, match="announces 5000 bytes"):
        download_file(f"{server.url}/a.bin", tmp_path / "a.bin", size=4000, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_wrong_checksum_is_downloaded_again(server: FileServer, tmp_path: Path) -> None:
    data = payload(5000)
    server.files["/a.bin"] = data
    (tmp_path / "a.bin").write_bytes(b"old")
    out = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=hashlib.sha256(data).hexdigest(),
                        progress=False)
    assert out.read_bytes() == data
    download_file(f"{server.url}/a.bin", out, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert len(server.log) == 1  # the verified file is not fetched again


def test_missing_file_and_html_login_page_are_refused(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(f"{server.url}/nope.tar.bz2", tmp_path / "nope.tar.bz2", progress=False)
    server.files["/login.tar.bz2"] = b"<html>please log in</html>"
    server.content_type["/login.tar.bz2"] = "text/html; charset=utf-8"
    with pytest.raises(DataError, match="HTML page"):
        download_file(f"{server.url}/login.tar.bz2", tmp_path / "login.tar.bz2", progress=False)
    assert list(tmp_path.iterdir()) == []


SECRET_USER, SECRET_PASS = "user-7f3a9c", "pass-Q8z!b2"


@pytest.mark.parametrize("mode", ["basic", "bearer", "cookie", "form"])
def test_credentials_work_and_never_appear_in_logs_or_errors(
        mode: str, server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"U": SECRET_USER, "P": SECRET_PASS, "T": SECRET_PASS}
    credentials = credentials_from_env(mode, "U", "P", "T", environ=env)
    assert SECRET_PASS not in repr(credentials)
    server.auth = (mode, SECRET_PASS if mode in ("bearer", "cookie") else SECRET_USER, SECRET_PASS)
    data = payload(200_000)
    server.files["/a.bin"] = data
    server.drops["/a.bin"] = [70_000]
    server.statuses["/a.bin"] = [503]
    out = download_file(f"{server.url}/a.bin", tmp_path / "a.bin", credentials=credentials, backoff_s=0)
    assert out.read_bytes() == data
    assert server.log[-1][0] == ("POST" if mode == "form" else "GET")

    wrong = Credentials(mode, ("U", "P"), SECRET_USER, SECRET_PASS + "x", SECRET_PASS + "x")
    with pytest.raises(DataError, match="HTTP 401") as refused:
        download_file(f"{server.url}/a.bin", tmp_path / "b.bin", credentials=wrong, backoff_s=0)
    with pytest.raises(DataError, match="sha256") as mismatch:
        download_file(f"{server.url}/a.bin", tmp_path / "c.bin", credentials=credentials, sha256="1" * 64)
    server.statuses["/a.bin"] = [500] * 5
    with pytest.raises(DataError, match="in a row") as exhausted:
        download_file(f"{server.url}/a.bin", tmp_path / "d.bin", credentials=credentials, retries=1, backoff_s=0)
    shown = " ".join([str(refused.value), str(mismatch.value), str(exhausted.value), caplog.text,
                      *capfd.readouterr()])
    assert "$U" in str(refused.value) or mode in ("bearer", "cookie")
    for secret in (SECRET_USER, SECRET_PASS):
        assert secret not in shown


def test_missing_env_var_is_named_without_values() -> None:
    with pytest.raises(DataError, match=r"\$AMASS_PASSWORD: environment variable is not set"):
        credentials_from_env("basic", "AMASS_USERNAME", "AMASS_PASSWORD", environ={"AMASS_USERNAME": "someone"})
    with pytest.raises(DataError, match="unknown"):
        credentials_from_env("ntlm")


def test_credentials_in_urls_are_refused() -> None:
    with pytest.raises(DataError, match="contains credentials"):
        archive_url("https://me:secret@example.org/amass/", "CMU.tar.bz2")
    assert archive_url("https://x.org/dl.php?sfile=amass/", "CMU.tar.bz2") == "https://x.org/dl.php?sfile=amass/CMU.tar.bz2"
    assert archive_url("https://x.org/amass", "CMU.tar.bz2") == "https://x.org/amass/CMU.tar.bz2"


# ----------------------------------------------------------------------------- safe extraction


def test_extract_keeps_the_amass_layout_and_renames_datasets(tmp_path: Path) -> None:
    archive = amass_archive(tmp_path / "BMLrub.tar.bz2", "BMLrub")
    target = tmp_path / "amass"
    counts = build_amass_tree([archive], [], target, progress=False)
    assert counts == {"BioMotionLab_NTroje": 3}
    motion = np.load(target / "BioMotionLab_NTroje/s1/walk_poses.npz")
    assert motion["poses"].shape == (24, 156) and str(motion["gender"]) == "male"
    assert float(motion["mocap_framerate"]) == 120.0
    assert (target / "BioMotionLab_NTroje/LICENSE.txt").read_bytes() == b"licence text\n"


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.parametrize("files, extra, member", [
    ({"CMU/../../evil.txt": b"x"}, [], "CMU/../../evil.txt"),
    ({"/tmp/abs_evil.txt": b"x"}, [], "/tmp/abs_evil.txt"),
    ({}, [_link("CMU/escape", "../../outside", tarfile.SYMTYPE)], "CMU/escape"),
    ({}, [_link("CMU/abs", "/etc/passwd", tarfile.SYMTYPE)], "CMU/abs"),
    ({}, [_link("CMU/hard", "../outside.txt", tarfile.LNKTYPE)], "CMU/hard"),
    ({}, [_device("CMU/dev")], "CMU/dev"),
])
def test_escaping_members_are_refused(tmp_path: Path, files: dict[str, bytes], extra: list[tarfile.TarInfo],
                                      member: str) -> None:
    archive = make_tar(tmp_path / "evil.tar.bz2", {"CMU/s1/ok_poses.npz": amass_npz_bytes(), **files}, extra=extra)
    sandbox = tmp_path / "sandbox"
    with pytest.raises(DataError) as err:
        extract_archive(archive, sandbox / "deep" / "target", progress=False)
    message = str(err.value)
    assert "evil.tar.bz2" in message and repr(member) in message and "\n" not in message
    outside = [p for p in sandbox.rglob("*") if "target" not in p.relative_to(sandbox).parts]
    assert outside == [sandbox / "deep"]


def test_safe_member_path_normalises_names() -> None:
    assert str(safe_member_path("./CMU//01/./a_poses.npz")) == "CMU/01/a_poses.npz"
    assert safe_member_path("./") is None
    for bad in ("../x", "a/../../x", "/x", "C:/x", "a\\..\\x"):
        with pytest.raises(ValueError):
            safe_member_path(bad)


def test_links_inside_the_archive_are_allowed(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "ok.tar", {"CMU/s1/a_poses.npz": b"abc"}, mode="w",
                       extra=[_link("CMU/s1/b_poses.npz", "CMU/s1/a_poses.npz", tarfile.LNKTYPE),
                              _link("CMU/s2", "s1", tarfile.SYMTYPE)])
    extract_archive(archive, tmp_path / "t", progress=False)
    assert (tmp_path / "t/CMU/s1/b_poses.npz").read_bytes() == b"abc"
    assert (tmp_path / "t/CMU/s2/a_poses.npz").read_bytes() == b"abc"


def test_truncated_archive_and_duplicates_are_errors(tmp_path: Path) -> None:
    good = amass_archive(tmp_path / "CMU.tar.bz2", "CMU")
    truncated = tmp_path / "cut.tar.bz2"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.tar.bz2.*(truncated|corrupt)"):
        extract_archive(truncated, tmp_path / "t1", progress=False)
    again = amass_archive(tmp_path / "CMU_copy.tar.bz2", "CMU")
    with pytest.raises(DataError, match="would overwrite"):
        build_amass_tree([good, again], [], tmp_path / "t2", progress=False)


# ----------------------------------------------------------------------------- HumanML3D annotations


def test_prepare_annotations_follows_the_contract(tmp_path: Path) -> None:
    ids = ["000000", "000001", "000002"]
    root = fake_humanml3d(tmp_path / "HumanML3D_repo", ids, ["CMU/s1/walk_poses.npy"] * 3)
    out = tmp_path / "annotations"
    summary = prepare_annotations(root, out)
    assert summary == {"index_rows": 3, "texts": 6, "splits": {"train": 2, "val": 1, "test": 1}}
    assert (out / "index.csv").read_bytes() == (root / "index.csv").read_bytes()
    assert (out / "splits/train.txt").read_text() == "000000\n000001\n"
    assert sorted(p.name for p in (out / "texts").iterdir()) == sorted(
        [f"{i}.txt" for i in ids] + [f"M{i}.txt" for i in ids])


def test_prepare_annotations_rejects_inconsistent_inputs(tmp_path: Path) -> None:
    root = fake_humanml3d(tmp_path / "h", ["000000", "000001"], ["CMU/s1/walk_poses.npy"] * 2)
    (root / "HumanML3D" / "test.txt").write_text("000000\n009999\n")
    with pytest.raises(DataError, match="test.txt: 1 ids are not in index.csv"):
        prepare_annotations(root, tmp_path / "out")
    (root / "index.csv").write_text("path,new_name\nx,000000.npy\n")
    with pytest.raises(DataError, match="index.csv: columns .* are missing"):
        prepare_annotations(root, tmp_path / "out2")
    with pytest.raises(DataError, match="does not exist"):
        prepare_annotations(tmp_path / "missing", tmp_path / "out3")


# ----------------------------------------------------------------------------- gdown assets


def asset(url: str, sha256: str = "", extract: bool = False) -> AssetItem:
    """An asset item fetched from ``url`` (no Drive id)."""
    return AssetItem(gdrive_id="", sha256=sha256, extract=extract, url=url)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_assets_are_fetched_with_gdown_checked_and_extracted(server: FileServer, tmp_path: Path) -> None:
    checkpoint = _zip_bytes({"lgtm/config.json": b"{}", "lgtm/model.ckpt": b"weights"})
    annotations = json.dumps({"000000_0": {"head": {"action": "idle", "text": "does nothing"}}}).encode()
    server.files["/lgtm.zip"] = checkpoint
    server.files["/body_part_annotations.json"] = annotations
    cache, target = tmp_path / "cache", tmp_path / "assets"
    item = AssetItem(gdrive_id="unused", url=f"{server.url}/lgtm.zip", sha256=hashlib.sha256(checkpoint).hexdigest(),
                     extract=True)
    info = fetch_asset("lgtm_checkpoints", item, cache, target, retries=3, progress=False)
    assert info["file"] == "lgtm.zip" and info["files"] == 2
    assert (target / "lgtm_checkpoints/lgtm/model.ckpt").read_bytes() == b"weights"
    info = fetch_asset("part_annotations", asset(f"{server.url}/body_part_annotations.json"), cache, target,
                       retries=3, progress=False)
    assert (target / "part_annotations/body_part_annotations.json").read_bytes() == annotations
    requests_so_far = len(server.log)
    fetch_asset("lgtm_checkpoints", item, cache, tmp_path / "again", retries=3, progress=False)
    assert len(server.log) == requests_so_far  # the verified cached download is reused


def test_asset_checks_refuse_bad_downloads(server: FileServer, tmp_path: Path) -> None:
    server.files["/model.zip"] = b"PK\x03\x04 this is not really a zip"
    server.files["/ok.zip"] = _zip_bytes({"a.txt": b"a"})
    server.files["/plain.bin"] = b"data"
    cache = tmp_path / "cache"
    elsewhere = (cache, tmp_path / "a", 3, False)  # cache, target, retries, progress
    with pytest.raises(DataError, match="model.zip"):
        fetch_asset("m", asset(f"{server.url}/model.zip", extract=True), *elsewhere)
    assert not any((cache / "m").iterdir())
    with pytest.raises(DataError, match="sha256 mismatch"):
        fetch_asset("ok", asset(f"{server.url}/ok.zip", sha256="2" * 64), *elsewhere)
    with pytest.raises(DataError, match="extract: true"):
        fetch_asset("p", asset(f"{server.url}/plain.bin", extract=True), *elsewhere)
    with pytest.raises(DataError, match="neither gdrive_id nor url"):
        fetch_asset("glove", asset(""), *elsewhere)
    with pytest.raises(DataError, match="gdown could not fetch"):
        fetch_asset("gone", asset(f"{server.url}/gone.zip"), *elsewhere)


# ----------------------------------------------------------------------------- the stage, amass_remote


def test_stage_amass_remote_end_to_end(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    from stages.download import run

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_AMASS_USER", SECRET_USER)
    monkeypatch.setenv("TEST_AMASS_PASS", SECRET_PASS)
    server.auth = ("form", SECRET_USER, SECRET_PASS)
    cmu = amass_archive(tmp_path / "CMU.tar.bz2", "CMU").read_bytes()
    hdm = amass_archive(tmp_path / "HDM05.tar.bz2", "HDM05", seed=5).read_bytes()
    server.files["/dl/CMU.tar.bz2"], server.files["/dl/HDM05.tar.bz2"] = cmu, hdm
    server.drops["/dl/CMU.tar.bz2"] = [len(cmu) // 3]
    humanml3d = fake_humanml3d(tmp_path / "hml", ["000000", "000001"],
                               ["CMU/s1/walk_poses.npy", "MPI_HDM05/s1/run_poses.npy"])
    data = tmp_path / "data"
    remote = {"base_url": f"{server.url}/dl/", "auth": "form", "username_env": "TEST_AMASS_USER",
              "password_env": "TEST_AMASS_PASS", "token_env": "",
              "archives": [{"name": "CMU.tar.bz2", "sha256": hashlib.sha256(cmu).hexdigest()}, "HDM05.tar.bz2"],
              "download_dir": str(data / "downloads"), "retries": 2, "backoff_s": 0, "timeout_s": 10}
    settings = settings_with({
        "paths.amass": str(data / "amass"), "paths.annotations": str(data / "annotations"),
        "paths.assets": str(data / "assets"), "download.source": "amass_remote",
        "download.humanml3d_dir": str(humanml3d), "download.dataset_folders": {}, "download.assets.enabled": False,
        **{f"download.amass_remote.{k}": v for k, v in remote.items()}}, stage="download")
    run(settings)
    assert (data / "amass/CMU/s1/walk_poses.npz").is_file()
    assert (data / "amass/MPI_HDM05/s1/run_poses.npz").is_file()
    assert (data / "annotations/splits/train.txt").read_text() == "000000\n"
    assert json.loads((data / "assets/assets.json").read_text()) == {}
    assert (data / "downloads/CMU.tar.bz2").read_bytes() == cmu
    shown = caplog.text + "".join(capfd.readouterr())
    assert SECRET_USER not in shown and SECRET_PASS not in shown


@pytest.mark.parametrize("where", ["body", "headers"])
def test_timeout_bounds_a_download_that_drips_bytes(server: FileServer, tmp_path: Path, where: str) -> None:
    """A byte every 0.05 s never trips a per-read timeout; the stall check (body) and the header deadline do."""
    server.files["/slow.tar.bz2"] = payload(200_000)
    server.drip["/slow.tar.bz2"] = where
    start = time.monotonic()
    with pytest.raises(DataError, match=r"download failed 2 times in a row \((stalled|no response headers)"):
        download_file(f"{server.url}/slow.tar.bz2", tmp_path / "slow.tar.bz2", retries=1, backoff_s=0.01,
                      timeout_s=1.0, progress=False)
    assert time.monotonic() - start < 10.0  # would never return; a bound, not a speed target
