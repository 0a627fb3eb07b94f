#!/usr/bin/env python
"""kstlib's tmux calls beside raw libtmux, libtmux's API and plain tmux, at 1 to 1000 sessions.

Issue 24's fork-path rows: ``list_sessions()`` against the raw ``list-sessions
-F`` of the same fields, ``status()`` against the raw ``list-panes``, and
``start()`` / ``stop(graceful=False)`` against plain ``new-session`` /
``kill-session``, and the queries through the opt-in control-mode channel
(``TmuxRunner(control=True)``) against the same forked command, each on one private server filled with ``SIZES`` sessions;
medians of interleaved rounds (ms). Each fork-path row also times libtmux's
object API (``libtmux``: ``Server.new_session``, ``Session.kill``,
``Server.sessions``) where it has one, and ``plain``: the same command as a
``tmux`` child process. Run::

    .venv/bin/python benchmarks/tmux_floor.py [--sizes 1,101,200,1000] [--rounds 60]
        [--control-anyway] [--tmux PATH]

``--tmux``: the tmux binary of the server and of every client (kstlib's
runners, libtmux, the plain children), e.g. the harness's 3.5a
(``$KSTLIB_TEST_TMUX35``), with which the channel rows run without
``--control-anyway``. The channel rows add ``wire``: the same query through
kstlib's channel client alone (no runner, no parsing). Each row also gives the spread of kstlib's samples
(25th-75th percentile), for a machine that others load.

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


def median_ms(
    fns: dict[str, Callable[[], object]],
    rounds: int,
    before: Callable[[], object] | None = None,
    after: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Interleaved rounds (order rotated), two warm-ups; median ms per variant.

    ``before`` and ``after`` run untimed around each round (sessions to stop,
    sessions to remove), so the server keeps its size.
    """
    names = list(fns)
    samples = SAMPLES
    samples.clear()
    samples.update({n: [] for n in names})
    for i in range(rounds + 2):
        if before is not None:
            before()
        k = i % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter_ns()
            fns[n]()
            if i >= 2:
                samples[n].append((time.perf_counter_ns() - t0) / 1e6)
        if after is not None:
            after()
    return {n: round(statistics.median(s), 3) for n, s in samples.items()}


SAMPLES: dict[str, list[float]] = {}  # the last row's samples, for its spread


def spread(values: list[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (ms)."""
    q = statistics.quantiles(values, n=4)
    return round(q[0], 3), round(q[2], 3)


def fill(cli: list[str], have: int, want: int) -> None:
    for first in range(have, want, 150):  # tmux 3.7 takes at most 1 000 argv items a command
        argv = list(cli)
        for i in range(first, min(first + 150, want)):
            argv += ["new-session", "-d", "-s", f"fill-{i:04d}", "exec sleep 86400", ";"]
        subprocess.run(argv[:-1], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,101,200,1000")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--ops", default="", help="only these rows, comma-separated")
    parser.add_argument("--tmux", metavar="PATH", help="the tmux binary (default: on PATH)")
    parser.add_argument(
        "--control-anyway",
        action="store_true",
        help="use the control channel below control.MIN_VERSION too (3.3a, 3.5a: see docs)",
    )
    opts = parser.parse_args()
    if opts.control_anyway:
        from kstlib.ops.tmux import control

        control.MIN_VERSION = (0, 0)

    import libtmux

    tmux_bin = opts.tmux or shutil.which("tmux") or "tmux"
    version = subprocess.run([tmux_bin, "-V"], capture_output=True, text=True, check=False)
    version = version.stdout.strip()
    print(f"{version} ({tmux_bin}), channel rows: {'on' if control_on_for(version) else 'off'}")
    control_on = opts.control_anyway or control_on_for(version)

    from kstlib.ops import SessionConfig, TmuxRunner
    from kstlib.ops.tmux import control
    from kstlib.ops.tmux.pane import FORMAT

    socket = f"kstlib-floor-{os.getpid()}"
    cli = [tmux_bin, "-L", socket]
    runner = TmuxRunner(socket_name=socket, tmux_bin=tmux_bin, control=False)
    channel = TmuxRunner(socket_name=socket, tmux_bin=tmux_bin, control=True)
    server = libtmux.Server(socket_name=socket, tmux_bin=tmux_bin)
    rows: list[dict[str, object]] = []
    counter = iter(range(10**6))
    try:
        runner.start(SessionConfig(name="main", command=["sleep", "86400"]))
        # A session kstlib did not start: its logs() captures the pane.
        lines = "seq 1 1000; sleep 86400"
        server.cmd("new-session", "-d", "-s", "foreign", "-x", "200", "-y", "50", lines)
        have = 2
        for size in (int(s) for s in opts.sizes.split(",")):
            if size > have:
                fill(cli, have - 2, size - 2)
                have = size
            n = len(server.cmd("list-sessions", "-F", "x").stdout)

            plain = [*cli]

            def run_plain(*args: str) -> None:
                subprocess.run([*plain, *args], capture_output=True, check=False)

            made: list[tuple[str, str]] = []

            def kstlib_start() -> None:
                name = f"k{next(counter)}"
                made.append(("k", name))
                runner.start(SessionConfig(name=name, command=("sleep", "86400")))

            def raw_start() -> None:
                name = f"r{next(counter)}"
                made.append(("r", name))
                server.cmd("new-session", "-d", "-s", name, "-P", "-F", FORMAT, "sleep 86400")

            def api_start() -> None:
                name = f"a{next(counter)}"
                made.append(("r", name))
                server.new_session(session_name=name, window_command="sleep 86400")

            def plain_start() -> None:
                name = f"p{next(counter)}"
                made.append(("r", name))
                run_plain("new-session", "-d", "-s", name, "-P", "-F", FORMAT, "sleep 86400")

            def remove_made() -> None:
                while made:
                    kind, name = made.pop()
                    if kind == "k":
                        runner.stop(name, graceful=False)
                    else:
                        server.cmd("kill-session", "-t", f"={name}")

            to_stop: dict[str, str] = {}

            def make_to_stop() -> None:
                for kind in ("kstlib", "raw", "libtmux", "plain"):
                    name = f"s{next(counter)}"
                    to_stop[kind] = name
                    if kind == "kstlib":
                        runner.start(SessionConfig(name=name, command=("sleep", "86400")))
                    else:
                        server.cmd("new-session", "-d", "-s", name, "sleep 86400")

            def api_kill() -> None:
                found = server.sessions.get(session_name=to_stop["libtmux"], default=None)
                if found is not None:
                    found.kill()

            def start_stop_kstlib() -> None:
                name = f"k{next(counter)}"
                runner.start(SessionConfig(name=name, command=("sleep", "86400")))
                runner.stop(name, graceful=False)

            def start_stop_raw() -> None:
                name = f"r{next(counter)}"
                server.cmd("new-session", "-d", "-s", name, "-P", "-F", FORMAT, "sleep 86400")
                server.cmd("kill-session", "-t", f"={name}")

            def start_stop_plain() -> None:
                name = f"p{next(counter)}"
                run_plain("new-session", "-d", "-s", name, "-P", "-F", FORMAT, "sleep 86400")
                run_plain("kill-session", "-t", f"={name}")

            def wire(*args: str) -> None:
                # The protocol alone: kstlib's channel client, no runner around it.
                live = channel._channels._channel if channel._channels else None
                line = control.encode(args)
                if live is None or not live.alive or line is None:
                    raise RuntimeError("no live control channel")
                live.request(line, 5)

            hooks: dict[str, tuple[Callable[[], object] | None, Callable[[], object] | None]] = {
                "start": (None, remove_made),
                "stop": (make_to_stop, None),
            }
            measured = {
                "list_sessions": {
                    "kstlib": runner.list_sessions,
                    "raw": lambda: server.cmd("list-sessions", "-F", FORMAT),
                    "libtmux": lambda: server.sessions,
                    "plain": lambda: run_plain("list-sessions", "-F", FORMAT),
                },
                "status": {
                    "kstlib": lambda: runner.status("main"),
                    "raw": lambda: server.cmd("list-panes", "-t", "=main:", "-F", FORMAT),
                    "plain": lambda: run_plain("list-panes", "-t", "=main:", "-F", FORMAT),
                },
                "exists": {
                    "kstlib": lambda: runner.exists("main"),
                    "raw": lambda: server.cmd("has-session", "-t", "=main"),
                    "libtmux": lambda: server.has_session("main"),
                    "plain": lambda: run_plain("has-session", "-t", "=main"),
                },
                "logs(100) foreign": {
                    "kstlib": lambda: runner.logs("foreign", 100),
                    "raw": lambda: server.cmd(
                        "capture-pane", "-p", "-J", "-t", "=foreign:", "-S", "-150"
                    ),
                    "plain": lambda: run_plain(
                        "capture-pane", "-p", "-J", "-t", "=foreign:", "-S", "-150"
                    ),
                },
                "start": {
                    "kstlib": kstlib_start,
                    "raw": raw_start,
                    "libtmux": api_start,
                    "plain": plain_start,
                },
                "stop": {
                    "kstlib": lambda: runner.stop(to_stop["kstlib"], graceful=False),
                    "raw": lambda: server.cmd("kill-session", "-t", f"={to_stop['raw']}"),
                    "libtmux": api_kill,
                    "plain": lambda: run_plain("kill-session", "-t", f"={to_stop['plain']}"),
                },
                "start+stop": {
                    "kstlib": start_stop_kstlib,
                    "raw": start_stop_raw,
                    "plain": start_stop_plain,
                },
                "status (control)": {
                    "kstlib": lambda: channel.status("main"),
                    "raw": lambda: server.cmd("list-panes", "-t", "=main:", "-F", FORMAT),
                    "plain": lambda: run_plain("list-panes", "-t", "=main:", "-F", FORMAT),
                    "wire": lambda: wire("list-panes", "-t", "=main:", "-F", FORMAT),
                },
                "exists (control)": {
                    "kstlib": lambda: channel.exists("main"),
                    "raw": lambda: server.cmd("has-session", "-t", "=main"),
                    "plain": lambda: run_plain("has-session", "-t", "=main"),
                    "wire": lambda: wire("has-session", "-t", "=main"),
                },
                "list_sessions (control)": {
                    "kstlib": channel.list_sessions,
                    "raw": lambda: server.cmd("list-sessions", "-F", FORMAT),
                    "plain": lambda: run_plain("list-sessions", "-F", FORMAT),
                    "wire": lambda: wire("list-sessions", "-F", FORMAT),
                },
            }
            channel.exists("main")
            time.sleep(0.05)
            for op, fns in measured.items():
                if opts.ops and op not in opts.ops.split(","):
                    continue
                if "control" in op and not control_on:
                    continue
                heavy = op in ("start", "stop", "start+stop")
                rounds = opts.rounds if not heavy else max(10, opts.rounds // 2)
                med = median_ms(fns, rounds, *hooks.get(op, (None, None)))
                ratio = med["kstlib"] / med["raw"]
                row = {"op": op, "sessions": n, **med, "ratio": round(ratio, 3)}
                row["spread"] = {v: spread(SAMPLES[v]) for v in med}
                if "plain" in med:
                    row["ratio_plain"] = round(med["kstlib"] / med["plain"], 3)
                rows.append(row)
                others = "  ".join(f"{v} {med[v]:7.3f}" for v in med if v != "kstlib")
                print(
                    f"{op:24} {n:5} sessions: kstlib {med['kstlib']:7.3f} ms  {others}  "
                    f"kstlib/raw x{ratio:.2f}  kstlib p25-p75 {row['spread']['kstlib']}",
                    flush=True,
                )
    finally:
        channel.close()
        runner.kill_server()
        subprocess.run([*cli, "kill-server"], capture_output=True, check=False)
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=2))
    return 0


def control_on_for(version: str) -> bool:
    """Whether kstlib's version gate lets the channel on with this tmux (``tmux -V``)."""
    from kstlib.ops.tmux import control

    return control.version_ok(version)


if __name__ == "__main__":
    sys.exit(main())
