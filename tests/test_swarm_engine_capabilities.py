"""The engine protocols are split by capability: the swarm adapter has no container method.

A swarm manager offers services (:class:`~kstlib.ops.engines.services.ServiceEngine`),
not containers (:class:`~kstlib.ops.engines.adapter.EngineAdapter`): its adapter
must not carry a method that can only raise ``NotImplementedError``, and no
``cast`` may hide one adapter behind the other protocol.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import kstlib.ops.engines.endpoints as endpoints
import kstlib.ops.engines.swarm as swarm_module
import kstlib.ops.swarm.lifecycle as lifecycle
import kstlib.ops.swarm.runner as runner
from kstlib.ops.engines import http
from kstlib.ops.engines.adapter import EngineAdapter
from kstlib.ops.engines.services import ServiceEngine
from kstlib.ops.engines.swarm import SwarmEngine


def _raises_not_implemented(function: object) -> bool:
    try:
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return True
    return False


def _protocol_members(protocol: type) -> set[str]:
    return {
        name
        for name in dir(protocol)
        if not name.startswith("_") and name not in dir(object) and name != "runtime"
    } | set(getattr(protocol, "__annotations__", {}))


def test_no_method_of_the_swarm_adapter_raises_not_implemented() -> None:
    methods = {
        name: member
        for name, member in inspect.getmembers(SwarmEngine)
        if inspect.isfunction(member) or inspect.ismethod(member)
    }
    assert {"create", "find", "tasks", "logs", "follow_logs"} <= set(methods)
    # Private hooks included: the ones the base leaves open are all filled in here.
    assert sorted(n for n, m in methods.items() if _raises_not_implemented(m)) == []
    # The check does see such a method (the container base still has its open hooks).
    assert _raises_not_implemented(http.HttpEngine._wait)


def test_the_swarm_adapter_is_no_container_adapter() -> None:
    assert not issubclass(SwarmEngine, http.HttpEngine)
    assert issubclass(SwarmEngine, http.HttpBase)
    container_only = _protocol_members(EngineAdapter) - _protocol_members(ServiceEngine)
    assert {"inspect", "exists", "wait", "attach_socket", "exec", "resize"} <= container_only
    assert [name for name in sorted(container_only) if hasattr(SwarmEngine, name)] == []


def test_the_swarm_adapter_offers_every_member_of_the_services_protocol() -> None:
    engine = SwarmEngine(object(), "unix:///nonexistent.sock", 1.0)  # no call is made
    data = set(ServiceEngine.__annotations__)
    assert {"runtime", "endpoint", "timeout", "node_id"} <= data
    assert [name for name in sorted(data) if not hasattr(engine, name)] == []
    methods = _protocol_members(ServiceEngine) - data
    assert [name for name in sorted(methods) if not callable(getattr(engine, name, None))] == []
    assert engine.runtime == "swarm"


def test_no_cast_hides_an_adapter_behind_the_other_protocol() -> None:
    for module in (endpoints, swarm_module, runner, lifecycle):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        casts = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "cast"
        ]
        assert casts == [], f"{module.__name__} casts at lines {casts}"
