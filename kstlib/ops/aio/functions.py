"""The module-level coroutines of :mod:`kstlib.ops.aio`: listing sessions, pulling images, events.

Internal module: they are public as ``kstlib.ops.aio.list_sessions``, ``pull_image`` and
``events``. Each is made from the synchronous function it runs
(:mod:`kstlib.ops.aio.twins`): the same signature and documentation.

* ``list_sessions`` runs :func:`kstlib.ops.list_sessions` off the loop;
* ``pull_image`` runs :func:`kstlib.ops.pull_image` off the loop, in the pool of
  the engine it pulls into (``on_progress`` is called in the pulling thread);
* ``events`` runs :func:`kstlib.ops.events`' one
  :class:`~kstlib.ops.eventstream.EventStream` in a thread of its own; cancelling the
  task (or closing the iterator) closes it, which closes the engine's ``/events``
  answer.

Example:
    >>> import asyncio
    >>> asyncio.run(list_sessions(socket_name="kstlib-doc", containers=False)).__class__.__name__
    'SessionTable'
"""

from __future__ import annotations

from kstlib.ops.aio.twins import offloaded, streamed_function
from kstlib.ops.discovery import list_sessions as sync_list_sessions
from kstlib.ops.images import pull_image as sync_pull_image
from kstlib.ops.watch import events as sync_events

__all__ = ["events", "list_sessions", "pull_image"]

list_sessions = offloaded(sync_list_sessions, lambda arguments: "search")
pull_image = offloaded(
    sync_pull_image,
    lambda arguments: f"pull:{arguments.get('runtime') or ''}:{arguments.get('base_url') or ''}",
)
events = streamed_function(sync_events, close=True)
