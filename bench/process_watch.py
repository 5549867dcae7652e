"""Which handler processes a batch's path had when: a cold stack starts them one invocation at a time, so a
benchmark that counts from a stack's start shows when each came up."""

from __future__ import annotations

import threading
import time

from devstack.stack import LocalStack


class ProcessWatch:
    """When each handler process of the functions on a batch's path came up (a cold stack starts them one
    invocation at a time): sampled every 0.2 s from the stack's process table."""

    FUNCTIONS = ("FanoutFunction", "WorkerFunction")

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.seen: dict[str, dict[int, float]] = {f: {} for f in self.FUNCTIONS}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProcessWatch:
        self._sample()  # what was already up before the batch: time 0
        for pids in self.seen.values():
            for p in pids:
                pids[p] = 0.0
        self.thread.start()
        return self

    def _sample(self) -> None:
        now = time.time()
        for f, pids in self.seen.items():
            for p in self.stack.handler_pids(f):
                pids.setdefault(p, now)

    def _run(self) -> None:
        while not self.done.wait(0.2):
            self._sample()

    def stop(self, started: float) -> dict[str, list[float]]:
        """Per function: seconds after `started` when each of its processes was first seen (0: already up)."""
        self.done.set()
        self.thread.join()
        return {
            f: sorted(round(max(0.0, t - started) if t else 0.0, 1) for t in p.values()) for f, p in self.seen.items()
        }
