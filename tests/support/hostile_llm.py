"""A misbehaving chat-completions server on 127.0.0.1: echoes secrets, drips bytes, sends odd reply shapes."""
from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.llm import LocalServer

GOOD = {"left_arm": {"action": "wave", "text": "waves"}}


def chat(content: Any) -> bytes:
    """A chat-completion body with ``content`` as the assistant message's content."""
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


class HostileServer(LocalServer):
    """Each caption names a behaviour (the caption text is the behaviour's name, e.g. ``echo500``)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                caption = body["messages"][-1]["content"].removeprefix("Description: ")
                server.requests.append({"caption": caption, "auth": self.headers.get("Authorization")})
                headers = dict(self.headers.items())  # the key first, so no truncation hides it
                echoed = json.dumps({"Authorization": headers.pop("Authorization", None), **headers})
                behaviour = caption.split()[0]
                if behaviour == "echo500":
                    return self.reply(500, echoed.encode(), {"Retry-After": "0"})
                if behaviour == "echo400":
                    return self.reply(400, echoed.encode())
                if behaviour == "echo401":
                    return self.reply(401, echoed.encode())
                if behaviour == "echo_reply":  # a valid split whose text carries the key
                    return self.reply(200, chat(json.dumps(
                        {"left_arm": {"action": "wave", "text": f"waves {self.headers['Authorization']}"}})))
                if behaviour == "echo_prose":  # prose around the key: not a split either
                    return self.reply(200, chat(f"Your headers were {echoed}"))
                if behaviour == "drip":  # one byte every 0.3 s, for ever (until the client goes)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    try:
                        for _ in range(100000):
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.3)
                    except OSError:
                        pass
                    return None
                if behaviour == "drip_headers":  # the header block never ends
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    try:
                        for i in range(100000):
                            self.wfile.write(b"X-%d: 1\r\n" % i)
                            self.wfile.flush()
                            time.sleep(0.3)
                    except OSError:
                        pass
                    return None
                shapes: dict[str, bytes] = {
                    "null": chat(None),
                    "parts": chat([{"type": "text", "text": json.dumps(GOOD)}]),
                    "number": chat(42),
                    "object": chat(GOOD),
                    "empty": chat(""),
                    "idle": chat("{}"),
                    "huge": chat(json.dumps({"left_arm": {"action": "wave", "text": "x " * 5_000_000}})),
                    "nested_body": b"[" * 100_000 + b"]" * 100_000,
                    "nested_content": chat("{" + '"a": {' * 50_000 + "}" * 50_001),
                    "no_choices": b'{"choices": []}',
                    "message_list": b'{"choices": [{"message": []}]}',
                    "ok": chat(json.dumps(GOOD)),
                }
                if behaviour.startswith("retry:"):  # a 429 with an odd Retry-After, then fine
                    seen = sum(r["caption"] == caption for r in server.requests)
                    if seen == 1:
                        return self.reply(429, b'{"error": "slow down"}', {"Retry-After": caption.split(":", 1)[1]})
                    return self.reply(200, shapes["ok"])
                return self.reply(200, shapes[behaviour])

        self.serve(Handler)
