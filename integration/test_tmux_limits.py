"""tmux under strain: a hung server, a restart loop, a dead log pipe, a full disk.

Every tmux call is bounded; restart="always" backs off as the engines do;
output the log lost is said (``log_degraded``, one warning) and read from
tmux's scrollback, and logging resumes.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import SessionConfig, TmuxNotFoundError, TmuxRunner
from kstlib.ops.manager import wait_for_log
from kstlib.ops.tmux.files import RunFiles, server_folder, wake_collector

from .conftest import unique

pytestmark = pytest.mark.tmux


@pytest.fixture
def own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmuxRunner]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    runner = TmuxRunner(socket_name=unique("lim"), timeout=1.0)
    yield runner
    runner.kill_server()


def server_pid(runner: TmuxRunner) -> int:
    return int(runner.server.cmd("display-message", "-p", "#{pid}").stdout[0])


def tmux_clients(socket: str) -> list[int]:
    """Live tmux client processes for ``socket`` (the server excluded by the caller)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[0].endswith(b"tmux") and socket.encode() in b" ".join(argv) and state != "Z":
            found.append(int(entry))
    return found


def collector_pid(runner: TmuxRunner) -> int:
    folder = server_folder(runner.socket_name, None, create=False)
    return int((folder / "collector.lock").read_text().split()[0])


# -- bounded calls --------------------------------------------------------------------


def test_a_stopped_server_gives_a_typed_error_in_time_and_works_after_sigcont(
    own: TmuxRunner,
) -> None:
    own.start(SessionConfig(name="hung", command=["sleep", "60"]))
    pid = server_pid(own)
    os.kill(pid, signal.SIGSTOP)
    try:
        for call in (lambda: own.status("hung"), own.list_sessions, lambda: own.logs("hung"),
                     lambda: own.stop("hung", graceful=False)):
            began = time.monotonic()
            with pytest.raises(TmuxNotFoundError) as info:
                call()
            assert time.monotonic() - began < own.timeout + 1  # type: ignore[operator]
            assert own.socket_name in str(info.value) and "did not answer" in str(info.value)
        # the timed-out calls left no tmux client behind (each is killed and
        # reaped by the call's worker: give a loaded machine a moment for that)
        left = [p for p in tmux_clients(own.socket_name) if p != pid]
        for _ in range(30):
            if not left:
                break
            time.sleep(0.1)
            left = [p for p in tmux_clients(own.socket_name) if p != pid]
        assert left == []
    finally:
        os.kill(pid, signal.SIGCONT)
    assert own.status("hung").is_running  # the same runner works again
    assert own.stop("hung", graceful=False)


def test_the_timeout_is_checked_and_settable() -> None:
    from kstlib.ops import SessionConfigError

    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(SessionConfigError):
            TmuxRunner(socket_name="x", timeout=bad)  # type: ignore[arg-type]
    assert TmuxRunner(socket_name="x", timeout=None).timeout is None


# -- restart back-off -------------------------------------------------------------------


def test_restart_always_backs_off_and_counts_exactly(own: TmuxRunner) -> None:
    own.start(SessionConfig(name="flap", command="echo run; false", restart="always"))
    time.sleep(3)
    st = own.status("flap")
    runs = own.logs("flap", lines=None).split("\n").count("run")
    assert 2 <= st.restart_count <= 8, st.restart_count  # 100, 200, 400, 800, 1600 ms
    assert runs in (st.restart_count, st.restart_count + 1)  # asleep, or its next run done
    time.sleep(1)
    later = own.status("flap").restart_count
    assert later - st.restart_count <= 2  # the delay keeps doubling
    own.stop("flap", timeout=5)


def test_the_back_off_resets_after_a_long_run(own: TmuxRunner, tmp_path: Path) -> None:
    # Fails at once three times (delays 0.1, 0.2, 0.4 s), then runs 11 s once,
    # then fails at once again: the next delay is back to 0.1 s.
    counter = tmp_path / "n"
    counter.write_text("0")
    script = (f'n=$(cat {counter}); n=$((n+1)); echo $n > {counter}; echo "run $n $(date +%s%N)"; '
              '[ "$n" = 4 ] && sleep 11; exit 1')
    own.start(SessionConfig(name="reset", command=script, restart="on-failure:5"))
    wait_for_log(own, "reset", "^run 6 ", timeout=30)
    stamps = {int(line.split()[1]): int(line.split()[2]) for line in own.logs("reset").split("\n")
              if line.startswith("run ")}
    gap = (stamps[6] - stamps[5]) / 1e9
    assert gap < 0.6, gap  # 0.1 s after a run of 11 s (not 1.6 s)
    own.stop("reset", graceful=False)


# -- messages ---------------------------------------------------------------------------


def test_a_missing_program_says_not_found_without_internal_names(
    own: TmuxRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # start() refuses a program it cannot find (test_tmux_wrapper.py); one that
    # vanished after that check is reported by the wrapper, as a shell would.
    monkeypatch.setattr("kstlib.ops.tmux.runner.problem", lambda *_: None)
    own.start(SessionConfig(name="nope", command=["nosuchprogram", "x"]))
    assert own.wait("nope", timeout=10) == 127
    assert own.logs("nope") == "nosuchprogram: not found"


# -- a dead log pipe, a full disk -------------------------------------------------------


def test_a_killed_collector_is_said_read_from_tmux_and_resumed(
    own: TmuxRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kstlib")
    own.start(SessionConfig(name="deg", command="echo one; sleep 1; while :; do echo tick; sleep 0.2; done"))
    wait_for_log(own, "deg", "^one$", timeout=10)
    os.kill(collector_pid(own), signal.SIGKILL)
    # cat dies on its next write into the FIFO nobody reads: the pane is no longer piped
    deadline = time.monotonic() + 10
    while own._query("deg").piped and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.05)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = own.status("deg")
        assert st.log_degraded
        text = own.logs("deg", lines=5)
        assert own.status("deg").log_degraded  # said for good: output was lost
    assert text.split("\n")[-1] == "tick"  # from tmux's scrollback
    assert sum("lost output" in str(w.message) for w in caught) == 1  # one warning
    assert not [r for r in caplog.records if "lost output" in r.getMessage()]  # and only that
    # logging resumed: a new collector writes what comes next
    folder = server_folder(own.socket_name, None, create=False)
    assert (folder / "collector.lock").exists()
    pane = own._query("deg")
    assert pane is not None and pane.piped and pane.log is not None
    size = pane.log.stat().st_size
    time.sleep(1)
    assert pane.log.stat().st_size > size
    own.stop("deg", graceful=False)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                    reason="mounting a small tmpfs needs root")
def test_a_full_disk_loses_output_visibly_and_logging_resumes(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    runner = TmuxRunner(socket_name=unique("full"))
    try:
        monkeypatch.setenv("XDG_STATE_HOME", str(mnt))
        runner.start(SessionConfig(name="disk", command=("sleep 0.5; pad=$(printf '%0200d' 0); "
                                         "while :; do echo line-$(date +%s%N)-$pad; sleep 0.02; done")))
        wait_for_log(runner, "disk", "^line-", timeout=10)  # logging runs
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill the disk
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            deadline = time.monotonic() + 10
            while not runner.status("disk").log_degraded and time.monotonic() < deadline:
                time.sleep(0.1)
            assert runner.status("disk").log_degraded
            assert runner.logs("disk", lines=1).startswith("line-")  # tmux still holds it
        assert sum("lost output" in str(w.message) for w in caught) == 1
        filler.unlink()  # room again: the collector writes again
        pane = runner._query("disk")
        assert pane is not None and pane.log is not None
        size = pane.log.stat().st_size
        time.sleep(1.5)
        assert pane.log.stat().st_size > size
    finally:
        runner.kill_server()
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# -- a server killed right after a start leaves no process behind ---------------------------


def _holding(folder: Path) -> list[tuple[int, str]]:
    """Live processes with a file open in ``folder`` (a collector, a pipe-pane ``cat``)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            targets = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z" and any(t.startswith(str(folder) + "/") for t in targets):
            found.append((int(entry), argv))
    return found


@pytest.mark.parametrize("how", ["sigkill", "kill-server"])
@pytest.mark.parametrize("after", [0.0, 0.5])
def test_a_server_killed_right_after_a_start_leaves_no_process(
    own: TmuxRunner, how: str, after: float
) -> None:
    # after=0: killed while the collector and the pipe-pane cat are still being
    # started; after=0.5: both run (checked), so the check below sees them.
    folder = server_folder(own.socket_name, None, create=False)
    for round_ in range(3):
        own.start(SessionConfig(name=f"brief{round_}", command="echo hi; sleep 60"))
        if round_ == 0:
            # A start whose client was killed between making its run files and
            # creating its session (SIGTERM to the caller): a FIFO no pane will open.
            RunFiles(folder, "stray").create({}, max_bytes=4096)
            wake_collector(folder, "stray")
        if after:
            wait_for_log(own, f"brief{round_}", "^hi$", timeout=10)
            time.sleep(after)
            holders = " ".join(argv for _, argv in _holding(folder))
            assert "collector" in holders and "cat" in holders, holders
        if how == "sigkill":
            os.kill(server_pid(own), signal.SIGKILL)
        else:
            own.kill_server()
        left = _holding(folder)
        for _ in range(100):  # orphans notice their server is gone and leave (up to 10 s)
            if not left:
                break
            time.sleep(0.1)
            left = _holding(folder)
        assert left == [], f"round {round_}: processes still hold {folder}: {left}"
