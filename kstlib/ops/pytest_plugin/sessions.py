"""The session factory behind ``ops_session`` and its scoped siblings.

Every session it starts is marked with this test process as its owner (a record,
a label or tmux option) and stopped at the end of the factory's scope. A session
started with ``reuse=True`` is the exception: it carries a hash of its
configuration instead of an owner, outlives the run, and is found again by the
next run that asks for the same name with the same configuration (restarted when
the configuration changed). The reaper never touches it: it has no owner.

Example:
    >>> factory = SessionFactory("doc", keep=False)
    >>> factory.prefix
    'doc'
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import uuid
from pathlib import Path
from typing import Any

from kstlib.ops.exceptions import (
    OpsError,
    SessionConfigError,
    SessionExistsError,
    SessionNotFoundError,
)
from kstlib.ops.manager import SessionManager
from kstlib.ops.models import BackendType, Command, SessionConfig, SessionStatus
from kstlib.ops.pytest_plugin.owner import (
    forget_record,
    hold_lock,
    owner_token,
    records_dir,
    write_record,
)
from kstlib.ops.pytest_plugin.reaper import OWNER_LABEL, OWNER_OPTION, mark_tmux, tmux_option
from kstlib.ops.statedir import create_private

__all__ = ["BACKENDS", "REUSE_LABEL", "REUSE_OPTION", "SessionFactory", "unknown_backend"]

#: The spellings ``backend=`` and ``@pytest.mark.ops_backend`` take (the one parser's).
BACKENDS = BackendType.spellings()
#: The backends whose sessions carry labels (containers and swarm services).
LABELLED = (BackendType.CONTAINER, BackendType.SWARM)
#: Label holding a reused session's configuration hash (containers, services).
REUSE_LABEL = "io.kstlib.pytest-reuse"
#: tmux session option holding a reused session's configuration hash.
REUSE_OPTION = "@kstlib-pytest-reuse"
#: Config fields left out of the reuse hash: the name is the key, the rest is not config.
_UNHASHED = ("name", "labels", "on_progress", "registry_auth")


def unknown_backend(backend: object) -> str:
    """The message for a backend name that does not exist, with a guess when one is close.

    Example:
        >>> unknown_backend("tmx")
        "unknown backend 'tmx' (choose from tmux, container, docker, podman, swarm); did you mean 'tmux'?"
    """
    import difflib

    guess = difflib.get_close_matches(str(backend), BACKENDS, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)}){hint}"


def _reuse_key() -> bytes:
    """This user's secret for reuse hashes (a hash of env values must not be guessable)."""
    folder = records_dir(create=True)
    if folder is None:
        return b"kstlib-reuse"
    path = folder / "reuse.key"
    try:
        fd = create_private(path)
    except FileExistsError:
        try:  # never through a symlink
            read = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return b"kstlib-reuse"
        with os.fdopen(read, "rb") as handle:
            return handle.read(64)
    except OSError:
        return b"kstlib-reuse"
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def config_hash(config: SessionConfig) -> str:
    """A keyed hash of what a reused session runs (env values included, never readable).

    Example:
        >>> import tempfile
        >>> os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp()
        >>> a = SessionConfig(name="a", command=["sleep", "9"])
        >>> config_hash(a) == config_hash(SessionConfig(name="b", command=["sleep", "9"]))
        True
        >>> config_hash(a) == config_hash(SessionConfig(name="a", command=["sleep", "8"]))
        False
        >>> del os.environ["XDG_STATE_HOME"]
    """
    fields = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _UNHASHED
    }
    fields["labels"] = {
        k: v for k, v in config.labels.items() if k not in (OWNER_LABEL, REUSE_LABEL)
    }
    text = json.dumps(fields, sort_keys=True, default=str)
    return hmac.new(_reuse_key(), text.encode(), hashlib.sha256).hexdigest()[:32]


class OwnedSession(SessionManager):
    """A SessionManager whose sessions carry the test process's owner mark and a record."""

    owner: str = ""
    record: Path | None = None

    def _save_record(self) -> None:
        if self.record is None:
            return
        config = self.config
        record = {
            "owner": self.owner,
            "name": self.name,
            "backend": config.backend.value,
            "runtime": config.runtime,
            "base_url": config.base_url,
            "socket_name": config.socket_name,
            "socket_path": config.socket_path,
            "tmux_bin": self._options.get("tmux_bin"),
        }
        try:
            write_record(self.record, record)
        except OSError:
            self.record = None

    def start(self, command: Command | None = None, **overrides: Any) -> SessionStatus:
        """Start the session marked with its owner (record first: a kill mid-start is reaped)."""
        if self.backend in LABELLED and "labels" in overrides:
            overrides["labels"] = {**(overrides["labels"] or {}), OWNER_LABEL: self.owner}
        self._save_record()
        status = super().start(command, **overrides)
        self._save_record()  # the overrides may have moved it
        if self.backend is BackendType.TMUX:
            mark_tmux(self.runner, self.name, OWNER_OPTION, self.owner)
        return status

    def forget(self) -> None:
        """Drop the record (the session is gone, or kept on purpose)."""
        forget_record(self.record)
        self.record = None


def _reuse_mark(manager: SessionManager) -> str | None:
    """The reuse hash a running session carries (``None``: none, not running, or not ours)."""
    try:
        if not manager.is_running():
            return None
        runner: Any = manager.runner
        if manager.backend is BackendType.TMUX:
            return tmux_option(runner, manager.name, REUSE_OPTION)
        if manager.backend is BackendType.SWARM:
            labels = (runner.engine.find(manager.name).get("Spec") or {}).get("Labels") or {}
        else:
            info = runner.engine.inspect(manager.name)
            labels = info.labels if info.managed else {}
        value = labels.get(REUSE_LABEL)
        return str(value) if value else None
    except OpsError:
        return None


class SessionFactory:
    """Starts sessions for one fixture scope and cleans them up at its end.

    Example:
        >>> SessionFactory("t", keep=False).made
        []
    """

    def __init__(self, prefix: str, *, keep: bool) -> None:
        self.prefix = prefix
        self.keep = keep
        self.made: list[OwnedSession] = []
        self._reused = 0

    def __call__(
        self,
        command: Command | None = None,
        *,
        backend: str = "tmux",
        name: str | None = None,
        start: bool = True,
        reuse: bool = False,
        **options: Any,
    ) -> SessionManager:
        """Start (or, with ``start=False``, prepare) a session; see ``ops_session``."""
        if backend not in BACKENDS:
            raise SessionConfigError(f"backend: {unknown_backend(backend)}", field="backend")
        kind, runtime = BackendType.parse(backend)
        if runtime is not None:
            options.setdefault("runtime", runtime)
        backend = kind.value
        if reuse:
            if not start:
                raise SessionConfigError(
                    "start: reuse=True finds the kept session or starts it; start=False "
                    "contradicts it",
                    field="start",
                )
            return self._reuse(command, backend, name, options)
        owner = owner_token()
        if backend in (b.value for b in LABELLED):
            options["labels"] = {**(options.get("labels") or {}), OWNER_LABEL: owner}
        manager = OwnedSession(
            name or f"{self.prefix}-{uuid.uuid4().hex[:8]}", backend=backend, **options
        )
        manager.owner = owner
        folder = records_dir(create=True)
        if folder is not None:
            hold_lock(folder, owner)  # without a lock, the owner is judged by its pid
            manager.record = folder / f"{uuid.uuid4().hex}.json"
        self.made.append(manager)
        if start:
            manager.start(command)
        return manager

    def _reuse(
        self, command: Command | None, backend: str, name: str | None, options: dict[str, Any]
    ) -> SessionManager:
        """The session kept from an earlier run if its configuration is the same, else a new one."""
        if name is None:
            self._reused += 1
            name = f"{self.prefix}-reuse{self._reused}"
        manager = SessionManager(name, backend=backend, **options)
        config = manager.config
        if command is not None:
            config = config.with_overrides(command=command)
        digest = config_hash(config)
        found = _reuse_mark(manager)
        if found == digest:
            return manager
        if found is not None:  # ours from an earlier run, another configuration: restart
            manager.stop(graceful=True, timeout=5)
        labels = {**config.labels, REUSE_LABEL: digest}
        extra = {"labels": labels} if manager.backend in LABELLED else {}
        try:
            manager.start(command, **extra)
        except SessionExistsError:
            if _reuse_mark(manager) != digest:  # a concurrent run started the same: fine
                raise
            return manager
        if manager.backend is BackendType.TMUX:
            mark_tmux(manager.runner, name, REUSE_OPTION, digest)
        return manager

    def close(self) -> tuple[list[str], list[str]]:
        """Stop every session this factory started; return (kept lines, errors).

        Example:
            >>> SessionFactory("t", keep=False).close()
            ([], [])
        """
        kept: list[str] = []
        if self.keep:
            for manager in self.made:
                manager.forget()  # kept on purpose: not for the reaper
                kept.append(f"kept session {manager.name!r} on {manager.backend.value}")
            return kept, []
        errors: list[str] = []
        for manager in reversed(self.made):
            try:
                manager.stop(graceful=True, timeout=5)
            except SessionNotFoundError:
                pass
            except OpsError as err:
                errors.append(str(err))
                continue  # the record stays: a later run tries again
            manager.forget()
        self.made.clear()
        return kept, errors
