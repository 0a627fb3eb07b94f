"""Engine URLs carry no password: one rule, wherever a URL comes from.

A password in a URL's userinfo (``tcp://ops:s3cret@host``) would show wherever
the engine is named: error lines, labels, ``-v`` records, ``doctor``. kstlib
refuses it before anything is contacted; an ssh engine logs in with a key
(``identity:``), a ``tcp://`` one is secured with TLS. The refusal shows the URL
with its password masked (:func:`masked_url`).

Example:
    >>> masked_url("tcp://ops:s3cret@10.0.0.5:2375")
    'tcp://ops:***@10.0.0.5:2375'
    >>> refuse_password("ssh://ops@edge")
    'ssh://ops@edge'
"""

from __future__ import annotations

from kstlib.ops.validators._common import config_error, shown

__all__ = ["masked_url", "refuse_password"]


def _split(url: str) -> tuple[str, str, str]:
    """``(scheme://, userinfo, the rest from the host on)``; userinfo is ``""`` without one."""
    scheme, sep, tail = url.partition("://")
    if not sep:
        return "", "", url
    end = min((i for i in (tail.find(c) for c in "/?#") if i >= 0), default=len(tail))
    userinfo, at, host = tail[:end].rpartition("@")
    if not at:
        return f"{scheme}://", "", tail
    return f"{scheme}://", userinfo, host + tail[end:]


def masked_url(url: str) -> str:
    """``url`` with the password of its userinfo (if any) replaced by ``***``.

    Example:
        >>> masked_url("ssh://root:p@ss@h:22/run/x.sock"), masked_url("unix:///run/x.sock")
        ('ssh://root:***@h:22/run/x.sock', 'unix:///run/x.sock')
    """
    head, userinfo, rest = _split(url)
    if ":" not in userinfo:
        return url
    return f"{head}{userinfo.split(':', 1)[0]}:***@{rest}"


def refuse_password(url: str, field: str = "base_url") -> str:
    """``url`` unchanged, or a ``SessionConfigError`` when its userinfo holds a password.

    Example:
        >>> refuse_password("tcp://ops:s3cret@10.0.0.5:2375")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: base_url: 'tcp://ops:***@10.0.0.5:2375' holds a password; kstlib takes none in a URL (it would show wherever the engine is named): an ssh engine logs in with a key (identity:), a tcp:// one is secured with TLS
    """
    if ":" in _split(url)[1]:
        raise config_error(
            field,
            f"{shown(masked_url(url))} holds a password; kstlib takes none in a URL (it would "
            "show wherever the engine is named): an ssh engine logs in with a key (identity:), "
            "a tcp:// one is secured with TLS",
        )
    return url
