"""A hostile Docker engine API on loopback: answers what a test tells it to, as slowly as told.

It speaks just enough of the Docker API for the docker SDK to connect
(``/version``, ``/_ping``); every other path is answered from :attr:`routes`
(a path suffix -> :class:`Answer`), else 404. A trickled answer sends one
byte per ``interval`` seconds until the client goes away, which
:attr:`FakeEngine.closed` then records.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = {
    "ApiVersion": "1.41",
    "MinAPIVersion": "1.12",
    "Version": "20.10.24",
    "Components": [{"Name": "Engine", "Version": "20.10.24"}],
}


@dataclass
class Answer:
    """What the fake engine sends for a path: a status, a body, and how fast."""

    body: bytes
    status: int = 200
    #: Seconds between two bytes of the body (``None``: all at once).
    trickle: float | None = None
    content_type: str = "application/json"

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Answer:
        return cls(json.dumps(value).encode(), status)

    @classmethod
    def raw(cls, text: str | bytes, status: int = 200) -> Answer:
        return cls(text.encode() if isinstance(text, str) else text, status)


class FakeEngine:
    """The server; ``url`` is its ``tcp://`` endpoint. Use as a context manager."""

    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[str] = []
        self.closed = threading.Event()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                engine.requests.append(f"{self.command} {path}")
                answer = next(
                    (a for suffix, a in engine.routes.items() if path.endswith(suffix)), None
                )
                if answer is None and path.endswith("/_ping"):
                    answer = Answer.raw("OK")
                elif answer is None and path.endswith("/version"):
                    answer = Answer.json(VERSION)
                elif answer is None:
                    answer = Answer.json({"message": f"no such container: {path}"}, 404)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Api-Version", "1.41")
                self.end_headers()
                if answer.trickle is None:
                    self.wfile.write(answer.body)
                    return
                try:
                    for byte in answer.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(answer.trickle)
                except OSError:
                    engine.closed.set()  # the client went away
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"tcp://{host}:{port}"

    def __enter__(self) -> FakeEngine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
