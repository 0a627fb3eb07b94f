"""kill_server() leaves no socket file behind (tmux itself does), and never removes a live one."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kstlib.ops import SessionConfig, TmuxRunner
from kstlib.ops.tmux.files import remove_dead_socket, socket_file

from .conftest import unique

pytestmark = pytest.mark.tmux


def test_kill_server_removes_its_socket_file() -> None:
    runner = TmuxRunner(socket_name=unique("sock"))
    runner.start(SessionConfig(name="a", command="sleep 30"))
    path = socket_file(runner.socket_name, None)
    assert path.is_socket()
    runner.kill_server()
    assert not path.exists()


def test_a_live_or_foreign_socket_is_left_alone(tmp_path: Path) -> None:
    runner = TmuxRunner(socket_path=str(tmp_path / "live.sock"))
    runner.start(SessionConfig(name="a", command="sleep 30"))
    try:
        assert remove_dead_socket(tmp_path / "live.sock") is False  # a server listens
        assert runner.status("a").is_running
    finally:
        runner.kill_server()
    assert not (tmp_path / "live.sock").exists()
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert remove_dead_socket(plain) is False and plain.exists()  # not a socket


def test_a_dead_socket_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()  # bound, never listening: connect() is refused, as after a server died
    assert path.is_socket() and os.stat(path).st_uid == os.getuid()
    assert remove_dead_socket(path) is True
    assert not path.exists()
