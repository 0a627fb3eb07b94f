"""The benchmark is a package: one module per part over a shared runner, runnable as a script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_OF_PART = {
    "import": "startup",
    "tmux": "tmux",
    "tmux-scale": "tmux_scale",
    "docker": "containers",
    "podman": "containers",
    "swarm": "swarm",
    "aio": "aio",
}


def test_every_part_has_its_module_and_the_runner_is_shared() -> None:
    from benchmarks import bench, runner

    assert set(bench.PARTS) == set(MODULE_OF_PART)
    for module in set(MODULE_OF_PART.values()):
        assert (ROOT / "benchmarks" / f"{module}.py").is_file(), module
    # The parts measure through the one Bench of the runner.
    from benchmarks import aio, containers, startup, tmux, tmux_scale

    for part in (containers, startup, tmux, tmux_scale):
        assert part.Bench is runner.Bench
    assert aio.Bench is runner.Bench


@pytest.mark.parametrize("module", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_each_module_stays_small(module: Path) -> None:
    assert len(module.read_text().splitlines()) <= 600


@pytest.mark.parametrize(
    "argv", [["benchmarks/bench.py", "--help"], ["-m", "benchmarks.bench", "--help"]]
)
def test_the_bench_runs_as_a_script_and_as_a_module(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--only" in done.stdout
