"""How long one list over many engines takes: at once (kstlib.ops.fleet) vs one after the other.

Engines: a private tmux server, Docker and Podman over ssh:// through the
harness's sshd, the local Podman, and the swarm manager's dockerd (a second
Docker). Each round lists every engine alone (their sum is what a one-by-one
list costs) and then all at once; engines stay connected (the client cache),
as in a long-lived process, plus one cold round in a fresh process per mode.

    source <(bash integration/engines/engines.sh env)
    PYTHONPATH=. python benchmarks/fleet.py [ROUNDS]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time

from kstlib.ops import SessionConfig, TmuxRunner
from kstlib.ops.config import EngineConfig
from kstlib.ops.fleet import list_engine, list_engines

#: The harness's Podman socket (``engines.sh env`` exports it).
PODMAN_SOCK = os.environ.get("KSTLIB_TEST_PODMAN_SOCK", "/run/podman/podman.sock")


def engines(socket: str) -> list[EngineConfig]:
    """The five engines of the measurement (the harness must be up)."""
    env = os.environ
    port = env["KSTLIB_TEST_SSH_PORT"]
    ssh = {
        "identity": env["KSTLIB_TEST_SSH_KEY"],
        "known_hosts": env["KSTLIB_TEST_SSH_KNOWN_HOSTS"],
    }
    return [
        EngineConfig("local", backend="tmux", socket_name=socket),
        EngineConfig("edge", f"ssh://root@127.0.0.1:{port}", "docker", **ssh),  # type: ignore[arg-type]
        EngineConfig("lab", f"ssh://root@127.0.0.1:{port}{PODMAN_SOCK}", "podman", **ssh),  # type: ignore[arg-type]
        EngineConfig("podman", f"unix://{PODMAN_SOCK}", "podman"),
        EngineConfig("second", env["KSTLIB_TEST_SWARM_MANAGER"], "docker"),
    ]


def hung_engines(fleet: list[EngineConfig], timeout: float = 2.0) -> None:
    """Two engines that accept connections and never answer: each costs its whole timeout."""
    import socket
    import threading

    listeners = []
    for _ in range(2):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        listeners.append(server)
        # Accept and hold every connection, answering nothing (a hung daemon).
        held: list[socket.socket] = []
        threading.Thread(
            target=lambda s=server, h=held: [h.append(s.accept()[0]) for _ in iter(int, 1)],
            daemon=True,
        ).start()
    slow = [
        EngineConfig(f"hung{i}", f"tcp://127.0.0.1:{s.getsockname()[1]}", "docker", timeout=timeout)
        for i, s in enumerate(listeners)
    ]
    mixed = fleet + slow
    began = time.perf_counter()
    for e in mixed:
        with contextlib.suppress(Exception):  # the hung ones time out: that is the point
            list_engine(e, timeout)
    one_by_one = time.perf_counter() - began
    began = time.perf_counter()
    _, down = list_engines(mixed, timeout=timeout)
    at_once = time.perf_counter() - began
    print(
        f"  with 2 hung engines ({timeout:g} s timeout each): one after the other "
        f"{one_by_one:.2f} s, all at once {at_once:.2f} s ({len(down)} reported down); "
        f"ratio {at_once / one_by_one:.2f}"
    )


def main() -> None:
    """Measure and print; ROUNDS from the command line (default 15)."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    socket = f"kstlib-bench-fleet-{os.getpid()}"
    runner = TmuxRunner(socket_name=socket)
    runner.start(SessionConfig(name="bench-fleet", command="sleep 600"))
    fleet = engines(socket)
    try:
        list_engines(fleet, timeout=30)  # connect and cache every engine once
        sums, parallel, alone = [], [], {e.name: [] for e in fleet}
        for _ in range(rounds):
            total = 0.0
            for e in fleet:
                began = time.perf_counter()
                list_engine(e, 30)
                took = time.perf_counter() - began
                alone[e.name].append(took)
                total += took
            sums.append(total)
            began = time.perf_counter()
            table, down = list_engines(fleet, timeout=30)
            parallel.append(time.perf_counter() - began)
            assert not down, down
        slowest = [max(alone[n][i] for n in alone) for i in range(rounds)]
        med = statistics.median
        print(f"rounds: {rounds}, engines: {len(fleet)}, rows in the last table: {len(table)}")
        for name, values in alone.items():
            print(f"  {name:7s} alone     median {med(values) * 1000:7.1f} ms")
        print(f"  one after the other (sum)  median {med(sums) * 1000:7.1f} ms")
        print(f"  slowest engine alone        median {med(slowest) * 1000:7.1f} ms")
        print(f"  all at once (fleet)         median {med(parallel) * 1000:7.1f} ms")
        print(
            f"  ratio at once / sum: {med(parallel) / med(sums):.2f}; "
            f"at once / slowest: {med(parallel) / med(slowest):.2f}"
        )
    finally:
        runner.stop("bench-fleet", graceful=False)
        runner.kill_server()
    hung_engines(fleet)
    cold = """
import time, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {root!r} + "/benchmarks")
from fleet import engines
from kstlib.ops.fleet import list_engine, list_engines
fleet = engines({socket!r})
began = time.perf_counter()
if {parallel}:
    list_engines(fleet, timeout=30)
else:
    for e in fleet:
        list_engine(e, 30)
print(time.perf_counter() - began)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for parallel_mode in (False, True):
        code = cold.format(root=root, socket=socket, parallel=parallel_mode)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        ).stdout.split()[-1]
        label = "all at once" if parallel_mode else "one after the other"
        print(f"  cold process, {label:20s} {float(out) * 1000:7.1f} ms (ssh logins included)")


if __name__ == "__main__":
    main()
