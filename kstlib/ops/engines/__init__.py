"""Container engine adapters: one thin module per SDK, behind one protocol.

Internal package: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

* :mod:`kstlib.ops.engines.adapter`: the :class:`~kstlib.ops.engines.adapter.EngineAdapter`
  protocol and the data adapters take and return.
* :mod:`kstlib.ops.engines.streams`: timestamps, payloads, log entries and log streams.
* :mod:`kstlib.ops.engines.errors`: the engine errors and the handler rows the SDK tables share
  (the toolkit itself is :mod:`kstlib.ops.translate`).
* :mod:`kstlib.ops.engines.endpoints`: endpoints and the client cache (:func:`connect`); the
  only module that imports the SDK adapters.
* :mod:`kstlib.ops.engines.docker`: the ``docker`` SDK and its error table.
* :mod:`kstlib.ops.engines.podman`: podman-py and its error table.
* :mod:`kstlib.ops.engines.pull`: reading a pull stream and translating its errors.

The SDK modules import their SDK; nothing here does until an engine is used.

Example:
    >>> from kstlib.ops.engines import MANAGED_LABEL
    >>> MANAGED_LABEL
    'io.kstlib.managed'
"""

from kstlib.ops.engines.adapter import (
    DEFAULT_TIMEOUT,
    MANAGED_LABEL,
    ContainerInfo,
    ContainerSpec,
    EngineAdapter,
)
from kstlib.ops.engines.endpoints import connect, default_endpoints

__all__ = [
    "DEFAULT_TIMEOUT",
    "MANAGED_LABEL",
    "ContainerInfo",
    "ContainerSpec",
    "EngineAdapter",
    "connect",
    "default_endpoints",
]
