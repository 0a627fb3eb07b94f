"""Checks of the arguments runner methods take beside a session config.

A runner's ``start`` takes a config of the right type; tmux's needs an
existing working directory and a ``socket_path`` it can serve on; a
container runner runs the config's runtime only; ``send_keys`` takes a
``literal`` of ``True``, ``False`` or ``None``. Each check raises
:class:`~kstlib.ops.exceptions.SessionConfigError` before anything is created.

Example:
    >>> validate_optional_flag("literal", None) is None
    True
"""

from __future__ import annotations

import os
import stat
from typing import TypeVar

from kstlib.ops.validators._common import config_error

__all__ = [
    "validate_instance",
    "validate_optional_flag",
    "validate_same_runtime",
    "validate_socket_path",
    "validate_working_dir",
]

_T = TypeVar("_T")


def validate_instance(field: str, value: object, kind: type[_T]) -> _T:
    """``value`` itself when it is a ``kind`` (e.g. the ``config`` of ``start``).

    Example:
        >>> validate_instance("config", {}, int)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: config: expected a int, got dict
    """
    if not isinstance(value, kind):
        raise config_error(field, f"expected a {kind.__name__}, got {type(value).__name__}")
    return value


def validate_optional_flag(field: str, value: object) -> bool | None:
    """``True``, ``False`` or ``None`` (let the runner decide).

    Example:
        >>> validate_optional_flag("literal", "yes")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: literal: expected True, False or None, got str
    """
    if value is not None and not isinstance(value, bool):
        raise config_error(field, f"expected True, False or None, got {type(value).__name__}")
    return value


def validate_working_dir(path: str | None) -> str | None:
    """A working directory that exists on this machine (``None``: the default).

    Example:
        >>> validate_working_dir("/")
        '/'
        >>> validate_working_dir("/nonexistent/dir")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: working_dir: '/nonexistent/dir' is not an existing directory
    """
    if path is not None and not os.path.isdir(path):
        raise config_error("working_dir", f"{path!r} is not an existing directory")
    return path


def validate_socket_path(path: str | None) -> str | None:
    """A tmux ``socket_path`` tmux can serve on: a socket, or a free name in an existing folder.

    tmux unlinks whatever is at the path to bind its socket (a user's file
    is lost), and a missing folder makes it fail without a word.

    Example:
        >>> validate_socket_path(__file__)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: socket_path: '...calls.py' exists and is not a socket; tmux would replace it
    """
    if not path:
        return path
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise config_error(
                "socket_path", f"the folder {folder!r} of {path!r} does not exist"
            ) from None
        return path
    except OSError as err:
        raise config_error("socket_path", f"{path!r}: {err}") from err
    if not stat.S_ISSOCK(mode):
        raise config_error(
            "socket_path", f"{path!r} exists and is not a socket; tmux would replace it"
        )
    return path


def validate_same_runtime(asked: str | None, used: str) -> None:
    """A config that names a runtime runs on that runtime only.

    Example:
        >>> validate_same_runtime("podman", "docker")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: runtime: the config asks for podman but this runner uses docker
    """
    if asked is not None and asked != used:
        raise config_error("runtime", f"the config asks for {asked} but this runner uses {used}")
