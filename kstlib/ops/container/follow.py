"""Following a container's output: :meth:`ContainerFollow.follow_logs`.

Through the engine's streaming logs API, across restarts by the container's
restart policy, bounded by an optional deadline; no thread is used.

Example:
    >>> from kstlib.ops.container import ContainerRunner
    >>> issubclass(ContainerRunner, ContainerFollow)
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from kstlib.ops.cancel import check as check_cancelled
from kstlib.ops.cancel import current as current_token
from kstlib.ops.cancel import on_cancel
from kstlib.ops.container.base import POLL, ContainerBase
from kstlib.ops.container.logs import Cursor, LineAssembler, parse_stamp, render_line, stamp_moment
from kstlib.ops.container.states import RestartWatch, session_state
from kstlib.ops.engines.adapter import ContainerInfo
from kstlib.ops.engines.streams import LogQuery
from kstlib.ops.exceptions import SessionNotFoundError, SessionTimeoutError
from kstlib.ops.follow import Follow
from kstlib.ops.models import SessionState
from kstlib.ops.runner import LogRequest, Runner
from kstlib.ops.validators import (
    validate_lines,
    validate_lookup_name,
    validate_optional_timeout,
    validate_since,
)

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import EngineAdapter
    from kstlib.ops.engines.streams import LogStream

__all__ = ["ContainerFollow"]


#: With a cancel token bound (an async caller): the longest wait for the answer's
#: head (Podman sends it with the first entry), so that a cancel is seen.
_CANCEL_SLICE = 0.1


def _open_stream(
    engine: EngineAdapter,
    info: ContainerInfo,
    tail: int | None,
    since: datetime | None,
    left: Callable[[], float | None],
) -> LogStream:
    cancellable = current_token() is not None
    first = datetime.now(timezone.utc)
    while True:
        limit = left()
        query = LogQuery(tail, since, timestamps=True)
        if not cancellable:
            return engine.follow_logs(info.id, info.name, query, timeout=limit)
        step = _CANCEL_SLICE if limit is None else min(limit, _CANCEL_SLICE)
        try:
            return engine.follow_logs(info.id, info.name, query, timeout=step)
        except SessionTimeoutError:
            check_cancelled()  # else ask again: nothing was read yet,
            if since is None and tail == 0:
                since, tail = first, None  # and what came meanwhile is "new" too


class ContainerFollow(ContainerBase, Runner):
    """The log follower of :class:`~kstlib.ops.container.runner.ContainerRunner`."""

    def _follow_logs(self, name: str, request: LogRequest) -> Iterator[str]:
        """:meth:`~kstlib.ops.runner.Runner.follow_logs` on a container engine.

        The deadline counts from the first line asked for and holds even if
        the container is silent: no read waits past it.

        Example:
            >>> for line in ContainerRunner(runtime="docker").follow_logs("job"):  # doctest: +SKIP
            ...     print(line)
            step 1
            step 2
        """
        validate_lookup_name(name)
        start = validate_since(request.since)
        limit = validate_optional_timeout(request.timeout)
        count = validate_lines(request.lines)
        with self._using() as engine:
            info = self._inspect(engine, name)
        return self._follow(
            engine,
            info,
            start=start,
            timestamps=bool(request.timestamps),
            ansi=bool(request.ansi),
            timeout=limit,
            lines=count,
        )

    def _follow(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        *,
        start: datetime | None,
        timestamps: bool,
        ansi: bool,
        timeout: float | None,
        lines: int | None = None,
    ) -> Iterator[str]:
        follow = Follow(info.name, engine.runtime, timeout)
        return follow.lines(
            lambda follow: self._lines(
                engine, info, follow, start=start, style=(timestamps, ansi), lines=lines
            )
        )

    def _lines(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        follow: Follow,
        *,
        start: datetime | None,
        style: tuple[bool, bool],
        lines: int | None,
    ) -> Iterator[str]:
        """The container's lines for :meth:`Follow.lines <kstlib.ops.follow.Follow.lines>`."""
        left = follow.left  # asked before every read and every line: nothing past the deadline
        # Lines always come with the engine's times (shown only if asked for),
        # so that each new read resumes right after the last line yielded: a
        # restart takes a new stream, and after the container stops, Podman's
        # stream may skip lines; what it sends then is read again, plainly.
        cursor = Cursor()
        watch = RestartWatch()
        check = engine.follow_needs_check
        since, tail = (start, None) if start is not None and lines is None else (None, 0)
        # "Written after the call", for a read that cannot use tail=0.
        anchor = start or datetime.now(timezone.utc)
        with self._forgetting(engine):
            if lines:
                # The backlog: its last lines, then the stream resumes right after them.
                left()
                entries = self._backlog(engine, info, lines, start)
                backlog = LineAssembler(stamped=True, cursor=cursor).feed(entries)
                for stamp, text in backlog[-lines:]:
                    left()
                    yield render_line(stamp, text, *style)
                resumed = cursor.resume()
                since, tail = (resumed or start), None
                if since is None:
                    since, tail = None, None  # nothing written yet: everything is new
            current: ContainerInfo | None = info
            while current is not None:
                info = current
                if info.state == "running":
                    opened = time.monotonic()
                    heard = yield from self._stream(
                        engine,
                        info,
                        cursor,
                        since=since,
                        tail=tail,
                        check=check,
                        follow=follow,
                        style=style,
                    )
                    if not heard and time.monotonic() - opened < POLL:
                        left()
                        if not follow.wait(POLL):
                            return
                current = self._after_stream(engine, info, watch, follow)
                since, tail = cursor.resume() or anchor, None
            # The container is done: what the streams did not bring, in one plain read.
            left()
            try:
                entries = engine.logs(info.id, LogQuery(None, since, timestamps=True))
            except SessionNotFoundError:
                entries = []  # removed meanwhile: nothing more to read
            final = LineAssembler(stamped=True, cursor=cursor)
            for stamp, text in final.feed(entries) + final.flush():
                left()
                yield render_line(stamp, text, *style)

    @staticmethod
    def _backlog(
        engine: EngineAdapter, info: ContainerInfo, lines: int, start: datetime | None
    ) -> list[bytes]:
        """The entries of the last ``lines`` lines, counted as the stream that follows will count.

        The stream resumes at the second of the last entry and skips as many
        entries of that second as the backlog held. With whole-second times
        (Podman) a tail read may begin inside that second, or miss an entry of
        it, while the stream sends the whole second again: it would then skip
        too few and send lines already yielded (the last backlog line, or
        more) a second time. So there the entries from that second on are
        read again the way the stream reads them (``since``, no tail).
        """
        extra = min(max(lines, 16), 1000)  # entries are not lines: ask for more
        try:
            entries = engine.logs(
                info.id, LogQuery(lines + extra, start, timestamps=True), keep=lines
            )
            if not entries or not getattr(engine, "whole_second_stamps", False):
                return entries
            stamps = [parse_stamp(entry.partition(b" ")[0]) for entry in entries]
            last = next((stamp for stamp in reversed(stamps) if stamp is not None), None)
            if last is None or (start is not None and start > stamp_moment(last)):
                return entries
            again = engine.logs(info.id, LogQuery(None, stamp_moment(last), timestamps=True))
        except SessionNotFoundError:
            return []  # removed meanwhile (Docker may say 409): the follow ends
        before = [e for e, s in zip(entries, stamps, strict=True) if s is None or s < last]
        return before + again

    def _stream(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        cursor: Cursor,
        *,
        since: datetime | None,
        tail: int | None,
        check: bool,
        follow: Follow,
        style: tuple[bool, bool],
    ) -> Generator[str, None, bool]:
        """Yield the lines of one followed-log stream of a running container; whether any came.

        With ``check``, each chunk is used only once an inspect shows the same
        run still going; otherwise it is left for the next read.
        """
        heard = False
        left = follow.left
        try:
            stream = _open_stream(engine, info, tail, since, left)
        except SessionNotFoundError:
            # Removed meanwhile (Docker: 409 "dead or marked for removal"): the
            # inspect that follows tells the session is over.
            return heard
        follow.hold(stream.close)
        on_cancel(stream.interrupt)  # an async caller's cancel ends a blocked read
        try:
            lines = LineAssembler(stamped=True, cursor=cursor)
            while (entries := stream.read(left())) is not None:
                if not entries:
                    continue
                heard = True
                if check and not self._same_run(engine, info):
                    break
                for stamp, text in lines.feed(entries):
                    left()
                    yield render_line(stamp, text, *style)
        finally:
            stream.close()
        check_cancelled()  # interrupted by a cancel, not ended by the engine
        return heard

    def _same_run(self, engine: EngineAdapter, info: ContainerInfo) -> bool:
        try:
            current = self._inspect(engine, info.name)
        except SessionNotFoundError:
            return False
        return (current.id, current.state, current.started_at) == (
            info.id,
            "running",
            info.started_at,
        )

    def _after_stream(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        watch: RestartWatch,
        follow: Follow,
    ) -> ContainerInfo | None:
        """After a followed log ended: the container to follow on, or ``None`` when it is done."""
        while True:
            try:
                current = self._inspect(engine, info.name)
            except SessionNotFoundError:
                return None  # removed: the session is over
            if current.id != info.id or watch.settled(current):
                return None  # exited for good, or replaced by another session of that name
            if current.state == "running":
                return current
            if session_state(current) is not SessionState.RUNNING:
                return None  # paused, or never started: nothing more will come
            follow.left()
            if not follow.wait(POLL):
                return None  # the follow was closed
