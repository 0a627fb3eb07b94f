"""Nothing is first imported inside the threads that ask many places at once.

Python's import locks are per module: two threads that first import a package
and one of its modules at the same time can deadlock, and importlib then
raises ``_DeadlockError`` in one of them (``kstlib ops list`` with a swarm and
a container engine did so, once in a CI run: "unexpected _DeadlockError").
:func:`kstlib.ops.fleet.gather` imports what its tasks need first, in the
calling thread; an audit hook in a fresh interpreter sees every module that
is loaded, and by which thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kstlib.ops.fleet import kinds_of

#: Packages whose modules must all be loaded before gather's threads start.
WATCHED = ("kstlib", "docker", "podman", "libtmux", "paramiko", "requests", "urllib3")

PROBE = """
import json, sys, threading
seen = []
def hook(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        seen.append(args[0])
sys.addaudithook(hook)
from kstlib.cli import main
try:
    main(["ops", {command!r}])
except SystemExit:
    pass
print("IMPORTED-IN-THREADS " + json.dumps(sorted(set(seen))))
"""


@pytest.mark.parametrize("command", ["list", "doctor"])
def test_asking_every_kind_of_place_imports_nothing_in_its_threads(
    tmp_path: Path, command: str
) -> None:
    config = tmp_path / "kstlib.conf.yml"
    engines = {
        "local": {"backend": "tmux", "socket_name": f"kstlib-imports-{tmp_path.name}"[:60]},
        "box": {"backend": "docker", "base_url": f"unix://{tmp_path}/no-docker.sock"},
        "pods": {"backend": "podman", "base_url": f"unix://{tmp_path}/no-podman.sock"},
        "cluster": {"backend": "swarm", "base_url": f"unix://{tmp_path}/no-swarm.sock"},
        "edge": {"backend": "docker", "base_url": "ssh://nobody@127.0.0.1:1", "timeout": 5},
    }
    config.write_text(json.dumps({"ops": {"engines": engines}}))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "KSTLIB_CONFIG": str(config),
        "TMUX_TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(command=command)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    line = next(
        (x for x in done.stdout.splitlines() if x.startswith("IMPORTED-IN-THREADS ")), None
    )
    assert line is not None, done.stdout + done.stderr
    loaded = json.loads(line.split(" ", 1)[1])
    watched = [m for m in loaded if m.split(".")[0] in WATCHED]
    assert watched == [], watched
    assert "_DeadlockError" not in done.stderr
    # every engine was asked (one line each for those that are not there)
    if command == "list":
        for name in ("box", "pods", "cluster", "edge"):
            assert f"engine {name}" in done.stderr, done.stderr


def test_a_place_kind_is_its_backend_and_ssh_for_an_ssh_url() -> None:
    assert kinds_of("swarm", "ssh://h") == ["swarm", "ssh"]
    assert kinds_of("tmux", None) == ["tmux"]
