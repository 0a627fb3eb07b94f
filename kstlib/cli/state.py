"""The last configuration each session was started with by ``kstlib ops start``.

``kstlib ops restart NAME`` needs the session's configuration to start it
again; a tmux pane does not remember its command, so the CLI keeps a small
JSON record per session name under ``$XDG_STATE_HOME/kstlib/ops/last-start/`` (default
``~/.local/state``). Writing is best effort: a read-only home only means
``restart`` will ask for the command.

Example:
    >>> import tempfile
    >>> from kstlib.ops.models import SessionConfig
    >>> where = tempfile.mkdtemp()
    >>> save(SessionConfig(name="bot", command=["sleep", "30"]), directory=where)
    >>> load("bot", directory=where).command
    ('sleep', '30')
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any

from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import SessionConfig
from kstlib.ops.validators import validate_name

__all__ = ["load", "save", "state_dir"]


def state_dir() -> Path:
    """The directory of the per-session records.

    Example:
        >>> state_dir().parts[-3:]
        ('kstlib', 'ops', 'last-start')
    """
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "kstlib" / "ops" / "last-start"


def _to_json(config: SessionConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        if f.metadata.get("persist") is False:
            continue  # a callback, say: nothing to write down
        value = getattr(config, f.name)
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

    ``directory`` defaults to :func:`state_dir`.

    Example:
        >>> import tempfile
        >>> save(SessionConfig(name="worker"), directory=tempfile.mkdtemp())
    """
    directory = Path(directory) if directory is not None else state_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{config.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_to_json(config), fh)
        os.replace(tmp, directory / f"{config.name}.json")
    except OSError:
        return


def load(name: str, directory: str | os.PathLike[str] | None = None) -> SessionConfig | None:
    """The last recorded configuration of session ``name``, or ``None``.

    A record that cannot be read or is no longer valid counts as none.

    Example:
        >>> load("never-started") is None
        True
    """
    try:
        validate_name(name)
    except SessionConfigError:
        return None
    path = (Path(directory) if directory is not None else state_dir()) / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != name:
        return None
    known = {f.name for f in fields(SessionConfig)}
    try:
        return SessionConfig(**{k: v for k, v in data.items() if k in known})
    except (SessionConfigError, TypeError):
        return None
