"""The asyncio face (issue 23): event-loop lag under load, concurrent speed-up, cancel latency.

Per engine (tmux on a private socket; Docker and Podman with the test image):

* **loop lag**: a probe sleeps 5 ms again and again and records how late it
  wakes while ``sessions`` sessions are started, queried and stopped
  concurrently and ``follows`` follows stream lines (each session prints a
  line every 100 ms); the row's samples are the lags (target: p99 < 10 ms);
* **status() x N**: N ``status()`` calls through ``asyncio.gather`` (the row's
  ``kstlib`` column) against the same calls awaited one after another (its
  ``sequential`` column; target: concurrent <= half of sequential);
* **cancel**: a follow of a silent session cancelled; the time until the task
  has ended (``kstlib``) and until its thread has ended (``thread``).

Where a late wake's time went (Linux ``/proc/self/task/TID/schedstat`` of the
loop's thread, read around each probe sleep): on a CPU running the loop's own
callbacks, waiting in the kernel's run queue for a CPU (the machine is busy),
or neither (blocked: the GIL held by a worker thread, beyond the 5 ms sleep).
The row's note gives the split over the wakes later than 10 ms, and how many
cores the whole machine and this process used meanwhile (``/proc/stat``,
``os.times``): a p99 missed while the loop waited in the run queue is the
machine's load, not the asyncio face.

Run alone: ``python benchmarks/bench.py --only aio`` (``--quick``: fewer sessions).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from benchmarks.runner import DOCKER_URL, IMAGE, PODMAN_URL, Bench, Row, summarize, uid

#: Per place: the constructor options of its sessions.
PLACES: dict[str, Callable[[str], dict[str, Any]]] = {
    "tmux": lambda sock: {"socket_name": sock},
    "docker": lambda _: {"backend": "docker", "base_url": DOCKER_URL, "image": IMAGE},
    "podman": lambda _: {"backend": "podman", "base_url": PODMAN_URL, "image": IMAGE},
}
CHATTY = "while :; do echo tick; sleep 0.1; done"


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


def _sched() -> tuple[int, int]:
    """This thread's time on a CPU and waiting in the run queue (ns; zeros off Linux)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as handle:
            on_cpu, queued, _ = handle.read().split()
        return int(on_cpu), int(queued)
    except (OSError, ValueError):
        return 0, 0


def _busy() -> tuple[int, int]:
    """The machine's busy and total jiffies so far (``/proc/stat``; zeros off Linux)."""
    try:
        with open("/proc/stat") as handle:
            ticks = [int(x) for x in handle.readline().split()[1:]]
        return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    except (OSError, ValueError, IndexError):
        return 0, 0


async def _lag_probe(
    stop: asyncio.Event, lags: list[int], late: list[tuple[int, int, int]] | None = None
) -> None:
    """Sleep 5 ms again and again, record how late each wake is.

    For a wake more than 10 ms late, ``late`` gets where its time went:
    ``(wall, on the loop's CPU, in the run queue)`` (ns).
    """
    while not stop.is_set():
        cpu0, queue0 = _sched()
        t0 = time.perf_counter_ns()
        await asyncio.sleep(0.005)
        wall = time.perf_counter_ns() - t0
        lags.append(max(wall - 5_000_000, 0))
        if late is not None and wall > 15_000_000:
            cpu1, queue1 = _sched()
            late.append((wall, cpu1 - cpu0, queue1 - queue0))


def _split(late: list[tuple[int, int, int]]) -> dict[str, float]:
    """Where the late wakes' lateness went, in % (run queue, loop's CPU, blocked)."""
    excess = sum(w - 5_000_000 for w, _, _ in late)
    if not late or excess <= 0:
        return {}
    cpu = sum(c for _, c, _ in late)
    queued = sum(q for _, _, q in late)
    blocked = max(sum(w for w, _, _ in late) - cpu - queued - 5_000_000 * len(late), 0)
    return {
        "late_wakes": len(late),
        "run_queue_pct": round(100 * queued / excess, 1),
        "loop_cpu_pct": round(100 * cpu / excess, 1),
        "blocked_pct": round(100 * blocked / excess, 1),
    }


def _stream_threads() -> int:
    return sum(t.name == "kstlib-aio-stream" for t in threading.enumerate())


async def _scenario(
    bench: Bench, place: str, options: dict[str, Any], sessions: int, follows: int
) -> None:
    from kstlib.ops.aio import AsyncSessionManager

    prefix = f"kb{os.getpid()}-aio-{uid()}"
    made: list[AsyncSessionManager] = []

    def bot(name: str) -> AsyncSessionManager:
        manager = AsyncSessionManager(name, **options)
        made.append(manager)
        return manager

    try:
        # 1. loop lag: chatty sessions followed while a fleet is started, queried, stopped.
        talkers = [bot(f"{prefix}-f{i}") for i in range(follows)]
        # Idle machine first: the lag the probe sees with nothing else running here.
        stop, idle = asyncio.Event(), []
        probe = asyncio.create_task(_lag_probe(stop, idle))
        await asyncio.sleep(2)
        stop.set()
        await probe
        chatty = CHATTY if place == "tmux" else ["sh", "-c", CHATTY]
        await asyncio.gather(*(t.start(chatty) for t in talkers))
        heard = [0] * follows

        async def follow(i: int) -> None:
            async for _ in talkers[i].follow_logs():
                heard[i] += 1

        stop, lags, late = asyncio.Event(), [], []
        busy0, own0 = _busy(), os.times()
        probe = asyncio.create_task(_lag_probe(stop, lags, late))
        streams = [asyncio.create_task(follow(i)) for i in range(follows)]
        fleet = [bot(f"{prefix}-s{i}") for i in range(sessions)]
        t0 = time.perf_counter()
        await asyncio.gather(*(b.start("sleep 600") for b in fleet))
        for _ in range(3):
            await asyncio.gather(*(b.status() for b in fleet))
        load_s = time.perf_counter() - t0
        stop.set()
        await probe
        busy1, own1 = _busy(), os.times()
        total = busy1[1] - busy0[1]
        machine = (busy1[0] - busy0[0]) / total * (os.cpu_count() or 1) if total else 0.0
        own = (own1.user + own1.system - own0.user - own0.system) / load_s
        kids = (
            own1.children_user + own1.children_system
            - own0.children_user - own0.children_system
        ) / load_s
        split = _split(late)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        row = Row(
            place,
            f"aio loop lag ({follows} follows)",
            sessions,
            {"kstlib": summarize(lags), "idle": summarize(idle)},
        )
        row.note = (
            f"loop lag p99 {_p99([v / 1e6 for v in lags]):.2f} ms under load over {load_s:.1f} s "
            f"(idle machine: {_p99([v / 1e6 for v in idle]):.2f} ms), "
            f"{sum(heard)} lines followed (target p99 < 10 ms); "
            f"cores busy: machine {machine:.2f}, this process {own:.2f} "
            f"(+{kids:.2f} its exited children)"
            + (
                f"; wakes >10 ms late: {split['late_wakes']}, their lateness "
                f"{split['run_queue_pct']:.0f}% in the run queue, "
                f"{split['loop_cpu_pct']:.0f}% the loop's own work, "
                f"{split['blocked_pct']:.0f}% blocked"
                if split
                else ""
            )
        )
        bench.notes.append(f"{place} {row.note}")
        bench.rows.append(row)
        bench.facts.setdefault("aio", {})[place] = {
            "loop_lag_p99_ms": round(_p99([v / 1e6 for v in lags]), 3),
            "loop_lag_max_ms": round(max(lags) / 1e6, 3),
            "idle_loop_lag_p99_ms": round(_p99([v / 1e6 for v in idle]), 3),
            "lines_followed": sum(heard),
            "loop_lag_p50_ms": round(statistics.median(lags) / 1e6, 3),
            "sessions": sessions,
            "follows": follows,
            "machine_busy_cores": round(machine, 2),
            "process_cores": round(own, 2),
            "children_cores": round(kids, 2),
            "load_s": round(load_s, 2),
            **split,
        }
        bench.log(f"{place:6} aio loop lag [{sessions} + {follows} follows]: {row.note}")

        # 2. status() x N: concurrent vs one after another.
        # With the cores this process and the machine used in each pass: concurrent
        # calls cannot go faster than the CPU they need (the Python part under one GIL).
        conc, seq = [], []
        used: dict[str, list[tuple[float, float]]] = {"conc": [], "seq": []}
        for _ in range(5):
            for how in ("conc", "seq"):
                busy0, own0 = _busy(), os.times()
                t = time.perf_counter_ns()
                if how == "conc":
                    await asyncio.gather(*(b.status() for b in fleet))
                else:
                    for b in fleet:
                        await b.status()
                wall = time.perf_counter_ns() - t
                (conc if how == "conc" else seq).append(wall)
                busy1, own1 = _busy(), os.times()
                total = busy1[1] - busy0[1]
                used[how].append((
                    (own1.user + own1.system - own0.user - own0.system) / (wall / 1e9),
                    (busy1[0] - busy0[0]) / total * (os.cpu_count() or 1) if total else 0.0,
                ))
        cores = {
            how: (statistics.median(u[0] for u in v), statistics.median(u[1] for u in v))
            for how, v in used.items()
        }
        row = Row(
            place, "aio status() gather vs sequential", sessions,
            {"kstlib": summarize(conc), "sequential": summarize(seq)},
        )
        speedup = statistics.median(seq) / statistics.median(conc)
        row.note = (
            f"aio status() x{sessions}: gather {speedup:.1f}x faster than sequential "
            f"(target >= 2x); cores used (this process / machine): sequential "
            f"{cores['seq'][0]:.2f} / {cores['seq'][1]:.2f}, gather "
            f"{cores['conc'][0]:.2f} / {cores['conc'][1]:.2f}"
        )
        bench.notes.append(f"{place} {row.note}")
        bench.rows.append(row)
        bench.facts["aio"][place].update(
            status_speedup=round(speedup, 2),
            status_seq_ms=round(statistics.median(seq) / 1e6, 1),
            status_gather_ms=round(statistics.median(conc) / 1e6, 1),
            status_seq_process_cores=round(cores["seq"][0], 2),
            status_seq_machine_cores=round(cores["seq"][1], 2),
            status_gather_process_cores=round(cores["conc"][0], 2),
            status_gather_machine_cores=round(cores["conc"][1], 2),
        )
        bench.log(f"{place:6} aio status() x{sessions}: {row.note}")

        # 3. cancel latency of a follow of a silent session.
        quiet = bot(f"{prefix}-q")
        await quiet.start("sleep 600")
        ended, freed = [], []
        for _ in range(5):
            task = asyncio.create_task(_drain(quiet))
            await asyncio.sleep(0.3)
            t = time.perf_counter_ns()
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            ended.append(time.perf_counter_ns() - t)
            while _stream_threads():
                await asyncio.sleep(0.001)
            freed.append(time.perf_counter_ns() - t)
        row = Row(
            place, "aio follow cancel (task, thread)", None,
            {"kstlib": summarize(ended), "thread": summarize(freed)},
        )
        row.note = (
            f"aio follow cancel: task ended within {max(ended) / 1e6:.1f} ms, "
            f"its thread within {max(freed) / 1e6:.1f} ms (target 100 ms)"
        )
        bench.notes.append(f"{place} {row.note}")
        bench.rows.append(row)
        bench.facts["aio"][place]["cancel_task_ms_max"] = round(max(ended) / 1e6, 3)
        bench.facts["aio"][place]["cancel_thread_ms_max"] = round(max(freed) / 1e6, 3)
        bench.log(f"{place:6} aio follow cancel: {row.note}")
    finally:
        await asyncio.gather(*(m.stop(graceful=False) for m in made), return_exceptions=True)


async def _drain(manager: Any) -> None:
    async for _ in manager.follow_logs():
        pass


def bench_aio(bench: Bench, places: tuple[str, ...] = ("tmux",)) -> None:
    """Measure the asyncio face on each place (``tmux``, ``docker``, ``podman``)."""
    quick = bench.settings.light.hi <= 10
    socket = f"kb{os.getpid()}-aio"
    try:
        for place in places:
            sessions, follows = 100, 20  # the load, on every engine
            if quick:
                sessions, follows = sessions // 5, follows // 4
            asyncio.run(_scenario(bench, place, PLACES[place](socket), sessions, follows))
    finally:
        if "tmux" in places:
            from kstlib.ops import TmuxRunner

            with suppress(Exception):
                TmuxRunner(socket_name=socket).kill_server()
