"""Fresh interpreters: `import kstlib.ops` and `kstlib ops list --json`."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile

from benchmarks.runner import Bench, KSTLIB_BIN, Row, child_env, child_run, fmt_ms, summarize

# -- fresh interpreters: import time and `kstlib ops list --json` ---------------------------


IMPORT_PROBE = (
    "import sys, time, json; t = time.perf_counter(); c = time.process_time(); "
    "import kstlib.ops; d = time.perf_counter() - t; e = time.process_time() - c; "
    "print(json.dumps([d, e, sorted(m for m in ('libtmux', 'docker', 'podman', 'requests', "
    "'urllib3', 'yaml') if m in sys.modules)]))"
)


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
    # What a first call loads on top: the manager (the models, the validators).
    env = child_env(True)
    probe = IMPORT_PROBE.replace("import kstlib.ops;", "from kstlib.ops import SessionManager;")
    first: list[int] = []
    for _ in range(plan.hi):
        seconds, _cpu, sdks = json.loads(child_run([py, "-c", probe], env)[2])
        first.append(int(seconds * 1e9))
    note = "lazy names load on first use; SDKs imported: " + (", ".join(sdks) or "none")
    bench.rows.append(
        Row(
            "python",
            "from kstlib.ops import SessionManager",
            None,
            {"kstlib": summarize(first)},
            note,
        )
    )


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
            floor: list[int] = []
            with_libtmux: list[int] = []  # what no tmux call through libtmux can go below
            # The floor, interleaved: an interpreter doing nothing, then one tmux call.
            tmux = shutil.which("tmux") or "tmux"
            floor_argv = ([sys.executable, "-c", "pass"], [tmux, "-L", socket, "list-sessions"])
            for _ in range(plan.hi):
                w, c, _ = child_run(argv, env, cwd=tmp)
                wall.append(w)
                cpu.append(c)
                floor.append(sum(child_run(list(a), env, cwd=tmp)[0] for a in floor_argv))
                if label.endswith("-b tmux"):
                    libtmux_argv = ([sys.executable, "-c", "import libtmux"], floor_argv[1])
                    with_libtmux.append(
                        sum(child_run(list(a), env, cwd=tmp)[0] for a in libtmux_argv)
                    )
            note = "child wall time, 1 tmux session, bytecode cached"
            note += "; raw: `python -c pass` + one `tmux list-sessions`, interleaved"
            stats = {"kstlib": summarize(wall), "raw": summarize(floor)}
            row = Row("cli", f"kstlib {label}", None, stats, note)
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
                bench.rows.append(
                    Row(
                        "cli",
                        "python -c 'import libtmux' + one tmux call",
                        None,
                        {"kstlib": summarize(with_libtmux)},
                        "child wall times, interleaved with the row above: the least a "
                        "fresh process whose tmux calls go through libtmux can take",
                    )
                )
            bench.log(f"kstlib {label}: {fmt_ms(row.median('kstlib'))} ms")
