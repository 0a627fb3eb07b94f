"""The container backend: sessions as Docker or Podman containers, through their SDKs.

Internal package: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

* :mod:`kstlib.ops.container.runner`: :class:`ContainerRunner`, the session
  lifecycle over an engine adapter (which engine holds a container:
  :func:`kstlib.ops.discovery.locate_container`).
* :mod:`kstlib.ops.container.states`: engine states read as session states.
* :mod:`kstlib.ops.container.logs`: log-line assembly (entries, timestamps, resume cursor).
* :mod:`kstlib.ops.container.relay`: the terminal relay of ``attach_terminal``.

Example:
    >>> from kstlib.ops.container import ContainerRunner
    >>> ContainerRunner.__module__
    'kstlib.ops.container.runner'
"""

from kstlib.ops.container.runner import ContainerRunner
from kstlib.ops.container.states import STATE_MAP
from kstlib.ops.engines.adapter import MANAGED_LABEL

__all__ = ["MANAGED_LABEL", "STATE_MAP", "ContainerRunner"]
