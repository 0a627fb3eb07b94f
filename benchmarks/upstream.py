"""Upstream kstlib, in its own virtualenv, driven in a worker process for side-by-side rows."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

from benchmarks.runner import Bench, REPO, Timed

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
