"""Whether a session's program can be executed, asked before anything is created.

A list command is executed by the wrapper without a shell, so kstlib can tell
beforehand, as the shell would after the fact, that its first item is not
found (exit 127) or not executable (126); :meth:`TmuxRunner.start` then
raises instead of leaving an exited session behind. A string command runs in
the user's shell, which alone knows what its first word means (an alias, a
function, a builtin): it is not checked.

The program is looked up on the ``PATH`` of the session's ``env`` if it sets
one, else on kstlib's own ``PATH`` (tmux gives a new session the environment
of the client that created it, kstlib's); a relative path is resolved against
the session's working folder. A program removed between this check and its
start is still reported by the wrapper (``X: not found``, exit 127).

Example:
    >>> problem(("sh", "-c", "true"), {}, None) is None
    True
    >>> problem(("no-such-program-x",), {}, None)
    'command not found: no-such-program-x'
    >>> problem(("/etc/passwd",), {}, None)
    'not executable: /etc/passwd'
    >>> problem("no-such-program-x --flag", {}, None) is None
    True
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence

__all__ = ["problem"]


def problem(
    command: str | Sequence[str] | None, env: Mapping[str, str], working_dir: str | None
) -> str | None:
    """Why the list ``command`` cannot be executed, or ``None`` (also for any string).

    Example:
        >>> problem(["./nothing-here"], {}, "/")
        'command not found: ./nothing-here'
    """
    if command is None or isinstance(command, str) or not command:
        return None
    program = command[0]
    if os.sep in program:
        path = os.path.join(working_dir or os.getcwd(), program)
        if not os.path.exists(path):
            return f"command not found: {program}"
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            return f"not executable: {program}"
        return None
    search = env.get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(program, path=search) is None:
        return f"command not found: {program}"
    return None
