"""The user's tmux servers: the sockets in tmux's socket folder.

``tmux -L orion`` listens on ``$TMUX_TMPDIR/tmux-<uid>/orion`` (``/tmp`` when
``TMUX_TMPDIR`` is unset), so a session started there is found by a
look-up that does not name its socket only if the look-up searches that
folder. :func:`user_sockets` lists the sockets a look-up may ask: only in a
folder that is the user's own and closed to others (the rule tmux itself
applies), only sockets owned by the user, only those with a server behind
them (a socket file left by a server that died refuses the connection and
is skipped at once, without running tmux). A server that accepts but does
not answer (stopped, stuck) is asked with :data:`DISCOVERY_TIMEOUT`, so it
costs at most that long.

Example:
    >>> import tempfile
    >>> user_sockets(Path(tempfile.mkdtemp()))
    []
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

__all__ = ["DISCOVERY_TIMEOUT", "socket_folder", "user_sockets"]

#: Seconds a discovered tmux server may take to answer one call before it is skipped.
DISCOVERY_TIMEOUT = 2.0

#: The default server's socket: searched as the default server, not as a named one.
_DEFAULT = "default"


def socket_folder() -> Path:
    """The socket folder of tmux for this user: ``$TMUX_TMPDIR/tmux-<uid>`` (default ``/tmp``).

    Example:
        >>> import os
        >>> socket_folder().name == f"tmux-{os.getuid()}"
        True
    """
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return Path(os.path.realpath(base)) / f"tmux-{os.getuid()}"


def _private_folder(folder: Path) -> bool:
    """Whether ``folder`` is a real folder of this user that others cannot use (as tmux checks)."""
    try:
        st = os.lstat(folder)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.getuid()
        and not st.st_mode & (stat.S_IRWXO | stat.S_IWGRP)
    )


def _listening(path: Path) -> bool:
    """Whether a server accepts connections on the unix socket ``path``.

    A socket file whose server is gone refuses at once (``ECONNREFUSED``);
    a full backlog (``EAGAIN``) means a server that does not keep up, which
    the bounded tmux call then reports.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        probe.connect(os.fspath(path))
    except BlockingIOError:
        return True
    except OSError as err:
        return err.errno in (errno.EAGAIN, errno.EINPROGRESS)
    finally:
        probe.close()
    return True


def user_sockets(folder: Path | None = None) -> list[str]:
    """The names (``-L``) of the user's live tmux servers in ``folder``, sorted.

    ``folder`` defaults to :func:`socket_folder`. The default server's socket
    is left out (it is the server a look-up without a socket asks anyway),
    and so is anything that is not a socket owned by the user, or a socket
    no server listens on. A folder that is not the user's own yields nothing.

    Example:
        >>> from kstlib.ops import SessionConfig, TmuxRunner
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> _ = runner.start(SessionConfig(name="doc-sockets", command="sleep 30"))
        >>> "kstlib-doc" in user_sockets()
        True
        >>> runner.stop("doc-sockets", graceful=False)
        True
    """
    where = socket_folder() if folder is None else folder
    if not _private_folder(where):
        return []
    try:
        entries = sorted(os.listdir(where))
    except OSError:
        return []
    uid = os.getuid()
    names: list[str] = []
    for entry in entries:
        if entry == _DEFAULT or len(entry) > 100:
            continue
        path = where / entry
        try:
            st = os.lstat(path)
        except OSError:
            continue  # gone meanwhile
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != uid:
            continue
        if _listening(path):
            names.append(entry)
    return names
