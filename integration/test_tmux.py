"""TmuxRunner against a real tmux server on a private socket."""

from __future__ import annotations

import contextlib
import os
import pickle
import pty
import select
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kstlib.ops import (
    OpsError,
    SessionConfig,
    SessionConfigError,
    SessionExistsError,
    SessionNotFoundError,
    SessionState,
    TmuxNotFoundError,
    TmuxRunner,
)

from .conftest import unique
from .waiting import wait_until


def exited(runner: TmuxRunner, name: str):  # type: ignore[no-untyped-def]
    return wait_until(lambda: (st := runner.status(name)).state is SessionState.EXITED and st)


def test_start_status_logs_stop(tmux: TmuxRunner, name: str) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    started = tmux.start(SessionConfig(name=name, command="echo hello; sleep 30"))
    assert started.state is SessionState.RUNNING
    st = tmux.status(name)
    assert st.name == name and st.state is SessionState.RUNNING and st.managed
    assert st.created_at is not None and st.created_at.tzinfo is not None
    assert before <= st.created_at <= datetime.now(timezone.utc)
    assert st.window_count == 1 and st.socket_name == tmux.socket_name
    wait_until(lambda: tmux.logs(name) == "hello")
    assert tmux.exists(name)
    tmux.stop(name)
    assert not tmux.exists(name)
    with pytest.raises(SessionNotFoundError):
        tmux.status(name)


def test_pid_is_the_sessions_process_not_the_server(tmux: TmuxRunner, name: str) -> None:
    st = tmux.start(SessionConfig(name=name, command=["sleep", "30"]))
    assert st.pid is not None
    cmdline = Path(f"/proc/{st.pid}/cmdline").read_bytes().split(b"\0")
    assert b"tmux" not in cmdline[0]  # the session's own process, not the server
    # The wrapper deletes its run file (one short child) before it starts the command.
    deadline = time.monotonic() + 5
    while True:
        children = Path(f"/proc/{st.pid}/task/{st.pid}/children").read_text().split()
        child_cmds = []
        for c in children:
            with contextlib.suppress(OSError):
                child_cmds.append(Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0")[:2])
        if [b"sleep", b"30"] in child_cmds or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert child_cmds == [[b"sleep", b"30"]]  # the command is the wrapper's only child
    assert os.getpgid(st.pid) == st.pid  # its own process group
    tmux.stop(name, graceful=False)


def test_fast_exit_keeps_exit_code_and_output(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="sh -c 'echo bye; exit 3'"))
    st = exited(tmux, name)
    assert st.exit_code == 3
    assert tmux.logs(name) == "bye"
    tmux.stop(name)
    assert not tmux.exists(name)


def test_exit_code_is_never_lost_for_instant_exits(tmux: TmuxRunner) -> None:
    """tmux itself drops the status of some instant exits; the wrapper must not."""
    names = [unique("fast") for _ in range(20)]
    for i, n in enumerate(names):
        tmux.start(SessionConfig(name=n, command=["sh", "-c", f"exit {i + 1}"]))
    for i, n in enumerate(names):
        assert exited(tmux, n).exit_code == i + 1
        tmux.stop(n)


def test_exit_by_signal_is_128_plus_signal(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="kill -KILL $$"))
    assert exited(tmux, name).exit_code == 128 + signal.SIGKILL


def test_exact_names_bot_and_bot_2(tmux: TmuxRunner) -> None:
    bot, bot2 = unique("bot"), None
    bot2 = f"{bot}-2"
    tmux.start(SessionConfig(name=bot2, command="echo two; sleep 30"))
    # prefix of a running session is not that session
    assert not tmux.exists(bot)
    with pytest.raises(SessionNotFoundError):
        tmux.status(bot)
    with pytest.raises(SessionNotFoundError):
        tmux.stop(bot)
    with pytest.raises(SessionNotFoundError):
        tmux.logs(bot)
    tmux.start(SessionConfig(name=bot, command="echo one; sleep 30"))
    wait_until(lambda: tmux.logs(bot) == "one" and tmux.logs(bot2) == "two")
    tmux.send_keys(bot, "ignored")  # goes to bot only
    tmux.stop(bot)
    assert not tmux.exists(bot)
    assert tmux.status(bot2).state is SessionState.RUNNING
    assert tmux.logs(bot2) == "two"
    tmux.stop(bot2)


def test_graceful_stop_lets_a_trap_run(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    script = f"trap 'echo cleaned > {marker}; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    tmux.start(SessionConfig(name=name, command=script))
    wait_until(lambda: tmux.logs(name) == "ready")
    began = time.monotonic()
    tmux.stop(name, graceful=True, timeout=10)
    assert time.monotonic() - began < 5  # well under the timeout: the trap exited
    assert marker.read_text() == "cleaned\n"
    assert not tmux.exists(name)


def test_graceful_stop_kills_after_the_timeout(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    script = "trap '' TERM; echo stubborn; while true; do sleep 0.1; done"
    st = tmux.start(SessionConfig(name=name, command=["sh", "-c", script]))
    wait_until(lambda: tmux.logs(name) == "stubborn")
    began = time.monotonic()
    tmux.stop(name, timeout=0.5)
    assert time.monotonic() - began >= 0.5
    assert not tmux.exists(name)
    assert st.pid is not None
    wait_until(lambda: not Path(f"/proc/{st.pid}").exists())


def test_force_stop_does_not_wait(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    tmux.start(SessionConfig(name=name, command=f"trap 'touch {marker}' TERM; sleep 30"))
    tmux.stop(name, graceful=False)
    assert not tmux.exists(name)
    assert not marker.exists()


def test_stop_of_an_exited_session_removes_it(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="true"))
    exited(tmux, name)
    tmux.stop(name)
    assert not tmux.exists(name)


def test_start_replaces_an_exited_session_with_the_new_config(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="echo first; exit 1"))
    assert exited(tmux, name).exit_code == 1
    st = tmux.start(SessionConfig(name=name, command="echo second; sleep 30", env={"X": "y"}))
    assert st.state is SessionState.RUNNING
    wait_until(lambda: tmux.logs(name) == "second")
    assert [s.name for s in tmux.list_sessions()].count(name) == 1
    tmux.stop(name)


def test_start_on_a_running_name_raises_exists(tmux: TmuxRunner, name: str) -> None:
    first = tmux.start(SessionConfig(name=name, command="sleep 30"))
    with pytest.raises(SessionExistsError) as info:
        tmux.start(SessionConfig(name=name, command="echo other"))
    assert (info.value.name, info.value.backend) == (name, "tmux")
    assert tmux.status(name).pid == first.pid  # untouched
    tmux.stop(name)


def test_not_found_error_carries_its_attributes(tmux: TmuxRunner, name: str) -> None:
    for call in (tmux.status, tmux.stop, tmux.logs, lambda n: tmux.send_keys(n, "x")):
        with pytest.raises(SessionNotFoundError) as info:
            call(name)
        assert (info.value.name, info.value.backend) == (name, "tmux")
        clone = pickle.loads(pickle.dumps(info.value))
        assert (clone.name, clone.backend) == (name, "tmux")


def test_list_argv_metacharacters_stay_literal(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    payload = f"$(touch {target}); `touch {target}`; touch {target} && echo x\nnewline"
    tmux.start(SessionConfig(name=name, command=["printf", "%s|", payload, "a b"]))
    exited(tmux, name)
    assert not target.exists()
    assert tmux.logs(name, lines=None) == f"{payload}|a b|".replace("\n", "\n").strip()


def test_string_command_runs_in_a_shell(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    tmux.start(SessionConfig(name=name, command="A=1; echo $((A + 1)) | cat"))
    exited(tmux, name)
    assert tmux.logs(name) == "2"


def test_env_and_working_dir(tmux: TmuxRunner, name: str, tmp_path: Path) -> None:
    value = "spaces and 'quotes' and \"double\" $HOME"
    tmux.start(SessionConfig(
        name=name, command=["sh", "-c", 'printf "%s|" "$GREETING"; pwd'],
        env={"GREETING": value}, working_dir=str(tmp_path),
    ))
    exited(tmux, name)
    assert tmux.logs(name) == f"{value}|{tmp_path}"


def test_missing_working_dir_is_a_config_error_and_creates_nothing(
    tmux: TmuxRunner, name: str, tmp_path: Path
) -> None:
    with pytest.raises(SessionConfigError) as info:
        tmux.start(SessionConfig(name=name, command="true", working_dir=str(tmp_path / "nope")))
    assert info.value.field == "working_dir"
    assert not tmux.exists(name)


def test_list_sessions_reports_managed_and_foreign(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="sleep 30"))
    foreign = unique("foreign")
    out = tmux.server.cmd("new-session", "-d", "-s", foreign, "sleep 30")
    assert out.returncode == 0
    by_name = {s.name: s for s in tmux.list_sessions()}
    assert by_name[name].managed is True
    assert by_name[foreign].managed is False
    assert by_name[foreign].state is SessionState.RUNNING
    # status/logs/stop work on a foreign session too
    assert tmux.status(foreign).pid == by_name[foreign].pid
    tmux.stop(foreign)
    assert not tmux.exists(foreign)
    tmux.stop(name)


def test_list_sessions_without_a_server_is_empty() -> None:
    runner = TmuxRunner(socket_name=unique("nosrv"))
    assert runner.list_sessions() == []
    assert runner.exists("anything") is False
    with pytest.raises(SessionNotFoundError):
        runner.status("anything")


def test_stale_socket_file_is_handled(tmp_path: Path) -> None:
    import socket as pysocket

    path = tmp_path / "stale.sock"
    sock = pysocket.socket(pysocket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the file stays, nobody listens: a crashed server's leftover
    runner = TmuxRunner(socket_path=str(path))
    assert runner.list_sessions() == []
    assert runner.exists("x") is False
    st = runner.start(SessionConfig(name="x", command="sleep 30"))
    assert st.state is SessionState.RUNNING
    runner.kill_server()


def test_send_keys_types_literally(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="cat"))
    tmux.send_keys(name, "hello ; C-c $(x)")
    wait_until(lambda: tmux.logs(name).splitlines()[-1:] == ["hello ; C-c $(x)"] and
               tmux.logs(name).count("hello") == 2)
    tmux.send_keys(name, "no-enter", enter=False)
    wait_until(lambda: tmux.logs(name).endswith("no-enter"))
    tmux.stop(name)


def test_tmux_not_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from libtmux.common import get_version, get_version_str

    monkeypatch.setenv("PATH", str(tmp_path))
    get_version.cache_clear()
    get_version_str.cache_clear()
    runner = TmuxRunner(socket_name=unique("nopath"))
    for call in (runner.list_sessions, lambda: runner.exists("a"), lambda: runner.status("a"),
                 lambda: runner.start(SessionConfig(name="a", command="true"))):
        with pytest.raises(TmuxNotFoundError) as info:
            call()
        assert isinstance(info.value, FileNotFoundError)
        assert "apt install tmux" in str(info.value)
    get_version.cache_clear()
    get_version_str.cache_clear()


def test_too_old_tmux_is_not_found(tmp_path: Path) -> None:
    from libtmux.common import get_version, get_version_str

    fake = tmp_path / "tmux"
    fake.write_text("#!/bin/sh\necho 'tmux 2.9'\n")
    fake.chmod(0o755)
    runner = TmuxRunner(socket_name=unique("old"), tmux_bin=str(fake))
    try:
        with pytest.raises(TmuxNotFoundError, match="too old"):
            runner.list_sessions()
    finally:
        get_version.cache_clear()
        get_version_str.cache_clear()


def test_other_tmux_failures_are_ops_errors(tmp_path: Path) -> None:
    """A tmux that runs but fails: the operation's error with tmux's message as reason."""
    from libtmux.common import get_version, get_version_str

    fake = tmp_path / "tmux"
    fake.write_text('#!/bin/sh\nif [ "$1" = -V ]; then echo "tmux 3.3a"; exit 0; fi\n'
                    'echo "server exploded" >&2; exit 1\n')
    fake.chmod(0o755)
    runner = TmuxRunner(socket_name=unique("broken"), tmux_bin=str(fake))
    try:
        with pytest.raises(OpsError) as info:
            runner.start(SessionConfig(name="a", command="true"))
        assert "server exploded" in str(info.value)
        assert type(info.value).__name__ == "SessionStartError"
        assert info.value.reason == "server exploded"  # type: ignore[attr-defined]
    finally:
        get_version.cache_clear()
        get_version_str.cache_clear()


def _read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    return buf


def test_attach_in_a_pty_and_detach_with_prefix_d(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="while true; do echo tick-$$; sleep 0.2; done"))
    other = f"{name}-2"
    tmux.start(SessionConfig(name=other, command="while true; do echo other; sleep 0.2; done"))
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes the tmux client
        os.environ["TERM"] = "xterm"
        try:
            tmux.attach(name)
        finally:
            os._exit(99)
    try:
        screen = _read_until(fd, b"tick-")
        assert b"tick-" in screen  # attached to exactly `name`
        assert b"other" not in screen
        out = b""
        for _ in range(20):  # the client may still be reading its terminal's replies
            os.write(fd, b"\x02d")  # tmux prefix (C-b) then d
            out += _read_until(fd, b"[detached", timeout=0.5)
            if b"[detached" in out:
                break
        assert b"[detached" in out
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        os.close(fd)
    assert tmux.status(name).state is SessionState.RUNNING
    tmux.stop(name, graceful=False)
    tmux.stop(other, graceful=False)


def test_attach_errors(tmux: TmuxRunner, name: str) -> None:
    from kstlib.ops import SessionAttachError

    with pytest.raises(SessionNotFoundError):
        tmux.attach(name)
    tmux.start(SessionConfig(name=name, command="sleep 30"))
    with pytest.raises(SessionAttachError, match="not a terminal"):
        tmux.attach(name)  # pytest's stdin is not a terminal
    tmux.stop(name, graceful=False)


def test_logs_of_a_foreign_session_is_one_tmux_call_and_cannot_be_split_by_its_output(
    tmux: TmuxRunner, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kstlib.ops.tmux import call

    # The pane prints what looks like the line that separates the chained answers.
    lines = "printf 'a\\nkstlib-capture-0123456789abcdef\\nb;\\n'; sleep 30"
    assert tmux.server.cmd("new-session", "-d", "-s", name, "-x", "200", lines).returncode == 0
    wait_until(lambda: tmux.logs(name, 10).endswith("b;"))
    made: list[tuple[str, ...]] = []
    real = call._call
    monkeypatch.setattr(call, "_call", lambda s, a, t: made.append(a) or real(s, a, t))
    assert tmux.logs(name, 10) == "a\nkstlib-capture-0123456789abcdef\nb;"
    assert len(made) == 1 and made[0][0] == "list-panes"
    made.clear()
    with pytest.raises(SessionNotFoundError):
        tmux.logs(name + "-gone", 10)
    assert len(made) == 1
    tmux.stop(name, graceful=False)
