"""The studio's HTTP server: a JSON API, the page and the downloads, on the standard library's ThreadingHTTPServer.

Routes (everything is served from this process; the page fetches nothing from anywhere else):

- ``GET /`` the page, ``GET /static/<file>`` its script and style (a fixed list of files);
- ``GET /api/info`` models, samplers, defaults, splitter, skeleton; ``POST /api/split`` the six part texts;
- ``POST /api/generate`` queue a generation (202 + job; 503 "busy, retry" when the queue is full);
  ``GET /api/jobs/<id>`` its progress (step count) and, as they are written, its samples;
- ``GET /api/motion/<generation>/<sample>`` joints of a written sample; ``GET /files/<generation>/<sample>/<file>``
  a download (only the files tools.generate writes, only inside the studio's output folder);
- ``POST /api/search`` top-k dataset motions by TMR; ``GET /api/dataset/<seg_id>`` the joints of a result;
- ``GET /api/gallery`` the session's generations; ``GET /reports/<evaluate|prompt_study>/<file>`` the reports.
"""
from __future__ import annotations

import json
import mimetypes
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from tools.studio.engine import FPS, Engine, ModelsMissing, SampleResult
from tools.studio.forms import caption_of, generation_settings, search_query, splitter_of
from tools.studio.jobs import Busy, DeviceWorker, Job, UserError, user_message

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"studio.js": "text/javascript", "viewer.js": "text/javascript", "studio.css": "text/css"}
DOWNLOADS = ("joints.npy", "features.npy", "motion.bvh", "motion.mp4", "parts.json")
GENERATION_ID = re.compile(r"^g\d{4,6}$")
SAMPLE_ID = re.compile(r"^\d{1,2}$")
SEG_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REPORT_FILE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,120}$")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY = 64 * 1024
SEARCH_WAIT_S = 300.0
REPORT_PAGES = {"evaluate": "report.md", "prompt_study": "report.html"}  # the page of each report folder
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
# The pipeline's reports (prompt_study/report.html has an inline <style>) may style themselves, never run scripts.
REPORT_CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "media-src 'self'; connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'")


@dataclass
class Generation:
    """One generation of the session (the gallery entry)."""

    id: str
    settings: dict[str, Any]
    job: str
    folder: Path
    created: float = field(default_factory=time.time)
    samples: list[dict[str, Any]] = field(default_factory=list)


def safe_child(root: Path, *names: str) -> Path | None:
    """root/names... if every name is a plain file name and the result stays inside root, else None."""
    for name in names:
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            return None
    path = root.joinpath(*names).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        return None
    return path


def joints_payload(joints: np.ndarray, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Joints (T, 22, 3) as JSON for the viewer (millimetre precision)."""
    return {"frames": int(len(joints)), "fps": FPS, "joints": np.round(joints.astype(np.float64), 3).tolist(),
            **(extra or {})}


class Studio:
    """The server's state: the engine (kept warm), the device worker, the output folder and the gallery."""

    def __init__(self, engine: Engine, out_root: str | Path, queue_capacity: int = 4, video: bool = True,
                 reports: dict[str, Path] | None = None) -> None:
        self.engine = engine
        self.worker = DeviceWorker(queue_capacity)
        self.out_root = Path(out_root).resolve()
        self.out_root.mkdir(parents=True, exist_ok=True)
        self.video = video
        self.reports = reports if reports is not None else {
            name: (folder, REPORT_PAGES[name]) for name, folder in engine.config.reports.items()}
        self.generations: dict[str, Generation] = {}
        self._lock = threading.Lock()
        self._count = 0
        self._info: dict[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        """Engine.describe plus the queue and the reports, cached (the model list does not change)."""
        if self._info is None:
            self._info = self.engine.describe()
        reports = [{"name": n, "url": f"/reports/{n}/{f}"} for n, (d, f) in self.reports.items() if (d / f).is_file()]
        return {**self._info, "queue": {"pending": self.worker.pending()}, "reports": reports}

    def new_generation(self, settings: Any) -> Generation:
        """Reserve the next generation id and folder."""
        with self._lock:
            self._count += 1
            gid = f"g{self._count:04d}"
            while (self.out_root / gid).exists():
                self._count += 1
                gid = f"g{self._count:04d}"
            generation = Generation(gid, settings_dict(settings), "", self.out_root / gid)
            generation.folder.mkdir(parents=True)
            return generation

    def submit_generation(self, body: Any) -> Job:
        """Validate and queue one generation; the job carries the generation id and fills in its samples."""
        if isinstance(body, dict) and not body.get("parts"):  # no part texts given: the configured splitter's
            split = self.engine.split(caption_of(body), splitter_of(body, self.engine.splitter))
            body = {**body, "parts": split.parts, "splitter": split.backend}
        settings = generation_settings(body, self.info())
        generation = self.new_generation(settings)

        def work(job: Job) -> list[SampleResult]:
            job.phase = "sampling"
            job.total = settings.samples * settings.steps

            def on_step(done: int, total: int) -> None:
                job.step, job.total = done, total

            def on_sample(result: SampleResult, joints: np.ndarray) -> None:
                entry = {"index": result.index, "motion": f"/api/motion/{generation.id}/{result.index}",
                         "files": {name: f"/files/{generation.id}/{result.index}/{name}" for name in result.files},
                         "frames": int(len(joints))}
                generation.samples.append(entry)
                job.data["samples"] = list(generation.samples)
                if len(generation.samples) == settings.samples:
                    job.phase = "video" if self.video else "writing"

            results = self.engine.generate(settings, generation.folder, on_step, on_sample, video=self.video)
            for entry, result in zip(generation.samples, results):
                entry["files"] = {name: f"/files/{generation.id}/{result.index}/{name}" for name in result.files}
            job.data["samples"] = list(generation.samples)
            return results

        try:
            job = self.worker.submit("generate", work)
        except Busy:
            generation.folder.rmdir()
            raise
        generation.job = job.id
        job.data.update(generation=generation.id, settings=generation.settings, samples=[])
        with self._lock:
            self.generations[generation.id] = generation
        return job

    def search(self, body: Any) -> list[dict[str, Any]]:
        """Run a search on the device worker and wait for it (the request thread only waits)."""
        text, encoder, k = search_query(body)
        job = self.worker.submit("search", lambda j: self.engine.search(text, encoder, k))
        if not job.finished.wait(SEARCH_WAIT_S):
            raise UserError("the search took too long; retry")
        if job.status != "done":
            raise UserError(job.error)
        return job.result

    def gallery(self) -> list[dict[str, Any]]:
        """The session's generations, newest first, with their job status."""
        out = []
        for g in sorted(self.generations.values(), key=lambda g: g.created, reverse=True):
            job = self.worker.get(g.job)
            out.append({"id": g.id, "settings": g.settings, "samples": g.samples,
                        "status": job.status if job else "done", "error": job.error if job else ""})
        return out

    def sample_file(self, gid: str, sample: str, name: str) -> Path | None:
        """The path of a generated file, or None for anything not a known generation/sample/file name."""
        if not GENERATION_ID.match(gid) or not SAMPLE_ID.match(sample) or name not in DOWNLOADS:
            return None
        if gid not in self.generations:
            return None
        path = safe_child(self.out_root, gid, f"sample_{int(sample)}", name)
        return path if path is not None and path.is_file() else None

    def report_file(self, report: str, names: list[str]) -> Path | None:
        """A file of a pipeline report folder (plain names only, inside the folder), or None."""
        if report not in self.reports or not names or not all(REPORT_FILE.match(n) for n in names):
            return None
        path = safe_child(self.reports[report][0], *names)
        return path if path is not None and path.is_file() else None


def settings_dict(settings: Any) -> dict[str, Any]:
    """GenerationSettings as JSON."""
    from dataclasses import asdict

    values = asdict(settings)
    values["hand_set"] = list(values["hand_set"])
    return values


class Handler(BaseHTTPRequestHandler):
    """Routes of the studio (see the module docstring)."""

    server_version = "LGTMStudio/1"
    studio: Studio  # set on the subclass made by make_server

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _headers(self, status: int, ctype: str, length: int, extra: dict[str, str] | None = None,
                 csp: str = CSP) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", csp)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def send_json(self, value: Any, status: int = 200) -> None:
        data = json.dumps(value).encode()
        self._headers(status, "application/json; charset=utf-8", len(data))
        self.wfile.write(data)

    def send_error_json(self, status: int, message: str) -> None:
        self.send_json({"error": message}, status)

    def send_file(self, path: Path, ctype: str | None = None, download: bool = False, csp: str = CSP) -> None:
        data = path.read_bytes()
        ctype = ctype or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") and "charset" not in ctype:
            ctype += "; charset=utf-8"
        extra = {"Content-Disposition": f'attachment; filename="{path.name}"'} if download else None
        self._headers(200, ctype, len(data), extra, csp)
        self.wfile.write(data)

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise UserError(f"the request is {length} bytes; the limit is {MAX_BODY}")
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            raise UserError("the request body is not valid JSON") from None

    def foreign(self) -> str:
        """Why this request must be refused (another site's page, a rebound host name), or empty."""
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if getattr(self.server, "loopback", False) and name not in LOOPBACK_NAMES:
            return f"host {host!r} is not this machine's loopback address"
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return "requests from other sites' pages are refused"
        return ""

    def guarded(self, route: Any) -> None:
        """Run a route; user errors become 400 + message, Busy 503, anything else 500 without details."""
        try:
            refused = self.foreign()
            if refused:
                return self.send_error_json(HTTPStatus.FORBIDDEN, refused)
            route()
        except Busy as err:
            self.send_error_json(HTTPStatus.SERVICE_UNAVAILABLE, str(err))
        except ModelsMissing as err:
            self.send_error_json(HTTPStatus.SERVICE_UNAVAILABLE, str(err))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:  # noqa: BLE001 - never a stack trace in the page
            message = user_message(err)
            if message.startswith("internal error"):
                import traceback

                traceback.print_exc(file=sys.stderr)
                self.send_error_json(HTTPStatus.INTERNAL_SERVER_ERROR, message)
            else:
                self.send_error_json(HTTPStatus.BAD_REQUEST, message)

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self.guarded(self._post)

    def _get(self) -> None:
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/")[1:]]
        studio = self.studio
        if parts in ([""], ["index.html"]):
            return self.send_file(STATIC / "index.html", "text/html")
        if len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC_FILES:
            return self.send_file(STATIC / parts[1], STATIC_FILES[parts[1]])
        if parts == ["favicon.ico"]:
            return self._headers(204, "image/x-icon", 0)
        if parts == ["api", "info"]:
            return self.send_json(studio.info())
        if len(parts) == 3 and parts[:2] == ["api", "jobs"]:
            job = studio.worker.get(parts[2])
            return self.send_json(job.public()) if job else self.send_error_json(404, "no such job")
        if parts == ["api", "gallery"]:
            return self.send_json(studio.gallery())
        if len(parts) == 4 and parts[:2] == ["api", "motion"]:
            path = studio.sample_file(parts[2], parts[3], "joints.npy")
            if path is None:
                return self.send_error_json(404, "no such sample")
            return self.send_json(joints_payload(np.load(path)))
        if len(parts) == 4 and parts[0] == "files":
            path = studio.sample_file(parts[1], parts[2], parts[3])
            if path is None:
                return self.send_error_json(404, "no such file")
            return self.send_file(path, "application/json" if path.suffix == ".json" else None, download=True)
        if len(parts) == 3 and parts[:2] == ["api", "dataset"]:
            if not SEG_ID.match(parts[2]):
                return self.send_error_json(404, "no such dataset motion")
            try:
                joints, entry = studio.engine.dataset_joints(parts[2])
            except KeyError:
                return self.send_error_json(404, "no such dataset motion (search for it first)")
            return self.send_json(joints_payload(joints, {"caption": entry["caption"], "seg_id": entry["seg_id"]}))
        if len(parts) >= 3 and parts[0] == "reports":
            path = studio.report_file(parts[1], parts[2:])
            if path is None:
                return self.send_error_json(404, "no such report file")
            ctype = "text/plain" if path.suffix == ".md" else None
            return self.send_file(path, ctype, csp=REPORT_CSP)
        return self.send_error_json(404, "not found")

    def _post(self) -> None:
        parts = urlsplit(self.path).path.split("/")[1:]
        studio = self.studio
        body = self.read_json()
        if parts == ["api", "split"]:
            if not isinstance(body, dict):
                raise UserError("the request must be a JSON object")
            result = studio.engine.split(caption_of(body), splitter_of(body, studio.engine.splitter))
            return self.send_json({"parts": result.parts, "backend": result.backend, "note": result.note})
        if parts == ["api", "generate"]:
            return self.send_json(studio.submit_generation(body).public(), HTTPStatus.ACCEPTED)
        if parts == ["api", "search"]:
            return self.send_json({"results": studio.search(body)})
        return self.send_error_json(404, "not found")


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer for ``studio`` (port 0: any free port; read it from server.server_address)."""
    handler = type("StudioHandler", (Handler,), {"studio": studio})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.verbose = verbose  # type: ignore[attr-defined]
    server.loopback = host in ("127.0.0.1", "localhost", "::1")  # type: ignore[attr-defined]
    return server
