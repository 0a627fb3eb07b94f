"""The ``kstlib`` command line (console script ``kstlib``, also ``python -m kstlib``).

:func:`main` runs one command and returns its exit code. Every expected
failure becomes one line on stderr, ``kstlib: error: <what went wrong and
what to do>``, and an exit code scripts can branch on:

====  ==========================================================
0     success
1     the operation failed (:class:`~kstlib.ops.exceptions.OpsError`)
2     usage or configuration error (bad option, invalid config file)
3     session not found
130   interrupted (Ctrl-C)
====  ==========================================================

``exec`` exits with the exit code of the command it ran, ``wait`` with the
session's (``--print-code`` or ``--json`` print it instead, so that the exit
status is kstlib's alone), and ``attach`` to a container with the container's
when it ends while attached.

Example:
    >>> main(["ops", "start", "9lives"])
    2
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kstlib.ops.runners import RunnerFactory

__all__ = ["EXIT_FAILED", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130
#: Set to 1 to get the traceback of an unexpected error (a bug) instead of one line.
DEBUG_ENV = "KSTLIB_DEBUG"


def _fail(message: str) -> None:
    from kstlib.cli.output import printable

    line = printable(" ".join(str(message).split()))
    try:
        sys.stderr.write(f"kstlib: error: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a broken pipe, send what is left of stdout to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run(argv: list[str], runner_factory: RunnerFactory | None) -> int:
    from kstlib.cli.parser import parse_args

    args = parse_args(argv)
    if args.area is None:
        parse_args(["--help"])
    if getattr(args, "command_name", None) is None:
        parse_args([args.area, "--help"])
    from kstlib.cli.commands import run

    with _verbose(bool(getattr(args, "verbose", False))):
        code = run(args, runner_factory)
    sys.stdout.flush()
    return code


@contextlib.contextmanager
def _verbose(on: bool) -> Iterator[None]:
    """``-v``: DEBUG records of ``kstlib.ops`` (and its backends' children) go to stderr."""
    if not on:
        yield
        return
    log = logging.getLogger("kstlib.ops")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def main(argv: Sequence[str] | None = None, *, runner_factory: RunnerFactory | None = None) -> int:
    """Run ``kstlib`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    ``runner_factory``: what builds each runner
    (:class:`~kstlib.ops.runners.RunnerFactory`; default: the real backends),
    so a test runs the whole CLI on runners of its own.

    Example:
        >>> main(["--version"])
        kstlib 0.1.0
        0
    """
    from kstlib.cli.parser import UsageError
    from kstlib.ops.exceptions import OpsError, SessionConfigError, SessionNotFoundError

    try:
        return _run(list(sys.argv[1:] if argv is None else argv), runner_factory)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (UsageError, SessionConfigError) as err:
        _fail(str(err))
        return EXIT_USAGE
    except SessionNotFoundError as err:
        _fail(str(err))
        return EXIT_NOT_FOUND
    except OpsError as err:
        _fail(str(err) or type(err).__name__)
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILED
    except Exception as err:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        text = str(err)
        if len(text) > 300:  # an unexpected error may carry any value: keep the line short
            text = text[:297] + "..."
        _fail(
            f"unexpected {type(err).__name__}: {text} (this is a bug in kstlib: rerun with "
            f"{DEBUG_ENV}=1 for the traceback and report it)"
        )
        return EXIT_FAILED
