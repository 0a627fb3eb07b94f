"""The last configuration each session was started with by ``kstlib ops start``.

``kstlib ops restart NAME`` needs the session's configuration to start it
again; a tmux pane does not remember its command, so the CLI keeps a small
JSON record per session name in kstlib's private state tree,
``$XDG_STATE_HOME/kstlib/ops/last-start/`` (default ``~/.local/state``): the
folder is 0700 and checked like the rest of the tree
(:func:`kstlib.ops.statedir.private_dir`), each record 0600, written to a new
file and renamed over the old one, never through a symlink.

A record keeps the **names** of the session's environment variables, never
their values: ``restart`` asks for the values again (``-e KEY=VALUE``) unless
the config file defines the session. ``kstlib ops stop NAME`` removes the
record. Writing is best effort: a read-only home or an unsafe state folder
only means ``restart`` will ask for the command.

Example:
    >>> import tempfile
    >>> from kstlib.ops.models import SessionConfig
    >>> where = tempfile.mkdtemp()
    >>> save(SessionConfig(name="bot", command=["sleep", "30"], env={"TOKEN": "s3cr3t"}),
    ...      directory=where)
    >>> last = load("bot", directory=where)
    >>> last.config.command, last.config.env, last.env_keys
    (('sleep', '30'), {}, ('TOKEN',))
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

from kstlib.ops.exceptions import OpsError, SessionConfigError
from kstlib.ops.models import SessionConfig
from kstlib.ops.statedir import create_private, private_dir
from kstlib.ops.statedir import state_dir as _state_root
from kstlib.ops.validators import ENV_KEY_RE, validate_name

__all__ = ["LastStart", "forget", "load", "save", "state_dir"]

_FOLDER = "last-start"
#: A record is a few hundred bytes; do not read anything bigger.
_MAX_RECORD_BYTES = 1024 * 1024


class LastStart(NamedTuple):
    """A recorded start: the configuration without env values, and the env keys it had.

    Example:
        >>> LastStart(SessionConfig(name="a"), ("TOKEN",)).env_keys
        ('TOKEN',)
    """

    config: SessionConfig
    env_keys: tuple[str, ...]


def state_dir() -> Path:
    """The directory of the per-session records (not created here).

    Example:
        >>> state_dir().parts[-3:]
        ('kstlib', 'ops', 'last-start')
    """
    return _state_root() / _FOLDER


def _folder(directory: str | os.PathLike[str] | None) -> Path:
    """The records' folder: ``directory``, else the checked private one (may raise)."""
    return Path(directory) if directory is not None else private_dir(_FOLDER)


def _to_json(config: SessionConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        if f.metadata.get("persist") is False:
            continue  # a callback, say: nothing to write down
        value = getattr(config, f.name)
        if f.name == "env":
            out["env_keys"] = sorted(value)  # the names only: values are never kept at rest
            continue
        if f.name == "registry_auth" and value is not None:
            # Only a user and the name of the variable that holds the password;
            # credentials given as a password are not kept.
            value = value.to_dict()
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name] = value
    return out


def save(config: SessionConfig, directory: str | os.PathLike[str] | None = None) -> None:
    """Record ``config`` as the last one ``config.name`` was started with (best effort).

    ``directory`` defaults to :func:`state_dir` (created 0700 and checked).
    The env values are not recorded, only their names.

    Example:
        >>> import tempfile
        >>> save(SessionConfig(name="worker"), directory=tempfile.mkdtemp())
    """
    try:
        folder = _folder(directory)
        tmp = folder / f".{config.name}.{secrets.token_hex(8)}.tmp"
        fd = create_private(tmp)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(_to_json(config), fh)
            os.replace(tmp, folder / f"{config.name}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, OpsError):
        return


def forget(name: str, directory: str | os.PathLike[str] | None = None) -> None:
    """Remove the record of session ``name`` (``kstlib ops stop``); best effort.

    Example:
        >>> import tempfile
        >>> where = tempfile.mkdtemp()
        >>> save(SessionConfig(name="bot"), directory=where)
        >>> forget("bot", directory=where); load("bot", directory=where) is None
        True
    """
    try:
        validate_name(name)
        os.unlink(_folder(directory) / f"{name}.json")
    except (OSError, OpsError):
        return


def _read(path: Path) -> Any:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return json.loads(fh.read(_MAX_RECORD_BYTES + 1)[:_MAX_RECORD_BYTES])


def load(name: str, directory: str | os.PathLike[str] | None = None) -> LastStart | None:
    """The last recorded start of session ``name``, or ``None``.

    A record that cannot be read or is no longer valid counts as none; an
    old record that still holds env values is used without them.

    Example:
        >>> load("never-started") is None
        True
    """
    try:
        validate_name(name)
        data = _read(_folder(directory) / f"{name}.json")
    except (OSError, OpsError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != name:
        return None
    keys = data.get("env_keys")
    if keys is None and isinstance(data.get("env"), dict):
        keys = list(data["env"])  # written by an older kstlib: names only from now on
    if not isinstance(keys, list) or not all(
        isinstance(k, str) and ENV_KEY_RE.fullmatch(k) for k in keys
    ):
        return None
    known = {f.name for f in fields(SessionConfig)} - {"env"}
    try:
        config = SessionConfig(**{k: v for k, v in data.items() if k in known})
    except (SessionConfigError, TypeError):
        return None
    if "env" in data:  # scrub the values an older kstlib kept at rest
        save(config.with_overrides(env=dict.fromkeys(keys, "")), directory=directory)
    return LastStart(config, tuple(keys))
