"""Reading tmux's pane lines: the listing's fast statuses equal the dataclass's own."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

import kstlib.ops.tmux.pane as pane
from kstlib.ops.models import SessionState, SessionStatus


def line(*, dead: str = "0", last: str = "", name: str = "bot") -> str:
    return pane.SEP.join(
        ["42", dead, "", "", "1767225600", "1", "1", "3", "/x/y.log", "2", "1", "7", "$1", last, name]
    )


@pytest.mark.parametrize("fast", [True, False])
def test_a_listed_status_is_an_ordinary_session_status(monkeypatch: pytest.MonkeyPatch,
                                                       fast: bool) -> None:
    monkeypatch.setattr(pane, "_FAST", fast)
    st = pane.status_of(line(dead="1", last="3 1767225660", name="a\x1fb"), "sock")
    again = SessionStatus(**{f.name: getattr(st, f.name) for f in dataclasses.fields(st)})
    assert st == again and hash(st) == hash(again) and repr(st) == repr(again)
    assert st.name == "a\x1fb" and st.state is SessionState.EXITED and st.exit_code == 3
    assert st.last_exited_at == datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.name = "x"  # type: ignore[misc]


def test_statuses_do_not_share_state() -> None:
    a, b = pane.status_of(line(name="a"), None), pane.status_of(line(name="b"), None)
    assert (a.name, b.name) == ("a", "b") and a.pid == 42 and a.last_exit_code is None
    assert pane._TEMPLATE.name == ""
