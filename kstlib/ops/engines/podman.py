"""The Podman adapter: podman-py's ``PodmanClient`` (libpod API) and its error table.

What it smooths over (podman-py 5.8 against a Podman 4.3 service):

* Logs are read with the raw ``GET /containers/{name}/logs``: podman-py's
  ``logs()`` rounds ``since`` down to whole seconds. Podman 4.3's ``tail``
  garbles partial lines (it glues them, reversed, to the line before): an
  answer that shows it is read again without ``tail``. Its ``follow`` may
  end before the last lines of a container that has exited. Podman frames its log
  stream even for a container with a terminal, and its timestamps have
  whole seconds only (Docker: nanoseconds). A followed log sends its
  headers with the first entry, so opening one waits for output.
* A container whose restart policy will run it again reports ``stopped``
  until Podman's cleanup restarts it (then ``running``); a final exit ends
  as ``exited``. Its ``wait`` may or may not return at such an exit.
* ``stop()`` on a stopped container answers HTTP 304 with an empty body,
  which podman-py reads as JSON unless told ``ignore=True``: stopped is fine.
* An inspect that races the exit of the container's PID 1 may answer HTTP
  500 "read /proc/N/cgroup: no such process" (Podman 4.3 reads the cgroup of
  the PID it has just checked; the file opened, the process was reaped before
  the read): the inspect is asked again.
* A taken name is HTTP 500 "already in use" (Docker: 409); a missing image
  on create is HTTP 500 "image not known" (or 404): the table reads the words.
* Every transport error (refused, timed out, no socket) reaches us as an
  ``APIError`` whose ``status_code`` is ``None``, the ``requests`` error as
  its cause: the table looks at that cause.
* podman-py cannot attach (``attach_socket`` raises ``NotImplementedError``):
  :meth:`PodmanEngine.attach_socket` uses the Docker-compatible endpoint of
  the same service through the docker SDK.
* A forced remove stops with the stop timeout first (libpod's default 10 s):
  :meth:`PodmanEngine.kill` is SIGKILL as an int (podman wants numbers).

Example:
    >>> import podman.errors, requests
    >>> try:
    ...     raise requests.ConnectionError("refused")
    ... except requests.ConnectionError as cause:
    ...     err = podman.errors.APIError("http://x/_ping", explanation="GET operation failed")
    ...     err.__cause__ = cause
    >>> with translate(Op.READ, "bot", "unix:///run/podman/podman.sock", 5):
    ...     raise err
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No podman engine API answered (tried: unix:///run/podman/podman.sock). ...
"""

from __future__ import annotations

import math
import re
import signal
import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from kstlib.ops.engines import http, podman_ssh, ssh
from kstlib.ops.engines.adapter import ContainerInfo, ContainerSpec, PullOptions, missing_network
from kstlib.ops.engines.deadline import bounded
from kstlib.ops.engines.errors import (
    on_api_error,
    on_not_found,
    on_other,
    on_unreachable,
    unreachable,
)
from kstlib.ops.engines.libpod import (
    garbled_tail,
    info_from_inspect,
    info_from_list,
    last_lines,
)
from kstlib.ops.engines.payload import obj, seq
from kstlib.ops.engines.streams import (
    LogQuery,
    demux_streams,
)
from kstlib.ops.exceptions import OpsError, SessionAttachError, SessionConfigError
from kstlib.ops.translate import CallContext, Op, Table, explanation, translate_with, translating
from kstlib.ops.validators import NETWORK_MODES

if TYPE_CHECKING:
    from kstlib.ops.engines.pull import PullTracker

# A name with one of these characters cannot be (a prefix of) a container id.
_NOT_HEX = re.compile(r"[^0-9a-f]")

__all__ = ["COMPAT_API_VERSION", "RUNTIME", "PodmanEngine", "table", "translate"]

RUNTIME = "podman"
#: Docker API version spoken to Podman's compatible endpoint (for attach).
COMPAT_API_VERSION = "1.40"
_CPU_PERIOD = 100_000
#: The network Podman attaches a container to in bridge mode unless told otherwise.
_DEFAULT_NETWORK = "podman"
_NO_SUCH_CONTAINER = "no such container"
#: Podman 4.3's inspect racing the exit of the container's PID 1 (see PodmanEngine.inspect).
_CGROUP_GONE = re.compile(r"read /proc/\d+/cgroup: no such process")
_CGROUP_RACE_TRIES = 3


def _on_api_error(err: Exception, ctx: CallContext) -> OpsError:
    if getattr(err, "status_code", None) is None:
        # podman-py wraps every transport error (an OSError) in an APIError
        # without a response; what happened is in the cause.
        cause = err.__cause__ or err.__context__
        if isinstance(cause, Exception) and not isinstance(cause, type(err)):
            translated = translate_with(table(), cause, ctx)
            if translated is not None:
                return translated
        return on_unreachable(err, ctx)
    if getattr(err, "status_code", None) == 500 and _NO_SUCH_CONTAINER in explanation(err).lower():
        # A container removed while the call ran (a concurrent start replacing
        # an exited one): Podman says 500 "does not exist in database: no such
        # container" where Docker says 404.
        return on_not_found(err, ctx)
    return on_api_error(err, ctx)


@lru_cache(maxsize=1)
def table() -> Table:
    """The Podman translation table: SDK exception types -> handler, first match wins.

    The rows every docker-py-shaped SDK shares (:func:`http.sdk_rows
    <kstlib.ops.engines.http.sdk_rows>`), with Podman's reading of an ``APIError``:

    ==========================================================  =====================================
    ``podman.errors.APIError``                                  raised by kstlib
    ==========================================================  =====================================
    without a status (a transport error): by its cause          unreachable / "timed out"
    500 "no such container" (removed meanwhile)                 ``SessionNotFoundError``
    500 "already in use", 409                                   ``SessionExistsError``
    500 "image not known"                                       op error naming the image
    other                                                       op error with the engine's words
    ==========================================================  =====================================

    Then ``PodmanError``, ``RequestException``, ``OSError`` and ``ValueError``
    (e.g. a JSON decode error) are the op error. Built on first use, so
    importing this module does not import the SDK.

    Example:
        >>> [h.__name__ for _, h in table()][2]
        '_on_api_error'
    """
    import podman.errors
    import requests.exceptions

    return (
        *http.sdk_rows(podman.errors, _on_api_error),
        (
            (
                podman.errors.DockerException,
                requests.exceptions.RequestException,
                OSError,
                ValueError,
            ),
            on_other,
        ),
    )


#: ``translate(op, name, endpoint, timeout, *, image=None, connecting=False)``: every
#: podman-py / HTTP / OS error raised inside becomes an OpsError (see :func:`table`).
translate = http.Translator(RUNTIME, table)


class PodmanEngine(http.HttpEngine):
    """One Podman service endpoint, driven through ``podman.PodmanClient``.

    Create it with :meth:`open` (or :func:`kstlib.ops.engines.endpoints.connect`,
    which caches it).

    Example:
        >>> engine = PodmanEngine.open("unix:///run/podman/podman.sock", 10)  # doctest: +SKIP
        >>> engine.inspect("bot").pid  # doctest: +SKIP
        4242
    """

    runtime = RUNTIME
    translate = translate
    #: Podman 4.3 may skip lines of a followed log once the container has stopped.
    follow_needs_check = True
    whole_second_stamps = True  # its APIs' log times (see kstlib.ops.container.follow)

    def __init__(self, client: Any, endpoint: str, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self.client = client
        self._compat: Any = None
        self._compat_lock = threading.Lock()
        self._pullers: dict[float, Any] = {}
        self._ping_headers: dict[str, str] = {}

    @classmethod
    def open(cls, endpoint: str, timeout: float) -> PodmanEngine:
        """Connect to the libpod API at ``endpoint`` and ping it.

        A Docker daemon (no libpod API) counts as no Podman there.

        Example:
            >>> PodmanEngine.open("unix:///nonexistent.sock", 1)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No podman engine API answered (tried: unix:///nonexistent.sock). ...
        """
        import podman

        if ssh.is_ssh(endpoint):
            # Every request is a channel of kstlib's checked ssh login (podman_ssh).
            client, headers = podman_ssh.open_client(endpoint, timeout, translate)
            opened = cls(client, endpoint, timeout)
            opened._ping_headers = headers
            return opened
        with translate(Op.READ, None, endpoint, timeout, connecting=True, call="connect"):
            client = podman.PodmanClient(base_url=endpoint, timeout=timeout)
            if not http.uses_proxy(endpoint):
                client.api.trust_env = False
            with bounded(client.api, timeout):
                response = client.api.get("/_ping")
            status = int(response.status_code)
        if status != 200:
            raise unreachable(
                endpoint, f"no Podman API there (libpod ping: HTTP {status})", RUNTIME
            )
        engine = cls(client, endpoint, timeout)
        engine._ping_headers = dict(response.headers)
        return engine

    def version(self) -> str:
        """The engine and API version, from the headers of the ping that opened it.

        ``/_ping`` answers in milliseconds; ``/version`` can take half a second.

        Example:
            >>> engine.version()  # doctest: +SKIP
            'Podman 4.3.1 (API 1.41)'
        """
        headers = self._ping_headers
        version = headers.get("Libpod-Api-Version") or headers.get("Server") or "?"
        return f"Podman {version} (API {headers.get('Api-Version', '?')})"

    def _container(self, ref: str) -> Any:
        # A model over the name or id alone: its methods then cost one request
        # each (containers.get() would add an inspect).
        return self.client.containers.prepare_model({"Id": ref, "Name": ref})

    def create(self, spec: ContainerSpec) -> str:
        """Create the container described by ``spec`` (podman-py ``containers.create``); its id.

        Example:
            >>> engine.create(spec)  # doctest: +SKIP
            '3f2a...'
        """
        mounts: list[dict[str, Any]] = []
        volumes: dict[str, dict[str, Any]] = {}
        for bind in spec.binds:
            if bind.is_named_volume:
                if bind.source in volumes:
                    raise SessionConfigError(
                        f"volumes: podman cannot mount volume {bind.source!r} twice", "volumes"
                    )
                options = [o for o in bind.options if o != "rw"]
                volumes[bind.source] = {"bind": bind.target, "extended_mode": options}
                continue
            mount: dict[str, Any] = {"type": "bind", "source": bind.source, "target": bind.target}
            if bind.read_only:
                mount["read_only"] = True
            relabel = [o for o in bind.options if o in ("z", "Z")]
            if relabel:
                mount["relabel"] = relabel[-1]
            mounts.append(mount)
        ports: dict[str, list[Any]] = {}
        for port in spec.ports:
            target: Any = port.host_port
            if port.host_ip and port.host_port is None:
                target = {"ip": port.host_ip}  # podman-py's spelling of "ip, any port"
            elif port.host_ip:
                target = (port.host_ip, port.host_port)
            ports.setdefault(port.key, []).append(target)
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "environment": dict(spec.env),
            "labels": dict(spec.labels),
            "tty": spec.tty,
            "stdin_open": spec.stdin_open,
            "init": spec.init,
        }
        if spec.working_dir is not None:
            kwargs["working_dir"] = spec.working_dir
        if mounts:
            kwargs["mounts"] = mounts
        if volumes:
            kwargs["volumes"] = volumes
        if ports:
            kwargs["ports"] = ports
        if spec.restart is not None:
            kwargs["restart_policy"] = {
                "Name": spec.restart[0],
                "MaximumRetryCount": spec.restart[1],
            }
        if spec.memory is not None:
            kwargs["mem_limit"] = spec.memory
        if spec.network in NETWORK_MODES or spec.network == "bridge":
            kwargs["network_mode"] = spec.network
        elif spec.network is not None:
            # A named network needs bridge mode (podman's own default may be "none").
            kwargs["network_mode"] = "bridge"
            kwargs["networks"] = {spec.network: {}}
        missing = missing_network(self, spec)
        if missing is not None:
            raise missing
        if spec.cpus is not None:
            # podman-py drops nano_cpus; a CFS quota is the same limit.
            kwargs["cpu_period"] = _CPU_PERIOD
            kwargs["cpu_quota"] = round(spec.cpus * _CPU_PERIOD)
        with self._translate(Op.START, spec.name, image=spec.image):
            container = self.client.containers.create(spec.image, spec.command, **kwargs)
            return str(container.id)

    def has_network(self, network: str) -> bool:
        """Whether a network of that name exists (``networks.exists``).

        ``bridge`` is Podman's default network (named ``podman``), as in
        Docker's API.

        Example:
            >>> engine.has_network("podman")  # doctest: +SKIP
            True
        """
        with self._translate(Op.START, None):
            return bool(
                self.client.networks.exists(_DEFAULT_NETWORK if network == "bridge" else network)
            )

    def start(self, ref: str, name: str) -> None:
        """Start a created container (``Container.start``, no inspect first).

        Example:
            >>> engine.start("3f2a...", "bot")  # doctest: +SKIP
        """
        from podman import errors

        with self._translate(Op.START, name):
            try:
                self._container(ref).start()
            except errors.APIError as err:
                # Podman 4.3 reads the new process's cgroup after starting it: a
                # command that ends at once (echo, true) is gone by then, and the
                # start answers 500 "read /proc/N/cgroup: no such process" although
                # the container ran. It did if the engine says it started.
                if "no such process" not in str(err) or not self._ran(ref):
                    raise

    def _ran(self, ref: str) -> bool:
        try:
            info = self.inspect(ref, Op.START)
        except OpsError:
            return False
        return info.state in ("running", "exited", "stopped")

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        """Inspect one container: one libpod ``GET /containers/{name}/json``.

        The request ``containers.get`` makes, without building its model (the
        payload is all this needs): the same answer and errors, less work.
        Asked again (at most twice) when Podman 4.3 answers 500 "read
        /proc/N/cgroup: no such process": it raced the exit of PID 1.

        Example:
            >>> engine.inspect("bot").oom_killed is None  # doctest: +SKIP
            True
        """
        with self._translate(op, name):
            for attempt in range(1, _CGROUP_RACE_TRIES + 1):
                response = self.client.api.get(f"/containers/{quote_plus(name)}/json")
                if attempt == _CGROUP_RACE_TRIES or response.status_code != 500:
                    break
                if not _CGROUP_GONE.search(response.text):
                    break
                # Podman 4.3 read the cgroup of a PID 1 reaped between its open and
                # its read (ESRCH; Podman 4.4 takes that as stopped): the process is
                # gone now, so the next inspect answers.
            response.raise_for_status()
            return info_from_inspect(response.json())

    def exists(self, name: str) -> bool:
        """Whether a container named exactly ``name`` exists.

        A name with a character outside ``0-9a-f`` cannot be an id prefix, so
        libpod's ``GET /containers/{name}/exists`` (204 or 404, no body: the
        call podman-py's ``containers.exists`` makes) answers for that exact
        name; any other name is inspected, and its name compared.

        Example:
            >>> engine.exists("bot")  # doctest: +SKIP
            True
        """
        if not _NOT_HEX.search(name):
            return super().exists(name)
        with self._translate(Op.READ, name):
            response = self.client.api.get(f"/containers/{quote_plus(name)}/exists")
            if response.status_code == 404:
                return False
            response.raise_for_status()
            return True

    def list_containers(self) -> list[ContainerInfo]:
        """Every container, running or not: one sparse ``containers.list`` call (no pods' infra).

        Example:
            >>> [c.name for c in engine.list_containers() if c.managed]  # doctest: +SKIP
            ['bot']
        """
        with self._translate(Op.READ, None):
            # containers.list's own request, without building a model per container.
            response = self.client.api.get("/containers/json", params={"all": True})
            response.raise_for_status()
            found = [obj(c, "a listed container") for c in seq(response.json(), "the list")]
            return [info_from_list(c) for c in found if not c.get("IsInfra")]

    def _read_logs(self, name: str, query: LogQuery, keep: int | None) -> list[bytes]:
        if query.tail is not None and keep is not None:
            # An entry is a whole line here (glued, see below): no need to ask for more.
            query = replace(query, tail=min(query.tail, keep + 4))
        entries = self._log_entries(name, query.params())
        used = entries if keep is None else last_lines(entries, keep)
        whole = query.tail is not None and sum(e.endswith(b"\n") for e in entries) < query.tail
        if query.tail is not None and (whole or garbled_tail(used, query.timestamps)):
            # Podman 4.3 reads a tail backwards: it glues partial lines to the line
            # before, and drops the partial entries the answer's first line began
            # with (lost when the answer is the whole log: it has fewer lines than
            # asked). A read from the start is right (the caller cuts it).
            entries = self._log_entries(name, replace(query, tail=None).params())
        return entries

    def _top(self, ref: str) -> Any:
        response = self.client.api.get(
            f"/containers/{ref}/top", params={"ps_args": "pid,ppid,args"}
        )
        response.raise_for_status()
        return response.json()

    def _logs_request(self, ref: str, params: dict[str, str], **options: Any) -> Any:
        return self.client.api.get(f"/containers/{ref}/logs", params=params, **options)

    def _raise_for_status(self, response: Any) -> None:
        response.raise_for_status()

    def stop(self, ref: str, name: str, timeout: float) -> None:
        """Stop signal, wait up to ``timeout`` s, then SIGKILL; a stopped container is fine.

        Example:
            >>> engine.stop("bot", "bot", 10)  # doctest: +SKIP
        """
        # podman-py waits 1.5 x the stop timeout for the HTTP answer.
        with self._translate(Op.STOP, name, extra=1.5 * timeout):
            # ignore=True: HTTP 304 (already stopped, empty body) is success.
            self._container(ref).stop(timeout=math.ceil(timeout), ignore=True)

    def kill(self, ref: str, name: str) -> None:
        """SIGKILL the container's process at once (podman wants the signal as a number).

        Example:
            >>> engine.kill("bot", "bot")  # doctest: +SKIP
        """
        with self._translate(Op.STOP, name):
            self._container(ref).kill(signal=int(signal.SIGKILL))

    def _wait(self, name: str, timeout: float) -> object:
        # Podman's wait may or may not return at an exit its restart policy
        # answers: callers re-inspect (ContainerRunner.wait does). podman-py
        # returns the exit code itself (docker-py: a dict).
        return self._container(name).wait(condition=["stopped", "exited"], timeout=timeout)

    def remove(self, ref: str, name: str, op: Op = Op.STOP) -> None:
        """Remove the container and its anonymous volumes (forced).

        Example:
            >>> engine.remove("bot", "bot")  # doctest: +SKIP
        """
        with self._translate(op, name, extra=10):
            self.client.containers.remove(ref, force=True, v=True)

    def exec(self, name: str, argv: list[str]) -> tuple[int, bytes, bytes, bytes]:
        """Run ``argv`` in the container (``exec_run``); its code, output, stdout and stderr.

        Example:
            >>> engine.exec("bot", ["sh", "-c", "echo hi >&2"])  # doctest: +SKIP
            (0, b'hi\\n', b'', b'hi\\n')
        """
        with self._translate(Op.READ, name):
            code, output = self._container(name).exec_run(argv, stdout=True, stderr=True, tty=False)
        payload = output if isinstance(output, bytes) else b""
        return (http.exit_code(code), *demux_streams(payload))

    def compat(self) -> Any:
        """A docker SDK ``APIClient`` on this service's Docker-compatible API (for attach).

        Example:
            >>> engine.compat().base_url  # doctest: +SKIP
            'http+docker://localhost'
        """
        with self._compat_lock:
            if self._compat is None:
                import docker

                from kstlib.ops.engines import docker as docker_engine

                ctx = CallContext(Op.ATTACH, None, RUNTIME, self.endpoint, self.timeout)
                with translating(docker_engine.table, ctx):
                    self._compat = docker.APIClient(
                        base_url=self.endpoint,
                        version=COMPAT_API_VERSION,
                        timeout=self.timeout,  # type: ignore[arg-type]  # requests takes floats
                    )
            return self._compat

    def _attach_api(self, name: str, call: str) -> tuple[Any, AbstractContextManager[None]]:
        from kstlib.ops.engines import docker as docker_engine

        if ssh.is_ssh(self.endpoint):  # the compatible API is reached through Docker's ssh way
            raise SessionAttachError(name, RUNTIME, "attach over ssh:// is not supported on Podman")
        api = self.compat()
        ctx = CallContext(Op.ATTACH, name, RUNTIME, self.endpoint, self.timeout)
        return api, translating(docker_engine.table, ctx, call)

    # -- images (see kstlib.ops.images) ------------------------------------------------

    def image_exists(self, image: str) -> bool:
        """Whether the engine has ``image`` (one call).

        Example:
            >>> engine.image_exists("localhost/kstlib-test:latest")  # doctest: +SKIP
            True
        """
        with self._translate(Op.READ, None, image=image):
            return bool(self.client.images.exists(image))

    def _puller(self, timeout: float) -> Any:
        # podman-py's images.pull() takes the client's timeout: a pull may stay
        # silent longer than an ordinary call (Podman 4 says nothing while a
        # layer downloads), so it gets a client of its own.
        import podman

        with self._compat_lock:
            client = self._pullers.get(timeout)
            if client is None and ssh.is_ssh(self.endpoint):  # a checked login of its own
                client = podman_ssh.open_client(self.endpoint, timeout, translate)[0]
            if client is None:
                client = podman.PodmanClient(base_url=self.endpoint, timeout=timeout)
                if not http.uses_proxy(self.endpoint):
                    client.api.trust_env = False
            self._pullers[timeout] = client
            return client

    def pull(self, image: str, tracker: PullTracker, options: PullOptions) -> str | None:
        """Pull ``image`` with podman-py's ``images.pull(stream=True)``; its id.

        ``insecure`` is ``tls_verify=False`` (plain HTTP, or a certificate not
        checked). Podman 4.3 answers with libpod's stream (``Copying blob
        ...`` lines, no byte counts; the ``compatMode`` that podman-py asks
        for came with Podman 5) and reports a failed pull as an ``error`` item
        in an HTTP 200 answer: both are handled.

        Example:
            >>> options = PullOptions(None, "none", insecure=True, timeout=60)
            >>> engine.pull("127.0.0.1:5000/kstlib/pulltest:1", tracker, options)  # doctest: +SKIP
            'eb09f023043c...'
        """
        import podman.errors

        asked: dict[str, Any] = {"stream": True, "decode": True, "tls_verify": not options.insecure}
        if options.auth_config:
            asked["auth_config"] = dict(options.auth_config)

        def items() -> AbstractContextManager[Iterable[Any]]:
            # The whole reference as repository (podman-py splits off the tag;
            # given apart, it would glue a digest on with ':').
            return nullcontext(self._puller(options.timeout).images.pull(image, **asked))

        self._pull_items(image, tracker, options, items, podman.errors.APIError)
        tracker.finish()
        return tracker.image_id
