"""A hostile engine: it trickles its answers, sends JSON of the wrong shape, or words with escapes.

The engine is :class:`fake_engine.FakeEngine` on loopback, speaking the Docker
API: what a real engine cannot be made to do. Every failure must be a typed
:class:`~kstlib.ops.exceptions.OpsError`, bounded in time and size, never an
"unexpected ... bug".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kstlib.ops import (
    ContainerRunner,
    ContainerRuntimeNotFoundError,
    ImagePullError,
    OpsError,
    SessionError,
    pull_image,
)

from .fake_engine import VERSION, Answer, FakeEngine
from .test_cli import Cli, cli

__all__ = ["cli"]

# A hang guard only: the fake engine would trickle for minutes.
HANG_S = 60.0
INSPECT = "/containers/bot/json"
GOOD_INSPECT = {
    "Id": "ab" * 32,
    "Name": "/bot",
    "Created": "2026-01-01T00:00:00Z",
    "State": {"Status": "running", "Pid": 42, "ExitCode": 0},
    "Config": {"Image": "app:1", "Labels": {}, "Tty": True},
    "HostConfig": {"RestartPolicy": {"Name": "no"}},
}


@pytest.fixture
def fake() -> Iterator[FakeEngine]:
    with FakeEngine() as engine:
        yield engine


def runner_on(fake: FakeEngine, timeout: float = 2) -> ContainerRunner:
    return ContainerRunner(runtime="docker", base_url=fake.url, timeout=timeout)


def test_trickled_answer_is_cut_at_the_call_deadline(fake: FakeEngine) -> None:
    # One byte every half second: no single read ever waits 2 s.
    body = json.dumps(GOOD_INSPECT).encode()
    fake.routes[INSPECT] = Answer(body, trickle=0.5)
    with pytest.raises(SessionError, match="timed out") as caught:
        runner_on(fake).status("bot")
    assert "too slowly" in str(caught.value.__cause__)
    # The connection was shut down, not left trickling.
    assert fake.closed.wait(HANG_S)


def test_trickled_version_is_cut_while_connecting(fake: FakeEngine) -> None:
    # The docker SDK asks the API version in its constructor: that call is bounded too.
    fake.routes["/version"] = Answer(json.dumps(VERSION).encode(), trickle=0.5)
    with pytest.raises(ContainerRuntimeNotFoundError):
        runner_on(fake).status("bot")
    assert fake.closed.wait(HANG_S)


@pytest.mark.parametrize(
    ("case", "payload"),
    [
        ("a list for the inspect", ["bot"]),
        ("a list for State", {**GOOD_INSPECT, "State": ["running"]}),
        ("a string for a number", {**GOOD_INSPECT, "RestartCount": "3"}),
        ("a huge pid", {**GOOD_INSPECT, "State": {"Status": "running", "Pid": 10**40}}),
        ("labels of the wrong type", {**GOOD_INSPECT, "Config": {"Labels": ["a=b"]}}),
        ("a policy that is a string", {**GOOD_INSPECT, "HostConfig": {"RestartPolicy": "x"}}),
    ],
)
def test_malformed_inspect_is_a_typed_error(fake: FakeEngine, case: str, payload: Any) -> None:
    fake.routes[INSPECT] = Answer.json(payload)
    with pytest.raises(OpsError, match="malformed"):
        runner_on(fake).status("bot")


def test_odd_times_read_as_no_time(fake: FakeEngine) -> None:
    # A creation time no clock can show is not worth failing a status for.
    fake.routes[INSPECT] = Answer.json({**GOOD_INSPECT, "Created": 10**30})
    assert runner_on(fake).status("bot").created_at is None
    fake.routes[INSPECT] = Answer.json({**GOOD_INSPECT, "Created": "2026-13-45T25:61:00+99:00"})
    assert runner_on(fake).status("bot").created_at is None


@pytest.mark.parametrize(
    "payload",
    [{"Id": "x"}, [["bot"]], [{"Id": "x", "Names": "bot"}], [{"Id": "x", "Names": [{}]}]],
    ids=["an object", "a list in the list", "names as a string", "a name that is an object"],
)
def test_malformed_listing_is_a_typed_error(fake: FakeEngine, payload: Any) -> None:
    fake.routes["/containers/json"] = Answer.json(payload)
    with pytest.raises(OpsError, match="malformed"):
        runner_on(fake).list_sessions()


def test_cli_says_malformed_not_a_bug(fake: FakeEngine, cli: Cli) -> None:
    fake.routes[INSPECT] = Answer.json({**GOOD_INSPECT, "State": "running"})
    line = cli.error("ops", "status", "bot", "-b", "docker", code=1, env={"DOCKER_HOST": fake.url})
    assert "malformed" in line and "State" in line
    assert "unexpected" not in line and "bug" not in line


HOSTILE = "blob went sour \x1b]52;c;c2VjcmV0\x07\x1b[2J" + "A" * 20_000


def test_pull_error_words_are_bounded_and_neutralised(fake: FakeEngine) -> None:
    # The error as the item of a streamed answer (HTTP 200)...
    fake.routes["/images/create"] = Answer.json({"error": HOSTILE, "errorDetail": {}})
    with pytest.raises(ImagePullError) as streamed:
        pull_image("127.0.0.1:5999/kstlib/x:1", runtime="docker", base_url=fake.url, timeout=5)
    # ... and as an HTTP error answer.
    fake.routes["/images/create"] = Answer.json({"message": HOSTILE}, status=500)
    with pytest.raises(ImagePullError) as answered:
        pull_image("127.0.0.1:5999/kstlib/x:1", runtime="docker", base_url=fake.url, timeout=5)
    for caught in (streamed, answered):
        message = str(caught.value)
        assert "blob went sour" in message
        assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in message), repr(message[:200])
        assert "\\x1b]52" in message  # shown, written out, not acted on
        assert len(message) < 2_000
