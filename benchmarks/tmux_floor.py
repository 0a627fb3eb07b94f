#!/usr/bin/env python
"""kstlib's tmux calls against the same tmux commands through libtmux, at 1 to 1000 sessions.

Issue 24's fork-path rows: ``list_sessions()`` against the raw ``list-sessions
-F`` of the same fields, ``status()`` against the raw ``list-panes``, and
``start()`` / ``stop(graceful=False)`` against plain ``new-session`` /
``kill-session``, and the queries through the opt-in control-mode channel
(``TmuxRunner(control=True)``) against the same forked command, each on one private server filled with ``SIZES`` sessions;
medians of interleaved rounds (ms). Run::

    .venv/bin/python benchmarks/tmux_floor.py [--sizes 1,101,200,1000] [--rounds 60]
        [--control-anyway]

Prints one line a row and, with ``--json PATH``, writes them. Everything it
makes (a private socket ``kstlib-floor-<pid>`` and its state) is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def median_ms(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Interleaved rounds (order rotated), two warm-ups; median ms per variant."""
    names = list(fns)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for n in names * 2:
        fns[n]()
    for i in range(rounds):
        k = i % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter_ns()
            fns[n]()
            samples[n].append((time.perf_counter_ns() - t0) / 1e6)
    return {n: round(statistics.median(s), 3) for n, s in samples.items()}


def fill(cli: list[str], have: int, want: int) -> None:
    for first in range(have, want, 200):
        argv = list(cli)
        for i in range(first, min(first + 200, want)):
            argv += ["new-session", "-d", "-s", f"fill-{i:04d}", "exec sleep 86400", ";"]
        subprocess.run(argv[:-1], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,101,200,1000")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument(
        "--control-anyway",
        action="store_true",
        help="use the control channel below tmux 3.4 too (3.3a crashes in races this avoids)",
    )
    opts = parser.parse_args()
    if opts.control_anyway:
        from kstlib.ops.tmux import control

        control.MIN_VERSION = (0, 0)

    import libtmux

    from kstlib.ops import SessionConfig, TmuxRunner
    from kstlib.ops.tmux.pane import FORMAT

    socket = f"kstlib-floor-{os.getpid()}"
    cli = [shutil.which("tmux") or "tmux", "-L", socket]
    runner = TmuxRunner(socket_name=socket)
    channel = TmuxRunner(socket_name=socket, control=True)
    server = libtmux.Server(socket_name=socket)
    rows: list[dict[str, object]] = []
    counter = iter(range(10**6))
    try:
        runner.start(SessionConfig(name="main", command=["sleep", "86400"]))
        have = 1
        for size in (int(s) for s in opts.sizes.split(",")):
            if size > have:
                fill(cli, have - 1, size - 1)
                have = size
            n = len(server.cmd("list-sessions", "-F", "x").stdout)

            def start_stop_kstlib() -> None:
                name = f"k{next(counter)}"
                runner.start(SessionConfig(name=name, command=("sleep", "86400")))
                runner.stop(name, graceful=False)

            def start_stop_raw() -> None:
                name = f"r{next(counter)}"
                server.cmd("new-session", "-d", "-s", name, "-P", "-F", FORMAT, "sleep 86400")
                server.cmd("kill-session", "-t", f"={name}")

            measured = {
                "list_sessions": {
                    "kstlib": runner.list_sessions,
                    "raw": lambda: server.cmd("list-sessions", "-F", FORMAT),
                },
                "status": {
                    "kstlib": lambda: runner.status("main"),
                    "raw": lambda: server.cmd("list-panes", "-t", "=main:", "-F", FORMAT),
                },
                "exists": {
                    "kstlib": lambda: runner.exists("main"),
                    "raw": lambda: server.cmd("has-session", "-t", "=main"),
                },
                "start+stop": {"kstlib": start_stop_kstlib, "raw": start_stop_raw},
                "status (control)": {
                    "kstlib": lambda: channel.status("main"),
                    "raw": lambda: server.cmd("list-panes", "-t", "=main:", "-F", FORMAT),
                },
                "exists (control)": {
                    "kstlib": lambda: channel.exists("main"),
                    "raw": lambda: server.cmd("has-session", "-t", "=main"),
                },
                "list_sessions (control)": {
                    "kstlib": channel.list_sessions,
                    "raw": lambda: server.cmd("list-sessions", "-F", FORMAT),
                },
            }
            channel.exists("main")
            time.sleep(0.05)
            for op, fns in measured.items():
                rounds = opts.rounds if op != "start+stop" else max(10, opts.rounds // 3)
                med = median_ms(fns, rounds)
                ratio = med["kstlib"] / med["raw"]
                row = {"op": op, "sessions": n, **med, "ratio": round(ratio, 3)}
                rows.append(row)
                print(
                    f"{op:14} {n:5} sessions: kstlib {med['kstlib']:7.3f} ms  "
                    f"raw {med['raw']:7.3f} ms  x{ratio:.2f}",
                    flush=True,
                )
    finally:
        channel.close()
        runner.kill_server()
        subprocess.run([*cli, "kill-server"], capture_output=True, check=False)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
