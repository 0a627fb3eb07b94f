"""Upstream kstlib's refusal of shell metacharacters, for ``strict=True`` callers.

kstlib.ops passes a command to a shell (tmux, ``sh -c`` in a container) or
as an argv list, byte for byte, so its own checks accept ``;`` and ``|``.
Code written for upstream kstlib asks for the stricter rule with
``validate_command(command, strict=True)``; typing keys into tmux with
:func:`validate_send_keys` applies it to text that is not one tmux key name.

Example:
    >>> refuse_shell_patterns("command", "python -m app")
    'python -m app'
    >>> refuse_shell_patterns("command", "echo a; echo b")
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionConfigError: command: contains ';' (command chaining), a potentially dangerous shell pattern (pass an argv list, or strict=False)
"""

from __future__ import annotations

import re

from kstlib.ops.validators._common import config_error, require_str

__all__ = [
    "DANGEROUS_ENV_KEYS",
    "DANGEROUS_PATTERNS",
    "MAX_SEND_KEYS_LENGTH",
    "TMUX_KEY_NAME_RE",
    "refuse_shell_patterns",
    "validate_send_keys",
]

#: What upstream's strict mode refuses, each with what it does in a shell.
_PATTERNS = (
    (r";", "';' (command chaining)"),
    (r"&&", "'&&' (command chaining)"),
    (r"\|\|", "'||' (command chaining)"),
    (r"\|", "'|' (a pipe)"),
    (r"\$\(.*\)", "'$(...)' (command substitution)"),
    (r"`.*`", "'`...`' (command substitution)"),
    (r">\s*[/\w]", "'>' (output redirection)"),
    (r"<\s*[/\w]", "'<' (input redirection)"),
    (r"\beval\b", "'eval'"),
    (r"\bsource\b", "'source'"),
    (r"\bexec\b", "'exec'"),
)
#: The compiled patterns, as upstream exports them.
DANGEROUS_PATTERNS = [re.compile(p, re.IGNORECASE) for p, _ in _PATTERNS]
_WHAT = dict(zip(DANGEROUS_PATTERNS, (w for _, w in _PATTERNS), strict=True))

#: Environment keys that load code into a process; ``validate_env(..., strict=True)`` refuses them.
DANGEROUS_ENV_KEYS = frozenset(
    {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "NODE_OPTIONS",
        "PERL5OPT",
        "RUBYOPT",
    }
)

#: The longest text :func:`validate_send_keys` accepts (as upstream).
MAX_SEND_KEYS_LENGTH = 4096
#: One tmux key name, sent as a key rather than typed (as upstream accepts them).
TMUX_KEY_NAME_RE = re.compile(r"(?:C-[a-zA-Z]|M-[a-zA-Z]|Enter|Escape|Space|Tab|BSpace)")


def refuse_shell_patterns(field: str, text: str) -> str:
    """Refuse ``text`` if it holds one of upstream's dangerous shell patterns.

    Example:
        >>> refuse_shell_patterns("keys", "ls -l")
        'ls -l'
    """
    for pattern in DANGEROUS_PATTERNS:
        if pattern.search(text):
            raise config_error(
                field,
                f"contains {_WHAT[pattern]}, a potentially dangerous shell pattern "
                "(pass an argv list, or strict=False)",
            )
    return text


def validate_send_keys(keys: object) -> str:
    """Check keys for tmux ``send-keys`` as upstream does.

    One tmux key name (``C-c``, ``Enter``...) passes as is; other text must be
    non-empty, at most :data:`MAX_SEND_KEYS_LENGTH` characters, without NUL and
    without a dangerous shell pattern.

    Example:
        >>> validate_send_keys("C-c"), validate_send_keys("echo hello")
        ('C-c', 'echo hello')
    """
    value = require_str("keys", keys)
    if not value:
        raise config_error("keys", "cannot be empty")
    if len(value) > MAX_SEND_KEYS_LENGTH:
        raise config_error("keys", f"too long (more than {MAX_SEND_KEYS_LENGTH} characters)")
    if TMUX_KEY_NAME_RE.fullmatch(value):
        return value
    return refuse_shell_patterns("keys", value)
