"""kstlib's private state tree: ``$XDG_STATE_HOME/kstlib/ops``, 0700/0600.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

Every folder kstlib uses under the tree is created mode 0700 whatever the
umask, must be a real folder owned by the current user and must not be
writable by anyone else (the rule tmux applies to its socket folder); a
folder that breaks it raises :class:`~kstlib.ops.exceptions.StateDirError`
instead of being used. Files are created 0600 with ``O_NOFOLLOW``, so a
symlink planted in the tree is never followed.

Example:
    >>> import os, stat, tempfile
    >>> os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()
    >>> folder = private_dir("doc")
    >>> oct(stat.S_IMODE(folder.stat().st_mode))
    '0o700'
    >>> fd = create_private(folder / "a.log")
    >>> os.close(fd); oct(stat.S_IMODE((folder / "a.log").stat().st_mode))
    '0o600'
    >>> del os.environ["XDG_STATE_HOME"]
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kstlib.ops.exceptions import StateDirError

__all__ = ["create_private", "existing_private_dir", "private_dir", "state_dir"]

_ROOT = ("kstlib", "ops")


def _base() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base)


def state_dir() -> Path:
    """Where kstlib.ops keeps state: ``$XDG_STATE_HOME/kstlib/ops`` (not created here).

    Example:
        >>> state_dir().parts[-2:]
        ('kstlib', 'ops')
    """
    return _base().joinpath(*_ROOT)


def _check(path: Path) -> None:
    """Refuse ``path`` unless it is a folder of ours that nobody else can write; make it 0700."""
    try:
        st = os.lstat(path)
    except OSError as err:
        raise StateDirError(str(path), f"cannot be read ({err.strerror})") from err
    if stat.S_ISLNK(st.st_mode):
        raise StateDirError(str(path), "is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(str(path), "is not a folder")
    if st.st_uid != os.geteuid():
        raise StateDirError(str(path), f"is owned by uid {st.st_uid}, not by you")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StateDirError(str(path), "is writable by other users")
    if stat.S_IMODE(st.st_mode) != 0o700:
        try:  # ours, but readable by others (an older kstlib, a umask): tighten it
            os.chmod(path, 0o700, follow_symlinks=False)
        except OSError as err:
            raise StateDirError(str(path), f"cannot be made private ({err.strerror})") from err


def private_dir(*parts: str) -> Path:
    """The state folder ``<state dir>/<parts...>``, created 0700 and checked at every level.

    Raises:
        StateDirError: a level is not a folder of the current user's, or others can write it.

    Example:
        >>> import os, tempfile
        >>> os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()
        >>> private_dir("tmux", "L-x").parts[-4:]
        ('kstlib', 'ops', 'tmux', 'L-x')
        >>> del os.environ["XDG_STATE_HOME"]
    """
    path = _base()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise StateDirError(str(path), f"cannot be created ({err.strerror})") from err
    for part in (*_ROOT, *parts):
        if not part or part in (".", "..") or os.sep in part:
            raise StateDirError(str(path / part), "is not a plain folder name")
        path = path / part
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            raise StateDirError(str(path), f"cannot be created ({err.strerror})") from err
        _check(path)
    return path


def existing_private_dir(*parts: str) -> Path | None:
    """The state folder ``<state dir>/<parts...>`` if it exists, checked at every level.

    Nothing is created; ``None`` when a level is missing.

    Raises:
        StateDirError: a level is not a folder of the current user's, or others can write it.

    Example:
        >>> import os, tempfile
        >>> os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()
        >>> existing_private_dir("tmux") is None
        True
        >>> del os.environ["XDG_STATE_HOME"]
    """
    path = _base()
    for part in (*_ROOT, *parts):
        path = path / part
        if not os.path.lexists(path):
            return None
        try:
            _check(path)
        except StateDirError:
            if not os.path.lexists(path):  # removed meanwhile (an emptied folder)
                return None
            raise
    return path


def create_private(path: Path, *, exclusive: bool = True) -> int:
    """Open ``path`` for writing as a 0600 file, never through a symlink; return the fd.

    With ``exclusive`` (the default) the file must not exist yet.

    Raises:
        OSError: as :func:`os.open` (``FileExistsError``, ``ELOOP`` for a symlink...);
            callers translate it for their operation.

    Example:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> fd = create_private(Path(tempfile.mkdtemp()) / "x")
        >>> os.close(fd)
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    if exclusive:
        flags |= os.O_EXCL
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask left
    except OSError:
        os.close(fd)
        raise
    return fd
