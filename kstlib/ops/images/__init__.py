"""Images from registries: pull policy, credentials, progress events and pull errors.

Internal package: its public names are documented as :mod:`kstlib.ops`'s
(``from kstlib.ops import ...``); this path keeps importing them.

A container session whose image the engine lacks is pulled from its registry
(``pull="missing"``, the default), always re-checked against the registry
(``"always"``), or refused with a clear error (``"never"``). The pull goes
through the engine's SDK (docker SDK ``/images/create``, podman-py
``images.pull``) as a stream; each step becomes a :class:`PullProgress` event
for an ``on_progress`` callback, ending in one ``"complete"`` event.

Credentials come from where users keep them, first match wins:

1. an explicit :class:`RegistryAuth` (``registry_auth=``; it may name an
   environment variable that holds the password, ``password_env``);
2. Podman's ``auth.json`` (``$REGISTRY_AUTH_FILE``, then
   ``$XDG_RUNTIME_DIR/containers/auth.json``, then
   ``~/.config/containers/auth.json``) and Docker's ``config.json``
   (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``): Podman
   reads auth.json first, Docker config.json first, as the engines themselves do.

They are read by the docker SDK's ``auth`` module (credential stores and
helpers included) and sent in the request header, never on a command line;
no message, log record or ``repr`` shows a password.

Every failure is an :class:`~kstlib.ops.exceptions.ImagePullError` (a
:class:`~kstlib.ops.exceptions.SessionStartError`) whose ``kind`` tells the
cause apart: ``not_found``, ``unauthorized``, ``unreachable``, ``tls``,
``timeout`` or ``other``.

Example:
    >>> registry_of("127.0.0.1:5000/team/app:1"), registry_of("alpine:3.20")
    ('127.0.0.1:5000', 'docker.io')
    >>> is_insecure("127.0.0.1:5000"), is_insecure("registry.example.com")
    (True, False)
    >>> RegistryAuth(username="ci", password="s3cret")
    RegistryAuth(username='ci', password='***', password_env=None, registry=None)
"""

from __future__ import annotations

from kstlib.ops.images._pull import (
    auth_files,
    find_credentials,
    notebook_progress,
    pull_image,
    pull_with,
)
from kstlib.ops.images._types import (
    DEFAULT_PULL_TIMEOUT,
    ProgressCallback,
    PullPolicy,
    PullProgress,
    PullResult,
    RegistryAuth,
    classify,
    is_insecure,
    pull_failure,
    registry_of,
    split_reference,
    validate_registry_auth,
)
from kstlib.ops.validators import PULL_POLICIES, validate_insecure_registries, validate_pull

__all__ = [
    "DEFAULT_PULL_TIMEOUT",
    "PULL_POLICIES",
    "ProgressCallback",
    "PullPolicy",
    "PullProgress",
    "PullResult",
    "RegistryAuth",
    "auth_files",
    "classify",
    "find_credentials",
    "is_insecure",
    "notebook_progress",
    "pull_failure",
    "pull_image",
    "pull_with",
    "registry_of",
    "split_reference",
    "validate_insecure_registries",
    "validate_pull",
    "validate_registry_auth",
]
