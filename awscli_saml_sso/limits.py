"""Time limits for calls that can stall: run them in a daemon thread and stop waiting.

A keyring back end waiting for a desktop session, a driver download with no network, a
driver that no longer answers `quit()`: none of them may hang a run. The call goes on in its
daemon thread (Python cannot stop a thread) and dies with the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimeLimitExceeded(Exception):
    """The call did not return within its time limit."""


def call_with_time_limit(action: Callable[[], T], seconds: float, name: str) -> T:
    """`action()`'s result, or its exception re-raised here; TimeLimitExceeded after `seconds`."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeLimitExceeded(f"{name} did not finish within {seconds:g} s")
    if failure:
        raise failure[0]
    return result[0]
