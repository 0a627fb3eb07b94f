"""The whole seed exception tree: classes, bases, constructors, attributes, pickling."""

from __future__ import annotations

import inspect
import pickle
import re
from pathlib import Path

import pytest

import kstlib.ops as ops
from kstlib.exceptions import KstlibError
from kstlib.ops import exceptions as exc

# name -> (bases, constructor parameters, example args)
SEED = {
    "OpsError": ((KstlibError,), None, ()),
    "BackendNotFoundError": ((exc.OpsError, FileNotFoundError), None, ()),
    "TmuxNotFoundError": ((exc.BackendNotFoundError,), None, ()),
    "ContainerRuntimeNotFoundError": ((exc.BackendNotFoundError,), None, ()),
    "SessionError": ((exc.OpsError,), None, ("boom",)),
    "SessionExistsError": ((exc.SessionError,), ["name", "backend"], ("bot", "tmux")),
    "SessionNotFoundError": ((exc.SessionError,), ["name", "backend"], ("bot", "tmux")),
    "SessionStartError": (
        (exc.SessionError,), ["name", "backend", "reason"], ("bot", "tmux", "no tty"),
    ),
    "SessionAttachError": (
        (exc.SessionError,), ["name", "backend", "reason"], ("bot", "tmux", "no tty"),
    ),
    "SessionStopError": (
        (exc.SessionError,), ["name", "backend", "reason"], ("bot", "docker", "refused"),
    ),
    "SessionAmbiguousError": (
        (exc.SessionError,), ["name", "backends"], ("bot", ["tmux", "podman"]),
    ),
}
ADDITIONS = {
    "SessionConfigError": ((exc.OpsError, ValueError), ("name: bad", "name")),
    "SessionTimeoutError": ((exc.SessionError,), ("bot", "tmux", "timed out after 5 s")),
}


@pytest.mark.parametrize("cls_name", sorted(SEED))
def test_seed_class_bases_and_constructor(cls_name: str) -> None:
    bases, params, _ = SEED[cls_name]
    cls = getattr(exc, cls_name)
    for base in bases:
        assert issubclass(cls, base), f"{cls_name} must subclass {base.__name__}"
    assert issubclass(cls, KstlibError)
    # exported from kstlib.ops too
    assert getattr(ops, cls_name) is cls
    if params is not None:
        # keyword-only additions (searched=, missing_image=, ...) come after the seed's
        positional = [name for name, p in inspect.signature(cls).parameters.items()
                      if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        assert positional == params


def test_declared_direct_bases_match_seed() -> None:
    assert exc.BackendNotFoundError.__bases__ == (exc.OpsError, FileNotFoundError)
    assert exc.OpsError.__bases__ == (KstlibError,)
    assert exc.SessionError.__bases__ == (exc.OpsError,)
    assert exc.TmuxNotFoundError.__bases__ == (exc.BackendNotFoundError,)
    assert exc.ContainerRuntimeNotFoundError.__bases__ == (exc.BackendNotFoundError,)


@pytest.mark.parametrize("cls_name", sorted(SEED) + sorted(ADDITIONS))
def test_pickle_round_trip_keeps_type_message_and_attributes(cls_name: str) -> None:
    cls = getattr(exc, cls_name)
    args = SEED[cls_name][2] if cls_name in SEED else ADDITIONS[cls_name][1]
    err = cls(*args)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is cls
    assert str(clone) == str(err)
    assert clone.__dict__ == err.__dict__


@pytest.mark.parametrize(
    ("cls_name", "attrs"),
    [
        ("SessionExistsError", {"name": "bot", "backend": "tmux"}),
        ("SessionNotFoundError", {"name": "bot", "backend": "tmux"}),
        ("SessionStartError", {"name": "bot", "backend": "tmux", "reason": "no tty"}),
        ("SessionAttachError", {"name": "bot", "backend": "tmux", "reason": "no tty"}),
        ("SessionStopError", {"name": "bot", "backend": "docker", "reason": "refused"}),
        ("SessionAmbiguousError", {"name": "bot", "backends": ["tmux", "podman"]}),
    ],
)
def test_constructor_arguments_are_attributes(cls_name: str, attrs: dict[str, object]) -> None:
    err = getattr(exc, cls_name)(*SEED[cls_name][2])
    for key, value in attrs.items():
        assert getattr(err, key) == value
    # one sentence naming the session and what to do / what went wrong
    assert "'bot'" in str(err)


def test_backend_enum_is_stored_as_its_value() -> None:
    err = exc.SessionNotFoundError("bot", ops.BackendType.CONTAINER)
    assert err.backend == "container"
    assert "container backend" in str(err)


def test_messages_give_next_steps() -> None:
    assert "stop it first" in str(exc.SessionExistsError("bot", "tmux"))
    assert "kstlib ops list" in str(exc.SessionNotFoundError("bot", "tmux"))
    ambiguous = str(exc.SessionAmbiguousError("bot", ["tmux", "podman"]))
    assert "tmux, podman" in ambiguous and "--backend" in ambiguous
    tmux_hint = str(exc.TmuxNotFoundError())
    for hint in ("brew install tmux", "apt install tmux", "WSL2"):
        assert hint in tmux_hint
    runtime_hint = str(exc.ContainerRuntimeNotFoundError())
    assert "podman.io" in runtime_hint and "docs.docker.com" in runtime_hint


def test_container_runtime_not_found_names_endpoints_and_how_to_start() -> None:
    err = exc.ContainerRuntimeNotFoundError(
        endpoints=["unix:///run/podman/podman.sock", "unix:///var/run/docker.sock"]
    )
    text = str(err)
    assert "unix:///run/podman/podman.sock" in text and "unix:///var/run/docker.sock" in text
    assert "podman system service" in text and "dockerd" in text
    assert err.endpoints == ("unix:///run/podman/podman.sock", "unix:///var/run/docker.sock")


def test_backend_not_found_is_a_file_not_found_error() -> None:
    with pytest.raises(FileNotFoundError):
        raise exc.TmuxNotFoundError()
    with pytest.raises(ValueError):
        raise exc.SessionConfigError("env: bad", "env")


def test_exceptions_doc_example_runs() -> None:
    """The seed's usage example, as shipped in docs/exceptions.md, is executable."""
    page = Path(__file__).resolve().parent.parent / "docs" / "exceptions.md"
    text = page.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/exceptions.md must hold the seed's usage example"
    example = next(b for b in blocks if "session.start(" in b)

    outputs: list[str] = []

    class FakeSession:
        """Raises each seed error in turn, as a real session would."""

        def __init__(self, error: BaseException) -> None:
            self.error = error

        def start(self, command: str) -> None:
            raise self.error

    errors = [
        exc.TmuxNotFoundError(),
        exc.ContainerRuntimeNotFoundError(),
        exc.SessionExistsError("bot", "tmux"),
        exc.SessionAmbiguousError("bot", ["tmux", "podman"]),
        exc.SessionStopError("bot", "tmux", "refused"),
    ]
    for error in errors:
        namespace = {"session": FakeSession(error), "print": outputs.append}
        exec(compile(example, "docs/exceptions.md", "exec"), namespace)
    assert outputs == [
        "Install tmux: apt install tmux",
        "Install podman or docker",
        "Session already running, stop it first",
        "Found in ['tmux', 'podman'], use --backend to specify",
        f"Ops error: {errors[-1]}",
    ]
