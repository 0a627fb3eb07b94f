"""The one follow loop (kstlib.ops.follow.Follow): close() from another thread, deadline, release."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kstlib.ops.exceptions import SessionError, SessionTimeoutError
from kstlib.ops.follow import Follow


def test_close_from_another_thread_ends_a_waiting_follow_and_releases_what_it_holds() -> None:
    released = threading.Event()
    waiting = threading.Event()

    def source(follow: Follow) -> Iterator[str]:
        follow.hold(released.set)
        yield "first"
        waiting.set()
        while follow.wait(3600):  # only close() can end this wait
            yield "never"

    follow = Follow("job", "tmux", None)
    lines = follow.lines(source)
    assert next(lines) == "first"
    closer = threading.Thread(target=lambda: (waiting.wait(), follow.close()))
    closer.start()
    assert list(lines) == []
    closer.join()
    assert released.is_set() and follow.closed


def test_a_read_failing_because_the_follow_was_closed_ends_it_quietly() -> None:
    def source(follow: Follow) -> Iterator[str]:
        yield "a"
        follow.close()
        raise SessionError("the stream was shut down")

    assert list(Follow("job", "docker", None).lines(source)) == ["a"]


def test_a_read_failing_otherwise_is_raised_and_what_was_held_released() -> None:
    released: list[str] = []

    def source(follow: Follow) -> Iterator[str]:
        follow.hold(lambda: released.append("stream"))
        yield "a"
        raise SessionError("the engine went away")

    with pytest.raises(SessionError, match="went away"):
        list(Follow("job", "docker", None).lines(source))
    assert released == ["stream"]


def test_a_read_timing_out_at_the_deadline_becomes_the_follows_timeout() -> None:
    def source(follow: Follow) -> Iterator[str]:
        follow.left()
        yield "never"

    with pytest.raises(SessionTimeoutError) as caught:
        list(Follow("job", "docker", 0).lines(source))
    assert caught.value.reason == "the follow timed out after 0 s (the session is still running)"


def test_a_timeout_raised_before_the_deadline_is_kept_as_it_is() -> None:
    def source(follow: Follow) -> Iterator[str]:
        raise SessionTimeoutError("job", "docker", "timed out after 7 s waiting for docker")
        yield "never"

    with pytest.raises(SessionTimeoutError, match="waiting for docker"):
        list(Follow("job", "docker", 3600).lines(source))


def test_held_after_close_is_released_at_once() -> None:
    follow = Follow("job", "tmux", None)
    follow.close()
    released: list[int] = []
    follow.hold(lambda: released.append(1))
    assert released == [1] and not follow.wait(3600)


def test_an_error_that_is_not_a_translated_one_is_raised_even_after_close() -> None:
    def source(follow: Follow) -> Iterator[str]:
        yield "a"
        follow.close()
        raise AttributeError("a bug, not a stream cut by the close")

    with pytest.raises(AttributeError, match="a bug"):
        list(Follow("job", "docker", None).lines(source))


def test_the_callers_cancel_token_closes_the_follow_and_releases_the_last_held_first() -> None:
    from kstlib.ops.cancel import CancelToken, bound

    token = CancelToken()
    released: list[str] = []

    def source(follow: Follow) -> Iterator[str]:
        follow.hold(lambda: released.append("stream"))
        follow.hold(lambda: released.append("watcher"))
        yield "a"
        while follow.wait(3600):  # only the caller's cancel can end this wait
            yield "never"

    with bound(token):
        follow = Follow("job", "docker", None)
        lines = follow.lines(source)
        assert next(lines) == "a"
    token.cancel()
    assert follow.closed and released == ["watcher", "stream"]
    assert list(lines) == []
