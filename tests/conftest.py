"""The fast suite's own tmux folder: no test here reaches the user's tmux servers.

Every tmux server a test in ``tests/`` starts, by design or by mistake (a CLI
call without the fake runner factory), lives under a folder of this run's own
(``TMUX_TMPDIR``) and is killed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_tmux_folder() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="kstlib-fast-")  # short: a socket path has a limit
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMUX_TMPDIR", path)
        yield path
        from kstlib.ops import TmuxRunner

        folder = os.path.join(path, f"tmux-{os.getuid()}")
        for socket in os.listdir(folder) if os.path.isdir(folder) else []:
            TmuxRunner(socket_path=os.path.join(folder, socket)).kill_server()
    shutil.rmtree(path, ignore_errors=True)
