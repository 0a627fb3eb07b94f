#!/usr/bin/env python
"""Benchmark kstlib.ops against the raw SDK calls and the CLIs (issue 7).

One run on the real engines measures every operation three ways, side by
side and interleaved round by round (so drift on a busy machine hits all
three alike):

* ``kstlib``: through :mod:`kstlib.ops` (one ``TmuxRunner`` / ``ContainerRunner``
  reused across calls);
* ``raw``: the SDK call doing the same work, with a client reused across
  calls (libtmux ``Server.cmd`` / ``has_session``, the docker SDK's
  low-level API, podman-py's ``PodmanClient``);
* ``cli``: the command-line equivalent run as a child process (``tmux -L``,
  ``docker``, ``podman``).

It prints a table with the ratios kstlib/raw and cli/kstlib and every target
of issue 7 marked ``met`` / ``MISSED``, and writes everything (samples too) as
JSON. Run it with ``make bench`` (starts the engines first), or::

    source <(bash integration/engines/engines.sh env)
    .venv/bin/python benchmarks/bench.py [--quick] [--only PART[,PART]] [--json PATH]

where PART is import, tmux, tmux-scale (100 and 500 sessions on fresh servers:
plain tmux, libtmux's object API and kstlib side by side), docker, podman or
swarm (the harness's two-node swarm: benchmarks/bench_swarm.py).
Upstream kstlib (in ``.venv-upstream``, made by ``make bench``) is measured
beside kstlib's tmux ``start()+stop()`` in a worker process of its own.

Everything it creates (a private tmux socket, containers named
``kb<pid>-...``) is removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IMAGE = "localhost/kstlib-test:latest"
DOCKER_URL = "unix:///var/run/docker.sock"
PODMAN_URL = "unix:///run/podman/podman.sock"
CONTAINERS_CONF = REPO / "integration" / "engines" / "containers.conf"
KSTLIB_BIN = Path(sys.executable).parent / "kstlib"
# The fields kstlib reads for status() / list_sessions() (kstlib.ops.tmux.pane.FORMAT,
# checked at run time): the raw and CLI baselines ask tmux for the same ones, so
# tmux does the same work.
TMUX_FORMAT = "\x1f".join(
    [
        "#{pane_pid}",
        "#{pane_dead}",
        "#{pane_dead_status}",
        "#{pane_dead_signal}",
        "#{session_created}",
        "#{session_windows}",
        "#{@kstlib-managed}",
        "#{@kstlib-exit}",
        "#{@kstlib-log}",
        "#{@kstlib-restarts}",
        "#{pane_pipe}",
        "#{pid}",
        "#{session_id}",
        "#{@kstlib-last}",
        "#{session_name}",
    ]
)
# A process that handles SIGTERM: the trap runs, then it exits 0.
TRAP_SCRIPT = "trap 'echo bye; exit 0' TERM; sleep 86400 & wait"
LOG_LINES = 500


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How many repetitions: adaptive between ``lo`` and ``hi`` within ``budget`` seconds."""

    lo: int
    hi: int
    budget: float


@dataclass(frozen=True)
class Settings:
    light: Plan
    heavy: Plan
    child: Plan  # fresh interpreters (import time, kstlib ops list)
    tmux_sizes: tuple[int, ...] = (1, 100, 200, 1000)
    container_sizes: tuple[int, ...] = (1, 50)
    #: Sessions per fresh server in the tmux scale rows (plain tmux, libtmux, kstlib).
    tmux_scale_sizes: tuple[int, ...] = (100, 500)


FULL = Settings(light=Plan(30, 100, 2.5), heavy=Plan(10, 30, 12.0), child=Plan(10, 15, 6.0))
QUICK = Settings(
    light=Plan(5, 10, 0.5),
    heavy=Plan(3, 3, 2.0),
    child=Plan(3, 3, 1.0),
    tmux_scale_sizes=(10, 30),
)


# -- statistics ----------------------------------------------------------------------------


def summarize(samples_ns: list[int]) -> dict[str, Any]:
    ms = sorted(s / 1e6 for s in samples_ns)
    if len(ms) >= 2:
        deciles = statistics.quantiles(ms, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[8]
        stdev = statistics.stdev(ms)
    else:
        p10 = p90 = ms[0]
        stdev = 0.0
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 4),
        "p10_ms": round(p10, 4),
        "p90_ms": round(p90, 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "stdev_ms": round(stdev, 4),
        "min_ms": round(ms[0], 4),
        "samples_ms": [round(s / 1e6, 4) for s in samples_ns],
    }


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


# -- the harness ---------------------------------------------------------------------------


class Timed(int):
    """What a variant returns when it timed itself (ns): a worker in another process."""


def call(fn: Callable[..., object], *args: object) -> Callable[[Any], object]:
    """A variant's ``run`` that calls ``fn(*args)`` (ignoring what ``prep()`` gave)."""
    return lambda _: fn(*args)


@dataclass
class Variant:
    """One way of doing an operation: ``run(prep())`` is timed, ``prep()`` is not.

    A ``run`` that returns :class:`Timed` reports its own duration (measured
    where the work ran, without the round trip to the worker).
    """

    run: Callable[[Any], object]
    prep: Callable[[], Any] = lambda: None


@dataclass
class Row:
    backend: str
    op: str
    size: int | None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    def median(self, variant: str) -> float | None:
        s = self.stats.get(variant)
        return None if s is None else float(s["median_ms"])


@dataclass
class Target:
    key: str
    text: str
    figure: float | None
    limit: float
    higher_is_better: bool = False
    unit: str = "x"
    #: 90 % bootstrap interval of the figure (medians resampled).
    ci: tuple[float, float] | None = None

    @property
    def verdict(self) -> str:
        if self.figure is None:
            return "not measured"
        ok = self.figure >= self.limit if self.higher_is_better else self.figure <= self.limit
        return "met" if ok else "MISSED"

    @property
    def within_noise(self) -> bool:
        """Whether the limit lies inside the interval: the verdict could go either way."""
        return self.ci is not None and self.ci[0] <= self.limit <= self.ci[1]


def ratio_ci(num: list[float], den: list[float], rounds: int = 400) -> tuple[float, float]:
    """90 % bootstrap interval of median(num) / median(den)."""
    rng = random.Random(7)
    values = sorted(
        statistics.median(rng.choices(num, k=len(num)))
        / statistics.median(rng.choices(den, k=len(den)))
        for _ in range(rounds)
    )
    return values[int(0.05 * rounds)], values[int(0.95 * rounds) - 1]


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.facts: dict[str, Any] = {}

    def log(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    def measure(
        self,
        backend: str,
        op: str,
        variants: dict[str, Variant],
        *,
        size: int | None = None,
        heavy: bool = False,
        note: str = "",
    ) -> Row:
        """Time every variant round-robin (order rotated each round); adaptive repetitions."""
        plan = self.settings.heavy if heavy else self.settings.light
        names = list(variants)

        def once(name: str) -> int:
            variant = variants[name]
            arg = variant.prep()
            t0 = time.perf_counter_ns()
            result = variant.run(arg)
            took = time.perf_counter_ns() - t0
            return int(result) if isinstance(result, Timed) else took

        # Two warm-up rounds (connections, caches); the second one sizes the run.
        for name in names:
            once(name)
        t0 = time.perf_counter()
        for name in names:
            once(name)
        round_cost = max(time.perf_counter() - t0, 1e-6)
        reps = max(plan.lo, min(plan.hi, int(plan.budget / round_cost)))
        samples: dict[str, list[int]] = {n: [] for n in names}
        for i in range(reps):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                samples[name].append(once(name))
        row = Row(backend, op, size, {n: summarize(s) for n, s in samples.items()}, note)
        self.rows.append(row)
        parts = [f"{n} {fmt_ms(row.median(n))} ms" for n in names]
        where = f" [{size}]" if size is not None else ""
        self.log(f"{backend:6} {op}{where}: {', '.join(parts)} (n={reps})")
        return row

    def row(self, backend: str, op: str, size: int | None = None) -> Row | None:
        for r in self.rows:
            if r.backend == backend and r.op == op and r.size == size:
                return r
        return None


def run_cli(argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:g} s")
        time.sleep(0.02)


def uid() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=6))


@contextmanager
def shielded() -> Iterator[None]:
    """Ignore Ctrl-C while cleaning up, so cleanup finishes."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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

    bench.measure(
        "tmux",
        "start",
        {"kstlib": Variant(kstlib_run, tidy), "raw": Variant(raw_run, tidy)},
        size=size,
        heavy=True,
        note="raw: plain new-session -P -F of the same fields; both removed untimed",
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


# -- upstream kstlib, in its own virtualenv -------------------------------------------------

UPSTREAM_VERSION = "3.8.2"
UPSTREAM_PYTHON = REPO / ".venv-upstream" / "bin" / "python"
# Runs in the upstream virtualenv (-I: neither this checkout nor PYTHONPATH is on
# its path). One JSON request a line on stdin, one answer a line on stdout; it
# times the work itself, so the round trip is not counted.
UPSTREAM_WORKER = r"""
import json, sys, time
import kstlib
from kstlib.ops import SessionConfig, TmuxRunner
runners = {}
print(json.dumps({"version": kstlib.__version__, "file": kstlib.__file__}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    try:
        runner = runners.get(req["socket"])
        if runner is None:
            runner = runners[req["socket"]] = TmuxRunner(socket_name=req["socket"])
        config = SessionConfig(name=req["name"], command="sleep 86400")
        t0 = time.perf_counter_ns()
        runner.start(config)
        runner.stop(req["name"], graceful=False)
        answer = {"ns": time.perf_counter_ns() - t0}
    except Exception as err:
        answer = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(answer), flush=True)
"""


class Upstream:
    """Upstream kstlib's ``TmuxRunner`` driven in a worker process of its own virtualenv."""

    def __init__(self, python: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        # Absolute (the worker runs elsewhere), not resolved (a venv's python is a link).
        self.proc = subprocess.Popen(
            [os.path.abspath(python), "-I", "-c", UPSTREAM_WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        hello = json.loads(self._read())
        self.version = str(hello["version"])
        self.location = str(hello["file"])

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the upstream worker exited ({self.proc.wait()})")
        return line

    def start_stop(self, socket: str, name: str) -> Timed:
        """``start()`` of ``sleep 86400`` then ``stop(graceful=False)``, timed by the worker."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"socket": socket, "name": name}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self._read())
        if "error" in answer:
            raise RuntimeError(f"upstream kstlib: {answer['error']}")
        return Timed(answer["ns"])

    def close(self) -> None:
        with suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def open_upstream(bench: Bench, python: Path) -> Upstream | None:
    if not python.exists():
        bench.notes.append(
            f"upstream kstlib: not measured ({python} is missing; `make bench` creates "
            f".venv-upstream with kstlib=={UPSTREAM_VERSION})"
        )
        return None
    try:
        upstream = Upstream(python)
    except (OSError, RuntimeError, ValueError) as err:
        bench.notes.append(f"upstream kstlib: not measured (its worker failed: {err})")
        return None
    bench.facts["upstream_kstlib"] = {"version": upstream.version, "file": upstream.location}
    if upstream.version != UPSTREAM_VERSION:
        bench.notes.append(
            f"upstream kstlib is {upstream.version}, not {UPSTREAM_VERSION} "
            f"(from {upstream.location})"
        )
    bench.log(f"upstream kstlib {upstream.version} from {upstream.location}")
    return upstream


# -- tmux at scale: plain tmux, libtmux's object API and kstlib, each on a fresh server -----


def start_time(pid: int) -> int | None:
    """A live process's start time (clock ticks since boot), to tell a reused pid apart.

    ``None`` for a pid that is gone or a zombie (it has exited; on some machines
    nothing reaps the orphans that init inherits).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_table() -> dict[int, tuple[int, str]]:
    """Every process: pid -> (parent pid, comm)."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        head, _, rest = stat.rpartition(")")
        comm = head.split("(", 1)[1]
        table[int(entry)] = (int(rest.split()[1]), comm)
    return table


def descendants(root: int, table: dict[int, tuple[int, str]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def smaps_kb(pid: int) -> dict[str, int]:
    """Pss, Rss and private (USS) of one process, in kB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[key] = int(value.split()[0])
    out["Uss"] = out.pop("Private_Clean", 0) + out.pop("Private_Dirty", 0)
    return out


def footprint(server_pid: int, sessions: int) -> dict[str, Any]:
    """Memory of a tmux server and all its descendants, beyond the ``sleep`` commands."""
    table = proc_table()
    pids = descendants(server_pid, table)
    by_kind: dict[str, dict[str, int]] = {}
    total = {"Pss": 0, "Rss": 0, "Uss": 0}
    commands = {"Pss": 0, "Rss": 0, "Uss": 0}
    for pid in pids:
        mem = smaps_kb(pid)
        if not mem:
            continue
        comm = table[pid][1]
        if comm.startswith("python"):
            with suppress(OSError):
                if b"collector.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    comm = "collector (python)"
        if pid == server_pid:
            comm = "tmux server"
        kind = by_kind.setdefault(comm, {"count": 0, "Pss": 0, "Rss": 0, "Uss": 0})
        kind["count"] += 1
        for key in total:
            kind[key] += mem.get(key, 0)
            total[key] += mem.get(key, 0)
            if comm == "sleep":
                commands[key] += mem.get(key, 0)
    fds: dict[str, int] = {}
    for pid in pids:
        with suppress(OSError):
            if pid == server_pid:
                fds["tmux server"] = len(os.listdir(f"/proc/{pid}/fd"))
            elif b"collector.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                fds["collector"] = len(os.listdir(f"/proc/{pid}/fd"))
    beyond = total["Pss"] - commands["Pss"]
    return {
        "sessions": sessions,
        "processes": len(pids),
        "by_kind": by_kind,
        "pss_total_kb": total["Pss"],
        "pss_commands_kb": commands["Pss"],
        "pss_beyond_kb": beyond,
        "pss_beyond_mb_per_session": round(beyond / 1024 / max(sessions, 1), 4),
        "uss_beyond_mb_per_session": round(
            (total["Uss"] - commands["Uss"]) / 1024 / max(sessions, 1), 4
        ),
        "rss_beyond_mb_per_session": round(
            (total["Rss"] - commands["Rss"]) / 1024 / max(sessions, 1), 4
        ),
        "fds": fds,
    }


def settled_footprint(server_pid: int, sessions: int, timeout: float = 15) -> dict[str, Any]:
    """The footprint once every session runs its ``sleep`` (and kstlib its ``cat``)."""
    deadline = time.monotonic() + timeout
    while True:
        fp = footprint(server_pid, sessions)
        sleeps = fp["by_kind"].get("sleep", {}).get("count", 0)
        cats = fp["by_kind"].get("cat", {}).get("count", 0)
        if (sleeps >= sessions and cats in (0, sessions)) or time.monotonic() > deadline:
            return fp
        time.sleep(0.2)


def bench_tmux_scale(bench: Bench, upstream: Upstream | None) -> None:
    """N sessions of ``sleep 600`` on three fresh servers, started side by side.

    * ``raw``: plain tmux, ``Server.cmd("new-session", ...)``;
    * ``libtmux``: libtmux's object API, ``Server.new_session(...)``;
    * ``kstlib``: ``TmuxRunner.start(...)``.

    At each size: the start of each session (interleaved, the order rotating),
    ``status()`` and ``list_sessions()`` against the same raw query on the plain
    server, ``start()+stop(graceful=False)`` against upstream kstlib (both on
    kstlib's server) and plain tmux, and the memory of each server's tree.
    """
    import libtmux

    from kstlib.ops import SessionConfig, TmuxRunner
    from kstlib.ops.logfile import state_dir

    tag = f"kstlib-bench-{os.getpid()}-scale"
    sockets = {"raw": f"{tag}-plain", "libtmux": f"{tag}-libtmux", "kstlib": f"{tag}-kstlib"}
    tmux = shutil.which("tmux") or "tmux"
    plain = libtmux.Server(socket_name=sockets["raw"])
    objects = libtmux.Server(socket_name=sockets["libtmux"])
    ks_server = libtmux.Server(socket_name=sockets["kstlib"])  # raw queries on kstlib's server
    runner = TmuxRunner(socket_name=sockets["kstlib"])
    bench.facts.setdefault("libtmux_version", libtmux.__version__)
    scale: dict[str, Any] = {"sizes": {}, "sockets": sockets}
    bench.facts["tmux_scale"] = scale
    counter = iter(range(1_000_000))
    seen: dict[int, int | None] = {}  # pid -> start time, of every process in the trees

    def name(i: int) -> str:
        return f"sc-{i:05d}"

    def start_raw(i: int) -> None:
        out = plain.cmd("new-session", "-d", "-s", name(i), "sleep 600")
        if out.returncode != 0:
            raise RuntimeError(f"plain tmux new-session: {out.stderr}")

    def start_libtmux(i: int) -> None:
        objects.new_session(session_name=name(i), window_command="sleep 600")

    def start_kstlib(i: int) -> None:
        runner.start(SessionConfig(name=name(i), command=("sleep", "600")))

    starters: dict[str, Callable[[int], None]] = {
        "kstlib": start_kstlib,
        "raw": start_raw,
        "libtmux": start_libtmux,
    }
    order = list(starters)

    def server_pid(server: Any) -> int:
        return int(server.cmd("list-sessions", "-F", "#{pid}").stdout[0])

    try:
        have = 0
        for size in bench.settings.tmux_scale_sizes:
            t0 = time.perf_counter()
            samples_ns: dict[str, list[int]] = {n: [] for n in order}
            for i in range(have, size):
                k = i % len(order)
                for variant in order[k:] + order[:k]:
                    began = time.perf_counter_ns()
                    starters[variant](i)
                    samples_ns[variant].append(time.perf_counter_ns() - began)
            first = have
            have = size
            row = Row(
                "tmux-scale",
                "start each",
                size,
                {n: summarize(v) for n, v in samples_ns.items()},
                f"starts {first + 1}-{size} on each server (sleep 600), interleaved",
            )
            bench.rows.append(row)
            bench.log(
                f"scale  started {size - first} x 3 sessions in {time.perf_counter() - t0:.1f} s; "
                + ", ".join(
                    f"{n} {fmt_ms(row.median(n))} ms (p90 {fmt_ms(row.stats[n]['p90_ms'])})"
                    for n in order
                )
            )
            pids = {v: server_pid(s) for v, s in (("raw", plain), ("libtmux", objects))}
            pids["kstlib"] = server_pid(ks_server)
            counts = {
                v: len(s.cmd("list-sessions", "-F", "x").stdout)
                for v, s in (("raw", plain), ("libtmux", objects), ("kstlib", ks_server))
            }
            if set(counts.values()) != {size}:
                bench.notes.append(f"tmux scale: session counts at {size}: {counts}")
            # Memory once everything has settled (the wrapper has its sleep, the pane its cat).
            time.sleep(1.0)
            memory = {v: settled_footprint(pid, size) for v, pid in pids.items()}
            for v, fp in memory.items():
                for pid in descendants(pids[v], proc_table()):
                    seen[pid] = start_time(pid)
                kinds = ", ".join(
                    f"{c['count']} {k} {c['Pss'] / 1024:.1f} MB" for k, c in fp["by_kind"].items()
                )
                bench.log(
                    f"scale  memory [{size}] {v}: {fp['pss_beyond_mb_per_session']:.3f} MB a "
                    f"session beyond the commands (PSS; {fp['processes']} processes: {kinds})"
                )
            scale["sizes"][str(size)] = {"memory": memory, "server_pids": pids}
            target = f"={name(size // 2)}:"
            bench.measure(
                "tmux-scale",
                "status",
                {
                    "kstlib": Variant(call(runner.status, name(size // 2))),
                    "raw": Variant(call(plain.cmd, "list-panes", "-t", target, "-F", TMUX_FORMAT)),
                    "raw_kstlib_server": Variant(
                        call(ks_server.cmd, "list-panes", "-t", target, "-F", TMUX_FORMAT)
                    ),
                },
                size=size,
                note="raw: list-panes on the plain server of the same size; "
                "raw_kstlib_server: the same query on kstlib's server",
            )
            bench.measure(
                "tmux-scale",
                "list_sessions",
                {
                    "kstlib": Variant(lambda _: runner.list_sessions()),
                    "raw": Variant(lambda _: plain.cmd("list-sessions", "-F", TMUX_FORMAT)),
                    "raw_kstlib_server": Variant(
                        lambda _: ks_server.cmd("list-sessions", "-F", TMUX_FORMAT)
                    ),
                },
                size=size,
                note="raw: list-sessions on the plain server of the same size; "
                "raw_kstlib_server: the same query on kstlib's server",
            )

            def kstlib_ss(_: object) -> None:
                n = f"ss-{next(counter)}"
                runner.start(SessionConfig(name=n, command=("sleep", "86400")))
                runner.stop(n, graceful=False)

            def raw_ss(_: object) -> None:
                n = f"ss-{next(counter)}"
                plain.cmd("new-session", "-d", "-s", n, "-P", "-F", "#{pane_pid}", "sleep 86400")
                plain.cmd("kill-session", "-t", f"={n}")

            variants = {"kstlib": Variant(kstlib_ss), "raw": Variant(raw_ss)}
            if upstream is not None:
                variants["upstream"] = Variant(
                    lambda _: upstream.start_stop(sockets["kstlib"], f"up-{next(counter)}")
                )
            bench.measure(
                "tmux-scale",
                "start+stop",
                variants,
                size=size,
                heavy=True,
                note="kstlib and upstream kstlib on kstlib's server, raw on the plain one",
            )
    finally:
        with shielded():
            try:
                runner.kill_server()
            except Exception as err:
                bench.log(f"scale: kill_server: {err}")
            tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
            for socket in sockets.values():
                subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True)
                Path(tmpdir, f"tmux-{os.getuid()}", socket).unlink(missing_ok=True)
            shutil.rmtree(state_dir() / "tmux" / f"L-{sockets['kstlib']}", ignore_errors=True)
            # Nothing of the three trees may outlive its server (the collector, a cat).
            deadline = time.monotonic() + 5

            def alive(pids: Iterable[int]) -> list[int]:
                return [p for p in pids if seen[p] is not None and start_time(p) == seen[p]]

            left = alive(seen)
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = alive(left)
            if left:
                table = proc_table()
                what = sorted({table[p][1] for p in left if p in table})
                bench.notes.append(
                    f"tmux scale: {len(left)} processes outlived their server by 5 s: {what}"
                )
                for pid in alive(left):  # ours: same pid, same start time
                    with suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
            scale["leftover_processes"] = len(left)


# -- fresh interpreters: import time and `kstlib ops list --json` ---------------------------


def child_env(cached: bool) -> dict[str, str]:
    env = dict(os.environ)
    # The children import the kstlib this bench measures (this checkout).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    if cached:
        # Bytecode written once (outside the repo) and reused, as after `pip install`.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "kstlib-bench-pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


IMPORT_PROBE = (
    "import sys, time, json; t = time.perf_counter(); c = time.process_time(); "
    "import kstlib.ops; d = time.perf_counter() - t; e = time.process_time() - c; "
    "print(json.dumps([d, e, sorted(m for m in ('libtmux', 'docker', 'podman', 'requests', "
    "'urllib3', 'yaml') if m in sys.modules)]))"
)


def child_run(argv: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[int, int, str]:
    """Run a child to completion: (wall ns, CPU ns of it and its own children, stdout)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter_ns()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter_ns() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return wall, int(cpu * 1e9), proc.stdout


def bench_import(bench: Bench) -> None:
    """`import kstlib.ops` in fresh interpreters (wall and CPU time), and the interpreter alone."""
    py = sys.executable
    plan = bench.settings.child
    for cached in (True, False):
        env = child_env(cached)
        for _ in range(2):  # writes the bytecode cache (cached=True), warms the page cache
            child_run([py, "-c", IMPORT_PROBE], env)
        inproc: list[int] = []
        inproc_cpu: list[int] = []
        bare: list[int] = []
        sdks: list[str] = []
        for _ in range(plan.hi if cached else plan.lo):
            bare.append(child_run([py, "-c", "pass"], env)[0])
            seconds, cpu, sdks = json.loads(child_run([py, "-c", IMPORT_PROBE], env)[2])
            inproc.append(int(seconds * 1e9))
            inproc_cpu.append(int(cpu * 1e9))
        tag = "" if cached else ", no .pyc"
        note = "timed inside a fresh interpreter; SDKs imported: " + (", ".join(sdks) or "none")
        row = Row("python", f"import kstlib.ops{tag}", None, {"kstlib": summarize(inproc)}, note)
        bench.rows.append(row)
        if cached:
            bench.rows.append(
                Row(
                    "python",
                    "import kstlib.ops, CPU time",
                    None,
                    {"kstlib": summarize(inproc_cpu)},
                    "process_time() around the import",
                )
            )
            bench.rows.append(
                Row(
                    "python",
                    "python -c pass (wall)",
                    None,
                    {"kstlib": summarize(bare)},
                    "the interpreter alone: a yardstick for how busy the machine is",
                )
            )
        bench.facts[f"import_sdks_loaded{'' if cached else '_nocache'}"] = sdks
        bench.log(f"import kstlib.ops{tag}: {fmt_ms(row.median('kstlib'))} ms; SDKs loaded: {sdks}")


def list_cli_wall_time(bench: Bench, socket: str) -> None:
    """Wall (and CPU) time of `kstlib ops list --json` in a child process, tmux only."""
    if not KSTLIB_BIN.exists():
        bench.notes.append(f"`kstlib ops list --json`: not measured ({KSTLIB_BIN} is missing)")
        return
    plan = bench.settings.child
    with tempfile.TemporaryDirectory(prefix="kstlib-bench-cli-") as tmp:
        env = child_env(True)
        # No config file, and container endpoints where nothing answers.
        env.update(
            {
                "XDG_CONFIG_HOME": tmp,
                "DOCKER_HOST": f"unix://{tmp}/no-docker.sock",
                "CONTAINER_HOST": f"unix://{tmp}/no-podman.sock",
            }
        )
        env.pop("KSTLIB_CONFIG", None)
        base = [str(KSTLIB_BIN), "ops", "list", "--json", "-L", socket]
        variants = {
            "ops list --json -b tmux": [*base, "-b", "tmux"],
            "ops list --json, no engine": base,
        }
        for label, argv in variants.items():
            try:
                for _ in range(2):
                    out = child_run(argv, env, cwd=tmp)[2]
                json.loads(out)
            except (RuntimeError, ValueError) as err:
                bench.notes.append(f"`kstlib {label}`: not measured ({err})")
                continue
            wall: list[int] = []
            cpu: list[int] = []
            for _ in range(plan.hi):
                w, c, _ = child_run(argv, env, cwd=tmp)
                wall.append(w)
                cpu.append(c)
            note = "child wall time, 1 tmux session, bytecode cached"
            row = Row("cli", f"kstlib {label}", None, {"kstlib": summarize(wall)}, note)
            bench.rows.append(row)
            if label.endswith("-b tmux"):
                bench.rows.append(
                    Row(
                        "cli",
                        f"kstlib {label}, CPU",
                        None,
                        {"kstlib": summarize(cpu)},
                        "user+sys of the child and its tmux clients",
                    )
                )
            bench.log(f"kstlib {label}: {fmt_ms(row.median('kstlib'))} ms")


# -- containers ----------------------------------------------------------------------------


class Engine:
    """The raw SDK and CLI sides of one engine, for the baselines and the setup."""

    runtime: str
    url: str

    def __init__(self) -> None:
        self.prefix = f"kb{os.getpid()}-{uid()}"
        self.counter = iter(range(1_000_000))

    def name(self, tag: str) -> str:
        return f"{self.prefix}-{tag}{next(self.counter)}"

    # raw SDK, one client reused
    def inspect(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def logs_fn(self, name: str) -> Callable[[], bytes]:
        raise NotImplementedError

    def list_all(self) -> list[Any]:
        raise NotImplementedError

    def create_start(self, name: str, command: list[str], *, tty: bool = True) -> str:
        raise NotImplementedError

    def stop_only(self, ref: str) -> None:
        raise NotImplementedError

    def stop_remove(self, ref: str) -> None:
        raise NotImplementedError

    def kill_remove(self, ref: str) -> None:
        raise NotImplementedError

    def exit_code(self, ref: str) -> int:
        raise NotImplementedError

    def mine(self) -> list[str]:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    # CLI
    cli_base: list[str]
    cli_env: dict[str, str]

    def cli(self, *args: str) -> str:
        return run_cli(self.cli_base + list(args), env=self.cli_env)


class DockerSide(Engine):
    runtime = "docker"
    url = DOCKER_URL

    def __init__(self) -> None:
        super().__init__()
        import docker

        self.client = docker.DockerClient(base_url=self.url, version="auto", timeout=60)
        self.api = self.client.api
        self.cli_base = [shutil.which("docker") or "docker"]
        self.cli_env = {**os.environ, "DOCKER_HOST": self.url}
        self.cli_env.pop("DOCKER_CONTEXT", None)

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(self.api.inspect_container(name))

    def exists(self, name: str) -> bool:
        import docker.errors

        try:
            self.api.inspect_container(name)
        except docker.errors.NotFound:
            return False
        return True

    def logs_fn(self, name: str) -> Callable[[], bytes]:
        return lambda: self.api.logs(name, stdout=True, stderr=True, tail=100)

    def list_all(self) -> list[Any]:
        return list(self.api.containers(all=True))

    def create_start(self, name: str, command: list[str], *, tty: bool = True) -> str:
        created = self.api.create_container(
            IMAGE,
            command=command,
            name=name,
            tty=tty,
            stdin_open=tty,
            labels={"io.kstlib.managed": "true"},
            host_config=self.api.create_host_config(init=True),
        )
        self.api.start(created["Id"])
        return str(created["Id"])

    def stop_only(self, ref: str) -> None:
        self.api.stop(ref, timeout=10)

    def stop_remove(self, ref: str) -> None:
        self.api.stop(ref, timeout=10)
        self.api.remove_container(ref, v=True, force=True)

    def kill_remove(self, ref: str) -> None:
        self.api.remove_container(ref, v=True, force=True)

    def exit_code(self, ref: str) -> int:
        return int(self.api.inspect_container(ref)["State"]["ExitCode"])

    def mine(self) -> list[str]:
        return [c["Id"] for c in self.api.containers(all=True, filters={"name": self.prefix})]

    def versions(self) -> dict[str, str]:
        import docker

        server = self.api.version()
        return {
            "docker_engine": server.get("Version", "?"),
            "docker_api": server.get("ApiVersion", "?"),
            "docker_sdk": docker.__version__,
            "docker_cli": run_cli([*self.cli_base, "--version"], env=self.cli_env).strip(),
        }


class PodmanSide(Engine):
    runtime = "podman"
    url = PODMAN_URL

    def __init__(self) -> None:
        super().__init__()
        import podman

        self.client = podman.PodmanClient(base_url=self.url, timeout=60)
        self.objects: dict[str, Any] = {}
        self.cli_base = [shutil.which("podman") or "podman"]
        env = {**os.environ}
        env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
        for key in ("CONTAINER_HOST", "CONTAINER_CONNECTION"):
            env.pop(key, None)
        self.cli_env = env

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(self.client.containers.get(name).attrs)

    def exists(self, name: str) -> bool:
        return bool(self.client.containers.exists(name))

    def logs_fn(self, name: str) -> Callable[[], bytes]:
        container = self.client.containers.get(name)  # fetched once, reused like the client

        def fetch() -> bytes:
            out = container.logs(stdout=True, stderr=True, tail=100)
            return out if isinstance(out, bytes) else b"".join(out)

        return fetch

    def list_all(self) -> list[Any]:
        return list(self.client.containers.list(all=True, sparse=True))

    def create_start(self, name: str, command: list[str], *, tty: bool = True) -> str:
        container = self.client.containers.create(
            IMAGE,
            command,
            name=name,
            tty=tty,
            stdin_open=tty,
            init=True,
            labels={"io.kstlib.managed": "true"},
        )
        container.start()
        # Kept, as a user keeps the object create() returned: stop() then costs one call.
        self.objects[str(container.id)] = container
        return str(container.id)

    def stop_only(self, ref: str) -> None:
        self.objects[ref].stop(timeout=10)

    def stop_remove(self, ref: str) -> None:
        self.objects.pop(ref).stop(timeout=10)
        self.client.containers.remove(ref, force=True, v=True)

    def kill_remove(self, ref: str) -> None:
        import podman.errors

        with suppress(podman.errors.APIError):
            self.client.containers.get(ref).kill(signal=int(signal.SIGKILL))
        self.client.containers.remove(ref, force=True, v=True)

    def exit_code(self, ref: str) -> int:
        return int(self.client.containers.get(ref).attrs["State"]["ExitCode"])

    def mine(self) -> list[str]:
        found = self.client.containers.list(all=True, sparse=True, filters={"name": self.prefix})
        return [str(c.id) for c in found]

    def versions(self) -> dict[str, str]:
        import podman

        server = self.client.version()  # type: ignore[no-untyped-call]
        return {
            "podman_service": server.get("Version", "?"),
            "podman_api": server.get("ApiVersion", "?"),
            "podman_sdk": podman.__version__,
            "podman_cli": run_cli([*self.cli_base, "--version"], env=self.cli_env).strip(),
        }


def bench_containers(bench: Bench, side: Engine) -> None:
    from kstlib.ops import BackendType, ContainerRunner, SessionConfig

    rt = side.runtime
    runner = ContainerRunner(runtime=rt, base_url=side.url)
    bench.facts.update(side.versions())
    main = side.name("main")

    def config(name: str, command: list[str]) -> Any:
        return SessionConfig(
            name=name, backend=BackendType.CONTAINER, image=IMAGE, command=tuple(command)
        )

    try:
        runner.start(config(main, ["sh", "-c", f"seq 1 {LOG_LINES}; sleep 86400"]))
        deadline = time.monotonic() + 20
        while runner.logs(main, 1) != str(LOG_LINES):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{rt}: the main container printed nothing in 20 s")
            time.sleep(0.05)
        expected = [str(i) for i in range(LOG_LINES - 99, LOG_LINES + 1)]
        assert runner.logs(main, 100).split("\n") == expected
        raw_logs = side.logs_fn(main)
        assert raw_logs().decode().replace("\r\n", "\n").split("\n")[-101:-1] == expected
        assert side.cli("logs", "--tail", "100", main).split("\n")[-101:-1] == expected

        count = len(side.list_all())
        bench.log(f"{rt:6} {count} containers on the engine")
        bench.facts[f"{rt}_size_1_actual"] = count
        bench.measure(
            rt,
            "status",
            {
                "kstlib": Variant(lambda _: runner.status(main)),
                "raw": Variant(lambda _: side.inspect(main)),
                "cli": Variant(lambda _: side.cli("inspect", main)),
            },
            size=count,
        )
        exists_cli = (
            ["container", "exists", main]
            if rt == "podman"
            else ["container", "inspect", "-f", "{{.Id}}", main]
        )
        bench.measure(
            rt,
            "exists",
            {
                "kstlib": Variant(lambda _: runner.exists(main)),
                "raw": Variant(lambda _: side.exists(main)),
                "cli": Variant(lambda _: side.cli(*exists_cli)),
            },
            note="podman raw: containers.exists(); docker raw: inspect_container()",
        )
        bench.measure(
            rt,
            "logs(100)",
            {
                "kstlib": Variant(lambda _: runner.logs(main, 100)),
                "raw": Variant(lambda _: raw_logs()),
                "cli": Variant(lambda _: side.cli("logs", "--tail", "100", main)),
            },
            note="docker raw: APIClient.logs (inspects first); podman raw: Container.logs",
        )
        bench.measure(
            rt,
            "list_sessions",
            {
                "kstlib": Variant(lambda _: runner.list_sessions()),
                "raw": Variant(lambda _: side.list_all()),
                "cli": Variant(lambda _: side.cli("ps", "-a", "--format", "json")),
            },
            size=count,
        )
        container_start_stop(bench, side, runner, config)
        container_graceful(bench, side, runner, config)

        want = bench.settings.container_sizes[-1] - count
        if want > 0:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(
                    pool.map(
                        lambda i: side.create_start(
                            side.name("fill"), ["sleep", "86400"], tty=False
                        ),
                        range(want),
                    )
                )
            bench.log(f"{rt:6} created {want} containers in {time.perf_counter() - t0:.1f} s")
        count = len(side.list_all())
        bench.log(f"{rt:6} {count} containers on the engine")
        bench.measure(
            rt,
            "list_sessions",
            {
                "kstlib": Variant(lambda _: runner.list_sessions()),
                "raw": Variant(lambda _: side.list_all()),
                "cli": Variant(lambda _: side.cli("ps", "-a", "--format", "json")),
            },
            size=count,
        )
        bench.measure(
            rt,
            "status",
            {
                "kstlib": Variant(lambda _: runner.status(main)),
                "raw": Variant(lambda _: side.inspect(main)),
                "cli": Variant(lambda _: side.cli("inspect", main)),
            },
            size=count,
        )
    finally:
        with shielded():
            cleanup_containers(bench, side)


def container_start_stop(
    bench: Bench, side: Engine, runner: Any, config: Callable[..., Any]
) -> None:
    rt = side.runtime
    sleep = ["sleep", "86400"]

    def kstlib_run(_: object) -> None:
        name = side.name("ss")
        runner.start(config(name, sleep))
        runner.stop(name)

    def raw_run(_: object) -> None:
        side.stop_remove(side.create_start(side.name("ss"), sleep))

    def cli_run(_: object) -> None:
        name = side.name("ss")
        side.cli(
            "run",
            "-d",
            "--init",
            "-t",
            "-i",
            "--label",
            "io.kstlib.managed=true",
            "--name",
            name,
            IMAGE,
            *sleep,
        )
        side.cli("stop", "-t", "10", name)
        side.cli("rm", "-v", name)

    bench.measure(
        rt,
        "start+stop",
        {
            "kstlib": Variant(kstlib_run),
            "raw": Variant(raw_run),
            "cli": Variant(cli_run),
        },
        heavy=True,
        note="create+start, then graceful stop (t=10) + remove",
    )


def container_graceful(bench: Bench, side: Engine, runner: Any, config: Callable[..., Any]) -> None:
    """stop() of a container whose process traps SIGTERM, default timeout (10 s)."""
    rt = side.runtime
    command = ["sh", "-c", TRAP_SCRIPT]
    # Check once that the trap runs (exit code 0, not 143 or 137).
    ref = side.create_start(side.name("gchk"), command)
    time.sleep(0.3)
    t0 = time.perf_counter()
    side.stop_only(ref)
    took = time.perf_counter() - t0
    code = side.exit_code(ref)
    side.kill_remove(ref)
    bench.facts[f"{rt}_trap_exit_code"] = code
    bench.log(f"{rt:6} SIGTERM trap check: exit code {code} after {took:.2f} s")

    def kstlib_prep() -> str:
        name = side.name("gs")
        runner.start(config(name, command))
        time.sleep(0.2)  # let the shell install its trap
        return name

    def raw_prep() -> str:
        ref = side.create_start(side.name("gs"), command)
        time.sleep(0.2)
        return ref

    def cli_run(ref: str) -> None:
        side.cli("stop", "-t", "10", ref)
        side.cli("rm", "-v", ref)

    bench.measure(
        rt,
        "graceful stop",
        {
            "kstlib": Variant(lambda name: runner.stop(name), kstlib_prep),
            "raw": Variant(side.stop_remove, raw_prep),
            "cli": Variant(cli_run, raw_prep),
        },
        heavy=True,
        note="SIGTERM-trapping process, timeout 10 s; stop + remove",
    )


def cleanup_containers(bench: Bench, side: Engine) -> None:
    try:
        refs = side.mine()
    except Exception as err:
        bench.log(f"{side.runtime}: cannot list containers to clean up: {err}")
        return

    def remove(ref: str) -> None:
        try:
            side.kill_remove(ref)
        except Exception as err:
            bench.log(f"{side.runtime}: cannot remove {ref[:12]}: {err}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(remove, refs))
    left = side.mine()
    if left:
        bench.log(f"{side.runtime}: {len(left)} containers could not be removed: {left}")


def engine_answers(url: str) -> bool:
    import socket as socketlib

    path = url[len("unix://") :]
    try:
        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return b" 200" in sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False


# -- targets and report --------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def samples(row: Row | None, variant: str = "kstlib") -> list[float]:
    if row is None or variant not in row.stats:
        return []
    return list(row.stats[variant]["samples_ms"])


def ci_of(num: list[float], den: list[float]) -> tuple[float, float] | None:
    return ratio_ci(num, den) if len(num) > 1 and den else None


def evaluate(bench: Bench) -> list[Target]:
    targets: list[Target] = []
    for r in bench.rows:
        if r.backend == "tmux-scale":
            continue  # its own targets, below
        k, raw, cli = r.median("kstlib"), r.median("raw"), r.median("cli")
        where = f"{r.backend} {r.op}" + (f" [{r.size}]" if r.size is not None else "")
        ks, rs, cs = samples(r), samples(r, "raw"), samples(r, "cli")
        if raw is not None:
            targets.append(
                Target(
                    f"raw:{where}",
                    f"{where}: kstlib/raw <= 1.25",
                    ratio(k, raw),
                    1.25,
                    ci=ci_of(ks, rs),
                )
            )
        if (
            cli is not None
            and r.backend in ("docker", "podman")
            and r.op in ("status", "logs(100)")
        ):
            targets.append(
                Target(
                    f"cli:{where}",
                    f"{where}: cli/kstlib >= 10",
                    ratio(cli, k),
                    10,
                    higher_is_better=True,
                    ci=ci_of(cs, ks),
                )
            )
        if cli is not None and r.backend == "tmux":
            targets.append(
                Target(
                    f"cli:{where}",
                    f"{where}: cli/kstlib >= 1 (no slower than tmux CLI)",
                    ratio(cli, k),
                    1.0,
                    higher_is_better=True,
                    ci=ci_of(cs, ks),
                )
            )
    for r in bench.rows:  # issue 24: the control channel >= 10x below the forked call
        if r.backend == "tmux" and r.op in ("status (control)", "exists (control)") and r.size:
            targets.append(
                Target(
                    f"control:tmux {r.op} [{r.size}]",
                    f"tmux {r.op} [{r.size}]: raw/kstlib >= 10",
                    ratio(r.median("raw"), r.median("kstlib")),
                    10,
                    higher_is_better=True,
                    ci=ci_of(samples(r, "raw"), samples(r)),
                )
            )
    for r in bench.rows:  # issue 24: the fork path within 1.2x of the same raw tmux call
        if r.backend == "tmux" and r.op in ("start", "list_sessions", "status") and r.size:
            targets.append(
                Target(
                    f"fork:tmux {r.op} [{r.size}]",
                    f"tmux {r.op} [{r.size}]: kstlib/raw <= 1.2 (one tmux call)",
                    ratio(r.median("kstlib"), r.median("raw")),
                    1.2,
                    ci=ci_of(samples(r), samples(r, "raw")),
                )
            )
    sizes = bench.settings.tmux_sizes

    def sized(backend: str, op: str, want: int) -> Row | None:
        # The engine may hold containers from others: match the nearest size measured.
        rows = [r for r in bench.rows if r.backend == backend and r.op == op and r.size is not None]
        if not rows:
            return None
        return min(rows, key=lambda r: abs((r.size or 0) - want))

    lo, hi = sized("tmux", "list_sessions", sizes[0]), sized("tmux", "list_sessions", sizes[-1])
    if lo and hi and lo is not hi:
        targets.append(
            Target(
                "o1:tmux list",
                f"tmux list_sessions {hi.size} vs {lo.size} sessions <= 3x",
                ratio(hi.median("kstlib"), lo.median("kstlib")),
                3.0,
                ci=ci_of(samples(hi), samples(lo)),
            )
        )
    lo, hi = sized("tmux", "status", sizes[0]), sized("tmux", "status", sizes[-1])
    if lo and hi and lo is not hi:
        targets.append(
            Target(
                "flat:tmux status",
                f"tmux status with {hi.size} vs {lo.size} sessions <= 1.2x",
                ratio(hi.median("kstlib"), lo.median("kstlib")),
                1.2,
                ci=ci_of(samples(hi), samples(lo)),
            )
        )
    for rt in ("docker", "podman"):
        lo = sized(rt, "list_sessions", bench.settings.container_sizes[0])
        hi = sized(rt, "list_sessions", bench.settings.container_sizes[-1])
        if lo and hi and lo is not hi:
            targets.append(
                Target(
                    f"o1:{rt} list",
                    f"{rt} list_sessions {hi.size} vs {lo.size} containers <= 2x",
                    ratio(hi.median("kstlib"), lo.median("kstlib")),
                    2.0,
                    ci=ci_of(samples(hi), samples(lo)),
                )
            )
        g = bench.row(rt, "graceful stop")
        if g is not None:
            targets.append(
                Target(
                    f"grace:{rt}",
                    f"{rt} graceful stop of a SIGTERM-handling container < 1000 ms",
                    g.median("kstlib"),
                    1000,
                    unit="ms",
                    ci=ci_of(samples(g), [1.0]),
                )
            )
    targets += scale_targets(bench)
    imp = bench.row("python", "import kstlib.ops")
    targets.append(
        Target(
            "import",
            "import kstlib.ops < 40 ms (bytecode cached)",
            imp.median("kstlib") if imp else None,
            40,
            unit="ms",
            ci=ci_of(samples(imp), [1.0]),
        )
    )
    cli_row = bench.row("cli", "kstlib ops list --json -b tmux")
    targets.append(
        Target(
            "ops list",
            "kstlib ops list --json (tmux only) < 250 ms",
            cli_row.median("kstlib") if cli_row else None,
            250,
            unit="ms",
            ci=ci_of(samples(cli_row), [1.0]),
        )
    )
    return targets


def versus(key: str, text: str, row: Row | None, other: str, limit: float) -> Target | None:
    """Target: median kstlib / median ``other`` of ``row`` <= ``limit``."""
    if row is None or other not in row.stats:
        return None
    return Target(
        key,
        text,
        ratio(row.median("kstlib"), row.median(other)),
        limit,
        ci=ci_of(samples(row), samples(row, other)),
    )


def scale_targets(bench: Bench) -> list[Target]:
    """The targets of issue 11 (tmux at scale)."""
    found: list[Target | None] = [
        versus(
            "upstream:tmux start+stop",
            "tmux start()+stop(graceful=False): kstlib/upstream kstlib <= 1.0",
            bench.row("tmux", "start+stop"),
            "upstream",
            1.0,
        )
    ]
    scale = bench.facts.get("tmux_scale", {}).get("sizes", {})
    for size in bench.settings.tmux_scale_sizes:
        found += [
            versus(
                f"scale:start [{size}]",
                f"tmux [{size}] start of each: kstlib/plain tmux new-session <= 2.0",
                bench.row("tmux-scale", "start each", size),
                "raw",
                2.0,
            ),
            versus(
                f"scale:status [{size}]",
                f"tmux [{size}] status(): kstlib/raw list-panes on the plain server <= 1.2",
                bench.row("tmux-scale", "status", size),
                "raw",
                1.2,
            ),
            versus(
                f"scale:list [{size}]",
                f"tmux [{size}] list_sessions(): kstlib/raw list-sessions on the plain "
                "server <= 1.3",
                bench.row("tmux-scale", "list_sessions", size),
                "raw",
                1.3,
            ),
            versus(
                f"scale:upstream [{size}]",
                f"tmux [{size}] start()+stop(graceful=False): kstlib/upstream kstlib <= 1.0",
                bench.row("tmux-scale", "start+stop", size),
                "upstream",
                1.0,
            ),
        ]
        memory = scale.get(str(size), {}).get("memory", {}).get("kstlib")
        if memory is not None:
            found.append(
                Target(
                    f"scale:memory [{size}]",
                    f"tmux [{size}] memory beyond the commands (PSS) <= 1 MB a session",
                    memory["pss_beyond_mb_per_session"],
                    1.0,
                    unit="MB",
                )
            )
    return [t for t in found if t is not None]


def render_scale(bench: Bench) -> list[str]:
    """The tmux scale table: one line per size and operation, the three servers side by side."""
    rows = [r for r in bench.rows if r.backend == "tmux-scale"]
    scale = bench.facts.get("tmux_scale", {}).get("sizes", {})
    if not rows and not scale:
        return []
    cols = ("raw", "libtmux", "upstream", "kstlib")
    head = (
        f"{'N':>5} {'operation':14} {'plain tmux':>16} {'libtmux API':>16} "
        f"{'upstream':>16} {'kstlib':>16} {'k/plain':>8} {'k/upstr':>8}"
    )
    lines = ["", "tmux at scale (ms: median [p90]; memory: MB a session beyond the commands)"]
    lines += [head, "-" * len(head)]
    for size in bench.settings.tmux_scale_sizes:
        for r in rows:
            if r.size != size:
                continue
            cells = []
            for c in cols:
                st = r.stats.get(c)
                cells.append(
                    "-" if st is None else f"{fmt_ms(st['median_ms'])} [{fmt_ms(st['p90_ms'])}]"
                )
            kr = ratio(r.median("kstlib"), r.median("raw"))
            ku = ratio(r.median("kstlib"), r.median("upstream"))
            lines.append(
                f"{size:>5} {r.op:14} "
                + " ".join(f"{c:>16}" for c in cells)
                + f" {(f'{kr:.2f}' if kr else '-'):>8} {(f'{ku:.2f}' if ku else '-'):>8}"
            )
            same = r.median("raw_kstlib_server")
            if same is not None:
                lines.append(
                    f"{'':>5} {'':14} {'(same raw query on kstlib server: ' + fmt_ms(same) + ' ms)':>50}"
                )
        memory = scale.get(str(size), {}).get("memory", {})
        if memory:
            cells = []
            for c in cols:
                fp = memory.get(c)
                cells.append(
                    "-"
                    if fp is None
                    else f"{fp['pss_beyond_mb_per_session']:.3f} ({fp['processes']}p)"
                )
            k, p = memory.get("kstlib"), memory.get("raw")
            kr = (
                ratio(k["pss_beyond_mb_per_session"], p["pss_beyond_mb_per_session"])
                if k and p
                else None
            )
            lines.append(
                f"{size:>5} {'memory/session':14} "
                + " ".join(f"{c:>16}" for c in cells)
                + f" {(f'{kr:.1f}' if kr else '-'):>8} {'-':>8}"
            )
    return lines


def render(bench: Bench, targets: list[Target]) -> str:
    head = (
        f"{'backend':7} {'operation':36} {'kstlib ms [p10-p90]':22} {'raw ms':>8} {'cli ms':>8} "
        f"{'k/raw':>6} {'cli/k':>6} {'n':>4}"
    )
    lines = [head, "-" * len(head)] if any(r.backend != "tmux-scale" for r in bench.rows) else []
    for r in bench.rows:
        if r.backend == "tmux-scale":
            continue  # in its own table
        k = r.stats["kstlib"]
        op = r.op + (f" [{r.size}]" if r.size is not None else "")
        spread = f"{fmt_ms(k['median_ms'])} [{fmt_ms(k['p10_ms'])}-{fmt_ms(k['p90_ms'])}]"
        kr = ratio(r.median("kstlib"), r.median("raw"))
        ck = ratio(r.median("cli"), r.median("kstlib"))
        lines.append(
            f"{r.backend:7} {op:36} {spread:22} {fmt_ms(r.median('raw')):>8} {fmt_ms(r.median('cli')):>8} "
            f"{(f'{kr:.2f}' if kr else '-'):>6} {(f'{ck:.1f}' if ck else '-'):>6} {k['n']:>4}"
        )
    up = bench.row("tmux", "start+stop")
    if up is not None and "upstream" in up.stats:
        lines.append(
            f"{'':7} {'(upstream kstlib start+stop)':36} "
            f"{fmt_ms(up.median('upstream')):>22} {'':>8} {'':>8} "
            f"{ratio(up.median('kstlib'), up.median('upstream')) or 0:>6.2f}  (kstlib/upstream)"
        )
    lines += render_scale(bench)
    lines.append("")
    lines.append("Targets (issues 7 and 11):")
    for t in targets:
        fig = (
            "-"
            if t.figure is None
            else (
                f"{t.figure:.2f}x"
                if t.unit == "x"
                else (f"{t.figure:.3f} MB" if t.unit == "MB" else f"{t.figure:.0f} ms")
            )
        )
        if t.ci is not None:
            lo, hi = t.ci
            fig += (
                f" (90% CI {lo:.2f}-{hi:.2f})" if t.unit == "x" else f" (90% CI {lo:.0f}-{hi:.0f})"
            )
            if t.within_noise:
                fig += ", within noise"
        lines.append(f"  [{t.verdict:^6}] {t.text}: {fig}")
    met = sum(t.verdict == "met" for t in targets)
    missed = sum(t.verdict == "MISSED" for t in targets)
    lines.append(f"  {met} met, {missed} missed, {len(targets) - met - missed} not measured")
    for note in bench.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def git_state() -> dict[str, Any]:
    """The commit measured, and whether kstlib/ had uncommitted changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    import kstlib

    return {
        "kstlib": str(Path(kstlib.__file__).parent),
        # KSTLIB_BENCH_COMMIT labels a source tree that is not a git checkout (git archive).
        "head": git("rev-parse", "--short", "HEAD") or os.environ.get("KSTLIB_BENCH_COMMIT", ""),
        "dirty": git("status", "--short", "kstlib"),
    }


# -- main ----------------------------------------------------------------------------------


PARTS = ("import", "tmux", "tmux-scale", "docker", "podman", "swarm")


def bench_side(bench: Bench, side_cls: type[Engine]) -> None:
    bench_containers(bench, side_cls())


def parts(text: str) -> frozenset[str]:
    chosen = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = chosen - set(PARTS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(sorted(unknown)) or '(none)'}; choose from {', '.join(PARTS)}"
        )
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke test)")
    parser.add_argument(
        "--only",
        type=parts,
        metavar="PART[,PART]",
        help=f"only these parts ({', '.join(PARTS)}); tmux-scale: the 100/500-session rows",
    )
    parser.add_argument(
        "--upstream",
        type=Path,
        default=Path(os.environ.get("KSTLIB_BENCH_UPSTREAM", UPSTREAM_PYTHON)),
        metavar="PYTHON",
        help=f"the python of a virtualenv with upstream kstlib {UPSTREAM_VERSION} "
        "(default: .venv-upstream/bin/python)",
    )
    parser.add_argument(
        "--json",
        default=str(REPO / "bench-results.json"),
        metavar="PATH",
        help="where to write the results (default: bench-results.json)",
    )
    args = parser.parse_args(argv)

    # SIGTERM unwinds like Ctrl-C, so every finally: block cleans up.
    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(QUICK if args.quick else FULL)
    bench.facts["machine"] = machine()
    bench.facts["git"] = git_state()
    chosen: frozenset[str] = args.only or frozenset(PARTS)
    started = time.perf_counter()
    upstream: Upstream | None = None

    def part(label: str, run: Callable[[], None]) -> None:
        """Run one part; a failure is reported and the other parts still run."""
        try:
            run()
        except Exception as err:
            traceback.print_exc()
            bench.notes.append(f"{label}: stopped by {type(err).__name__}: {err}")
            bench.log(f"{label} failed ({type(err).__name__}: {err}); going on")

    try:
        if "import" in chosen:
            # First: fresh interpreters are the most sensitive to a machine left busy.
            part("import", lambda: bench_import(bench))
        if chosen & {"tmux", "tmux-scale"}:
            if shutil.which("tmux"):
                upstream = open_upstream(bench, args.upstream)
                if "tmux" in chosen:
                    part("tmux", lambda: bench_tmux(bench, upstream))
                if "tmux-scale" in chosen:
                    part("tmux-scale", lambda: bench_tmux_scale(bench, upstream))
            else:
                bench.notes.append("tmux: not installed, not measured")
        sides: list[type[Engine]] = []
        if "docker" in chosen:
            sides.append(DockerSide)
        if "podman" in chosen:
            sides.append(PodmanSide)
        for side_cls in sides:
            if not engine_answers(side_cls.url):
                bench.notes.append(
                    f"{side_cls.runtime}: nothing answers at {side_cls.url}, not measured "
                    "(run `make engines-up`)"
                )
                continue
            part(side_cls.runtime, partial(bench_side, bench, side_cls))
        if "swarm" in chosen:
            from benchmarks.bench_swarm import bench_swarm

            part("swarm", lambda: bench_swarm(bench, Variant))
    except KeyboardInterrupt:
        bench.log("interrupted; everything created was removed")
        return 130
    finally:
        if upstream is not None:
            upstream.close()
    elapsed = time.perf_counter() - started
    bench.facts["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    bench.facts["elapsed_s"] = round(elapsed, 1)
    targets = evaluate(bench)
    m = bench.facts["machine"]
    labels = {
        "tmux_version": "",
        "docker_engine": "Docker ",
        "podman_service": "Podman ",
        "libtmux_version": "libtmux ",
        "docker_sdk": "docker SDK ",
        "podman_sdk": "podman-py ",
    }
    versions = ", ".join(f"{v}{bench.facts[k]}" for k, v in labels.items() if k in bench.facts)
    print(
        f"{m.get('cores')} cores, {m.get('memory_gib')} GiB, Python {m.get('python')}; {versions}"
    )
    print(f"load average at start {m.get('load_at_start')}, at end {m.get('load_at_end')}\n")
    print(render(bench, targets))
    print(f"\n{len(bench.rows)} measurements in {elapsed:.0f} s; results in {args.json}")
    payload = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "only": None if args.only is None else sorted(args.only),
        "facts": bench.facts,
        "notes": bench.notes,
        "targets": [
            {
                "key": t.key,
                "text": t.text,
                "figure": None if t.figure is None else round(t.figure, 4),
                "limit": t.limit,
                "unit": t.unit,
                "verdict": t.verdict,
                "ci90": None if t.ci is None else [round(t.ci[0], 4), round(t.ci[1], 4)],
                "within_noise": t.within_noise,
            }
            for t in targets
        ],
        "results": [
            {
                "backend": r.backend,
                "op": r.op,
                "size": r.size,
                "note": r.note,
                "ratio_kstlib_raw": ratio(r.median("kstlib"), r.median("raw")),
                "ratio_cli_kstlib": ratio(r.median("cli"), r.median("kstlib")),
                "variants": r.stats,
            }
            for r in bench.rows
        ],
    }
    Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
