"""A podman-over-ssh socket closes cleanly when ssh already removed its forwarding socket.

podman-py's ``SSHSocket.close()`` unlinks the local forwarding socket
unconditionally; when ssh has removed it first, the FileNotFoundError surfaced
from a finalizer at interpreter exit (a traceback after every test run).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

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


def test_close_kills_an_ssh_child_that_sits_out_sigterm() -> None:
    """podman-py's close waited up to 20 s for such a child: a failed ping hung its caller."""
    socket_class, _ = _classes()
    sock = socket_class("http+ssh://nobody@127.0.0.1:1/run/podman/podman.sock")
    code = (
        "import signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); sys.stdin.read(); signal.pause()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    sock._proc = proc
    closer = threading.Thread(target=sock.close, daemon=True)
    closer.start()
    closer.join(10)  # a hang bound (the grace is 1 s; podman-py's own close takes 20 s)
    assert not closer.is_alive()
    assert proc.returncode == -signal.SIGKILL
    assert sock._proc is None and sock.fileno() == -1
