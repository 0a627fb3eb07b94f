"""The tmux rows: kstlib's TmuxRunner against libtmux and the tmux CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.runner import (
    Bench,
    LOG_LINES,
    TMUX_FORMAT,
    TRAP_SCRIPT,
    Variant,
    run_cli,
    shielded,
    wait_for,
)
from benchmarks.upstream import Upstream
from benchmarks.startup import list_cli_wall_time

# -- tmux ----------------------------------------------------------------------------------


def bench_tmux(bench: Bench, upstream: Upstream | None) -> None:
    import libtmux

    from kstlib.ops import SessionConfig, TmuxRunner
    from kstlib.ops.logfile import state_dir
    from kstlib.ops.tmux.pane import FORMAT

    if FORMAT != TMUX_FORMAT:
        bench.notes.append(
            "tmux: the baselines' format differs from kstlib.ops.tmux.pane.FORMAT; "
            "update TMUX_FORMAT so that tmux does the same work"
        )

    socket = f"kstlib-bench-{os.getpid()}"
    tmux = shutil.which("tmux") or "tmux"
    cli = [tmux, "-L", socket]
    runner = TmuxRunner(socket_name=socket)
    server = libtmux.Server(socket_name=socket)
    main = "bench-main"
    foreign = "bench-foreign"
    bench.facts["tmux_version"] = run_cli([tmux, "-V"]).strip()
    bench.facts["libtmux_version"] = libtmux.__version__
    counter = iter(range(1_000_000))
    try:
        runner.start(SessionConfig(name=main, command=f"seq 1 {LOG_LINES}; sleep 86400"))
        wait_for(lambda: runner.logs(main, 1) == str(LOG_LINES), "the tmux session's output")
        # Sanity: kstlib and the baselines return the same last 100 lines.
        expected = [str(i) for i in range(LOG_LINES - 99, LOG_LINES + 1)]
        assert runner.logs(main, 100).split("\n") == expected

        def raw_logs(name: str) -> list[str]:
            out = server.cmd("capture-pane", "-p", "-J", "-t", f"={name}:", "-S", "-150").stdout
            return [x for x in out if x.strip()][-100:]

        def sessions() -> int:
            return len(server.cmd("list-sessions", "-F", "#{session_name}").stdout)

        made = 0
        for size in bench.settings.tmux_sizes:
            count = sessions()
            if size > count:
                make_tmux_fillers(cli, made, made + size - count)
                made += size - count
                count = sessions()
            bench.log(f"tmux   {count} sessions on the server")
            bench.measure(
                "tmux",
                "status",
                {
                    "kstlib": Variant(lambda _: runner.status(main)),
                    "raw": Variant(
                        lambda _: server.cmd("list-panes", "-t", f"={main}:", "-F", TMUX_FORMAT)
                    ),
                    "cli": Variant(
                        lambda _: run_cli(
                            [*cli, "list-panes", "-t", f"={main}:", "-F", TMUX_FORMAT]
                        )
                    ),
                },
                size=count,
            )
            bench.measure(
                "tmux",
                "list_sessions",
                {
                    "kstlib": Variant(lambda _: runner.list_sessions()),
                    "raw": Variant(lambda _: server.cmd("list-sessions", "-F", TMUX_FORMAT)),
                    "cli": Variant(lambda _: run_cli([*cli, "list-sessions", "-F", TMUX_FORMAT])),
                },
                size=count,
            )
            tmux_control_rows(bench, socket, server, main, count)
            tmux_start(bench, runner, server, counter, count)
            if size != bench.settings.tmux_sizes[0]:
                continue
            bench.measure(
                "tmux",
                "exists",
                {
                    "kstlib": Variant(lambda _: runner.exists(main)),
                    "raw": Variant(lambda _: server.has_session(main)),
                    "cli": Variant(lambda _: run_cli([*cli, "has-session", "-t", f"={main}"])),
                },
            )
            bench.measure(
                "tmux",
                "logs(100)",
                {
                    "kstlib": Variant(lambda _: runner.logs(main, 100)),
                    "raw": Variant(lambda _: raw_logs(main)),
                    "cli": Variant(
                        lambda _: run_cli(
                            [*cli, "capture-pane", "-p", "-J", "-t", f"={main}:", "-S", "-150"]
                        )
                    ),
                },
                note="kstlib reads its log file; raw/cli capture the pane",
            )
            list_cli_wall_time(bench, socket)
            # A session kstlib did not start: its logs() captures the pane, as raw/cli do.
            run_cli(
                [
                    *cli,
                    "new-session",
                    "-d",
                    "-s",
                    foreign,
                    "-x",
                    "200",
                    "-y",
                    "50",
                    f"seq 1 {LOG_LINES}; sleep 86400",
                ]
            )
            wait_for(lambda: runner.logs(foreign, 1) == str(LOG_LINES), "the foreign tmux session")
            assert runner.logs(foreign, 100).split("\n") == expected
            assert raw_logs(foreign) == expected
            bench.measure(
                "tmux",
                "logs(100) foreign",
                {
                    "kstlib": Variant(lambda _: runner.logs(foreign, 100)),
                    "raw": Variant(lambda _: raw_logs(foreign)),
                    "cli": Variant(
                        lambda _: run_cli(
                            [*cli, "capture-pane", "-p", "-J", "-t", f"={foreign}:", "-S", "-150"]
                        )
                    ),
                },
                note="a session kstlib did not start: capture-pane for all three",
            )
            tmux_start_stop(bench, runner, server, cli, counter, upstream, socket)
            tmux_graceful(bench, runner, server, counter)
    finally:
        with shielded():
            try:
                runner.kill_server()
            except Exception as err:
                bench.log(f"kill_server: {err}")
            subprocess.run([*cli, "kill-server"], capture_output=True, check=False)
            # tmux leaves its socket file behind.
            tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
            Path(tmpdir, f"tmux-{os.getuid()}", socket).unlink(missing_ok=True)
            shutil.rmtree(state_dir() / "tmux" / f"L-{socket}", ignore_errors=True)


def make_tmux_fillers(cli: list[str], have: int, want: int) -> None:
    """Create sessions fill-<have>..fill-<want-1>: one tmux invocation per 200, chained with ';'."""
    t0 = time.perf_counter()
    for first in range(have, want, 200):
        argv = list(cli)
        for i in range(first, min(first + 200, want)):
            argv += ["new-session", "-d", "-s", f"fill-{i:04d}", "exec sleep 86400", ";"]
        run_cli(argv[:-1])
    print(
        f"bench: tmux   created {want - have} sessions in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def tmux_control_rows(bench: Bench, socket: str, server: Any, main: str, size: int) -> None:
    """status/exists/list_sessions through the control-mode channel against the forked call."""
    from kstlib.ops import TmuxRunner
    from kstlib.ops.tmux import control

    version = run_cli([shutil.which("tmux") or "tmux", "-V"]).strip()
    if not control.version_ok(version):
        note = (
            f"tmux: the control channel stays off on {version} (it crashes the server); "
            "benchmarks/tmux_floor.py --control-anyway measures it"
        )
        if note not in bench.notes:
            bench.notes.append(note)
        return
    channel = TmuxRunner(socket_name=socket, control=True)
    try:
        channel.exists(main)  # attach once, outside the timing
        wait_for(lambda: channel._channels is not None and channel._channels._channel is not None
                 and channel._channels._channel.alive, "the control channel")
        queries = {
            "status (control)": (
                lambda _: channel.status(main),
                lambda _: server.cmd("list-panes", "-t", f"={main}:", "-F", TMUX_FORMAT),
            ),
            "exists (control)": (
                lambda _: channel.exists(main),
                lambda _: server.cmd("has-session", "-t", f"={main}"),
            ),
            "list_sessions (control)": (
                lambda _: channel.list_sessions(),
                lambda _: server.cmd("list-sessions", "-F", TMUX_FORMAT),
            ),
        }
        for op, (ours, raw) in queries.items():
            bench.measure(
                "tmux",
                op,
                {"kstlib": Variant(ours), "raw": Variant(raw)},
                size=size,
                note="kstlib through its tmux -C channel; raw: the same command forked by libtmux",
            )
    finally:
        channel.close()


def tmux_start(bench: Bench, runner: Any, server: Any, counter: Iterator[int], size: int) -> None:
    """start() alone against a plain ``new-session`` (issue 24: <= 1.2x); removed untimed."""
    from kstlib.ops import SessionConfig

    made: list[tuple[str, bool]] = []

    def tidy() -> None:
        while made:
            name, ours = made.pop()
            if ours:
                runner.stop(name, graceful=False)
            else:
                server.cmd("kill-session", "-t", f"={name}")

    def kstlib_run(_: object) -> None:
        name = f"st-{next(counter)}"
        made.append((name, True))
        runner.start(SessionConfig(name=name, command=("sleep", "86400")))

    def raw_run(_: object) -> None:
        name = f"st-{next(counter)}"
        made.append((name, False))
        server.cmd("new-session", "-d", "-s", name, "-P", "-F", TMUX_FORMAT, "sleep 86400")

    def api_run(_: object) -> None:
        name = f"st-{next(counter)}"
        made.append((name, False))
        server.new_session(session_name=name, window_command="sleep 86400")

    def cli_run(_: object) -> None:
        name = f"st-{next(counter)}"
        made.append((name, False))
        cli = [shutil.which("tmux") or "tmux", "-L", str(server.socket_name)]
        run_cli([*cli, "new-session", "-d", "-s", name, "-P", "-F", TMUX_FORMAT, "sleep 86400"])

    bench.measure(
        "tmux",
        "start",
        {
            "kstlib": Variant(kstlib_run, tidy),
            "raw": Variant(raw_run, tidy),
            "libtmux": Variant(api_run, tidy),
            "cli": Variant(cli_run, tidy),
        },
        size=size,
        heavy=True,
        note="raw: new-session -P -F of the same fields through libtmux's Server.cmd; "
        "libtmux: Server.new_session; cli: the same tmux command; all removed untimed",
    )
    tidy()


def tmux_start_stop(
    bench: Bench,
    runner: Any,
    server: Any,
    cli: list[str],
    counter: Iterator[int],
    upstream: Upstream | None,
    socket: str,
) -> None:
    from kstlib.ops import SessionConfig

    def kstlib_run(_: object) -> None:
        name = f"ss-{next(counter)}"
        runner.start(SessionConfig(name=name, command=("sleep", "86400")))
        runner.stop(name, graceful=False)

    def raw_run(_: object) -> None:
        name = f"ss-{next(counter)}"
        server.cmd("new-session", "-d", "-s", name, "-P", "-F", "#{pane_pid}", "sleep 86400")
        server.cmd("kill-session", "-t", f"={name}")

    def cli_run(_: object) -> None:
        name = f"ss-{next(counter)}"
        run_cli([*cli, "new-session", "-d", "-s", name, "-P", "-F", "#{pane_pid}", "sleep 86400"])
        run_cli([*cli, "kill-session", "-t", f"={name}"])

    variants = {
        "kstlib": Variant(kstlib_run),
        "raw": Variant(raw_run),
        "cli": Variant(cli_run),
    }
    if upstream is not None:
        # Upstream kstlib on the same server, timed in its own process.
        variants["upstream"] = Variant(lambda _: upstream.start_stop(socket, f"up-{next(counter)}"))
    bench.measure(
        "tmux",
        "start+stop",
        variants,
        heavy=True,
        note="stop(graceful=False) vs kill-session; upstream: kstlib "
        f"{upstream.version if upstream else '-'} in its own virtualenv, same server",
    )


def tmux_graceful(bench: Bench, runner: Any, server: Any, counter: Iterator[int]) -> None:
    """stop() of a session whose process traps SIGTERM (default timeout 10 s)."""
    from kstlib.ops import SessionConfig

    def kstlib_prep() -> str:
        name = f"gs-{next(counter)}"
        runner.start(SessionConfig(name=name, command=TRAP_SCRIPT))
        time.sleep(0.1)  # let the shell install its trap
        return name

    def raw_prep() -> tuple[str, int]:
        name = f"gs-{next(counter)}"
        out = server.cmd("new-session", "-d", "-s", name, "-P", "-F", "#{pane_pid}", TRAP_SCRIPT)
        time.sleep(0.1)
        return name, int(out.stdout[0])

    def raw_run(arg: tuple[str, int]) -> None:
        # What a user of libtmux writes: SIGTERM the pane's process group,
        # wait until the session is gone (it closes when its process exits).
        name, pid = arg
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while server.has_session(name) and time.monotonic() < deadline:
            time.sleep(0.005)
        server.cmd("kill-session", "-t", f"={name}")

    bench.measure(
        "tmux",
        "graceful stop",
        {
            "kstlib": Variant(lambda name: runner.stop(name), kstlib_prep),
            "raw": Variant(raw_run, raw_prep),
        },
        heavy=True,
        note="SIGTERM-trapping process; raw polls has-session every 5 ms",
    )
