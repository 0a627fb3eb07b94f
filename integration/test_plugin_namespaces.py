"""The reaper across pid namespaces, boots and hosts (issue 21, point 6).

A CI job in a container that shares the home folder runs in another pid namespace:
its pid means nothing here (pid 1 there is init here). Such a run's sessions must
never be reaped while it lives, and must be once it is killed. Played for real with
``unshare --pid`` (a run whose pid is 1), and as an attacker would: records and
labels whose marks name another namespace, boot or host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import TmuxRunner
from kstlib.ops.exceptions import OpsError
from kstlib.ops.models import SessionConfig
from kstlib.ops.pytest_plugin import OWNER_LABEL, OWNER_OPTION, owner_token, reap_orphans

from .conftest import DOCKER_URL, PODMAN_URL, TEST_IMAGE, unique
from .test_cli import container_runner
from .waiting import wait_until

pytestmark = [pytest.mark.tmux, pytest.mark.docker, pytest.mark.podman]

WAIT_S = 60.0

INNER = """
import os, pathlib, time

def test_holds_containers(ops_session):
    made = [
        ops_session(["sleep", "600"], backend="docker", image={image!r}, base_url={docker!r}),
        ops_session(["sleep", "600"], backend="podman", image={image!r}, base_url={podman!r}),
    ]
    ready = pathlib.Path({ready!r})
    ready.with_suffix(".tmp").write_text(" ".join([str(os.getpid())] + [m.name for m in made]))
    ready.with_suffix(".tmp").rename(ready)
    while True:  # until the namespace is killed
        time.sleep(0.05)
"""


wait_for = partial(wait_until, timeout=WAIT_S, interval=0.05)


def stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (state first), ``[]`` once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def gone(pid: int, start: str) -> bool:
    """Whether process ``pid`` (started at ``start``) has exited: a zombie's lock is free."""
    fields = stat(pid)
    return len(fields) < 20 or fields[19] != start or fields[0] in ("Z", "X")


def next_run(where: Path, env: dict[str, str]) -> None:
    (where / "test_next.py").write_text("def test_nothing():\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(where / "test_next.py")], cwd=where, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                           os.environ.get("PYTHONPATH", "")])}


def test_a_live_run_in_another_pid_namespace_is_not_reaped_a_killed_one_is(
    tmp_path: Path, env: dict[str, str]
) -> None:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to make a pid namespace"
    runners = {"docker": container_runner("docker"), "podman": container_runner("podman")}
    ready = tmp_path / "ready"
    test = tmp_path / "test_in_namespace.py"
    test.write_text(INNER.format(image=TEST_IMAGE, docker=DOCKER_URL, podman=PODMAN_URL,
                                 ready=str(ready)))
    proc = subprocess.Popen(
        [unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-m", "pytest", "-q",
         "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    names: list[str] = []
    try:
        def started() -> bool:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"the run in the namespace ended early: {out}")
            return ready.exists()

        wait_for(started, "the run in the namespace to start its containers")
        pid, *names = ready.read_text().split()
        assert pid == "1"  # pid 1 there; here, init: alive, but another process
        label = runners["docker"].engine.inspect(names[0]).labels[OWNER_LABEL]
        theirs, ours = label.split(":"), owner_token().split(":")
        assert theirs[0] == "1" and theirs[3] != ours[3]  # another pid namespace
        assert theirs[2] == ours[2] and theirs[4] == ours[4]  # same boot, same host

        next_run(tmp_path, env)  # the namespaced run lives: its lock is held
        assert [runners[r].exists(n) for r, n in zip(runners, names, strict=True)] == [True, True]

        # pid 1 of the namespace, as this namespace sees it: the child of unshare
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        inner, start = int(children[0]), stat(int(children[0]))[19]
        os.killpg(proc.pid, signal.SIGKILL)  # the whole namespace, no cleanup
        proc.wait(timeout=30)
        wait_for(lambda: gone(inner, start), "the namespace's pytest to exit")
        next_run(tmp_path, env)  # its lock is free now: reaped
        assert [runners[r].exists(n) for r, n in zip(runners, names, strict=True)] == [False, False]
        folder = tmp_path / "state" / "kstlib" / "ops" / "pytest-owners"
        assert list(folder.glob("*.json")) == [] and list(folder.glob("*.lock")) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for runtime, name in zip(runners, names, strict=False):
            with contextlib.suppress(OpsError):
                runners[runtime].stop(name, graceful=False)


@pytest.fixture
def socket(tmux_socket: str) -> Iterator[str]:
    name = f"kstlib-ns-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (folder / name).unlink()  # tmux leaves the socket file behind


def test_marks_from_elsewhere_are_never_judged_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, socket: str
) -> None:
    """Forged marks with dead pids and no lock: only this namespace's is reaped."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "state" / "kstlib" / "ops" / "pytest-owners"
    folder.mkdir(parents=True)
    for level in (folder, *folder.parents[:3]):
        level.chmod(0o700)
    _pid, _start, boot, pidns, host = owner_token().split(":")
    dead = "999999999"
    marks = {
        "here": f"{dead}:1:{boot}:{pidns}:{host}",  # dead, this namespace: reaped
        "other-ns": f"{dead}:1:{boot}:{int(pidns) + 1}:{host}",
        "other-boot": f"{dead}:1:{uuid.uuid4()}:{pidns}:{host}",
        "other-host": f"{dead}:1:{boot}:{pidns}:elsewhere",
        "old": f"{dead}:1",  # an older kstlib's mark: no namespace, never judged
        "unknown-ns": f"{dead}:1:{boot}:?:{host}",
    }
    docker = container_runner("docker")
    tmux = TmuxRunner(socket_name=socket)
    names: dict[str, tuple[str, str]] = {}
    try:
        for kind, mark in marks.items():
            for backend in ("docker", "tmux"):
                name = unique(f"ns-{kind}")
                names[f"{kind}/{backend}"] = (backend, name)
                if backend == "docker":
                    docker.start(SessionConfig(
                        name=name, backend="container", runtime="docker", base_url=DOCKER_URL,
                        image=TEST_IMAGE, command=["sleep", "600"],
                        labels={OWNER_LABEL: mark}))
                    record: dict[str, Any] = {"runtime": "docker", "base_url": DOCKER_URL,
                                              "backend": "container"}
                else:
                    tmux.start(SessionConfig(name=name, command=["sleep", "600"],
                                             socket_name=socket))
                    tmux.server.cmd("set-option", "-t", f"={name}:", OWNER_OPTION, mark)
                    record = {"backend": "tmux", "socket_name": socket}
                path = folder / f"{kind}-{backend}.json"
                path.write_text(json.dumps({"owner": mark, "name": name, **record}))
                path.chmod(0o600)

        reaped = reap_orphans()

        assert sorted(reaped) == sorted([names["here/docker"][1], names["here/tmux"][1]])
        for key, (backend, name) in names.items():
            runner: Any = docker if backend == "docker" else tmux
            assert runner.exists(name) == (not key.startswith("here/")), key
        left = sorted(p.stem for p in folder.glob("*.json"))
        assert left == sorted(f"{k}-{b}" for k in marks if k != "here" for b in ("docker", "tmux"))
    finally:
        for backend, name in names.values():
            with contextlib.suppress(OpsError):
                (docker if backend == "docker" else tmux).stop(name, graceful=False)
