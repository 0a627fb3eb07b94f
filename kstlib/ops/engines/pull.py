"""Reading an engine's pull stream: events in order, errors by cause (the adapters' side of a pull).

:class:`PullTracker` turns Docker's and Podman's streamed pull answers into
:class:`~kstlib.ops.images.PullProgress` events; :func:`translate_pull_error`
turns an SDK exception raised during a pull into the kstlib error to raise.
:mod:`kstlib.ops.engines.docker` and :mod:`kstlib.ops.engines.podman` use
both; what a pull means for a user (policy, credentials, messages) is in
:mod:`kstlib.ops.images`.

Example:
    >>> seen = []
    >>> tracker = PullTracker("app:1", "podman", seen.append)
    >>> tracker.feed({"stream": "Copying blob sha256:" + "ab" * 32 + "\\n"})
    >>> tracker.finish()
    >>> [e.status for e in seen]
    ['pulling', 'downloading', 'done', 'complete']
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from kstlib.ops.images._types import ProgressCallback, PullProgress, pull_failure

__all__ = ["PullTracker", "engine_words", "translate_pull_error"]

logger = logging.getLogger(__name__)

_DOCKER_STATUS = {
    "pulling fs layer": "waiting",
    "waiting": "waiting",
    "downloading": "downloading",
    "verifying checksum": "verifying",
    "download complete": "downloaded",
    "extracting": "extracting",
    "already exists": "exists",
    "pull complete": "done",
}
_BLOB_RE = re.compile(r"Copying blob (?:sha256:)?([0-9a-f]{12})[0-9a-f]*(.*)")
#: Characters of an engine's or registry's words kept in an error or a progress line.
WORDS_LIMIT = 500


def engine_words(value: object, limit: int = WORDS_LIMIT) -> str:
    r"""Words an engine or registry sent, safe to show: one line, bounded, no control character.

    A registry chooses its error text: an escape sequence in it must not
    reach a terminal (it could set the title, write the clipboard, move the
    cursor), nor 20 KB of it a message. Control characters are written out
    (``\x1b``); past ``limit`` characters the rest is counted, not shown.

    Example:
        >>> engine_words("denied\x1b]52;c;aGk=\x07 now")
        'denied\\x1b]52;c;aGk=\\x07 now'
        >>> engine_words("x" * 600, limit=10)
        'xxxxxxxxxx... (590 more characters)'
    """
    text = str(value)
    cut = text[:limit]
    shown = "".join(
        ch if ch.isprintable() else (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        for ch in cut
    )
    if len(text) > limit:
        shown += f"... ({len(text) - limit} more characters)"
    return shown


def _short(layer: object) -> str | None:
    text = str(layer) if layer else ""
    text = text.removeprefix("sha256:")
    return text[:12] if re.fullmatch(r"[0-9a-f]{12,}", text) else None


class PullTracker:
    """Turns an engine's pull stream into ordered :class:`PullProgress` events.

    It accepts Docker's items (``{"status", "id", "progressDetail"}``) and
    Podman's libpod items (``{"stream": "Copying blob sha256:..."}``,
    ``{"id": ...}``). It emits a ``pulling`` event first and, on
    :meth:`finish`, one ``complete`` event; it logs one line per layer on the
    ``kstlib.ops.engines.pull`` logger (INFO) and each step at DEBUG.

    Example:
        >>> seen = []
        >>> t = PullTracker("app:1", "docker", seen.append)
        >>> t.feed({"status": "Pulling fs layer", "id": "ff67cf588786"})
        >>> t.feed({"status": "Downloading", "id": "ff67cf588786",
        ...         "progressDetail": {"current": 10, "total": 20}})
        >>> t.feed({"status": "Pull complete", "id": "ff67cf588786"})
        >>> t.finish()
        >>> [(e.status, e.current) for e in seen]
        [('pulling', None), ('waiting', None), ('downloading', 10), ('done', None), ('complete', 20)]
    """

    def __init__(self, image: str, runtime: str, callback: ProgressCallback | None) -> None:
        self.image = image
        self.runtime = runtime
        self.callback = callback
        self.error: str | None = None
        #: An exception the callback raised (passed through, never translated).
        self.callback_error: Exception | None = None
        self.image_id: str | None = None
        self._sizes: dict[str, int] = {}
        self._finished_layers: set[str] = set()
        self._copying: list[str] = []  # Podman: blobs being copied, done at the end
        self._started = time.monotonic()
        self._emit(PullProgress(image, None, "pulling", detail=f"on {runtime}"))

    def _emit(self, event: PullProgress) -> None:
        if event.layer is not None and event.status in ("done", "exists"):
            if event.layer in self._finished_layers:
                return
            self._finished_layers.add(event.layer)
            size = self._sizes.get(event.layer)
            logger.info(
                "pull %s: layer %s %s%s",
                self.image,
                event.layer,
                "already present" if event.status == "exists" else "pulled",
                f" ({size} bytes)" if size else "",
            )
        else:
            logger.debug(
                "pull %s: %s %s %s",
                self.image,
                event.layer or "-",
                event.status,
                event.detail or (f"{event.current}/{event.total}" if event.total else ""),
            )
        self._call(event)

    def _call(self, event: PullProgress) -> None:
        if self.callback is None:
            return
        try:
            self.callback(event)
        except Exception as err:
            # The caller's own error: it must reach the caller as it is.
            self.callback_error = err
            raise

    def feed(self, item: object) -> None:
        """Read one decoded item of the engine's stream (errors are kept in :attr:`error`).

        Example:
            >>> t = PullTracker("app:1", "podman", None)
            >>> t.feed({"error": "manifest unknown"}); t.error
            'manifest unknown'
        """
        if not isinstance(item, Mapping):
            return
        detail = item.get("errorDetail")
        error = item.get("error") or (
            detail.get("message") if isinstance(detail, Mapping) else None
        )
        if error:
            self.error = engine_words(error)
            return
        if "stream" in item:
            self._feed_stream(engine_words(str(item["stream"]).strip()))
            return
        if "status" not in item and item.get("id"):
            self.image_id = engine_words(item["id"], 200)  # Podman's last item: the image id
            return
        status = engine_words(str(item.get("status") or "").strip())
        word = _DOCKER_STATUS.get(status.lower())
        layer = _short(item.get("id"))
        if word is None or layer is None:
            if status:
                self._emit(PullProgress(self.image, None, "info", detail=status))
            return
        progress = item.get("progressDetail")
        progress = progress if isinstance(progress, Mapping) else {}
        current, total = progress.get("current"), progress.get("total")
        if isinstance(total, int) and total > 0:
            self._sizes[layer] = total
        self._emit(
            PullProgress(
                self.image,
                layer,
                word,
                current if isinstance(current, int) else None,
                total if isinstance(total, int) and total > 0 else None,
            )
        )

    def _feed_stream(self, line: str) -> None:
        if not line:
            return
        blob = _BLOB_RE.match(line)
        if blob is None:
            # Podman copies the blobs, then the config: the blobs are in place.
            self._close_copying()
            self._emit(PullProgress(self.image, None, "info", detail=line))
            return
        layer, rest = blob.group(1), blob.group(2)
        if "already exists" in rest:
            self._emit(PullProgress(self.image, layer, "exists"))
        else:
            # Podman 4.x names each blob once, when it starts copying it.
            self._emit(PullProgress(self.image, layer, "downloading"))
            self._copying.append(layer)

    def _close_copying(self) -> None:
        for layer in self._copying:
            self._emit(PullProgress(self.image, layer, "done"))
        self._copying.clear()

    def finish(self) -> None:
        """Close the pull: layers still open are done, then the final ``complete`` event.

        Example:
            >>> seen = []
            >>> t = PullTracker("app:1", "podman", seen.append)
            >>> t.feed({"stream": "Copying blob sha256:" + "ab" * 32 + "\\n"})
            >>> t.finish()
            >>> [(e.layer, e.status) for e in seen]
            [(None, 'pulling'), ('abababababab', 'downloading'), ('abababababab', 'done'), (None, 'complete')]
        """
        self._close_copying()
        total = sum(self._sizes.values()) or None
        seconds = time.monotonic() - self._started
        logger.info("pulled %s on %s in %.1f s", self.image, self.runtime, seconds)
        self._call(PullProgress(self.image, None, "complete", total, total))


def translate_pull_error(
    err: Exception,
    table: Any,
    ctx: Any,
    *,
    credentials: str,
    session: str | None,
) -> Exception:
    """An SDK error raised during a pull, as the kstlib error to raise (the adapters' boundary).

    A read that timed out is a ``timeout``; an error answer of the engine is
    read by its words (:func:`classify`); an engine that does not answer is
    :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError`.

    Example:
        >>> from kstlib.ops.translate import CallContext, Op
        >>> ctx = CallContext(Op.START, None, "docker", "unix:///x.sock", 5, image="a:1")
        >>> translate_pull_error(TimeoutError("read"), (), ctx, credentials="none", session=None).kind
        'timeout'
    """
    import requests.exceptions
    import urllib3.exceptions

    from kstlib.ops.exceptions import ContainerRuntimeNotFoundError, OpsError
    from kstlib.ops.translate import cause_chain, explanation, translate_with

    if isinstance(err, OpsError):
        return err
    image = str(ctx.image)
    timeouts = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
    connect_timeouts = (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)
    for link in cause_chain(err):
        if isinstance(link, connect_timeouts):
            break  # the engine itself did not answer: the table says so
        if isinstance(link, timeouts) or any(
            isinstance(a, urllib3.exceptions.ReadTimeoutError) for a in link.args
        ):
            return pull_failure(
                image,
                ctx.runtime,
                "",  # nothing to quote: the engine said nothing
                kind="timeout",
                session=session,
                credentials=credentials,
                timeout=ctx.timeout,
            )
    if getattr(err, "status_code", None) is not None:
        return pull_failure(
            image,
            ctx.runtime,
            engine_words(explanation(err)),
            session=session,
            credentials=credentials,
            timeout=ctx.timeout,
        )
    translated = translate_with(table, err, ctx)
    if isinstance(translated, ContainerRuntimeNotFoundError):
        return translated
    return pull_failure(
        image,
        ctx.runtime,
        engine_words(explanation(err)),
        kind="other",
        session=session,
        credentials=credentials,
    )
