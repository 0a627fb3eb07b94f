"""The checked ssh adapter: a login refused again inside a request reaches the caller as it is.

No sshd is needed: the paramiko client is a stand-in whose login has ended and
cannot be made again, which a real sshd cannot be made to do on cue between
two calls of one request.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from kstlib.ops.engines.ssh_channel import channel_adapter


class Refused(Exception):
    """What the adapter's ``refused`` callback makes of a failed login."""


class RefusedOSError(OSError):
    """A refusal that is also an OSError, as urllib3 and requests wrap one."""


class Transport:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


class Client:
    """A logged-in client whose login ends at the first channel and never comes back."""

    def __init__(self) -> None:
        self.transport = Transport()
        self.logins = 0

    def get_transport(self) -> Transport:
        return self.transport

    def connect(self, **params: Any) -> None:
        self.logins += 1
        raise ConnectionRefusedError(111, "Connection refused")

    def close(self) -> None:
        pass


def _session(client: Client, refused: Any = None) -> requests.Session:
    def opener(transport: Transport, timeout: float) -> Any:
        transport.active = False  # the login ends as the channel is asked for
        raise ConnectionResetError(104, "Connection reset by peer")

    session = requests.Session()
    session.mount("http://", channel_adapter(opener, client, {}, 5, refused=refused))
    return session


@pytest.mark.parametrize("kind", [Refused, RefusedOSError])
def test_a_login_refused_inside_a_request_is_raised_as_the_refusal(kind: type[Exception]) -> None:
    # urllib3 passes a refusal that is no OSError on untouched, and wraps one
    # that is (requests then wraps it again): either way the caller gets it.
    client = Client()
    with pytest.raises(kind) as info:
        _session(client, refused=lambda err: kind(f"refused: {err}")).get(
            "http://kstlib-checked-login/_ping", timeout=5
        )
    assert type(info.value) is kind
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert client.logins == 1  # one login again, refused: no retry behind the caller's back


def test_without_a_refusal_callback_the_transport_error_is_raised() -> None:
    with pytest.raises(requests.ConnectionError) as info:
        _session(Client()).get("http://kstlib-checked-login/_ping", timeout=5)
    assert isinstance(info.value.args[0].args[1], ConnectionRefusedError)
