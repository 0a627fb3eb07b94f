"""What ``exec`` returns: a ``(returncode, output)`` pair that also has upstream's attributes.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

Example:
    >>> result = ExecResult(0, "hi\\noops\\n", stdout="hi\\n", stderr="oops\\n")
    >>> code, output = result
    >>> code, result.returncode, result.stdout, result.stderr
    (0, 0, 'hi\\n', 'oops\\n')
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExecResult"]


class ExecResult(tuple[int, str]):
    """The result of a command run beside a session's process.

    A 2-tuple ``(returncode, output)`` (``output``: stdout and stderr in the
    order the engine relayed them), so ``code, out = runner.exec(...)`` keeps
    working, with the attributes upstream's result has: :attr:`returncode`,
    :attr:`stdout` and :attr:`stderr` (each stream alone), and :attr:`output`.

    Example:
        >>> ExecResult(3, "no\\n", stdout="", stderr="no\\n") == (3, "no\\n")
        True
        >>> ExecResult(0, "hi\\n")
        ExecResult(returncode=0, stdout='hi\\n', stderr='')
    """

    stdout: str
    stderr: str

    def __new__(
        cls, returncode: int, output: str, *, stdout: str | None = None, stderr: str = ""
    ) -> ExecResult:
        """The pair ``(returncode, output)``; ``stdout`` defaults to ``output``."""
        self = super().__new__(cls, (returncode, output))
        self.stdout = output if stdout is None else stdout
        self.stderr = stderr
        return self

    @property
    def returncode(self) -> int:
        """The command's exit code (``-1``: the engine gave none).

        Example:
            >>> ExecResult(2, "").returncode
            2
        """
        return self[0]

    @property
    def output(self) -> str:
        """Both streams together, in the order the engine relayed them.

        Example:
            >>> ExecResult(0, "a\\nb\\n", stdout="a\\n", stderr="b\\n").output
            'a\\nb\\n'
        """
        return self[1]

    def __repr__(self) -> str:
        return f"ExecResult(returncode={self[0]!r}, stdout={self.stdout!r}, stderr={self.stderr!r})"

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self[0], self[1]), {"stdout": self.stdout, "stderr": self.stderr}
