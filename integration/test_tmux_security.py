"""The tmux backend's promises on a shared machine, tested as an attacker would.

No env value on any command line (polled by another user), a private state tree,
one folder per server, argv byte for byte through tmux's own parser, no format
expansion of user strings, an end mark that output cannot forge, exactly one
winner when an exited session is replaced concurrently.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import (
    SessionConfig,
    SessionConfigError,
    SessionExistsError,
    SessionTimeoutError,
    StateDirError,
    TmuxRunner,
)
from kstlib.ops.manager import wait_for_log
from kstlib.ops.tmux.files import server_folder, server_id

from .conftest import unique

pytestmark = pytest.mark.tmux


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG_STATE_HOME for the test."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture
def own(state: Path) -> Iterator[TmuxRunner]:
    """A runner on a server of its own, killed afterwards."""
    runner = TmuxRunner(socket_name=unique("sec"))
    yield runner
    runner.kill_server()


def wait_exit(runner: TmuxRunner, name: str) -> int:
    return runner.wait(name, timeout=15)


# -- 1. no env value on any command line --------------------------------------------

POLLER = textwrap.dedent(
    """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    secret = sys.stdin.readline().strip().encode()  # not on its own command line
    deadline = time.monotonic() + float(sys.argv[1])
    seen_tmux = hits = scans = 0
    try:
      while time.monotonic() < deadline:
        scans += 1
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read()
            except OSError:
                continue
            if b"new-session" in argv:
                seen_tmux += 1
            if secret in argv:
                hits += 1
                print("LEAK", pid, argv[:200], flush=True)
        time.sleep(0.001)
    finally:
        print("SCANS", scans, "TMUX", seen_tmux, "HITS", hits, flush=True)
    """
)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to poll as another user")
def test_other_user_polling_proc_never_sees_an_env_value(own: TmuxRunner, state: Path,
                                                         tmp_path: Path) -> None:
    secret = "s3cr3t-" + os.urandom(6).hex()
    shared = Path(tempfile.mkdtemp(prefix="kstlib-poll-"))
    shared.chmod(0o755)
    script = shared / "poll.py"
    script.write_text(POLLER)
    script.chmod(0o644)
    poller = subprocess.Popen(
        ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
         sys.executable, "-I", "-S", str(script), "30"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert poller.stdin is not None
    poller.stdin.write(secret + "\n")
    poller.stdin.close()
    try:
        time.sleep(0.5)
        names = []
        for i in range(50):
            name = f"leak-{i}"
            names.append(name)
            own.start(SessionConfig(name=name, command=["sh", "-c", "echo ${API_TOKEN#s3}; sleep 30"],
                                    env={"API_TOKEN": secret, "OTHER": secret + ";"}))
        assert own.logs(names[0], lines=1) in ("", secret[2:])  # the value did reach the command
        wait_for_log(own, names[-1], "^" + secret[2:] + "$", timeout=10)
        for name in names:
            own.stop(name, graceful=False)
    finally:
        poller.terminate()
        assert poller.stdout is not None
        out = poller.stdout.read()
        poller.wait(10)
        shutil.rmtree(shared, ignore_errors=True)
    assert "LEAK" not in out, out
    summary = out.split()
    assert summary[0] == "SCANS" and int(summary[3]) > 0  # the poller did see tmux clients
    # Files: another user cannot even enter the state tree.
    probe = subprocess.run(
        ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
         "ls", str(state / "kstlib" / "ops")], capture_output=True)
    assert probe.returncode != 0


def test_tmux_server_command_line_shows_no_env_value_nor_the_wrapper_script(
    own: TmuxRunner
) -> None:
    secret = "tok-" + os.urandom(6).hex()
    own.start(SessionConfig(name="first", command=["sleep", "30"], env={"TOKEN": secret}))
    pid = int(own.server.cmd("display-message", "-p", "#{pid}").stdout[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert secret.encode() not in argv
    # A script path, not a script (the collector's start only ignores TERM/HUP).
    assert b"set-option -p" not in argv and b"__kstlib_" not in argv
    st = own.status("first")
    assert secret.encode() not in Path(f"/proc/{st.pid}/cmdline").read_bytes()
    # ...and the run file that carried it is gone once the wrapper has read it
    folder = server_folder(own.socket_name, None, create=False)
    deadline = time.monotonic() + 5
    while list(folder.glob("*.env")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(folder.glob("*.env")) == []


def test_a_failed_start_leaves_no_run_file(own: TmuxRunner) -> None:
    own.start(SessionConfig(name="taken", command=["sleep", "30"]))
    with pytest.raises(SessionExistsError):
        own.start(SessionConfig(name="taken", command=["true"], env={"K": "v"}))
    folder = server_folder(own.socket_name, None, create=False)
    assert list(folder.glob("*.env")) == []
    assert len(list(folder.glob("*.log"))) == 1


# -- 3. a private state tree ----------------------------------------------------------


def test_state_tree_is_0700_and_logs_0600_under_umask_022(own: TmuxRunner, state: Path) -> None:
    old = os.umask(0o022)
    try:
        own.start(SessionConfig(name="u", command="echo hi"))
        wait_exit(own, "u")
    finally:
        os.umask(old)
    folder = server_folder(own.socket_name, None, create=False)
    for path in (state / "kstlib", state / "kstlib" / "ops", folder.parent, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    entries = [p for p in folder.iterdir() if p.name not in ("ctl", "collector.lock")]
    assert entries
    for path in entries:
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600, path


def test_a_state_folder_writable_by_others_or_foreign_is_refused(state: Path) -> None:
    (state / "kstlib" / "ops").mkdir(parents=True)
    (state / "kstlib" / "ops").chmod(0o777)
    runner = TmuxRunner(socket_name=unique("sec"))
    with pytest.raises(StateDirError, match="writable by other users"):
        runner.start(SessionConfig(name="x", command="true"))
    assert not runner.exists("x")
    (state / "kstlib" / "ops").chmod(0o700)
    os.chown(state / "kstlib" / "ops", 65534, 65534) if os.geteuid() == 0 else None
    if os.geteuid() == 0:
        with pytest.raises(StateDirError, match="owned by uid 65534"):
            runner.start(SessionConfig(name="x", command="true"))


def test_a_state_folder_opened_up_after_a_start_is_refused_at_the_next(state: Path) -> None:
    # A runner trusts a folder it checked only while every level is unchanged.
    runner = TmuxRunner(socket_name=unique("sec"))
    try:
        runner.start(SessionConfig(name="a", command=["sleep", "30"]))
        (state / "kstlib" / "ops").chmod(0o777)
        with pytest.raises(StateDirError, match="writable by other users"):
            runner.start(SessionConfig(name="b", command="true"))
        assert not runner.exists("b")
        (state / "kstlib" / "ops").chmod(0o700)
        folder = server_folder(runner.socket_name, None, create=False)
        folder.chmod(0o755)  # ours but readable: tightened again, as on a first start
        runner.start(SessionConfig(name="c", command=["sleep", "30"]))
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        (state / "kstlib" / "ops").chmod(0o700)
        runner.kill_server()


def test_a_planted_symlink_is_never_followed(state: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.log").write_text("precious")
    socket = unique("sec")
    tmux_dir = state / "kstlib" / "ops" / "tmux"
    tmux_dir.mkdir(parents=True)
    os.symlink(victim, tmux_dir / server_id(socket, None))
    runner = TmuxRunner(socket_name=socket)
    with pytest.raises(StateDirError, match="symbolic link"):
        runner.start(SessionConfig(name="x", command="true"))
    with pytest.raises(StateDirError):
        runner.kill_server()
    assert (victim / "keep.log").read_text() == "precious"


# -- 4. one folder per server ---------------------------------------------------------


def test_log_folders_are_one_to_one_with_servers(tmp_path: Path, state: Path) -> None:
    a = tmp_path / "a b"
    b = tmp_path / "a_b"
    a.mkdir()
    b.mkdir()
    ra = TmuxRunner(socket_path=str(a / "s"))
    rb = TmuxRunner(socket_path=str(b / "s"))
    assert server_id(None, str(a / "s")) != server_id(None, str(b / "s"))
    try:
        ra.start(SessionConfig(name="live", command="echo from-a; sleep 30"))
        rb.start(SessionConfig(name="other", command="sleep 30"))
        wait_for_log(ra, "live", "from-a", timeout=10)
        rb.kill_server()
        assert ra.logs("live") == "from-a"  # b's kill_server left a's logs alone
    finally:
        ra.kill_server()
        rb.kill_server()


# -- 5./6. argv byte for byte, no format expansion ------------------------------------


@pytest.mark.parametrize("item", [";", "a;", "a\\;", "\\;", "x ; y", "#{session_name}", "#(id)",
                                  "~", "$HOME", "'\"", "-e", "--"])
def test_every_argv_item_arrives_byte_for_byte(own: TmuxRunner, tmp_path: Path, item: str) -> None:
    out = tmp_path / "argv"
    own.start(SessionConfig(name="argv", command=["sh", "-c", 'printf "%s" "$1" > "$2"', "sh",
                                                   item, str(out)]))
    assert wait_exit(own, "argv") == 0
    assert out.read_text() == item


def test_run_shell_after_a_semicolon_item_does_not_run(own: TmuxRunner, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    own.start(SessionConfig(name="semi", command=["true", ";", "run-shell", f"touch {marker}"]))
    wait_exit(own, "semi")
    time.sleep(0.2)
    assert not marker.exists()


def test_find_exec_with_escaped_semicolon_runs(own: TmuxRunner, tmp_path: Path) -> None:
    (tmp_path / "f1").write_text("")
    own.start(SessionConfig(name="find", command=["find", str(tmp_path), "-name", "f1",
                                                   "-exec", "echo", "found", "{}", ";"]))
    assert wait_exit(own, "find") == 0
    assert own.logs("find") == f"found {tmp_path / 'f1'}"


def test_env_values_and_working_dir_with_tmux_syntax_arrive_intact(own: TmuxRunner,
                                                                    tmp_path: Path) -> None:
    odd = tmp_path / "#{session_name};"
    odd.mkdir()
    values = {"A": "ends;", "B": "#(touch /tmp/never)", "C": "line1\nline2", "D": "it's \\ $x"}
    own.start(SessionConfig(name="envs", working_dir=str(odd), env=values,
                            command=["sh", "-c", 'pwd; for k in A B C D; do eval "printf \'%s|\' \\"\\$$k\\""; done']))
    assert wait_exit(own, "envs") == 0
    lines = own.logs("envs").split("\n")
    assert lines[0] == str(odd)
    assert "\n".join(lines[1:]) == "ends;|#(touch /tmp/never)|line1\nline2|it's \\ $x|"


def test_send_keys_keeps_a_trailing_semicolon(own: TmuxRunner) -> None:
    own.start(SessionConfig(name="keys", command=["cat"]))
    own.send_keys("keys", "k1;")
    wait_for_log(own, "keys", "^k1;$", timeout=10)


def test_socket_name_with_a_format_runs_nothing(state: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where a command run by tmux's format would write
    marker = tmp_path / "pwned"
    runner = TmuxRunner(socket_name="x#(touch pwned)#{pid}")
    try:
        runner.start(SessionConfig(name="fmt", command="echo ok"))
        assert wait_exit(runner, "fmt") == 0
        assert runner.logs("fmt") == "ok"
    finally:
        runner.kill_server()
    time.sleep(0.2)
    assert not marker.exists()


def test_a_socket_name_with_a_slash_is_a_config_error() -> None:
    with pytest.raises(SessionConfigError) as info:
        TmuxRunner(socket_name="a/b")
    assert info.value.field == "socket_name"


# -- 7. the end mark cannot be forged ------------------------------------------------


def test_output_cannot_fake_the_end_of_the_run(own: TmuxRunner) -> None:
    fake = r"printf 'a\n\033]7707;kstlib-end\007\033]7707;kstlib-end;0000\007b\n'; sleep 2; echo c"
    own.start(SessionConfig(name="forge", command=fake))
    lines = list(own.follow_logs("forge", since=0, timeout=15))
    assert lines[0] == "a" and lines[-1] == "c"  # followed to the real end, past the fakes
    assert own.wait("forge", timeout=5) == 0


def test_wait_for_log_is_not_fooled_by_a_fake_end(own: TmuxRunner) -> None:
    own.start(SessionConfig(name="forge2", command=r"printf '\033]7707;kstlib-end\007'; sleep 3; echo ready; sleep 30"))
    assert wait_for_log(own, "forge2", "^ready$", timeout=10) == "ready"


# -- 10. environment settings --------------------------------------------------------


def test_a_bad_max_log_bytes_setting_is_a_config_error(own: TmuxRunner,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSTLIB_OPS_MAX_LOG_BYTES", "abc")
    with pytest.raises(SessionConfigError) as info:
        own.start(SessionConfig(name="bad", command="true"))
    assert info.value.field == "KSTLIB_OPS_MAX_LOG_BYTES"
    assert not own.exists("bad")


# -- 12. one winner when an exited session is replaced concurrently -------------------


def _racer(socket: str, state: str, name: str, barrier: multiprocessing.synchronize.Barrier,
           results: multiprocessing.queues.Queue) -> None:  # type: ignore[name-defined]
    os.environ["XDG_STATE_HOME"] = state
    try:  # every racer reports, whatever happens to it
        runner = TmuxRunner(socket_name=socket)
        barrier.wait(timeout=30)
        runner.start(SessionConfig(name=name, command=["sleep", "60"]))
        results.put("won")
    except SessionExistsError:
        results.put("exists")
    except Exception as err:  # noqa: BLE001 - reported to the test
        results.put(f"{type(err).__name__}: {err}")


def test_replacing_an_exited_session_has_exactly_one_winner(own: TmuxRunner, state: Path) -> None:
    # forkserver, not fork: a fork of this threaded test process can inherit a lock
    # that another thread held at that moment, and hang the child for good.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    for round_ in range(12):
        name = f"race-{round_}"
        own.start(SessionConfig(name=name, command="exit 1"))
        wait_exit(own, name)
        barrier = ctx.Barrier(3)
        results = ctx.Queue()
        procs = [ctx.Process(target=_racer, args=(own.socket_name, str(state), name, barrier,
                                                  results)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        outcome = sorted(results.get(timeout=5) for _ in procs)
        assert outcome == ["exists", "exists", "won"], outcome
        st = own.status(name)
        assert st.is_running and Path(f"/proc/{st.pid}").exists()
        folder = server_folder(own.socket_name, None, create=False)
        assert len(list(folder.glob(f"{name}.*.log"))) == 1  # no orphan log
        own.stop(name, graceful=False)


def test_follow_timeout_still_raises(own: TmuxRunner) -> None:
    own.start(SessionConfig(name="slow", command="sleep 30"))
    with pytest.raises(SessionTimeoutError):
        list(own.follow_logs("slow", timeout=0.5))
