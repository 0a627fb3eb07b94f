"""Container engine adapters: one thin module per SDK, behind one protocol.

* :mod:`kstlib.ops.engines.base`: the :class:`~kstlib.ops.engines.base.EngineAdapter`
  protocol, the data adapters speak, endpoints and the client cache.
* :mod:`kstlib.ops.engines.docker`: the ``docker`` SDK and its error table.
* :mod:`kstlib.ops.engines.podman`: podman-py and its error table.
* :mod:`kstlib.ops.engines.pull`: reading a pull stream and translating its errors.

The SDK modules import their SDK; nothing here does until an engine is used.

Example:
    >>> from kstlib.ops.engines import MANAGED_LABEL
    >>> MANAGED_LABEL
    'io.kstlib.managed'
"""

from kstlib.ops.engines.base import (
    DEFAULT_TIMEOUT,
    MANAGED_LABEL,
    ContainerInfo,
    ContainerSpec,
    EngineAdapter,
    connect,
    default_endpoints,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "MANAGED_LABEL",
    "ContainerInfo",
    "ContainerSpec",
    "EngineAdapter",
    "connect",
    "default_endpoints",
]
