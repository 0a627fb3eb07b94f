"""The collector tells each exit of a run once, even when tmux lost the exit mark.

tmux 3.3a can drop the last bytes a pane printed before its process exited
(it closes the pty of an exited process once ``FIONREAD`` says 0, which the
kernel may say while those bytes are still on their way): seen as sessions
of a fifty-at-once exit with ``started`` but no ``exited`` in the journal and
only the header in their log. The wrapper also appends each exit to the run's
``.exit`` file; these tests play the two channels in every order.
"""

from __future__ import annotations

import os
from pathlib import Path

from kstlib.ops.tmux.collector import EVENTS_FILE, HEADER, _Journal, _Writer

NONCE = b"n0nce"


def _run(folder: Path, name: str = "bot.1") -> _Writer:
    (folder / f"{name}.log").write_bytes(HEADER + b" " + NONCE + b" 4096\n")
    os.mkfifo(folder / f"{name}.fifo", 0o600)
    (folder / f"{name}.exit").write_bytes(b"")
    return _Writer(str(folder), name)


def _mark(*fields: str) -> bytes:
    return b"\x1b]7707;kstlib-ev;" + NONCE + b";" + ";".join(fields).encode() + b"\x07"


def _wrapper_exit(folder: Path, line: str, name: str = "bot.1") -> None:
    with open(folder / f"{name}.exit", "a") as f:
        f.write(line + "\n")


def _records(journal: _Journal, folder: Path) -> list[tuple[str, str, str]]:
    journal.flush()
    lines = (folder / EVENTS_FILE).read_bytes().splitlines()
    return [
        (p[1].decode(), p[2].decode(), p[3].decode()) for p in (ln.split(b"\t") for ln in lines)
    ]


def _pty(writer: _Writer, journal: _Journal, data: bytes) -> None:
    writer.feed(data)
    journal.note(writer)


def test_an_exit_whose_mark_tmux_lost_comes_from_the_exit_file(tmp_path: Path) -> None:
    writer, journal = _run(tmp_path), _Journal(str(tmp_path))
    _pty(writer, journal, _mark("run", "0"))
    _wrapper_exit(tmp_path, "0 30 0 1")  # ... and the exit and end marks never arrive
    journal.exits(writer)
    assert _records(journal, tmp_path) == [("started", "-", "-"), ("exited", "30", "-")]
    _pty(writer, journal, _mark("exit", "30", "0", "0"))  # were it late after all: told once
    journal.exits(writer)
    assert _records(journal, tmp_path) == [("started", "-", "-"), ("exited", "30", "-")]


def test_a_mark_and_the_file_line_of_one_exit_make_one_record(tmp_path: Path) -> None:
    writer, journal = _run(tmp_path), _Journal(str(tmp_path))
    _pty(writer, journal, _mark("run", "0"))
    _wrapper_exit(tmp_path, "0 143 143 1")
    _pty(writer, journal, _mark("exit", "143", "143", "0"))
    journal.exits(writer)
    expected = [("started", "-", "-"), ("exited", "143", "-"), ("stopped", "-", "-")]
    assert _records(journal, tmp_path) == expected


def test_a_begin_lost_too_is_told_before_its_exit(tmp_path: Path) -> None:
    writer, journal = _run(tmp_path), _Journal(str(tmp_path))
    _wrapper_exit(tmp_path, "0 9 0 1")
    _wrapper_exit(tmp_path, "1 9 0 1")
    journal.exits(writer)
    _pty(writer, journal, _mark("run", "0") + _mark("exit", "9", "0", "0") + _mark("run", "1"))
    assert _records(journal, tmp_path) == [
        ("started", "-", "-"),
        ("exited", "9", "-"),
        ("restarted", "-", "1"),
        ("exited", "9", "-"),
    ]
    assert writer.begun


def test_a_stop_before_the_run_began_tells_no_begin(tmp_path: Path) -> None:
    writer, journal = _run(tmp_path), _Journal(str(tmp_path))
    _wrapper_exit(tmp_path, "0 130 1 0")
    journal.exits(writer)
    assert _records(journal, tmp_path) == [("exited", "130", "-"), ("stopped", "-", "-")]
    assert not writer.begun


def test_a_half_written_line_waits_and_an_unnumbered_mark_is_told(tmp_path: Path) -> None:
    writer, journal = _run(tmp_path), _Journal(str(tmp_path))
    with open(tmp_path / "bot.1.exit", "a") as f:
        f.write("0 7 0")  # the wrapper is still writing it
    journal.exits(writer)
    _pty(writer, journal, _mark("run", "0") + _mark("exit", "7", "0"))  # an older wrapper's mark
    with open(tmp_path / "bot.1.exit", "a") as f:
        f.write(" 1\n")
    journal.exits(writer)
    assert _records(journal, tmp_path) == [("started", "-", "-"), ("exited", "7", "-")]
