"""Helpers for the tests of a node that hangs (`esnode.LocalNode.freeze`): a bounded
wait, and a call run in a thread so a test can wait for it without hanging itself.

A bounded wait is a bound on a hang, never a timed assertion: the bound is chosen
far above what the awaited thing needs, so only a real stall (a call that never
returns, a budget spent many times over) reaches it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def wait_until(pred: Callable[[], T], timeout: float, what: str = "the condition",
               interval: float = 0.1) -> T:  # fmt: skip
    """Poll `pred` until it returns something truthy, and return that; raise
    AssertionError naming `what` once `timeout` seconds passed without it."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class InThread(Generic[T]):
    """`fn()` running in a daemon thread: `done` tells whether it returned (or raised),
    `result()` gives its value (re-raising its exception). A test waits for it with
    `wait_until(call.done, bound)`; a call that never returns fails the test instead
    of hanging the session (the thread is a daemon one)."""

    def __init__(self, fn: Callable[[], T], name: str = "call") -> None:
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the test by result()
            self._error = exc
        finally:
            self._finished.set()

    def done(self) -> bool:
        return self._finished.is_set()

    def result(self) -> T:
        assert self._finished.is_set(), "the call has not returned"
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
