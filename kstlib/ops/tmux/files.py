"""The files of a tmux server's sessions: one private folder per server, per-run files.

A server's folder is ``<state dir>/tmux/<server id>`` (0700). The id maps each
server one to one: ``default``, ``L-<name>`` for a plain ``-L`` socket name,
``L~<hash>`` for any other name and ``S~<hash>`` for a ``-S`` socket path, so
two sockets never share a folder (``/x/a b/s`` and ``/x/a_b/s`` differ).

Each run of a session has ``<name>.<run>.log`` (its output, see
:mod:`kstlib.ops.tmux.collector`), ``<name>.<run>.fifo`` (the pane's pipe to
the collector), ``<name>.<run>.exit`` (the wrapper's record of each exit, which
the collector reads too) and, until the wrapper has read it, ``<name>.<run>.env``
(its environment and end-mark nonce). All are 0600 and removed with the session.

Example:
    >>> server_id(None, None), server_id("work", None), server_id("a b", None)[:2]
    ('default', 'L-work', 'L~')
    >>> server_id(None, "/x/a b/s") != server_id(None, "/x/a_b/s")
    True
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from kstlib.ops.statedir import create_private, private_dir
from kstlib.ops.tmux.collector import HEADER
from kstlib.ops.validators import ENV_KEY_RE, RESERVED_ENV_PREFIX

__all__ = [
    "RUN_SUFFIXES",
    "RunFiles",
    "collector_alive",
    "env_script",
    "release_writer",
    "remove_run",
    "server_folder",
    "server_id",
    "tidy",
    "wake_collector",
]

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: The files of one run: ``<name>.<run>`` and one of these.
RUN_SUFFIXES = (".log", ".log.1", ".fifo", ".env", ".exit")
_SUFFIXES = RUN_SUFFIXES


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def server_id(socket_name: str | None, socket_path: str | None) -> str:
    """The folder name of one tmux server's state (one to one with the server).

    Example:
        >>> server_id(None, "/tmp/s").startswith("S~")
        True
    """
    if socket_path:
        return "S~" + _digest(os.path.abspath(socket_path))
    if socket_name is None:
        return "default"
    if _PLAIN.fullmatch(socket_name):
        return f"L-{socket_name}"
    return "L~" + _digest(socket_name)


def server_folder(socket_name: str | None, socket_path: str | None, *, create: bool) -> Path:
    """This server's state folder; with ``create``, made (0700) and checked.

    Raises:
        StateDirError: the folder or a parent is not private to the user.

    Example:
        >>> server_folder("work", None, create=False).name
        'L-work'
    """
    sid = server_id(socket_name, socket_path)
    if create:
        return private_dir("tmux", sid)
    from kstlib.ops.statedir import state_dir

    return state_dir() / "tmux" / sid


def env_script(env: Mapping[str, str], nonce: str) -> bytes:
    """The run file: the nonce alone on the first line, then ``export KEY='value'`` lines.

    The wrapper reads the first line itself and applies only the rest, so no
    key can set or read the nonce; values are single-quoted, which a POSIX
    shell takes byte for byte. A key of the wrapper's own (``__kstlib_*``)
    is refused here too, whatever the caller checked.

    Example:
        >>> env_script({"A": "it's"}, "n")
        b"n\\nexport A='it'\\\\''s'\\n"
    """
    if not nonce.isalnum():
        raise ValueError("the nonce must be alphanumeric")
    lines = [nonce + "\n"]
    for key, value in env.items():
        if key.startswith(RESERVED_ENV_PREFIX) or not ENV_KEY_RE.fullmatch(key):
            raise ValueError(f"env key {key!r} cannot reach the session wrapper")
        lines.append(f"export {key}='" + value.replace("'", "'\\''") + "'\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


class RunFiles:
    """The files of one new run of session ``name`` in ``folder``.

    Example:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> run = RunFiles(Path(tempfile.mkdtemp()), "bot")
        >>> run.create({"TOKEN": "s3cr3t"}, max_bytes=4096)
        >>> sorted(p.suffix for p in run.folder.iterdir())
        ['.env', '.exit', '.fifo', '.log']
        >>> run.remove(); list(run.folder.iterdir())
        []
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.run = f"{name}.{secrets.token_hex(6)}"
        self.nonce = secrets.token_hex(16)
        self.log = folder / f"{self.run}.log"
        self.fifo = folder / f"{self.run}.fifo"
        self.env = folder / f"{self.run}.env"
        self.exits = folder / f"{self.run}.exit"

    def create(self, env: Mapping[str, str], *, max_bytes: int) -> None:
        """Create the log (with its header), the FIFO, the env and exit files, all 0600.

        Raises:
            OSError: a file could not be made; nothing of the run is left.
        """
        try:
            for path, data in (
                (self.log, HEADER + f" {self.nonce} {max_bytes}\n".encode()),
                (self.env, env_script(env, self.nonce)),
                (self.exits, b""),  # the wrapper appends to it, never creates it
            ):
                fd = create_private(path)
                try:
                    if data:
                        os.write(fd, data)
                finally:
                    os.close(fd)
            os.mkfifo(self.fifo, 0o600)
            os.chmod(self.fifo, 0o600, follow_symlinks=False)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete every file of this run that exists."""
        remove_run(self.log)


def remove_run(log: Path) -> None:
    """Delete the files of the run whose log is ``log`` (never through a symlink).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> remove_run(Path(tempfile.mkdtemp()) / "gone.abc.log")
    """
    stem = log.name[: -len(".log")] if log.name.endswith(".log") else log.name
    release_writer(log.parent / f"{stem}.fifo")
    for suffix in _SUFFIXES:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(log.parent / f"{stem}{suffix}")


def release_writer(fifo: Path) -> None:
    """Open and close a run's FIFO for reading, so a ``cat`` blocked opening it goes on.

    Without a reader, the pipe-pane shell of a run whose collector never came
    would wait in ``open()`` forever; with one that comes and goes it ends.
    """
    try:
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    os.close(fd)


def wake_collector(folder: Path, run: str) -> bool:
    """Tell the folder's collector about a new run; ``False`` if none is listening.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> wake_collector(Path(tempfile.mkdtemp()), "bot.1")
        False
    """
    ctl = folder / "ctl"
    try:
        fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENXIO):  # no collector (it makes the FIFO)
            return False
        raise
    try:
        os.write(fd, f"{run}\n".encode())
    except BlockingIOError:
        pass  # a full control pipe: the collector is busy, and rescans at start anyway
    finally:
        os.close(fd)
    return True


def collector_alive(folder: Path) -> bool:
    """Whether a collector holds the folder's lock.

    Example:
        >>> import tempfile
        >>> collector_alive(Path(tempfile.mkdtemp()))
        False
    """
    try:
        fd = os.open(folder / "collector.lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def tidy(folder: Path) -> None:
    """Remove a server folder that holds no run any more (its collector is gone).

    A collector whose server died removes the ``events`` journal itself when
    it leaves (a reader still watching removes it after it), moments later.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp()); (folder / "ctl").touch()
        >>> tidy(folder); folder.exists()
        False
    """
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    if any(entry.endswith(_SUFFIXES) for entry in entries):
        return
    for leftover in ("ctl", "collector.lock"):
        with contextlib.suppress(OSError):
            os.unlink(folder / leftover)
    with contextlib.suppress(OSError):
        folder.rmdir()


def socket_file(socket_name: str | None, socket_path: str | None) -> Path:
    """The socket file a tmux client uses for ``-S socket_path`` or ``-L socket_name``.

    ``-L`` names live in ``$TMUX_TMPDIR/tmux-UID/`` (``/tmp`` when unset), as
    tmux places them; no name is the ``default`` socket there.

    Example:
        >>> socket_file("work", None).name, socket_file(None, "/run/x.sock")
        ('work', PosixPath('/run/x.sock'))
    """
    if socket_path is not None:
        return Path(socket_path)
    folder = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    return folder / (socket_name or "default")


def remove_dead_socket(path: Path) -> bool:
    """Remove ``path`` if it is the user's own socket and no server listens on it.

    tmux leaves its socket file behind when its server exits; its own clients
    remove such a file when a connection to it is refused, as this does.
    Anything else (not a socket, another user's, a live server) is left alone.

    Example:
        >>> remove_dead_socket(Path("/nonexistent/socket"))
        False
    """
    import socket
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except ConnectionRefusedError:
        pass  # nobody listens: a dead server's file
    except OSError:
        return False  # busy, gone, or not ours to judge
    else:
        return False  # a live server
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True
