"""wait() on tmux returns once the log holds all the output, also while the collector rotates.

The collector rotates with ``os.replace(log, log + ".1")`` and then creates a
new log: for a moment only ``<run>.log.1`` exists. ``_settle`` (what ``wait``
and ``logs`` of an exited session use) took that moment for "the log was
tidied away" and returned early, before the last lines were written (seen
once in a full run: the log file missing right after ``wait``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from kstlib.ops.logfile import ended
from kstlib.ops.tmux import logs as tmux_logs


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A log folder whose collector is alive (its lock is held)."""
    fd = os.open(tmp_path / "collector.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield tmp_path
    os.close(fd)


def _exited(log: Path) -> SimpleNamespace:
    return SimpleNamespace(log=log, piped=True, status=SimpleNamespace(is_running=False))


def test_settle_waits_through_a_rotation(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = folder / "run.log"
    (folder / "run.log.1").write_text("#kstlib-log n 100\nold\n")  # renamed, new log not made yet
    steps: list[float] = []

    def collector_catches_up(seconds: float) -> None:  # instead of sleeping: the collector's turn
        steps.append(seconds)
        log.write_text("2026-01-01T00:00:00.000000Z\tlast line\n#kstlib-end\n")

    monkeypatch.setattr(tmux_logs.time, "sleep", collector_catches_up)
    tmux_logs.TmuxLogs._settle(object(), _exited(log))  # type: ignore[arg-type]
    assert steps != [] and ended(log)


def test_settle_stops_waiting_when_the_run_was_tidied_away(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = folder / "gone.log"
    slept: list[float] = []
    monkeypatch.setattr(tmux_logs.time, "sleep", slept.append)
    tmux_logs.TmuxLogs._settle(object(), _exited(log))  # type: ignore[arg-type]
    assert slept == [] and not log.exists()
