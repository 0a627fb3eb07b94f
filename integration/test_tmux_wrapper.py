"""The tmux session wrapper and what surrounds a session, tested as an attacker would.

The environment is applied inside the wrapper's own shell: no env key may
change the end mark, another session's exit code or the restart policy. A
server killed from outside leaves nothing of kstlib's behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kstlib.ops import (
    SessionConfig,
    SessionConfigError,
    SessionStartError,
    SessionState,
    TmuxRunner,
)
from kstlib.ops.tmux import files

from .conftest import unique
from .waiting import wait_until

pytestmark = pytest.mark.tmux

WRAPPER = Path(files.__file__).with_name("wrapper.sh")
# The wrapper's variables before they were prefixed: each was once a way in.
OLD_NAMES = (
    "t", "mode", "most", "f", "pane", "tmux_env", "sleep_bin", "date_bin", "stop", "n",
    "delay", "began", "s", "run", "note", "_kstlib_nonce",
)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture
def own(state: Path) -> Iterator[TmuxRunner]:
    runner = TmuxRunner(socket_name=unique("wrap"))
    yield runner
    runner.kill_server()


def tmux(runner: TmuxRunner, *args: str) -> str:
    argv = ["tmux", "-L", str(runner.socket_name), *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()



# -- 21.12: the wrapper's names are its own -----------------------------------------


def wrapper_names() -> set[str]:
    text = WRAPPER.read_text()
    return set(re.findall(r"\b(__kstlib_\w+)", text))


def test_every_wrapper_variable_is_reserved() -> None:
    names = wrapper_names()
    assert {"__kstlib_nonce", "__kstlib_pane", "__kstlib_t", "__kstlib_stop"} <= names
    for key in names:
        with pytest.raises(SessionConfigError) as info:
            SessionConfig(name="x", command="true", env={key: "x"})
        assert info.value.field == "env" and "reserved" in str(info.value)


def test_the_wrapper_assigns_nothing_but_its_own_names() -> None:
    # Every assignment, loop variable and function of the wrapper is prefixed.
    code = [line.split("#", 1)[0] for line in WRAPPER.read_text().splitlines()]
    assigned = set()
    for line in code:
        assigned |= set(re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", line))
        assigned |= set(re.findall(r"^\s*([A-Za-z_]\w*)\s*\(\)", line))
        assigned |= set(re.findall(r"\bread\s+-r\s+(\w+)", line))
    assert assigned and all(n.startswith("__kstlib_") or n in {"IFS", "TMUX"} for n in assigned)


def test_env_keys_named_after_wrapper_variables_change_nothing(own: TmuxRunner) -> None:
    victim = unique("victim")
    own.start(SessionConfig(name=victim, command=["sleep", "60"]))
    victim_pane = tmux(own, "list-panes", "-t", f"={victim}:", "-F", "#{pane_id}")
    env = {key: "1" for key in OLD_NAMES}
    env.update(
        pane=victim_pane, TMUX_PANE=victim_pane, t="/bin/true", mode="always", most="5",
        f="/etc/passwd", stop="0", delay="99999", _kstlib_nonce="forged",
        sleep_bin="/bin/false", date_bin="/bin/false", tmux_env="/nonexistent,1,0",
        IFS="0123456789", PATH="/nonexistent",
    )
    fake = "\033]7707;kstlib-end;forged\007"
    script = (
        f"printf '{fake}'; echo after; "
        'echo "seen=[$_kstlib_nonce][$__kstlib_nonce]"; /usr/bin/env; exit 3'
    )
    attacker = unique("attacker")
    own.start(SessionConfig(name=attacker, command=["/bin/sh", "-c", script], env=env))
    pane = own._query(attacker)
    assert pane is not None and pane.log is not None
    nonce = pane.log.read_bytes().split(b"\n", 1)[0].split()[1].decode()
    # Followed to the real end: the forged mark is just output, and "after" follows it.
    lines = list(own.follow_logs(attacker, since=0, timeout=15))
    assert lines[0] == fake + "after" and "seen=[forged][]" in lines
    assert not any(nonce in line for line in lines)  # the child never saw the secret
    st = own.status(attacker)
    assert st.state is SessionState.EXITED and st.exit_code == 3 and st.restart_count == 0
    # The other session's pane was never written.
    assert own.status(victim).state is SessionState.RUNNING
    assert tmux(own, "display-message", "-p", "-t", victim_pane, "#{@kstlib-exit}") == ""
    own.stop(victim, graceful=False)


def test_env_values_reach_the_command_intact_past_the_nonce_line(own: TmuxRunner) -> None:
    env = {"A": "it's\nmultiline\n", "B": "$(echo no) `echo no` ; #{x}", "C": ""}
    own.start(SessionConfig(name="envs", command=["/bin/sh", "-c", 'printf "%s|" "$A" "$B" "$C"'],
                            env=env))
    assert own.wait("envs", timeout=10) == 0
    assert own.logs("envs", lines=None) == "it's\nmultiline\n|$(echo no) `echo no` ; #{x}||"


# -- 22.27: nothing of kstlib's outlives its server ---------------------------------


def lingering(folder: Path) -> list[str]:
    """Command lines of live processes that name one of the folder's runs."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in argv:
            found.append(argv.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_a_server_killed_from_outside_leaves_no_process(own: TmuxRunner, delay: float) -> None:
    for i in range(3):
        own.start(SessionConfig(name=f"s{i}", command=["sleep", "300"]))
    folder = own._folder()
    fifos = [p for p in folder.iterdir() if p.suffix == ".fifo"]
    assert len(fifos) == 3
    time.sleep(delay)  # 0: killed while its collector is still starting up
    tmux(own, "kill-server")
    # The pipe-pane shells, the wrappers and the collector all end with the server.
    wait_until(lambda: not lingering(folder), timeout=15)


# -- 22.5: a program that cannot run is a start error, and leaves nothing ---------


def leftovers(runner: TmuxRunner) -> list[str]:
    folder = runner._folder()
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["no-such-program-kstlib"], "command not found: no-such-program-kstlib"),
        (["/nonexistent/prog", "-x"], "command not found: /nonexistent/prog"),
        (["/etc/passwd"], "not executable: /etc/passwd"),
        (["/tmp"], "not executable: /tmp"),
    ],
)
def test_a_program_that_cannot_run_raises_and_leaves_nothing(
    own: TmuxRunner, command: list[str], reason: str
) -> None:
    own.start(SessionConfig(name="keep", command=["sleep", "60"]))  # a live server and folder
    with pytest.raises(SessionStartError) as info:
        own.start(SessionConfig(name="bad", command=command))
    assert info.value.reason == reason and info.value.name == "bad"
    assert not own.exists("bad")
    assert not [f for f in leftovers(own) if f.startswith("bad.")]  # no run file, log, FIFO
    own.stop("keep", graceful=False)


def test_a_program_is_looked_up_on_the_sessions_own_path(own: TmuxRunner, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    tool = tools / "kstlib-tool"
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(0o755)
    with pytest.raises(SessionStartError, match="command not found: kstlib-tool"):
        own.start(SessionConfig(name="t1", command=["kstlib-tool"]))
    own.start(SessionConfig(name="t2", command=["kstlib-tool"], env={"PATH": f"{tools}:/bin"}))
    assert own.wait("t2", timeout=10) == 0 and own.logs("t2") == "tool-ran"
    with pytest.raises(SessionStartError, match="not executable: ./kstlib-tool"):
        tool.chmod(0o644)
        own.start(SessionConfig(name="t3", command=["./kstlib-tool"], working_dir=str(tools)))
    assert not own.exists("t3") and not own.exists("t1")


def test_a_string_command_is_left_to_the_shell(own: TmuxRunner) -> None:
    # The user's shell alone knows what its first word is: the start succeeds, and
    # the session exits 127 as the shell says.
    own.start(SessionConfig(name="sh", command="no-such-program-kstlib"))
    assert own.wait("sh", timeout=10) == 127


# -- 22.6: a restarting session shows its last run ----------------------------------


def test_a_restarting_session_shows_its_last_exit_code_and_time(own: TmuxRunner) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    own.start(SessionConfig(name="flaky", command="sleep 0.2; exit 4", restart="on-failure:2"))
    st = wait_until(lambda: (s := own.status("flaky")).restart_count >= 1 and s)
    assert st.last_exit_code == 4 and st.last_exited_at is not None
    assert before <= st.last_exited_at <= datetime.now(timezone.utc)
    assert own.wait("flaky", timeout=20) == 4
    st = own.status("flaky")
    assert st.restart_count == 2 and st.last_exit_code == 4 and st.exit_code == 4
    own.start(SessionConfig(name="once", command="exit 2"))
    assert own.wait("once", timeout=10) == 2
    st = own.status("once")
    assert st.last_exit_code is None and st.last_exited_at is None  # no restart policy


def test_each_exit_is_also_written_to_the_runs_exit_file(own: TmuxRunner) -> None:
    """tmux can drop a pane's last bytes (the exit mark): the collector reads this file too."""
    own.start(SessionConfig(name="twice", command="exit 5", restart="on-failure:1"))
    own.start(SessionConfig(name="held", command="sleep 300", env={"KEY": "v"}))
    assert own.wait("twice", timeout=20) == 5
    own.stop("held", timeout=10)  # graceful: TERM, which the wrapper reports as a stop
    folder = files.server_folder(own.socket_name, None, create=False)
    (exits,) = folder.glob("twice.*.exit")
    assert exits.read_text() == "0 5 0 1\n1 5 0 1\n"  # run number, code, stop, began
    assert exits.stat().st_mode & 0o777 == 0o600
    assert not list(folder.glob("held.*"))  # removed with its session
