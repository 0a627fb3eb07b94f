#!/usr/bin/env python3
"""A script written for the upstream kstlib.ops API; it runs unchanged on this one.

It uses only what the upstream kstlib offered: ``SessionManager(name,
backend="tmux")``, ``start(command=..., working_dir=...)``,
``SessionManager.from_config(name)`` reading ``./kstlib.conf.yml``,
``status()``, ``logs()``, ``stop()``, and the upstream exception imports
(``kstlib.ops.exceptions.*``, ``SessionConfigError`` from
``kstlib.ops.manager``).

It expects a ``kstlib.conf.yml`` in the current directory that defines the
tmux session ``upstream-bot`` (printing ``bot-up``) and the container session
``upstream-web``. Sessions go to tmux's default server: run it with
``TMUX_TMPDIR`` pointing at a scratch directory to keep them apart from yours.
It prints one line per step and exits 0 when every step behaved as documented.

Run it:
    cd a-directory-with-kstlib.conf.yml && TMUX_TMPDIR=$(mktemp -d) python upstream_script.py
"""

from __future__ import annotations

import sys
import tempfile
import time

from kstlib.ops import SessionManager
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionAmbiguousError,
    SessionAttachError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    TmuxNotFoundError,
)
from kstlib.ops.manager import SessionConfigError
from kstlib.ops.models import BackendType, SessionState

# Imported to prove the upstream names exist; the script does not need to raise them.
UPSTREAM_NAMES = (
    ContainerRuntimeNotFoundError,
    SessionAmbiguousError,
    SessionAttachError,
    SessionStartError,
    SessionStopError,
)


def wait_for_output(session: SessionManager, text: str, timeout: float = 10.0) -> bool:
    """Poll the session's logs until ``text`` shows up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in session.logs(lines=50):
            return True
        time.sleep(0.1)
    return False


def main() -> int:
    """Run every step; return the exit code."""
    session = SessionManager("upstream-demo", backend="tmux")
    try:
        status = session.start(
            command="echo upstream-ready; sleep 30", working_dir=tempfile.gettempdir()
        )
    except TmuxNotFoundError as exc:
        print(f"tmux is missing: {exc}")
        return 1
    print(f"started {status.name} state={status.state.value} backend={status.backend.value}")

    try:
        session.start(command="sleep 1")
        print("ERROR: a second start did not raise SessionExistsError")
        return 1
    except SessionExistsError as exc:
        print(f"exists: {exc.name}")

    if not wait_for_output(session, "upstream-ready"):
        print("ERROR: no output from upstream-demo")
        return 1
    print("logs ok")

    current = session.status()
    if current.state != SessionState.RUNNING or current.backend != BackendType.TMUX:
        print(f"ERROR: unexpected status {current}")
        return 1
    print(f"status {current.state.value}")

    session.stop()
    try:
        session.status()
        print("ERROR: status() after stop() did not raise SessionNotFoundError")
        return 1
    except SessionNotFoundError:
        print("stopped")

    bot = SessionManager.from_config("upstream-bot")
    print(f"from_config {bot.name} backend={bot.backend.value} command={bot.config.command}")
    bot.start()
    try:
        if not wait_for_output(bot, "bot-up"):
            print("ERROR: no output from upstream-bot")
            return 1
        print(f"bot {bot.status().state.value}")
    finally:
        bot.stop(graceful=True, timeout=5)

    web = SessionManager.from_config("upstream-web")
    print(f"web backend={web.backend.value} image={web.config.image} "
          f"volumes={len(web.config.volumes)}")

    try:
        SessionManager.from_config("not-in-config")
        print("ERROR: an undefined session did not raise SessionConfigError")
        return 1
    except SessionConfigError:
        print("undefined session refused")

    try:
        SessionManager("bad name!", backend="tmux")
        print("ERROR: an invalid name did not raise SessionConfigError")
        return 1
    except SessionConfigError:
        print("invalid name refused")
    except OpsError as exc:  # upstream scripts catch the base class too
        print(f"ERROR: wrong error type {type(exc).__name__}")
        return 1
    print("all upstream steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
