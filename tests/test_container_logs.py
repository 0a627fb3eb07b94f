"""Logs, followed logs and waits across restarts: the log-line assembly, with no engine."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import urllib3.exceptions

from kstlib.ops.container import ContainerRunner
from kstlib.ops.container import logs as container_logs
from kstlib.ops.container import runner as container_mod
from kstlib.ops.container import states as container_states
from kstlib.ops.engines import docker as docker_engine
from kstlib.ops.engines import podman as podman_engine
from kstlib.ops.engines.adapter import ContainerInfo
from kstlib.ops.engines.streams import (
    EntrySplitter,
    LogQuery,
    LogStream,
    log_params,
    since_param,
    split_entries,
)
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionConfigError,
    SessionTimeoutError,
)
from kstlib.ops.models import SessionState
from kstlib.ops.translate import Op
from kstlib.ops.validators import validate_since

DOCKER_URL = "unix:///var/run/docker.sock"
PODMAN_URL = "unix:///run/podman/podman.sock"


# -- logs, followed logs, waits across restarts (no engine) ---------------------------

STAMP = b"2026-11-25T19:19:37.466652022Z "


def frame(data: bytes, kind: int = 1) -> bytes:
    return bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_entry_splitter_cuts_frames_and_lines_however_the_bytes_arrive() -> None:
    payload = frame(b"a\r\n") + frame(b"x") + frame(b"y\r\n", 2) + frame(b"") + frame(b"end")
    splitter = EntrySplitter()
    got = [entry for byte in payload for entry in splitter.feed(bytes([byte]))]
    assert got + splitter.flush() == [b"a\r\n", b"x", b"y\r\n", b"end"]
    cut = EntrySplitter()
    assert cut.feed(frame(b"whole") + frame(b"cut")[:-1]) == [b"whole"]
    assert cut.flush() == []  # a frame cut by the end of the stream is dropped
    raw = EntrySplitter()
    assert raw.feed(b"\x01") == []  # could still be a frame header
    assert raw.feed(b"23\r\nprom") == [b"\x0123\r\n"]
    assert raw.feed(b"pt> ") == [] and raw.flush() == [b"prompt> "]
    assert split_entries(b"") == []


def test_a_docker_line_over_16_kib_is_cut_back_into_its_entries() -> None:
    body = b"x" * 40000
    later = b"2026-11-25T19:19:38Z "
    raw = (
        STAMP
        + body[:16384]
        + STAMP
        + body[16384:32768]
        + STAMP
        + body[32768:]
        + b"\r\n"
        + later
        + b"short\r\n"
    )
    entries = split_entries(raw)
    assert [len(e) for e in entries] == [len(STAMP) + 16384] * 2 + [len(STAMP) + 7232 + 2, 28]
    lines = container_logs.LineAssembler(stamped=True)
    out = lines.feed(entries)
    assert [text for _, text in out] == [body.decode(), "short"]
    assert out[0][0] == (1795634377, 466652022)
    plain = "y" * 20000  # without timestamps nothing is cut
    assert split_entries(plain.encode() + b"\r\n") == [plain.encode() + b"\r\n"]


def test_lines_join_partial_entries_and_keep_the_first_time() -> None:
    lines = container_logs.LineAssembler(stamped=True)
    out = lines.feed(
        [
            b"2026-11-25T19:46:55+01:00 a\r\n",
            b"2026-11-25T18:46:56Z par",
            b"2026-11-25T18:46:57Z tial\r\nnext",
            b"2026-11-25T18:46:58Z \r\n",
            b"not a stamp\r\n",
        ]
    )
    assert out == [
        ((1795632415, 0), "a"),
        ((1795632416, 0), "partial"),
        ((1795632417, 0), "next"),
        (None, "not a stamp"),
    ]
    assert lines.flush() == []
    plain = container_logs.LineAssembler(stamped=False)
    assert plain.feed([b"one\r", b"\ntw", b"o\xc3"]) == [(None, "one")]
    assert plain.feed([b"\xa9\r\n"]) == [(None, "two\u00e9")]
    assert plain.feed([b"tail"]) == [] and plain.flush() == [(None, "tail")]


def test_a_resumed_read_skips_exactly_the_entries_already_used() -> None:
    # Podman's times are whole seconds and its `since` keeps entries, not
    # lines: a line begun in second 5 and ended in second 6 must not come twice.
    def e(second: int, text: bytes) -> bytes:
        return b"2026-11-25T18:46:%02dZ " % second + text

    log = [
        e(5, b"a\r\n"),
        e(5, b"x"),
        e(6, b"y\r\n"),
        e(6, b"long-1 "),
        e(6, b"long-2\r\n"),
        e(7, b"end"),
    ]
    cursor = container_logs.Cursor()
    first = container_logs.LineAssembler(stamped=True, cursor=cursor)
    assert [t for _, t in first.feed(log[:4])] == ["a", "xy"]  # long-1 is still pending
    since = cursor.resume()
    assert since == datetime(2026, 11, 25, 18, 46, 6, tzinfo=timezone.utc)
    again = [entry for entry in log if entry[17:19] >= b"06"]  # what `since` sends back
    second = container_logs.LineAssembler(stamped=True, cursor=cursor)
    assert [t for _, t in second.feed(again) + second.flush()] == ["long-1 long-2", "end"]


def test_stamps_convert_to_the_tmux_format() -> None:
    stamp = container_logs.parse_stamp(b"2026-11-25T18:46:55.8195101Z")
    assert stamp == (1795632415, 819510100)
    assert container_logs._stamp_text(stamp) == "2026-11-25T18:46:55.819510Z"
    assert container_logs.parse_stamp(b"2026-11-25T18:46:55-00:30") == (1795634215, 0)
    assert container_logs.parse_stamp(b"2026-11-25 18:46:55Z") is None
    assert container_logs.render_line(stamp, "\x1b[1mhi\x1b[0m", True, False) == (
        "2026-11-25T18:46:55.819510Z hi"
    )


def test_since_is_checked_and_sent_with_nanoseconds() -> None:
    check = validate_since
    aware = datetime(2026, 1, 1, 1, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))
    assert since_param(check(aware)) == "1767225600.250000000"  # type: ignore[arg-type]
    assert check(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert since_param(check(1767225600.5)) == "1767225600.500000000"  # type: ignore[arg-type]
    assert since_param(check(-5)) == "0"  # type: ignore[arg-type]
    for bad in (True, "yesterday", float("nan"), 1e300):
        with pytest.raises(SessionConfigError, match="since"):
            check(bad)
    assert log_params(5, None, False) == {"stdout": "true", "stderr": "true", "tail": "5"}


def info(state: str, **kw: Any) -> ContainerInfo:
    return ContainerInfo(id="c1", name="bot", state=state, **kw)


@pytest.mark.parametrize(
    ("state", "policy", "retries", "count", "code", "pending"),
    [
        ("stopped", "on-failure", 2, 1, 3, True),  # Podman: the cleanup will restart it
        ("stopped", "on-failure", 2, 2, 3, False),  # retries used up
        ("stopped", "on-failure", 0, 9, 3, True),  # no maximum
        ("stopped", "on-failure", 2, 0, 0, False),  # success is not a failure
        ("stopped", "always", 0, 5, 0, True),
        ("stopped", "", 0, 0, 1, False),
        ("exited", "always", 0, 1, 1, False),  # Podman's cleanup decided: no restart
        ("exited", "on-failure", 2, 0, 1, False),  # Docker says "restarting" when it will
    ],
)
def test_a_restart_is_pending_only_while_podman_has_not_cleaned_up(
    state: str, policy: str, retries: int, count: int, code: int, pending: bool
) -> None:
    record = info(
        state, restart_policy=policy, restart_retries=retries, restart_count=count, exit_code=code
    )
    assert container_states.restart_pending(record) is pending
    expected = SessionState.RUNNING if pending else SessionState.EXITED
    assert container_states.session_state(record) is expected
    assert container_states.session_state(info("restarting")) is SessionState.RUNNING


def test_a_due_restart_that_does_not_come_is_given_up_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(container_mod.time, "monotonic", lambda: clock[0])
    watch = container_states.RestartWatch()
    due = info("stopped", restart_policy="always", exit_code=0)
    assert watch.settled(due) is False
    clock[0] += container_states._RESTART_GRACE - 1
    assert watch.settled(due) is False
    clock[0] += 2
    assert watch.settled(due) is True
    assert watch.settled(info("running")) is False
    assert watch.settled(info("exited", exit_code=1)) is True


def test_inspect_payloads_carry_the_restart_policy_and_run_times() -> None:
    payload = {
        "Id": "abc",
        "Name": "/bot",
        "RestartCount": 2,
        "State": {
            "Status": "exited",
            "ExitCode": 13,
            "StartedAt": "2026-01-01T00:00:01.5Z",
            "FinishedAt": "2026-01-01T00:00:02Z",
        },
        "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
        "Config": {},
    }
    for module in (docker_engine, podman_engine):
        got = module.info_from_inspect(payload)
        assert (got.restart_policy, got.restart_retries, got.restart_count) == ("on-failure", 2, 2)
        assert got.started_at == datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc)
        assert got.finished_at == datetime(2026, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
    bare = docker_engine.info_from_inspect({"Id": "x", "State": {}, "HostConfig": {}})
    assert (bare.restart_policy, bare.restart_retries) == ("", 0)


def test_podman_garbled_tails_are_spotted() -> None:
    garbled = podman_engine.garbled_tail
    assert garbled([b"2026-11-25T19:21:55Z b\rp2p1\n"], stamped=True)
    assert not garbled([b"2026-11-25T19:21:55Z b\r\n", b"2026-11-25T19:21:55Z p1"], stamped=True)
    assert not garbled([b"no terminal\n", b"x"], stamped=False)


class _Raw:
    """A streamed HTTP body: scripted reads, and the connection urllib3 would hold."""

    def __init__(self, reads: list[object], sock: Any = None) -> None:
        self.reads = reads
        self.connection = type("Conn", (), {"sock": sock})()
        self.closed = False

    def read1(self, amount: int) -> bytes:
        item = self.reads.pop(0)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, bytes)
        return item


class _Answer:
    def __init__(self, raw: _Raw) -> None:
        self.raw = raw
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def test_log_stream_sets_the_socket_timeout_per_read_and_releases_on_close() -> None:
    import socket as socket_mod

    mine, peer = socket_mod.socketpair()
    try:
        answer = _Answer(_Raw([frame(b"a\r\n") + frame(b"b"), frame(b"c\r\n")], sock=mine))
        stream = LogStream(answer, lambda: docker_engine.translate(Op.WAIT, "bot", DOCKER_URL, 5))
        assert stream.read(2.5) == [b"a\r\n", b"b"]
        assert mine.gettimeout() == 2.5
        assert stream.read(None) == [b"c\r\n"] and mine.gettimeout() is None
        stream.close()
        stream.close()
        assert answer.closes == 2 and stream.read(1.0) is None
        assert peer.recv(10) == b""  # shut down: a reader blocked elsewhere wakes up
    finally:
        mine.close()
        peer.close()


@pytest.mark.parametrize("runtime_module", [docker_engine, podman_engine])
def test_log_stream_read_errors_are_translated(runtime_module: Any) -> None:
    url = DOCKER_URL if runtime_module is docker_engine else PODMAN_URL

    def translate() -> AbstractContextManager[None]:
        return runtime_module.translate(Op.WAIT, "bot", url, 5)  # type: ignore[no-any-return]

    silent = LogStream(
        _Answer(_Raw([urllib3.exceptions.ReadTimeoutError(None, "/logs", "timed out")])), translate
    )
    with pytest.raises(SessionTimeoutError) as info_:
        silent.read(0.5)
    assert info_.value.name == "bot"
    assert silent.read(0.5) is None  # a failed stream is over
    broken = urllib3.exceptions.ProtocolError(
        "Connection broken", ConnectionResetError(104, "reset")
    )
    dead = LogStream(_Answer(_Raw([broken])), translate)
    with pytest.raises(ContainerRuntimeNotFoundError):
        dead.read(None)


class _FakeEngine:
    """Scripted inspect answers; waits and followed logs as a Podman 4.3 would give them."""

    runtime = "podman"
    endpoint = "unix:///fake.sock"
    timeout = 5.0
    follow_needs_check = True

    def __init__(self, states: list[ContainerInfo], log: list[bytes] | None = None) -> None:
        self.states = states
        self.log = log or []
        self.waits = 0

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        current = self.states[0]
        if len(self.states) > 1:
            self.states.pop(0)
        return current

    def wait(self, name: str, timeout: float) -> int:
        self.waits += 1
        return 3

    def follow_logs(self, ref: str, name: str, query: LogQuery, **kw: Any) -> LogStream:
        garbled = [frame(e) for e in self.log[:1] + self.log[3:]]  # a gap, as after an exit
        return LogStream(_Answer(_Raw([b"".join(garbled), b""])), contextlib.nullcontext)

    def logs(self, name: str, query: LogQuery, **kw: Any) -> list[bytes]:
        return list(self.log)


def fake_runner(engine: _FakeEngine) -> ContainerRunner:
    runner = ContainerRunner(runtime="podman")
    runner._engine = engine  # type: ignore[assignment]
    return runner


def test_wait_sees_through_podman_restarts_to_the_last_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(container_mod, "POLL", 0.001)
    policy = {"restart_policy": "on-failure", "restart_retries": 2}
    engine = _FakeEngine(
        [
            info("running", **policy),
            info("stopped", exit_code=11, restart_count=0, **policy),  # cleanup pending
            info("running", restart_count=1, **policy),
            info("stopped", exit_code=12, restart_count=1, **policy),
            info("running", restart_count=2, **policy),
            info("stopped", exit_code=13, restart_count=2, **policy),  # no retry left: final
        ]
    )
    assert fake_runner(engine).wait("bot", timeout=10) == 13
    assert engine.waits == 3  # one per run


def test_follow_logs_does_not_trust_a_podman_stream_once_the_container_stopped() -> None:
    log = [b"2026-11-25T18:46:55Z %d\r\n" % i for i in range(1, 7)]
    states = [info("running", started_at=None), info("exited", exit_code=0)]
    engine = _FakeEngine(states, log)
    got = list(fake_runner(engine).follow_logs("bot", since=0))
    assert got == ["1", "2", "3", "4", "5", "6"]  # the plain read, not the gap
