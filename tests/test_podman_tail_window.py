"""Podman 4.3's garbled tail costs a full read only when it touches the lines kept.

The runner asks for more entries than lines (a line may take several; on
Podman a few more: its tail glues a line's parts into one entry); a
garbled entry among the extra ones, older than every line it keeps, changes
nothing it returns, so no second, full read is made for it.
"""

from __future__ import annotations

from typing import Any

import pytest

from kstlib.ops.engines.podman import PodmanEngine
from kstlib.ops.engines.streams import LogQuery

GARBLED = [b"839\r\n", b"840\r841\n", *(f"{i}\r\n".encode() for i in range(842, 1001))]


def _engine(monkeypatch: pytest.MonkeyPatch) -> tuple[PodmanEngine, list[Any]]:
    engine = PodmanEngine(client=None, endpoint="unix:///run/podman/podman.sock", timeout=5)
    asked: list[Any] = []

    def entries(ref: str, params: dict[str, str]) -> list[bytes]:
        asked.append(params.get("tail"))
        return GARBLED if params.get("tail") != "all" else [b"...full read...\r\n"]

    monkeypatch.setattr(engine, "_log_entries", entries)
    return engine, asked


def test_a_garble_older_than_the_kept_lines_costs_no_second_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, asked = _engine(monkeypatch)
    assert engine.logs("bot", LogQuery(162), keep=100) == GARBLED
    # One entry per line on Podman (it glues a line's parts): a few more than kept, not 62.
    assert asked == ["104"]


def test_a_garble_among_the_kept_lines_reads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, asked = _engine(monkeypatch)
    assert engine.logs("bot", LogQuery(162), keep=161) == [b"...full read...\r\n"]
    assert asked == ["162", "all"]
    engine, asked = _engine(monkeypatch)
    engine.logs("bot", LogQuery(162))  # no keep: the whole answer is checked, as before
    assert asked == ["162", "all"]
