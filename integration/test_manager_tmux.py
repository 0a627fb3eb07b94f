"""SessionManager end to end on a real tmux server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kstlib.ops import (
    BackendType,
    SessionConfig,
    SessionConfigError,
    SessionExistsError,
    SessionManager,
    SessionNotFoundError,
    SessionState,
    TmuxRunner,
    auto_detect_backend,
)

from .test_tmux import wait_until


def test_lifecycle(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    mgr = SessionManager(name, socket_name=tmux.socket_name, env={"WHO": "world"})
    assert (mgr.name, mgr.backend) == (name, BackendType.TMUX)
    assert not mgr.exists() and not mgr.is_running()
    st = mgr.start('echo "hello $WHO"; pwd; sleep 30', working_dir=str(tmp_path))
    assert st.state is SessionState.RUNNING
    assert mgr.is_running() and mgr.exists()
    wait_until(lambda: mgr.logs() == f"hello world\n{tmp_path}")
    assert mgr.logs(lines=1) == str(tmp_path)
    assert mgr.config.working_dir == str(tmp_path)
    with pytest.raises(SessionExistsError):
        mgr.start()
    mgr.stop(timeout=5)
    assert not mgr.exists()
    with pytest.raises(SessionNotFoundError):
        mgr.stop()


def test_upstream_keywords_command_and_working_dir(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    mgr = SessionManager(name, backend="tmux", socket_name=tmux.socket_name)
    mgr.start(command="pwd; exit 5", working_dir=str(tmp_path))
    st = wait_until(lambda: (s := mgr.status()).state is SessionState.EXITED and s)
    assert st.exit_code == 5
    assert mgr.logs() == str(tmp_path)
    assert not mgr.is_running()
    mgr.stop()


def test_restart_after_exit_applies_new_config(tmux: TmuxRunner, name: str) -> None:
    mgr = SessionManager(name, socket_name=tmux.socket_name, command="exit 1")
    mgr.start()
    wait_until(lambda: mgr.status().state is SessionState.EXITED)
    mgr.start(["sh", "-c", "echo again; sleep 30"])
    wait_until(lambda: mgr.logs() == "again")
    assert mgr.is_running()
    mgr.stop(graceful=False)


def test_invalid_options_fail_before_anything_is_created(tmux: TmuxRunner, name: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        SessionManager(name, socket_name=tmux.socket_name, env={"BAD KEY": "x"})
    assert info.value.field == "env"
    mgr = SessionManager(name, socket_name=tmux.socket_name)
    with pytest.raises(SessionConfigError) as info:
        mgr.start(["echo", 3])  # type: ignore[list-item]
    assert info.value.field == "command[1]"
    with pytest.raises(SessionConfigError):
        mgr.start("true", volumes="not-a-list")
    with pytest.raises(SessionConfigError):
        SessionManager("bad name")
    with pytest.raises(SessionConfigError):
        SessionManager(name, backend="kubernetes")
    assert not tmux.exists(name)
    assert name not in {s.name for s in tmux.list_sessions()}


def test_auto_detect_finds_a_tmux_session(tmux: TmuxRunner, name: str) -> None:
    assert auto_detect_backend(name, socket_name=tmux.socket_name) is None
    SessionManager(name, socket_name=tmux.socket_name).start("sleep 30")
    assert auto_detect_backend(name, socket_name=tmux.socket_name) is BackendType.TMUX
    found = SessionManager(name, backend=None, socket_name=tmux.socket_name)
    assert found.backend is BackendType.TMUX
    assert found.is_running()
    found.stop(graceful=False)
    # nowhere yet: a new session defaults to tmux
    assert SessionManager(name, backend=None, socket_name=tmux.socket_name).backend is BackendType.TMUX


def test_stop_timeout_is_bounded(tmux: TmuxRunner, name: str) -> None:
    mgr = SessionManager(name, socket_name=tmux.socket_name)
    mgr.start(["sh", "-c", "trap '' TERM; echo armed; while true; do sleep 0.1; done"])
    # A SIGTERM that arrives before sh ran `trap` ends it at once: wait for the trap.
    wait_until(lambda: mgr.logs() == "armed")
    began = time.monotonic()
    mgr.stop(timeout=1)
    assert 1 <= time.monotonic() - began < 5
    assert not mgr.exists()


def test_upstream_spellings_and_stop_return(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    import shutil

    mgr = SessionManager(name, socket_name=tmux.socket_name, tmux_binary=shutil.which("tmux"))
    # log_volume is kept as upstream spelled it (a container mount); tmux cannot honour it
    web = SessionManager(name, image="localhost/app:1", log_volume="/var/log/app:/logs")
    assert web.config.log_volume == "/var/log/app:/logs"
    assert web.config.all_volumes == ("/var/log/app:/logs",)
    with pytest.raises(SessionConfigError, match="log_volume"):
        SessionManager(name, socket_name=tmux.socket_name, log_volume="/var/log/app:/logs")
    st = mgr.start("sleep 30")
    assert st.managed is True  # marked as kstlib's right away
    assert mgr.stop() is True


def test_send_keys_starting_with_a_dash(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="cat"))
    tmux.send_keys(name, "-x --flag")
    wait_until(lambda: tmux.logs(name).count("-x --flag") == 2)
    tmux.stop(name, graceful=False)
