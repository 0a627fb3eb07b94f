"""The errors engine calls raise, and the handler rows shared by the per-SDK tables.

Each SDK module's table (:mod:`kstlib.ops.engines.docker`,
:mod:`kstlib.ops.engines.podman`) starts with its own head rows and ends with
these handlers; :func:`unreachable` builds "no engine answered" for an endpoint.

Example:
    >>> unreachable("unix:///run/podman/podman.sock").endpoints
    ('unix:///run/podman/podman.sock',)
"""

from __future__ import annotations

from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionTimeoutError,
)
from kstlib.ops.translate import CallContext, Op, cause_chain, explanation, op_error


def unreachable(
    endpoint: str,
    detail: str | None = None,
    runtime: str | None = None,
    *,
    hung_after: float | None = None,
) -> ContainerRuntimeNotFoundError:
    """The error for an engine that does not answer at ``endpoint``.

    The message names the engine (``runtime``) when known: the install and
    start hints mention both engines, so only this tells which one failed.
    ``hung_after``: something accepted the connection but sent no answer
    within that many seconds; starting or installing an engine is then the
    wrong advice, so the message says what happened instead.

    Example:
        >>> unreachable("unix:///run/podman/podman.sock").endpoints
        ('unix:///run/podman/podman.sock',)
        >>> str(unreachable("unix:///x.sock", runtime="docker"))[:58]
        'No docker engine API answered (tried: unix:///x.sock). Sta'
        >>> print(unreachable("unix:///x.sock", runtime="docker", hung_after=5))
        The docker engine at unix:///x.sock did not answer within 5 s: it accepts connections but is hung or overloaded. Check the engine (its logs, 'docker info'), or allow it more time (KSTLIB_OPS_ENGINE_TIMEOUT for the CLI, timeout= for ContainerRunner).
    """
    if hung_after is not None:
        engine = runtime or "container"
        check = f"its logs, '{runtime} info'" if runtime else "its logs"
        return ContainerRuntimeNotFoundError(
            f"The {engine} engine at {endpoint} did not answer within {hung_after:g} s: it "
            f"accepts connections but is hung or overloaded. Check the engine ({check}), or "
            "allow it more time (KSTLIB_OPS_ENGINE_TIMEOUT for the CLI, timeout= for "
            "ContainerRunner).",
            [endpoint],
        )
    return no_engine_answered([endpoint], runtime, detail)


def did_not_answer(err: BaseException) -> bool:
    """Whether ``err`` comes from an engine that accepted the connection but never answered.

    Looks for a timeout in the cause chain (the SDK's exception is kept as
    ``__cause__``), so callers can tell a hung engine from an absent one.

    Example:
        >>> did_not_answer(unreachable("unix:///x.sock", "no socket file", "docker"))
        False
        >>> try:
        ...     raise unreachable("unix:///x.sock", runtime="docker") from TimeoutError()
        ... except Exception as err:
        ...     did_not_answer(err)
        True
    """
    import requests.exceptions
    import urllib3.exceptions

    timeouts = (
        TimeoutError,
        requests.exceptions.Timeout,
        urllib3.exceptions.TimeoutError,
    )
    for link in cause_chain(err):
        if isinstance(link, timeouts) or any(isinstance(a, timeouts) for a in link.args):
            return True
    return False


def no_engine_answered(
    endpoints: list[str], runtime: str | None, detail: str | None = None
) -> ContainerRuntimeNotFoundError:
    """The error for ``endpoints`` where no engine answered, naming ``runtime`` when known.

    Example:
        >>> no_engine_answered(["unix:///a", "unix:///b"], "podman").endpoints
        ('unix:///a', 'unix:///b')
    """
    err = ContainerRuntimeNotFoundError(endpoints=endpoints)
    message = err.message
    if runtime is not None:
        message = message.replace("No container engine API", f"No {runtime} engine API", 1)
    if detail:
        message = f"{message} ({detail})"
    return err if message == err.message else ContainerRuntimeNotFoundError(message, endpoints)


def timed_out(
    op: Op, name: str | None, runtime: str, endpoint: str, timeout: float
) -> SessionError:
    """The error for an engine call that did not finish within ``timeout`` seconds.

    Example:
        >>> print(timed_out(Op.STOP, "bot", "docker", "unix:///var/run/docker.sock", 10).reason)
        timed out after 10 s waiting for docker at unix:///var/run/docker.sock
    """
    reason = f"timed out after {timeout:g} s waiting for {runtime} at {endpoint}"
    return op_error(op, name, runtime, endpoint, reason)


def image_missing(
    op: Op, name: str | None, runtime: str, endpoint: str, *, image: str | None, detail: str
) -> SessionError:
    """The error for a container whose image the engine does not have.

    Example:
        >>> err = image_missing(Op.START, "bot", "podman", "unix:///x", image="app:1",
        ...                     detail="image not known")
        >>> err.reason
        "image 'app:1' is not available on podman (image not known); build, load or pull it first"
        >>> err.missing_image
        'app:1'
    """
    what = f"image {image!r}" if image else "the image"
    reason = f"{what} is not available on {runtime} ({detail}); build, load or pull it first"
    if name is not None and op.error_class is SessionStartError:
        # A field, so that a start can tell "pull it" from any other failure.
        return SessionStartError(name, runtime, reason, missing_image=image or "")
    return op_error(op, name, runtime, endpoint, reason)


#: A taken name: a container's (Docker, Podman), a swarm service's (swarmkit).
_NAME_IN_USE = ("already in use", "name conflicts with an existing object")
_IMAGE_MISSING = ("no such image", "image not known")


def on_image_missing(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: the image is not in the engine's store -> the op's error naming the image.

    Example:
        >>> ctx = CallContext(Op.START, "bot", "podman", "unix:///x", 5, image="app:1")
        >>> on_image_missing(ValueError("image not known"), ctx).reason[:13]
        "image 'app:1'"
    """
    return image_missing(
        ctx.op, ctx.name, ctx.runtime, ctx.endpoint, image=ctx.image, detail=explanation(err)
    )


def on_not_found(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: HTTP 404 -> :class:`~kstlib.ops.exceptions.SessionNotFoundError`.

    Example:
        >>> on_not_found(ValueError("404"), CallContext(Op.READ, "bot", "docker", "u", 5)).name
        'bot'
    """
    if ctx.name is None:
        return op_error(ctx.op, None, ctx.runtime, ctx.endpoint, explanation(err))
    return SessionNotFoundError(ctx.name, ctx.runtime)


def on_api_error(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: an HTTP error answer, read by its words and status.

    A taken name (Docker 409, Podman 500 "already in use") ->
    :class:`~kstlib.ops.exceptions.SessionExistsError`; a missing image (Podman
    500 "image not known") -> the image error; a 404 -> not found; anything
    else -> the operation's error with the engine's words.

    Example:
        >>> ctx = CallContext(Op.START, "bot", "podman", "u", 5)
        >>> type(on_api_error(ValueError("name bot is already in use by abc"), ctx)).__name__
        'SessionExistsError'
    """
    text = explanation(err)
    lowered = text.lower()
    status = getattr(err, "status_code", None)
    if ctx.name is not None and (
        any(s in lowered for s in _NAME_IN_USE) or (status == 409 and ctx.op is Op.START)
    ):
        return SessionExistsError(ctx.name, ctx.runtime)
    if any(s in lowered for s in _IMAGE_MISSING):
        return on_image_missing(err, ctx)
    if status == 404:
        return on_not_found(err, ctx)
    prefix = f"HTTP {status}: " if status else ""
    return op_error(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, f"{prefix}{text}")


def on_unreachable(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: nothing answers at the endpoint -> ContainerRuntimeNotFoundError.

    Example:
        >>> on_unreachable(FileNotFoundError(2, "gone"), CallContext(Op.READ, None, "docker", "u", 5)).endpoints
        ('u',)
    """
    return unreachable(ctx.endpoint, f"{type(err).__name__}: {err}", ctx.runtime)


def on_timeout(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: no answer in time -> the op's error "timed out" (unreachable while connecting).

    A wait for the container to stop that runs out of time is a
    :class:`~kstlib.ops.exceptions.SessionTimeoutError`.

    Example:
        >>> on_timeout(TimeoutError(), CallContext(Op.STOP, "bot", "docker", "u", 3)).reason
        'timed out after 3 s waiting for docker at u'
        >>> type(on_timeout(TimeoutError(), CallContext(Op.WAIT, "bot", "docker", "u", 3))).__name__
        'SessionTimeoutError'
    """
    if ctx.connecting:
        return unreachable(ctx.endpoint, runtime=ctx.runtime, hung_after=ctx.timeout)
    if ctx.op is Op.WAIT and ctx.name is not None:
        return SessionTimeoutError(ctx.name, ctx.runtime, f"still running after {ctx.timeout:g} s")
    return timed_out(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, ctx.timeout)


def on_connection_error(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: a broken connection -> ContainerRuntimeNotFoundError, unless a read timed out.

    ``requests`` reports a read timeout in a streamed answer (the engine sent
    its headers, then nothing: a wait, a slow body) as a ``ConnectionError``
    around urllib3's ``ReadTimeoutError``; that is the operation timing out.

    Example:
        >>> type(on_connection_error(ConnectionResetError(104, "reset"),
        ...                          CallContext(Op.READ, "bot", "docker", "u", 5))).__name__
        'ContainerRuntimeNotFoundError'
    """
    import urllib3.exceptions

    for link in cause_chain(err):
        if any(isinstance(e, urllib3.exceptions.ReadTimeoutError) for e in (link, *link.args)):
            return on_timeout(err, ctx)
    return on_unreachable(err, ctx)


def on_permission(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: the socket refuses this user -> ContainerRuntimeNotFoundError saying so.

    Example:
        >>> "permission" in str(on_permission(PermissionError(13, "denied"),
        ...                                    CallContext(Op.READ, None, "docker", "u", 5)))
        True
    """
    return unreachable(ctx.endpoint, f"permission denied: {err}", ctx.runtime)


def on_other(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: any other SDK error -> the operation's error with the original text.

    Example:
        >>> type(on_other(ValueError("x"), CallContext(Op.STOP, "bot", "docker", "u", 5))).__name__
        'SessionStopError'
    """
    return op_error(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, f"{type(err).__name__}: {err}")
