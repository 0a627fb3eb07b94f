"""Loading ``kstlib.conf.yml``: defaults and named session definitions.

Internal package: its public names are documented as :mod:`kstlib.ops`'s
(``from kstlib.ops import ...``); this path keeps importing them.

The file is YAML; kstlib.ops reads its ``ops:`` section and ignores the other
top-level sections (the upstream kstlib shares one file between subsystems).
Every problem (YAML syntax, an unknown key, a wrong type, an invalid value)
raises :class:`~kstlib.ops.exceptions.SessionConfigError` whose message names
the file, the line, the session and the key.

Lookup order (the first one that applies wins):

1. an explicit path (``--config`` / ``path=``): it must exist;
2. ``$KSTLIB_CONFIG``: it must exist;
3. ``./kstlib.conf.yml`` in the current directory;
4. ``$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml`` (default ``~/.config``).

When nothing was asked for and no file exists, the configuration is empty.

A file found in the current directory (3.) is **project-local**: it came with
whatever folder you are in (a cloned repository, a download), not from you.
:attr:`OpsConfig.project_local` says so, and commands that only read (``list``,
``status``, ``logs``, ``wait``, ``doctor``...) run no program it names. A
program a config file names (``tmux_binary``) must be an absolute path or a
bare name looked up on ``PATH``, owned by root or by you and writable by no
one else.

Example:
    >>> cfg = parse_config('''
    ... ops:
    ...   default_backend: tmux
    ...   sessions:
    ...     bot:
    ...       command: python bot.py
    ...       env: {MODE: fast}
    ... ''', source="inline.yml")
    >>> cfg.session("bot").command, cfg.session("bot").env
    ('python bot.py', {'MODE': 'fast'})
    >>> parse_config("ops: {sessions: {bot: {colour: blue}}}", source="inline.yml")
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionConfigError: inline.yml:1: ops.sessions.bot.colour: unknown key (known: ...)
"""

from __future__ import annotations

from kstlib.ops.config._engines import EngineConfig, EngineProblem
from kstlib.ops.config._file import (
    find_config_file,
    is_project_local,
    load_config,
    parse_config,
    read_config_text,
)
from kstlib.ops.config._schema import (
    CONFIG_ENV,
    CONFIG_FILENAME,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_VALUES,
    OpsConfig,
    config_candidates,
)
from kstlib.ops.config._trust import how_to_trust, is_remote, program_problem

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILENAME",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_VALUES",
    "EngineConfig",
    "EngineProblem",
    "OpsConfig",
    "config_candidates",
    "find_config_file",
    "how_to_trust",
    "is_project_local",
    "is_remote",
    "load_config",
    "parse_config",
    "program_problem",
    "read_config_text",
]
