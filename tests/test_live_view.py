"""The live view's core on hand-made event feeds (markers an engine cannot be made to send on cue),
and the terminal face's frames."""

from __future__ import annotations

import io
from collections.abc import Iterator

from kstlib.cli.watch import fit, frame, print_changes, redraw
from kstlib.ops.eventstream import SessionEvent
from kstlib.ops.live import LiveSessions, RowChange
from kstlib.ops.models import BackendType, SessionState, SessionStatus

C = BackendType.CONTAINER


def row(name: str, state: SessionState = SessionState.RUNNING, **kw: object) -> SessionStatus:
    return SessionStatus(name, state, C, runtime=kw.pop("runtime", "docker"), **kw)  # type: ignore[arg-type]


def ev(name: str, kind: str, **kw: object) -> SessionEvent:
    return SessionEvent(name, C, kind, engine=kw.pop("engine", "docker"), **kw)  # type: ignore[arg-type]


class Lister:
    """A listing whose answers the test sets, counted."""

    def __init__(self, *answers: list[SessionStatus]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self) -> list[SessionStatus]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


def lines(view: LiveSessions) -> list[list[str]]:
    return [[c.line() for c in u.changes] for u in view.updates()]


def test_an_exit_is_applied_in_place_without_a_listing() -> None:
    lister = Lister([row("a"), row("b")])
    view = LiveSessions(lister, [iter([ev("a", "exited", exit_code=3)])])
    assert lines(view)[1:] == [["a container/docker: running -> exited (3)"]]
    assert lister.calls == 1
    assert [(r.name, r.state, r.exit_code) for r in view.table] == [
        ("a", SessionState.EXITED, 3),
        ("b", SessionState.RUNNING, None),
    ]


def test_snapshots_are_the_listing_s_business() -> None:
    lister = Lister([row("a")])
    feed = [ev("a", "started", snapshot=True), ev("zz", "exited", exit_code=1, snapshot=True)]
    assert lines(LiveSessions(lister, [iter(feed)])) == [["a container/docker: new, running"]]
    assert lister.calls == 1


def test_an_unknown_session_a_resync_and_a_lost_marker_list_again() -> None:
    lister = Lister([], [row("new")], [row("new", SessionState.EXITED, exit_code=0)], [])
    feed: Iterator[SessionEvent] = iter(
        [ev("new", "started"), ev("", "resync"), ev("", "lost", dropped=4)]
    )
    view = LiveSessions(lister, [feed])
    seen = [[c.line() for c in u.changes] for u in view.updates()]
    assert lister.calls == 4
    assert seen[-1] == ["new container/docker: gone (was exited (0))"]


def test_an_exit_just_before_a_removal_is_still_a_change_seen() -> None:
    lister = Lister([row("a")], [])
    feed = [ev("a", "exited", exit_code=143), ev("a", "removed")]
    assert lines(LiveSessions(lister, [iter(feed)]))[1:] == [
        ["a container/docker: running -> exited (143)"],
        ["a container/docker: gone (was exited (143))"],
    ]


def test_an_event_finds_its_row_by_engine_and_restarts_count() -> None:
    lister = Lister([row("a", runtime="docker"), row("a", runtime="podman")])
    feed = [ev("a", "restarted", engine="podman", restart_count=2)]
    view = LiveSessions(lister, [iter(feed)])
    assert lines(view)[1:] == [["a container/podman: restarted (2)"]]
    assert [r.restart_count for r in view.table] == [0, 2]


def test_nothing_changes_nothing_is_yielded() -> None:
    lister = Lister([row("a")])
    assert len(lines(LiveSessions(lister, [iter([ev("a", "started")])]))) == 1


def test_close_from_another_thread_ends_the_updates() -> None:
    import threading

    class Endless:
        def __init__(self) -> None:
            self.closed = threading.Event()

        def __iter__(self) -> Endless:
            return self

        def __next__(self) -> SessionEvent:
            if self.closed.wait(0.05):
                raise StopIteration
            return ev("a", "started")

        def close(self) -> None:
            self.closed.set()

    stream = Endless()
    view = LiveSessions(Lister([row("a")]), [stream])
    updates = view.updates()
    next(updates)
    threading.Timer(0.2, view.close).start()
    assert list(updates) == []
    assert stream.closed.is_set() and view.closed


def test_a_row_change_as_json() -> None:
    change = RowChange(row("a"), row("a", SessionState.EXITED, exit_code=1))
    data = change.to_dict()
    assert (data["name"], data["before"]["state"], data["after"]["exit_code"]) == (
        "a",
        "running",
        1,
    )


def test_the_notebook_face_renders_the_table_and_what_changed() -> None:
    view = LiveSessions(Lister([row("a<b>")]), [iter([ev("a<b>", "exited", exit_code=2)])])
    list(view.updates())
    page = view._repr_html_()
    assert "<td>a&lt;b&gt;</td>" in page and "running -&gt; exited (2)" in page

    class Printer:
        def __init__(self) -> None:
            self.out = io.StringIO()

        def text(self, s: str) -> None:
            self.out.write(s)

        def break_(self) -> None:
            self.out.write("\n")

    printer = Printer()
    view._repr_pretty_(printer, False)
    assert printer.out.getvalue().startswith("a<b>  container  exited (2)\nupdated ")


def test_a_frame_goes_up_over_the_last_one_and_erases_what_it_leaves() -> None:
    assert frame(["a", "b"], 3) == "\r\x1b[3A\ra\x1b[K\n\rb\x1b[K\n\x1b[J"
    assert "\x1b[2J" not in frame(["x"] * 5, 5)


def test_a_frame_fits_the_terminal_so_the_cursor_count_stays_true() -> None:
    fitted = fit(["x" * 50, *["row"] * 30], columns=20, rows=10)
    assert len(fitted) == 9 and all(len(line) <= 19 for line in fitted)
    assert fitted[0].endswith("...") and fitted[-1] == "... 23 more lines"


def test_the_pipe_face_prints_the_table_once_then_a_line_per_change() -> None:
    feed = [ev("a", "exited", exit_code=3)]
    out = io.StringIO()
    print_changes(LiveSessions(Lister([row("a")]), [iter(feed)]), out, as_json=False)
    text = out.getvalue().splitlines()
    assert text[0].startswith("NAME") and text[1].startswith("a ")
    assert text[2].endswith(" a container/docker: running -> exited (3)") and len(text) == 3


def test_the_pipe_face_in_json_is_one_object_per_change() -> None:
    import json

    feed = [ev("a", "exited", exit_code=3)]
    out = io.StringIO()
    print_changes(LiveSessions(Lister([row("a")]), [iter(feed)]), out, as_json=True)
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [
        (o["name"], o["before"] and o["before"]["state"], o["after"]["state"]) for o in objects
    ] == [
        ("a", None, "running"),
        ("a", "running", "exited"),
    ]


def test_the_terminal_face_writes_frames_over_one_another() -> None:
    out = io.StringIO()
    redraw(LiveSessions(Lister([row("a")]), [iter([ev("a", "exited", exit_code=3)])]), out)
    first, second = out.getvalue().split("\x1b[J", 1)
    assert first.count("\n") == 3  # the heading, the table's heading, the row
    assert second.startswith("\r\x1b[3A") and "exited (3)" in second
    assert "\x1b[2J" not in out.getvalue()


def test_an_engine_that_never_stops_talking_still_gets_its_updates() -> None:
    import itertools
    import threading

    class Chatty:
        """Events 10 ms apart, for ever: never a pause for a batch to settle."""

        def __init__(self) -> None:
            self.closed = threading.Event()
            self.codes = itertools.count(1)

        def __iter__(self) -> Chatty:
            return self

        def __next__(self) -> SessionEvent:
            if self.closed.wait(0.01):
                raise StopIteration
            return ev("a", "exited", exit_code=next(self.codes))  # each batch changes the row

        def close(self) -> None:
            self.closed.set()

    view = LiveSessions(Lister([row("a")]), [Chatty()])
    updates = view.updates()
    next(updates)
    try:
        assert next(updates).changes  # a batch ends although the events go on
    finally:
        view.close()
