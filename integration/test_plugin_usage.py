"""The pytest plugin's user-facing messages (issue 16, point 6): a misspelt backend
marker stops the run, the fixture names every backend, --kstlib-ops-keep is seen
without -s."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import TmuxRunner

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.tmux


@pytest.fixture
def socket(tmux_socket: str) -> Iterator[str]:
    name = f"kstlib-usage-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (folder / name).unlink()  # tmux leaves the socket file behind


def test_a_misspelt_backend_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ops_backend("dokcer")
        def test_needs_docker():
            raise AssertionError("must not run")

        def test_other():
            raise AssertionError("must not run either: the run stops")
    """)
    result = pytester.runpytest_inprocess("-rs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*test_needs_docker: @pytest.mark.ops_backend: unknown backend 'dokcer' "
        "(choose from tmux, container, docker, podman, swarm); did you mean 'docker'?*"
    ])
    result.assert_outcomes()


def test_a_backend_marker_without_a_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ops_backend
        def test_x():
            pass
    """)
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ops_backend needs a backend name*"])


def test_the_fixture_names_every_backend_it_accepts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        from kstlib.ops.exceptions import SessionConfigError

        def test_bad_backend(ops_session):
            with pytest.raises(SessionConfigError) as caught:
                ops_session("sleep 60", backend="dokcer")
            message = str(caught.value)
            for backend in ("tmux", "container", "docker", "podman"):
                assert repr(backend) in message or backend in message, message
            assert "'dokcer'" in message and "did you mean 'docker'" in message
            assert "tmux, container, docker, podman" in message
    """)
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1)


def test_keep_lists_the_kept_sessions_without_dash_s(pytester: pytest.Pytester, socket: str) -> None:
    pytester.makepyfile(f"""
        def test_kept(ops_session):
            ops_session("sleep 60", name="kept-one", socket_name={socket!r})
            ops_session("sleep 60", name="kept-two", socket_name={socket!r})
    """)
    result = pytester.runpytest_inprocess("--kstlib-ops-keep")  # output captured: no -s
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*kstlib.ops kept sessions*",
        "kept session 'kept-one' on tmux",
        "kept session 'kept-two' on tmux",
    ])
    assert sorted(s.name for s in TmuxRunner(socket_name=socket).list_sessions()) == [
        "kept-one", "kept-two"]
