"""Fixtures and the end-of-run report of the reliability suite (marker ``faults``).

The fixtures of ``integration/conftest.py`` apply here too; the helpers it
defines (``unique``, ``engine_missing``, ``TEST_IMAGE``, the engine URLs) are
imported from it. Every fault test that kills an engine kills a private one
(see :mod:`integration.faults.engines`), never the shared dockerd or Podman
service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kstlib.ops import ContainerRuntimeNotFoundError, SessionConfig, SessionNotFoundError
from kstlib.ops.container import ContainerRunner

from ..conftest import ENGINE_URLS, REQUIRE, TEST_IMAGE, engine_missing, unique
from .engines import HangServer, PrivateDocker, PrivateEngine, PrivatePodman

RUNTIMES = ("docker", "podman")
#: What "within its timeout plus a small margin" allows on top of a call's own timeout.
MARGIN_S = 3.0


# -- the report --------------------------------------------------------------------


@dataclass
class Report:
    """Figures the tests record; printed at the end of the run and quoted in the docs."""

    cases: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # (engine, fault) -> slowest time from the fault to the error, in seconds
    slowest: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notes: list[str] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.cases[what] += n

    def fault(self, engine: str, fault: str, seconds: float, error: BaseException) -> None:
        with self.lock:
            self.cases[f"fault: {engine} / {fault}"] += 1
            key = (engine, fault)
            self.slowest[key] = max(self.slowest.get(key, 0.0), seconds)
            self.errors[f"{engine} / {fault}"].add(type(error).__name__)

    def note(self, text: str) -> None:
        with self.lock:
            if text not in self.notes:
                self.notes.append(text)

    def figure(self, key: str, value: str) -> None:
        with self.lock:
            self.figures[key] = value


REPORT = Report()


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (REPORT.cases or REPORT.figures or REPORT.notes):
        return
    tr = terminalreporter
    tr.section("kstlib.ops reliability report (integration/faults)")
    total = sum(REPORT.cases.values())
    tr.write_line(f"cases run: {total}")
    for what in sorted(REPORT.cases):
        tr.write_line(f"  {REPORT.cases[what]:6d}  {what}")
    if REPORT.slowest:
        tr.write_line("slowest fault-to-error time (engine / fault: seconds, errors raised):")
        for (engine, fault), seconds in sorted(REPORT.slowest.items()):
            names = ", ".join(sorted(REPORT.errors[f"{engine} / {fault}"]))
            tr.write_line(f"  {engine:7} {fault:34} {seconds:7.3f} s  ({names})")
        per_engine: dict[str, float] = defaultdict(float)
        for (engine, _), seconds in REPORT.slowest.items():
            per_engine[engine] = max(per_engine[engine], seconds)
        tr.write_line(
            "slowest per engine: "
            + ", ".join(f"{e} {s:.3f} s" for e, s in sorted(per_engine.items()))
        )
    for key in sorted(REPORT.figures):
        tr.write_line(f"{key}: {REPORT.figures[key]}")
    for text in REPORT.notes:
        tr.write_line(f"note: {text}")


# -- state: log files go to a private folder -------------------------------------------


@pytest.fixture(scope="package", autouse=True)
def state_home() -> Iterator[str]:
    """Point ``XDG_STATE_HOME`` at a temporary folder for the whole fault suite."""
    old = os.environ.get("XDG_STATE_HOME")
    path = tempfile.mkdtemp(prefix="kf-state-")
    os.environ["XDG_STATE_HOME"] = path
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = old
        shutil.rmtree(path, ignore_errors=True)


def log_files(state: str) -> list[str]:
    """Every file kstlib left under ``$XDG_STATE_HOME/kstlib``."""
    found = []
    for root, _, files in os.walk(os.path.join(state, "kstlib")):
        found += [os.path.join(root, f) for f in files]
    return found


# -- engines -----------------------------------------------------------------------


def shared_runner(runtime: str, timeout: float = 30) -> ContainerRunner:
    """A runner on the shared engine (never killed), failing or skipping if it is missing."""
    runner = ContainerRunner(runtime=runtime, base_url=ENGINE_URLS[runtime], timeout=timeout)
    try:
        runner.list_sessions()
    except ContainerRuntimeNotFoundError as err:
        engine_missing(runtime, str(err))
    return runner


_PRIVATE: dict[str, PrivateEngine] = {}


def _private(runtime: str) -> PrivateEngine:
    if runtime not in _PRIVATE:
        shared_runner(runtime)
        binary = "dockerd" if runtime == "docker" else "podman"
        if shutil.which(binary) is None:
            engine_missing(runtime, f"{binary} is not on PATH")
        engine: PrivateEngine = PrivateDocker() if runtime == "docker" else PrivatePodman()
        try:
            engine.start()
        except Exception as err:
            engine.close()
            if REQUIRE:
                raise
            pytest.skip(f"private {runtime} engine: {err}")
        _PRIVATE[runtime] = engine
    engine = _PRIVATE[runtime]
    engine.ensure_running()
    return engine


@pytest.fixture(scope="session")
def private_engines() -> Iterator[Callable[[str], PrivateEngine]]:
    """``get(runtime)``: this run's private engine of that runtime, started on first use."""
    yield _private
    for engine in _PRIVATE.values():
        REPORT.figure(
            f"private {engine.runtime}: starts, kills",
            f"{engine.starts} starts (slowest {max(engine.start_seconds, default=0):.2f} s), "
            f"{engine.kills} SIGKILLs",
        )
        engine.close()
    _PRIVATE.clear()


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def private(runtime: str, private_engines: Callable[[str], PrivateEngine]) -> PrivateEngine:
    """The private engine for ``runtime``, running."""
    return private_engines(runtime)


@pytest.fixture
def hang_server() -> Iterator[HangServer]:
    root = tempfile.mkdtemp(prefix="kf-h-", dir="/tmp")
    server = HangServer(root)
    yield server
    server.close()
    shutil.rmtree(root, ignore_errors=True)


def ccfg(name: str, command: Any = None, **kw: Any) -> SessionConfig:
    return SessionConfig(name=name, backend="container", image=TEST_IMAGE, command=command, **kw)


@pytest.fixture
def cnames(private: PrivateEngine) -> Iterator[Callable[[str], str]]:
    """Unique container names on the private engine, removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "kf") -> str:
        made.append(unique(prefix))
        if isinstance(private, PrivatePodman):
            private.made.add(made[-1])
        return made[-1]

    yield make
    private.ensure_running()
    cleanup = ContainerRunner(runtime=private.runtime, base_url=private.url, timeout=30)
    for name in made:
        with contextlib.suppress(SessionNotFoundError, ContainerRuntimeNotFoundError):
            cleanup.stop(name, graceful=False)


def timed(fn: Callable[[], Any]) -> tuple[BaseException | None, float, Any]:
    """Run ``fn``; return (the exception or None, seconds taken, result)."""
    began = time.monotonic()
    try:
        result = fn()
    except BaseException as err:
        return err, time.monotonic() - began, None
    return None, time.monotonic() - began, result
