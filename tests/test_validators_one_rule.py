"""One rule per argument, in kstlib.ops.validators: every entry point applies the same one."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

import kstlib
from kstlib.ops import validators
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType, SessionConfig

BAD_TIMEOUTS = [-1, math.nan, math.inf, "5", True, None]


@pytest.mark.parametrize("bad", BAD_TIMEOUTS)
def test_the_timeout_rule_is_finite_and_not_negative(bad: object) -> None:
    with pytest.raises(SessionConfigError) as info:
        validators.validate_timeout(bad)
    assert info.value.field == "timeout"
    assert "finite, non-negative" in info.value.problem


def test_zero_is_a_timeout_but_not_an_engine_call_timeout() -> None:
    assert validators.validate_timeout(0) == 0.0
    assert validators.validate_optional_timeout(None) is None
    with pytest.raises(SessionConfigError):
        validators.validate_call_timeout(0)
    with pytest.raises(SessionConfigError):
        validators.validate_call_timeout(math.inf)


def test_every_runner_applies_the_same_timeout_rule() -> None:
    from kstlib.ops.container import ContainerRunner
    from kstlib.ops.tmux.client import TmuxClient

    for bad in (math.nan, math.inf, -0.5):
        with pytest.raises(SessionConfigError, match="finite, non-negative"):
            TmuxClient(socket_name="kstlib-rule", timeout=bad)
        with pytest.raises(SessionConfigError, match="finite, positive"):
            ContainerRunner(runtime="docker", timeout=bad)


def test_lines_since_and_base_url_have_one_home() -> None:
    assert validators.validate_lines(0) == 0
    with pytest.raises(SessionConfigError):
        validators.validate_lines(-1)
    assert validators.validate_since(0).year == 1970  # type: ignore[union-attr]
    with pytest.raises(SessionConfigError):
        validators.validate_since(math.inf)
    with pytest.raises(SessionConfigError) as info:
        validators.validate_base_url("ftp://x")
    assert info.value.field == "base_url"


def test_backend_type_parses_backends_itself() -> None:
    assert BackendType.coerce("TMUX") is BackendType.TMUX
    with pytest.raises(SessionConfigError) as info:
        BackendType.coerce("vm")
    assert info.value.field == "backend"


def _defined_functions(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, []).append(str(path.relative_to(root)))
    return found


def test_no_module_but_validators_defines_an_argument_check() -> None:
    root = Path(kstlib.__file__).parent
    defined = _defined_functions(root)
    for name in ("check_timeout", "_check_timeout", "_check_lines", "_check_since", "check_lines",
                 "_check_socket_path"):
        assert name not in defined, defined.get(name)
    for name in ("validate_timeout", "validate_base_url", "validate_lines", "validate_since"):
        assert defined[name] == ["ops/validators/__init__.py"]


def test_validators_does_not_import_models() -> None:
    for path in Path(validators.__file__).parent.glob("*.py"):
        assert "kstlib.ops.models" not in path.read_text(), path


def test_the_waits_check_no_argument_themselves() -> None:
    """The readiness waits take their rules from validators (no copy in waits.py)."""
    source = (Path(kstlib.__file__).parent / "ops" / "waits.py").read_text()
    raised = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Raise)
              and "SessionConfigError" in ast.unparse(n)]
    assert raised == []
    assert validators.validate_pattern("^up$").pattern == "^up$"
    for bad, check in ((0, validators.validate_port_number), ("", validators.validate_host),
                       ("ftp://x", validators.validate_http_url),
                       (99, validators.validate_http_status), ("(", validators.validate_pattern)):
        with pytest.raises(SessionConfigError):
            check(bad)


#: Modules that once checked arguments on their own (a copy of ``validate_lines``,
#: the config type, the working directory, the socket path, ``literal``, a stop timeout).
KNOWN_COPIES = ("ops/tmux/logs.py", "ops/tmux/runner.py", "ops/container/runner.py")


@pytest.mark.parametrize("module", KNOWN_COPIES)
def test_the_runners_check_no_argument_themselves(module: str) -> None:
    """Their checks are calls into validators: no ``SessionConfigError`` is built there."""
    source = (Path(kstlib.__file__).parent / module).read_text()
    built = [ast.unparse(n) for n in ast.walk(ast.parse(source))
             if isinstance(n, ast.Name) and n.id == "SessionConfigError"]
    assert built == [], module
    assert "isinstance(config, SessionConfig)" not in source


def test_the_runner_argument_checks_have_one_home(tmp_path: Path) -> None:
    from kstlib.ops.container import ContainerRunner
    from kstlib.ops.tmux.runner import TmuxRunner

    with pytest.raises(SessionConfigError) as info:
        TmuxRunner(socket_name="kstlib-rule").start("bot")  # type: ignore[arg-type]
    assert (info.value.field, info.value.problem) == ("config", "expected a SessionConfig, got str")
    with pytest.raises(SessionConfigError) as info:
        ContainerRunner(runtime="docker").start({"name": "bot"})  # type: ignore[arg-type]
    assert info.value.field == "config"
    with pytest.raises(SessionConfigError, match="finite, non-negative") as info:
        ContainerRunner(runtime="docker").stop("bot", timeout=math.nan)
    assert info.value.field == "timeout"
    file = tmp_path / "not-a-socket"
    file.write_text("keep me")
    with pytest.raises(SessionConfigError) as info:
        TmuxRunner(socket_path=str(file)).start(SessionConfig(name="bot", command=["true"]))
    assert info.value.field == "socket_path" and file.read_text() == "keep me"
    with pytest.raises(SessionConfigError) as info:
        validators.validate_working_dir(str(tmp_path / "gone"))
    assert info.value.field == "working_dir"
    assert validators.validate_optional_flag("literal", False) is False
    with pytest.raises(SessionConfigError) as info:
        TmuxRunner(socket_name="kstlib-rule").send_keys("bot", "x", literal="yes")  # type: ignore[arg-type]
    assert info.value.field == "literal"
    with pytest.raises(SessionConfigError) as info:
        validators.validate_same_runtime("podman", "docker")
    assert info.value.field == "runtime"


def test_the_swarm_runner_and_tmux_client_use_the_same_rules() -> None:
    """The copies they had: the config type, stop()'s timeout, ``control=``."""
    for module in ("ops/swarm/runner.py", "ops/tmux/client.py"):
        source = (Path(kstlib.__file__).parent / module).read_text()
        assert "isinstance(config, SessionConfig)" not in source
        assert "must not be negative" not in source
        assert "isinstance(control, bool)" not in source


