"""tmux at scale: plain tmux, libtmux's object API and kstlib, each on a fresh server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from benchmarks.runner import Bench, Row, TMUX_FORMAT, Variant, call, fmt_ms, shielded, summarize
from benchmarks.upstream import Upstream

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
