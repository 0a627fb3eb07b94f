"""One rule for exited sessions on every backend: no pid, no attach (issue: dead pids)."""

from __future__ import annotations

import pytest

from kstlib.ops import SessionAttachError, SessionConfig, TmuxRunner

pytestmark = pytest.mark.tmux


def test_an_exited_session_reports_no_pid_in_status_and_list(tmux: TmuxRunner, name: str) -> None:
    st = tmux.start(SessionConfig(name=name, command="exit 4"))
    assert st.pid is not None or st.state.value == "exited"
    assert tmux.wait(name, timeout=10) == 4
    assert tmux.status(name).pid is None
    listed = [s for s in tmux.list_sessions() if s.name == name]
    assert listed and listed[0].pid is None and listed[0].exit_code == 4


def test_attach_to_an_exited_session_is_refused_as_on_containers(tmux: TmuxRunner,
                                                                 name: str) -> None:
    tmux.start(SessionConfig(name=name, command="exit 2"))
    tmux.wait(name, timeout=10)
    with pytest.raises(SessionAttachError) as info:
        tmux.attach(name)
    assert "exited (exit code 2)" in str(info.value) and info.value.name == name
