"""One thread per process that strikes the outbound calls whose deadline passed.

A threading.Timer per call started and tore down an OS thread for every request the portal
sent; with many refreshes in flight that was a measurable share of a refresh's CPU. Here each
call's deadline goes into one heap, watched by one daemon thread started on first use (again
in a forked child, which inherits no threads). A call that finished is marked done and
skipped when its deadline comes up; nothing has to be removed from the heap.
"""

import heapq
import itertools
import os
import threading
import time
from typing import Protocol


class Watched(Protocol):
    done: bool

    def strike(self) -> None: ...


class Watchdog:
    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, Watched]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, call: Watched) -> None:
        """call.strike() in `seconds`, unless call.done by then."""
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), call))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="egress-watchdog")
                self._thread.daemon = True
                self._thread.start()
            if self._due[0][2] is call:  # the earliest now: the thread must wake sooner
                self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._due and self._due[0][2].done:
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._due)[2].strike()
