"""Who owns a test session: the owner mark, the lock that says its run is alive, the records.

A test process's mark names it wherever it runs::

    <pid>:<start time>:<boot id>:<pid namespace inode>:<hostname>

and the process holds an exclusive ``flock`` on a lock file named after that mark,
in the records' folder, from before its first session starts until it ends. The
kernel drops the lock when the process dies however it dies (``SIGKILL``
included), and a lock is seen by every process that opens the same file: other pid
namespaces (a CI job in a container sharing the home folder) and, on a network home
that supports locks, other hosts. So the rule is:

* a run is alive while its lock is held; a free lock means its owner is dead;
* without a lock file (deleted, or never made), the owner is judged by its pid only
  in the reaper's own boot, pid namespace and host; an owner anywhere else is alive
  as far as the reaper can tell, and its sessions are left alone;
* an old mark (``<pid>:<start time>``, from kstlib before the lock) names no
  namespace: it is never judged dead, so its sessions are never reaped (stop them by
  hand: ``kstlib ops list`` shows them, ``kstlib ops stop NAME`` removes them).

Example:
    >>> parse_token(owner_token()).pid == os.getpid()
    True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kstlib.ops.exceptions import OpsError
from kstlib.ops.statedir import create_private, existing_private_dir, private_dir

__all__ = [
    "Owner",
    "claim",
    "forget_record",
    "hold_lock",
    "owner_token",
    "parse_token",
    "read_records",
    "records_dir",
    "release_lock",
    "write_record",
]

_FOLDER = "pytest-owners"


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux), ``None`` if none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data.rsplit(b")", 1)[-1].split()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), ``None`` if unknown."""
    fields = _proc_stat(pid)
    return fields[19].decode() if fields is not None and len(fields) > 19 else None


def _clean(text: str) -> str:
    """A mark field: no separator, printable ASCII, bounded."""
    kept = "".join(c if c.isascii() and c.isprintable() and c != ":" else "-" for c in text)
    return kept[:64] or "?"


@lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return _clean(handle.read().strip())
    except (OSError, UnicodeDecodeError):
        return "?"


def _pid_namespace(pid: int | str = "self") -> str:
    try:
        return str(os.stat(f"/proc/{pid}/ns/pid").st_ino)
    except OSError:
        return "?"


@dataclass(frozen=True)
class Owner:
    """A parsed owner mark; ``boot``, ``pidns`` and ``host`` are ``None`` in an old mark.

    Example:
        >>> parse_token("12:345").boot is None
        True
    """

    pid: int
    start: str
    boot: str | None = None
    pidns: str | None = None
    host: str | None = None

    @property
    def here(self) -> bool:
        """Whether the owner ran in this boot, pid namespace and host (its pid means ours).

        Example:
            >>> parse_token(owner_token()).here
            True
            >>> parse_token("12:345").here
            False
        """
        if self.boot is None or "?" in (self.boot, self.pidns, self.host):
            return False
        return (self.boot, self.pidns, self.host) == (
            _boot_id(),
            _pid_namespace(),
            _clean(socket.gethostname()),
        )


def owner_token(pid: int | None = None) -> str:
    """The mark of test process ``pid`` (default: this one): pid, start, boot, namespace, host.

    Example:
        >>> owner_token().split(":")[0] == str(os.getpid())
        True
        >>> len(owner_token().split(":"))
        5
    """
    pid = os.getpid() if pid is None else pid
    start = _process_start(pid) or "?"
    ns = _pid_namespace("self" if pid == os.getpid() else pid)
    return f"{pid}:{start}:{_boot_id()}:{ns}:{_clean(socket.gethostname())}"


def parse_token(token: str) -> Owner | None:
    """The owner a mark names, ``None`` for a mark that is not one.

    Example:
        >>> parse_token("41:99:b:4026531836:vm")
        Owner(pid=41, start='99', boot='b', pidns='4026531836', host='vm')
        >>> parse_token("nonsense") is None
        True
    """
    parts = token.split(":")
    if len(parts) not in (2, 5) or not parts[0].isdigit() or int(parts[0]) <= 0:
        return None
    if len(parts) == 2:
        return Owner(int(parts[0]), parts[1])
    return Owner(int(parts[0]), parts[1], parts[2], parts[3], parts[4])


def _pid_dead(owner: Owner) -> bool:
    """Whether ``owner`` (in this namespace) is gone: no such pid, a zombie, or another process."""
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _proc_stat(owner.pid)
    if fields and fields[0] in (b"Z", b"X"):
        return True  # killed, not yet collected by its parent
    if owner.start == "?":
        return False
    return _process_start(owner.pid) not in (owner.start, None)


def records_dir(create: bool) -> Path | None:
    """The records' folder (0700, ours, no symlink), ``None`` when missing or unusable.

    Example:
        >>> records_dir(create=False) is None or records_dir(create=False).name == "pytest-owners"
        True
    """
    try:
        return private_dir(_FOLDER) if create else existing_private_dir(_FOLDER)
    except OpsError:
        return None


def _lock_path(folder: Path, token: str) -> Path:
    return folder / f"{hashlib.sha256(token.encode()).hexdigest()[:32]}.lock"


#: this process's lock: (pid, token, fd), so that a forked child does not think it holds it
_HELD: list[tuple[int, str, int]] = []


def hold_lock(folder: Path, token: str) -> bool:
    """Take (once per process) the lock that says the run ``token`` names is alive.

    Blocking: a reaper holds a free lock only for the moment it looks. Returns
    whether the lock is held (``False``: no lock file could be made, or the file
    system has no locks; the owner is then judged by its pid, in its namespace).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> hold_lock(folder, owner_token())
        True
        >>> release_lock(folder, owner_token())
    """
    if any(pid == os.getpid() and held == token for pid, held, _ in _HELD):
        return True
    path = _lock_path(folder, token)
    try:
        fd = create_private(path, exclusive=False)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # no locks on this file system: no lock file, the pid rule applies
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        return False
    _HELD.append((os.getpid(), token, fd))
    return True


def release_lock(folder: Path, token: str) -> None:
    """Drop this process's lock and its file (the run ends with no record left).

    Example:
        >>> release_lock(Path("/nonexistent"), "1:2")
    """
    for entry in [e for e in _HELD if e[0] == os.getpid() and e[1] == token]:
        _HELD.remove(entry)
        with contextlib.suppress(OSError):
            _lock_path(folder, token).unlink()
        with contextlib.suppress(OSError):
            os.close(entry[2])


@contextlib.contextmanager
def claim(folder: Path, token: str) -> Iterator[bool]:
    """Whether the run ``token`` names is dead; while ``True``, its lock is held here.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with claim(folder, owner_token()) as dead:  # no lock file: judged by pid
        ...     dead
        False
    """
    owner = parse_token(token)
    if owner is None:
        yield False  # not a mark: nobody's, never judged
        return
    path = _lock_path(folder, token)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        # No lock file: judge by pid, and only an owner of this namespace on this host.
        yield owner.here and _pid_dead(owner)
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # held: the run is alive, wherever it runs
            return
        except OSError:  # no locks here: as without a lock file
            yield owner.here and _pid_dead(owner)
            return
        yield True
        if not any(r.get("owner") == token for _, r in read_records(folder)):
            with contextlib.suppress(OSError):
                path.unlink()  # nothing left of that run
    finally:
        os.close(fd)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` to ``path`` atomically (0600, never through a symlink).

    Example:
        >>> import tempfile
        >>> write_record(Path(tempfile.mkdtemp()) / "r.json", {"name": "x"})
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = create_private(tmp)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(tmp, path)


def forget_record(path: Path | None) -> None:
    """Remove a record (its session is gone, or kept on purpose).

    Example:
        >>> forget_record(None)
    """
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def read_records(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The records in ``folder`` (symlinks and unreadable files skipped), oldest name first.

    Example:
        >>> read_records(Path("/nonexistent"))
        []
    """
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(folder.glob("*.json")):
        try:
            if path.is_symlink():
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            found.append((path, record))
    return found
