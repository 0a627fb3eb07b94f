"""tmux errors go through the shared translation toolkit: a type table and a stderr table."""

from __future__ import annotations

import pytest
from libtmux import exc as tmux_exc

from kstlib.ops.exceptions import (
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    TmuxNotFoundError,
)
from kstlib.ops.tmux.call import STDERR_TABLE, context, tmux_error, type_table
from kstlib.ops.translate import translate_text, translating


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (tmux_exc.TmuxCommandNotFound(), TmuxNotFoundError),
        (tmux_exc.VersionTooLow("tmux 2.9"), TmuxNotFoundError),
        (tmux_exc.LibTmuxException("boom"), SessionStartError),
        (OSError(5, "io"), SessionStartError),
    ],
)
def test_every_type_row_raises_its_error_with_the_cause(
    raised: Exception, expected: type[Exception]
) -> None:
    with (
        pytest.raises(expected) as info,
        translating(type_table, context(SessionStartError, "bot")),
    ):
        raise raised
    assert info.value.__cause__ is raised


def test_a_type_error_without_a_session_is_a_plain_session_error() -> None:
    with pytest.raises(SessionError) as info, translating(type_table, context(None, None)):
        raise tmux_exc.LibTmuxException("socket gone")
    assert type(info.value) is SessionError
    assert str(info.value) == "tmux failed: socket gone"


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("can't find session: bot", SessionNotFoundError),
        ("no server running on /tmp/tmux-1/x", SessionNotFoundError),
        ("duplicate session: bot", SessionExistsError),
    ],
)
def test_every_stderr_row_names_the_session(stderr: str, expected: type[Exception]) -> None:
    found = translate_text(STDERR_TABLE, stderr, context(SessionError, "bot"))
    assert isinstance(found, expected)
    assert found.name == "bot"  # type: ignore[attr-defined]


def test_stderr_rows_need_a_session_else_the_operation_error_speaks() -> None:
    ctx = context(SessionStartError, None)
    assert translate_text(STDERR_TABLE, "no server running", ctx) is None
    assert translate_text(STDERR_TABLE, "unknown command: frob", context(None, "bot")) is None
    err = tmux_error(context(SessionStartError, "bot"), "unknown command: frob")
    assert isinstance(err, SessionStartError)
    assert err.reason == "unknown command: frob"
