"""The kstlib.ops pytest plugin (auto-loaded through its pytest11 entry point),
driven with pytester on a real tmux server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kstlib.ops import TmuxRunner

pytest_plugins = ["pytester"]

@pytest.fixture
def socket(tmux_socket: str) -> Iterator[str]:
    name = f"kstlib-plugin-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()


def _sessions(socket: str) -> list[str]:
    return [s.name for s in TmuxRunner(socket_name=socket).list_sessions()]


def test_passing_test_leaves_nothing_behind(pytester: pytest.Pytester, socket: str) -> None:
    pytester.makepyfile(f"""
        def test_worker(ops_session):
            worker = ops_session("echo ready; sleep 60", socket_name={socket!r})
            assert worker.is_running()
            assert worker.name.startswith("test_worker-")
            other = ops_session(["sleep", "60"], socket_name={socket!r})
            assert other.name != worker.name
    """)
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1)
    assert _sessions(socket) == []


def test_failing_test_leaves_nothing_behind(pytester: pytest.Pytester, socket: str) -> None:
    pytester.makepyfile(f"""
        def test_broken(ops_session):
            ops_session("sleep 60", socket_name={socket!r})
            raise RuntimeError("the test itself fails")
    """)
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    assert _sessions(socket) == []


def test_keep_option_keeps_sessions(pytester: pytest.Pytester, socket: str) -> None:
    pytester.makepyfile(f"""
        def test_kept(ops_session):
            ops_session("sleep 60", name="kept-one", socket_name={socket!r})
    """)
    result = pytester.runpytest_inprocess("--kstlib-ops-keep", "-s")
    result.assert_outcomes(passed=1)
    assert _sessions(socket) == ["kept-one"]
    result.stdout.fnmatch_lines(["*kept session 'kept-one'*"])


def test_marker_skips_a_missing_backend(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KSTLIB_REQUIRE_ENGINES", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ops_backend("docker")
        def test_needs_docker():
            raise AssertionError("must not run")
    """)
    result = pytester.runpytest_inprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*backend 'docker' is not available*"])


def test_marker_fails_a_missing_backend_when_engines_are_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSTLIB_REQUIRE_ENGINES", "1")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ops_backend("docker")
        def test_needs_docker():
            pass
    """)
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*KSTLIB_REQUIRE_ENGINES=1 and kstlib.ops backend 'docker'*"])


def test_marker_runs_an_available_backend(pytester: pytest.Pytester, tmux_socket: str) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ops_backend("tmux")
        def test_needs_tmux():
            pass
    """)
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1)
