"""A podman-over-ssh socket closes cleanly when ssh already removed its forwarding socket.

podman-py's ``SSHSocket.close()`` unlinks the local forwarding socket
unconditionally; when ssh has removed it first, the FileNotFoundError surfaced
from a finalizer at interpreter exit (a traceback after every test run).
"""

from __future__ import annotations

import subprocess
import sys

from kstlib.ops.engines.podman_ssh import _classes


def test_close_finishes_when_the_forwarding_socket_is_gone() -> None:
    socket_class, _ = _classes()
    sock = socket_class("http+ssh://nobody@127.0.0.1:1/run/podman/podman.sock")
    # A live child standing in for ssh; the forwarding socket was never made.
    sock._proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert not sock.local_sock.exists()
    sock.close()  # used to raise FileNotFoundError
    assert sock._proc is None and sock.fileno() == -1
