"""The session factory at every fixture scope (issue 22, point 9), in real pytest runs.

A module-scoped dependency starts once for the module's tests and is gone when the
next module starts; class, package and session scopes likewise.
"""

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
    name = f"kstlib-scope-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (folder / name).unlink()  # tmux leaves the socket file behind


CONFTEST = """
import pytest
from kstlib.ops import TmuxRunner

SOCKET = {socket!r}

def alive():
    return sorted(s.name for s in TmuxRunner(socket_name=SOCKET).list_sessions())

@pytest.fixture(scope="session")
def shared(ops_session_session):
    return ops_session_session(["sleep", "600"], socket_name=SOCKET)

@pytest.fixture(scope="module")
def dependency(ops_session_module):
    return ops_session_module(["sleep", "600"], socket_name=SOCKET)

@pytest.fixture(scope="class")
def per_class(ops_session_class):
    return ops_session_class(["sleep", "600"], socket_name=SOCKET)
"""

MODULE = """
import pytest
from conftest import alive

SEEN = []

def test_first(dependency, shared):
    SEEN.append((dependency.name, dependency.status().pid))
    assert dependency.name.startswith("{module}")
    assert dependency.is_running() and shared.is_running()
    # the other module's dependency is gone before this module's started
    assert alive() == sorted([dependency.name, shared.name])

def test_second(dependency):
    assert (dependency.name, dependency.status().pid) == SEEN[0]  # started once

class TestGrouped:
    NAMES = []

    def test_a(self, per_class, dependency):
        self.NAMES.append(per_class.name)
        assert per_class.is_running()

    def test_b(self, per_class):
        assert [per_class.name] == self.NAMES

def test_after_the_class(dependency, shared):
    assert alive() == sorted([dependency.name, shared.name])  # the class's is gone
"""


def test_each_scope_starts_once_and_cleans_up_at_its_end(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, socket: str
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(pytester.path / "state"))
    pytester.makeconftest(CONFTEST.format(socket=socket))
    pytester.makepyfile(
        test_one=MODULE.format(module="test_one-py"),
        test_two=MODULE.format(module="test_two-py"),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=10)
    assert [s.name for s in TmuxRunner(socket_name=socket).list_sessions()] == []
    folder = pytester.path / "state" / "kstlib" / "ops" / "pytest-owners"
    assert list(folder.glob("*.json")) == [] and list(folder.glob("*.lock")) == []


def test_ops_session_in_a_module_fixture_is_still_a_scope_mismatch(
    pytester: pytest.Pytester,
) -> None:
    """The function-scoped factory stays function-scoped: the wider ones are separate."""
    pytester.makepyfile("""
        import pytest

        @pytest.fixture(scope="module")
        def dependency(ops_session):
            return ops_session(["sleep", "600"])

        def test_x(dependency):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ScopeMismatch*"])


def test_session_factory_gives_a_package_its_own_dependency(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, socket: str
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(pytester.path / "state"))
    pytester.makeconftest(f"""
        from kstlib.ops import TmuxRunner

        def alive():
            return sorted(s.name for s in TmuxRunner(socket_name={socket!r}).list_sessions())
    """)
    for package in ("pkg_a", "pkg_b"):
        folder = pytester.mkpydir(package)
        (folder / "conftest.py").write_text(
            "import pytest\n"
            "from kstlib.ops.pytest_plugin import session_factory\n\n"
            "@pytest.fixture(scope='package')\n"
            "def per_package(request):\n"
            "    with session_factory(request) as start:\n"
            f"        yield start(['sleep', '600'], socket_name={socket!r})\n"
        )
        for module in ("test_1", "test_2"):
            (folder / f"{module}.py").write_text(
                "from conftest import alive\n\n"
                "def test_it(per_package):\n"
                "    assert alive() == [per_package.name]  # the other package's is gone\n"
                f"    assert per_package.name.startswith({package!r})\n"
            )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)
    assert [s.name for s in TmuxRunner(socket_name=socket).list_sessions()] == []
