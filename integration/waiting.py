"""Waiting in tests: poll a condition until it holds or a bound passes.

One place for the loop every integration file needs, so each test says only
what it waits for and how long it may take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], object], timeout: float = 6.0, interval: float = 0.02) -> bool:
    """Whether ``check()`` became truthy within ``timeout`` seconds (asked at least once)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(
    predicate: Callable[[], T],
    what: str = "condition",
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> T:
    """``predicate()``'s first truthy value; ``AssertionError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
