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

where PART is import, aio (the asyncio face: loop lag, concurrent
speed-up, cancel latency; benchmarks/aio.py), tmux, tmux-scale (100 and 500 sessions on fresh servers:
plain tmux, libtmux's object API and kstlib side by side), docker, podman or
swarm (the harness's two-node swarm). Each part is a module of this package
(benchmarks/tmux.py, tmux_scale.py, containers.py, swarm.py, startup.py) over the
shared runner (benchmarks/runner.py); benchmarks/report.py holds the targets.
Upstream kstlib (in ``.venv-upstream``, made by ``make bench``) is measured
beside kstlib's tmux ``start()+stop()`` in a worker process of its own.

Everything it creates (a private tmux socket, containers named
``kb<pid>-...``) is removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: the package is importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.runner import Bench, FULL, QUICK, REPO, Variant  # noqa: E402
from benchmarks.upstream import UPSTREAM_PYTHON, UPSTREAM_VERSION, Upstream, open_upstream  # noqa: E402
from benchmarks.tmux import bench_tmux  # noqa: E402
from benchmarks.tmux_scale import bench_tmux_scale  # noqa: E402
from benchmarks.startup import bench_import  # noqa: E402
from benchmarks.containers import DockerSide, Engine, PodmanSide, bench_containers, engine_answers  # noqa: E402
from benchmarks.report import evaluate, git_state, machine, ratio, render  # noqa: E402

# -- main ----------------------------------------------------------------------------------


PARTS = ("import", "tmux", "tmux-scale", "docker", "podman", "swarm", "aio")


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
            from benchmarks.swarm import bench_swarm

            part("swarm", lambda: bench_swarm(bench, Variant))
        if "aio" in chosen:
            from benchmarks.aio import bench_aio

            places = ("tmux",) + tuple(
                s.runtime for s in (DockerSide, PodmanSide) if engine_answers(s.url)
            )
            part("aio", lambda: bench_aio(bench, places))
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
