"""The trust model of config files: the user's own file and a project-local one.

Internal: the public names are re-exported by :mod:`kstlib.ops.config`.

A ``kstlib.conf.yml`` found in the current directory came with the folder (a
cloned repository, a download), not from the user. Read alone it would replace
the user's own file, engines included, and its registry settings would apply
to the user's credentials. So a project-local file is merged under the user's
own (``$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml``):

* the user's engines and sessions win over the project's of the same name;
* until the user trusts the file, its registry settings (``insecure_registries``,
  ``registry_auth``) are skipped, and a remote engine only it names (``ssh://``,
  ``tcp://``, ``http(s)://``) is not reached by any command;
* the user trusts a project file by naming it (``--config FILE``,
  ``$KSTLIB_CONFIG``) or by listing it, or a folder above it, under
  ``ops.trusted_projects`` of their own file (a project file cannot trust itself).

A program a config file names must also be one nobody else can replace
(:func:`program_problem`).

Example:
    >>> is_remote("tcp://10.0.0.5:2375"), is_remote("unix:///run/docker.sock")
    (True, False)
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

from kstlib.ops import validators
from kstlib.ops.config._schema import OpsConfig
from kstlib.ops.exceptions import SessionConfigError

__all__ = [
    "REMOTE_SCHEMES",
    "is_remote",
    "merge_project",
    "program_problem",
    "trusts",
    "validate_trusted_projects",
]

#: URL schemes of an engine on another machine: data sent there leaves this host.
REMOTE_SCHEMES = ("ssh://", "tcp://", "http://", "https://")
#: The settings a project-local file may set only once the user trusts it.
REGISTRY_KEYS = ("insecure_registries", "registry_auth")


def is_remote(url: str | None) -> bool:
    """Whether an engine URL reaches another machine (``ssh://``, ``tcp://``, ``http(s)://``).

    Example:
        >>> is_remote("ssh://ci@edge"), is_remote(None)
        (True, False)
    """
    return url is not None and url.lower().startswith(REMOTE_SCHEMES)


def validate_trusted_projects(value: object) -> tuple[str, ...]:
    """``ops.trusted_projects``: absolute paths (``~`` allowed) of project folders or files.

    Example:
        >>> validate_trusted_projects(["/srv/app"])
        ('/srv/app',)
        >>> validate_trusted_projects(["src/app"])
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: trusted_projects: 'src/app' must be an absolute path (or start with ~)
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SessionConfigError(
            f"trusted_projects: expected a list of folder paths, got {type(value).__name__}",
            field="trusted_projects",
        )
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise SessionConfigError(
                f"trusted_projects: {validators.shown(item)} is not a path",
                field="trusted_projects",
            )
        path = os.path.expanduser(item)
        if not os.path.isabs(path):
            raise SessionConfigError(
                f"trusted_projects: {validators.shown(item)} must be an absolute path "
                "(or start with ~)",
                field="trusted_projects",
            )
        out.append(os.path.normpath(path))
    return tuple(out)


def trusts(trusted_projects: tuple[str, ...], found: Path) -> bool:
    """Whether the project file ``found`` is, or lies under, one of ``trusted_projects``.

    Example:
        >>> trusts(("/srv/app",), Path("/srv/app/kstlib.conf.yml")), trusts((), Path("/x"))
        (True, False)
    """
    try:
        target = found.resolve()
    except (OSError, RuntimeError):
        return False
    for entry in trusted_projects:
        try:
            trusted = Path(entry).resolve()
        except (OSError, RuntimeError):
            continue
        if target == trusted or trusted in target.parents:
            return True
    return False


def _urls(config: OpsConfig) -> set[str]:
    """Every engine URL a config names (engines with and without ssh query, swarm nodes; sessions)."""
    urls = {u for e in config.engines.values() for u in (e.base_url, e.endpoint, *e.nodes) if u}
    urls.update(s.base_url for s in config.sessions.values() if s.base_url)
    return urls


def merge_project(project: OpsConfig, user: OpsConfig, *, trusted: bool) -> OpsConfig:
    """A project-local file's configuration under the user's own (see the module's text).

    The user's engines and sessions win by name; ``tmux_binary`` and
    ``trusted_projects`` come from the user's file alone. Untrusted, the
    project's registry settings are dropped (:attr:`OpsConfig.notes` says so)
    and the remote engine URLs only the project names are listed in
    :attr:`OpsConfig.untrusted_urls`.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> project = OpsConfig(engines={"prod": EngineConfig("prod", "tcp://10.9.9.9:2375")},
        ...                     insecure_registries=("10.9.9.9:5000",), project_local=True)
        >>> user = OpsConfig(engines={"prod": EngineConfig("prod", "unix:///run/docker.sock")})
        >>> merged = merge_project(project, user, trusted=False)
        >>> merged.engines["prod"].base_url, merged.insecure_registries, sorted(merged.untrusted_urls)
        ('unix:///run/docker.sock', (), ['tcp://10.9.9.9:2375'])
    """
    sessions = dict(project.sessions)
    notes: list[str] = []
    insecure = user.insecure_registries
    if trusted:
        insecure = tuple(dict.fromkeys([*user.insecure_registries, *project.insecure_registries]))
    else:
        skipped: list[str] = []
        if set(project.insecure_registries) - set(user.insecure_registries):
            skipped.append("ops.insecure_registries")
        for name, session in project.sessions.items():
            kept = tuple(r for r in session.insecure_registries if r in user.insecure_registries)
            if kept != session.insecure_registries:
                skipped.append(f"ops.sessions.{name}.insecure_registries")
            if session.registry_auth is not None:
                skipped.append(f"ops.sessions.{name}.registry_auth")
            sessions[name] = replace(session, insecure_registries=kept, registry_auth=None)
        if skipped:
            notes.append(
                f"skipped {', '.join(skipped)} of the project-local {project.source}: "
                "registry settings of a file in the current folder apply only once you "
                f"trust it ({how_to_trust(project, user)})"
            )
    if project.trusted_projects:
        notes.append(
            f"ignored ops.trusted_projects of the project-local {project.source}: only "
            "your own config file can trust a folder"
        )
    sessions.update(user.sessions)
    untrusted: frozenset[str] = frozenset()
    if not trusted:
        untrusted = frozenset(u for u in _urls(project) - _urls(user) if is_remote(u))
    return replace(
        project,
        container_runtime=project.container_runtime or user.container_runtime,
        tmux_socket=project.tmux_socket or user.tmux_socket,
        tmux_binary=user.tmux_binary if user.tmux_binary is not None else project.tmux_binary,
        pull=project.pull or user.pull,
        engines={**project.engines, **user.engines},
        sessions=sessions,
        insecure_registries=insecure,
        trusted_projects=user.trusted_projects,
        project_local=not trusted,
        untrusted_urls=untrusted,
        user_path=user.path,
        notes=tuple(notes),
    )


def how_to_trust(project: OpsConfig, user: OpsConfig | None = None) -> str:
    """The words that tell the user how to trust ``project``'s file.

    Example:
        >>> how_to_trust(OpsConfig(path=Path("/src/app/kstlib.conf.yml")))
        'pass --config /src/app/kstlib.conf.yml, or add /src/app to ops.trusted_projects of your own config file'
    """
    own = user.path if user is not None and user.path is not None else None
    own = own or project.user_path
    where = str(own) if own is not None else "your own config file"
    folder = project.path.parent if project.path is not None else "its folder"
    return f"pass --config {project.source}, or add {folder} to ops.trusted_projects of {where}"


def program_problem(program: str) -> str | None:
    """Why a config file may not name ``program`` to run, or ``None`` when it may.

    An absolute path or a bare name found on ``PATH``; the file and every
    folder above it owned by root or the current user and writable by no one
    else (git's ``safe.directory`` and tmux's socket folder apply the same
    test): otherwise another user could swap the program kstlib runs.

    Example:
        >>> program_problem("bin/tmux")
        "'bin/tmux' must be an absolute path or a program name looked up on PATH (a relative path would run a program from the config file's folder)"
    """
    shown = validators.shown(program)
    if os.sep in program and not os.path.isabs(program):
        return (
            f"{shown} must be an absolute path or a program name looked up on PATH "
            "(a relative path would run a program from the config file's folder)"
        )
    if program.startswith("~"):
        return f"{shown} must be an absolute path (write it out, without '~')"
    found = program if os.path.isabs(program) else shutil.which(program)
    if found is None or not os.path.exists(found):
        return None  # nothing to run: the backend reports tmux as not found when used
    me = os.geteuid()
    target = Path(os.path.realpath(found))
    for part in (target, *target.parents):
        try:
            st = os.stat(part)
        except OSError:
            continue
        if st.st_uid not in (0, me):
            return f"{shown}: {part} is owned by uid {st.st_uid}, not by root or you"
        # In a sticky folder (/tmp) others may add files but not replace ours.
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
            return f"{shown}: {part} is writable by other users"
    return None
