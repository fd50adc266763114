"""Heartbeats for activities blocked in a call to a platform (`workflows.publishing`): a
dead worker's attempt is retried after the heartbeat timeout, not the whole
start-to-close timeout."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity

HEARTBEAT_EVERY = 1.0  # seconds; the workflow's PUBLISH_HEARTBEAT is a few of these


class Heartbeats:
    """One side thread per worker process that heartbeats, every second, each publish
    activity blocked in a call to a platform: when the worker dies, the server retries the
    activity after the heartbeat timeout, not after the whole start-to-close timeout.

    A heartbeat is thread-safe in a threaded activity; it is sent from a copy of the
    activity's context (where temporalio keeps the activity's own). One shared thread,
    started on first use, so that a publish costs no thread of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beating: dict[int, contextvars.Context] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def during(self) -> Iterator[None]:
        if not activity.in_activity():
            yield
            return
        context = contextvars.copy_context()
        with self._lock:
            self._beating[id(context)] = context
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                del self._beating[id(context)]

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_EVERY)
            with self._lock:
                contexts = list(self._beating.values())
            for context in contexts:
                with contextlib.suppress(Exception):  # the activity ended meanwhile
                    context.run(activity.heartbeat)


_ONE = Heartbeats()
during = _ONE.during
