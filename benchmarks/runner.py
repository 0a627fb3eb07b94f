"""The shared runner of the benchmark: settings, statistics, rows, targets, the Bench that measures."""

from __future__ import annotations

import os
import random
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

IMAGE = "localhost/kstlib-test:latest"
DOCKER_URL = "unix:///var/run/docker.sock"
PODMAN_URL = os.environ.get("KSTLIB_TEST_PODMAN_URL", "unix:///run/podman/podman.sock")
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
