"""``kstlib ops list`` where no container engine runs loads no engine SDK.

Each engine's task fails on its missing socket file before any SDK is needed,
so :func:`kstlib.ops.fleet.preload` imports only the kstlib modules those
tasks run (kinds ``container-nosocket`` / ``swarm-nosocket``), and the CLI
imports neither :mod:`kstlib.ops.discovery` nor the engines package to list.
What is listed and the exit code stay those of any engine that is down; the
wall time is measured in the benchmark (``benchmarks/startup.py``, rows
``cli``), not asserted here. Each run is a fresh interpreter on a private tmux
server with one session; an audit hook also sees that nothing is imported in
the threads that ask the places (two threads first importing the same modules
can deadlock).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops.fleet import kinds_of

ROOT = Path(__file__).resolve().parent.parent
ENGINE_SDKS = ("docker", "podman", "paramiko", "requests", "urllib3")

PROBE = """
import json, sys, threading
in_threads = []
def hook(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread():
        in_threads.append(args[0])
sys.addaudithook(hook)
from kstlib.cli import main
code = main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules})
kstlib = sorted(m for m in sys.modules if m.startswith("kstlib."))
print("PROBE " + json.dumps([code, loaded, kstlib, sorted(set(in_threads))]), file=sys.stderr)
"""


@pytest.fixture
def one_session(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose default tmux server is private and holds one session, ``one``."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TMUX_TMPDIR": str(tmp_path),
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "CONTAINER_HOST": f"unix://{tmp_path}/no-podman.sock",
        "PYTHONPATH": str(ROOT),
    }
    started = subprocess.run(
        ["tmux", "new-session", "-d", "-s", "one", "sleep 600"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield env
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True, timeout=30)


def _list(env: dict[str, str], *options: str) -> tuple[int, str, list[str], list[str], list[str]]:
    """Run ``kstlib ops list --json OPTIONS``: exit code, stdout, modules, kstlib modules, thread imports."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "ops", "list", "--json", *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=env["HOME"],
        timeout=120,
        check=False,
    )
    line = next((x for x in done.stderr.splitlines() if x.startswith("PROBE ")), None)
    assert line is not None, done.stdout + done.stderr
    code, loaded, kstlib, in_threads = json.loads(line.split(" ", 1)[1])
    return code, done.stdout, loaded, kstlib, in_threads


@pytest.mark.tmux
@pytest.mark.parametrize("options", [(), ("-b", "tmux")], ids=["every-place", "tmux-only"])
def test_list_json_on_tmux_loads_no_engine_sdk(
    one_session: dict[str, str], options: tuple[str, ...]
) -> None:
    code, stdout, loaded, kstlib, in_threads = _list(one_session, *options)
    assert code == 0
    rows = json.loads(stdout)
    assert [(r["name"], r["backend"], r["state"]) for r in rows] == [("one", "tmux", "running")]
    assert "libtmux" in loaded  # the listing did ask tmux
    assert [m for m in loaded if m in ENGINE_SDKS] == []
    assert "kstlib.ops.discovery" not in kstlib
    assert in_threads == []
    if options:  # tmux only: not even kstlib's container or engine modules
        assert [
            m for m in kstlib if m.startswith(("kstlib.ops.engines", "kstlib.ops.container"))
        ] == []


@pytest.mark.tmux
def test_the_engines_that_are_not_there_are_still_listed_as_not_reachable(
    one_session: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kstlib", "ops", "list", "--json"],
        capture_output=True,
        text=True,
        env=one_session,
        cwd=one_session["HOME"],
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    notes = done.stderr.splitlines()
    home = one_session["HOME"]
    assert notes == [
        f"kstlib: note: not reachable: podman at unix://{home}/no-podman.sock "
        "(run 'kstlib ops doctor')",
        f"kstlib: note: not reachable: docker at unix://{home}/no-docker.sock "
        "(run 'kstlib ops doctor')",
    ]


@pytest.mark.tmux
def test_a_swarm_with_no_socket_is_an_error_that_loaded_no_sdk(one_session: dict[str, str]) -> None:
    code, _, loaded, _, in_threads = _list(one_session, "-b", "swarm")
    assert code == 1  # nothing answered where the user asked
    assert [m for m in loaded if m in ENGINE_SDKS] == []
    assert in_threads == []


@pytest.mark.tmux
def test_an_engine_socket_that_exists_is_asked_through_its_sdk(
    one_session: dict[str, str], tmp_path: Path
) -> None:
    # A socket file nobody accepts on: the SDK is loaded (before the threads) and refused.
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        env = {**one_session, "DOCKER_HOST": f"unix://{path}"}
        code, stdout, loaded, _, in_threads = _list(env, "--runtime", "docker")
    assert code == 1
    assert stdout == ""
    assert "docker" in loaded
    assert in_threads == []


def test_a_place_whose_every_endpoint_is_a_missing_socket_is_a_nosocket_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"unix://{tmp_path}/none.sock"
    assert kinds_of("container", missing, "docker") == ["container-nosocket"]
    assert kinds_of("swarm", missing) == ["swarm-nosocket"]
    assert kinds_of("container", "tcp://127.0.0.1:1") == ["container"]
    assert kinds_of("container", "ssh://h") == ["container", "ssh"]
    here = tmp_path / "here.sock"
    here.touch()
    assert kinds_of("container", f"unix://{here}") == ["container"]
    # No base_url: the runtime's default endpoints (every runtime's without one).
    monkeypatch.setenv("DOCKER_HOST", f"unix://{here}")
    monkeypatch.setenv("CONTAINER_HOST", missing)
    assert kinds_of("container", None, "docker") == ["container"]
    assert kinds_of("container", None, "podman") == ["container-nosocket"]
    assert kinds_of("container", None) == ["container"]
    assert kinds_of("swarm", None) == ["swarm"]
    monkeypatch.setenv("DOCKER_HOST", missing)
    assert kinds_of("container", None) == ["container-nosocket"]
