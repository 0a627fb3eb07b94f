"""testcontainers-python under the plugin: its containers get an owner, as kstlib's do.

testcontainers labels every container it starts with its session id
(``org.testcontainers.session-id``, one per process; the label its Ryuk reaper
removes containers by). Without Ryuk (``TESTCONTAINERS_RYUK_DISABLED=true``: Ryuk
needs a privileged container and fails on rootless Podman), nothing removes the
containers of a killed run. Under kstlib's plugin, as soon as testcontainers is
imported, a record ties that session id to this test process (whose lock says it is
alive): the next run removes the containers carrying the id of a dead run, on the
engines the record names. Nothing of testcontainers is patched, and nothing is
imported when a run does not use testcontainers (the record is written by an import
hook, once testcontainers has chosen its session id).

Example:
    >>> watch_testcontainers()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from kstlib.ops.pytest_plugin.owner import (
    forget_record,
    hold_lock,
    owner_token,
    records_dir,
    write_record,
)
from kstlib.ops.pytest_plugin.reaper import reap_testcontainers

__all__ = [
    "finish_testcontainers",
    "refresh_testcontainers",
    "tc_engines",
    "watch_testcontainers",
]

_LABELS = "testcontainers.core.labels"
_DOCKER = "unix:///var/run/docker.sock"
#: pids for which the record is written (once per process)
_DONE: set[int] = set()
#: this process's record: (pid, path, record)
_MINE: list[tuple[int, Path, dict[str, Any]]] = []


def _tc_host() -> str | None:
    """The ``tc.host`` setting of testcontainers (``~/.testcontainers.properties``), if loaded."""
    config = sys.modules.get("testcontainers.core.config")
    if config is None:
        return None
    try:  # a dict look-up in the settings testcontainers read when it was imported
        host = config.testcontainers_config.tc_properties_get_tc_host()
    except AttributeError:  # a testcontainers version without this setting
        return None
    return host if isinstance(host, str) and host else None


def tc_engines() -> list[list[str | None]]:
    """Where testcontainers starts containers now: ``[runtime, base_url]`` pairs.

    Its ``tc.host`` setting, else ``DOCKER_HOST`` (Podman's socket included), else
    Docker's default socket, as testcontainers itself chooses; spoken to with
    Docker's API, as testcontainers does. A record gains the engines named later
    in the run (see :func:`refresh_testcontainers`).

    Example:
        >>> tc_engines()[0][0]
        'docker'
    """
    host = _tc_host() or os.environ.get("DOCKER_HOST") or _DOCKER
    return [["docker", host]]


def _record(labels: ModuleType) -> None:
    """Write this process's testcontainers record (once), holding the owner's lock first."""
    if os.getpid() in _DONE:
        return
    session_id = getattr(labels, "SESSION_ID", None)
    folder = records_dir(create=True)
    if not isinstance(session_id, str) or folder is None:
        return
    owner = owner_token()
    hold_lock(folder, owner)  # without a lock, the owner is judged by its pid
    _DONE.add(os.getpid())
    record: dict[str, Any] = {
        "kind": "testcontainers",
        "owner": owner,
        "session_id": session_id,
        "engines": tc_engines(),
    }
    path = folder / f"tc-{uuid.uuid4().hex}.json"
    try:
        write_record(path, record)
    except OSError:
        _DONE.discard(os.getpid())
        return
    _MINE.append((os.getpid(), path, record))


def refresh_testcontainers() -> None:
    """Add to this run's record the engines named since it was written (a new ``DOCKER_HOST``).

    Called before each test's body and teardown: a fixture that points
    testcontainers at another engine (``monkeypatch.setenv("DOCKER_HOST", ...)``)
    is seen before the test starts containers there.

    Example:
        >>> refresh_testcontainers()
    """
    for index, (pid, path, record) in enumerate(_MINE):
        if pid != os.getpid():
            continue
        known = record["engines"]
        new = [pair for pair in tc_engines() if pair not in known]
        if not new:
            continue
        wider = {**record, "engines": known + new}
        try:
            write_record(path, wider)
        except OSError:
            continue
        _MINE[index] = (pid, path, wider)


def finish_testcontainers(keep: bool) -> list[str]:
    """At the end of a run: remove this run's testcontainers containers still there.

    What Ryuk does when the run ends; ``keep`` (``--kstlib-ops-keep``) leaves
    them, and their record (the next run then reaps them). Returns the names
    removed.

    Example:
        >>> finish_testcontainers(keep=False)
        []
    """
    removed: list[str] = []
    for entry in [e for e in _MINE if e[0] == os.getpid()]:
        _MINE.remove(entry)
        _DONE.discard(os.getpid())
        if keep:
            continue
        outcome, names = reap_testcontainers(entry[2])
        removed += names
        if outcome == "done":
            forget_record(entry[1])
    return removed


class _After(importlib.abc.Loader):
    """Runs the real loader, then writes the record: testcontainers' id exists from then on."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _record(module)


class _Watch(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of ``testcontainers.core.labels``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _LABELS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _After(spec.loader)
                return spec
        return None


def watch_testcontainers() -> None:
    """Record this run's testcontainers session id now, or as soon as it is imported.

    Example:
        >>> watch_testcontainers()  # doctest: +SKIP
    """
    module = sys.modules.get(_LABELS)
    if module is not None:
        _record(module)
        return
    if not any(isinstance(finder, _Watch) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Watch())
