"""A scripted chat-completions server on 127.0.0.1 for the LLM splitter (no internet)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = {"left_arm": {"action": "wave", "text": "waves"}}


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) run as a context manager; ``url`` is its /v1 base."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        """Bind ``handler`` (call from ``__init__``); requests are answered once the ``with`` block starts."""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


class FakeServer(LocalServer):
    """A chat-completions endpoint whose reply to each caption follows a script of behaviours."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                caption = body["messages"][-1]["content"].removeprefix("Description: ")
                with server.lock:
                    server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                            "caption": caption, "body": body})
                    steps = server.script.get(caption, [])
                    step = steps.pop(0) if len(steps) > 1 else (steps[0] if steps else "ok")
                if step == "sleep":
                    time.sleep(1.0)
                    step = "ok"
                if step.startswith("http"):
                    code = int(step[4:])
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                content = {"ok": json.dumps(GOOD),
                           "fenced": "Output: ```json\n" + json.dumps(GOOD) + "\n```",
                           "garbage": "Sure! The left arm waves.",
                           "unknown_key": json.dumps({"tail": {"action": "wag", "text": "wags"}}),
                           "missing_field": json.dumps({"left_arm": {"action": "wave"}})}[step]
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

        self.serve(Handler)
