"""A hostile Docker API on loopback: it answers a listing with names and images
carrying terminal escape sequences, and it records every request it gets.

Only what ``kstlib ops list`` / ``status`` ask is served (``/_ping``,
``/version``, ``/containers/json``, ``/containers/ID/json``); anything else is
a 404. Used as ``with HostileDockerApi(containers) as api: ... api.url``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HOSTILE", "HostileDockerApi", "hostile_container"]

#: Escape sequences an engine could slip into a string the CLI prints: the
#: clipboard (OSC 52), the window title (OSC 0), cursor moves and screen
#: clearing (CSI), an 8-bit CSI (C1), a DCS string, a bell, DEL, a bidi override.
HOSTILE = (
    "\x1b]52;c;cm0gLXJmIH4=\x07"
    "\x1b]0;owned\x1b\\"
    "\x1b[2J\x1b[H\x1b[6n"
    "\x9b31m\x90qx\x9c"
    "\x07\x7f\u202e\r\n"
)


def hostile_container(name: str, image: str) -> dict[str, Any]:
    """One entry of ``GET /containers/json`` whose name and image end in :data:`HOSTILE`."""
    return {
        "Id": "f" * 64,
        "Names": [f"/{name}{HOSTILE}"],
        "Image": f"{image}{HOSTILE}",
        "State": "running",
        "Status": f"Up 3 minutes{HOSTILE}",
        "Created": 1764000000,
        "Labels": {"io.kstlib.managed": "true", "note": HOSTILE},
    }


class HostileDockerApi:
    """A threaded HTTP server on 127.0.0.1 speaking just enough of the Docker API."""

    def __init__(self, containers: list[dict[str, Any]]) -> None:
        self.containers = containers
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Api-Version", "1.43")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (the http.server spelling)
                api.requests.append(self.path)
                path = self.path.split("?", 1)[0]
                if path.startswith("/v1."):
                    path = "/" + path.split("/", 2)[2]
                if path == "/_ping":
                    self._send(200, b"OK", "text/plain")
                elif path == "/version":
                    self._send(200, {"Version": "24.0.0", "ApiVersion": "1.43",
                                     "MinAPIVersion": "1.12", "Os": "linux"})
                elif path == "/containers/json":
                    self._send(200, api.containers)
                elif path.startswith("/containers/"):  # an inspect: a hostile server error
                    self._send(500, {"message": f"engine trouble{HOSTILE}"})
                else:
                    self._send(404, {"message": f"no such thing{HOSTILE}"})

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The ``tcp://`` URL kstlib's ``base_url`` takes."""
        return f"tcp://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HostileDockerApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
