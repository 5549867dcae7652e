"""The work queue's heartbeat: a short visibility timeout, extended while a record is being worked on.

The work queue's visibility is short (WORK_VISIBILITY_S, 30 s) so that the messages of a worker that died come
back within that, not after a timeout sized for the longest fetch. While an invocation runs, a thread extends
the visibility of every record it holds every WORK_HEARTBEAT_S (10 s: a beat can be late or fail twice before a
record reappears). A record leaves the heartbeat when it is deferred (its own ChangeMessageVisibility is the
last word: it is made under the heartbeat's lock, after which no beat touches that record) or when its handling
raised (it comes back for a retry within the short visibility). A record that succeeded stays covered until the
invocation returns: SQS deletes it only then, and it must not reappear before. Beats stop at the invocation's
deadline, and a record whose receipt handle no longer works (it was delivered again) is dropped.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable

from scrapersky.models import FanoutMessage, WorkMessage
from scrapersky.observability import logger
from scrapersky.ports import WorkQueue

DEFAULT_VISIBILITY_S = 30
DEFAULT_INTERVAL_S = 10.0


class Heartbeat:
    def __init__(self, queue: WorkQueue, visibility_s: int, interval_s: float, deadline: float | None) -> None:
        self.queue = queue
        self.visibility_s = visibility_s
        self.interval_s = interval_s
        self.deadline = deadline  # time.monotonic() past which no beat is sent (the invocation is over)
        self.lock = threading.Lock()
        self.handles: set[str] = set()
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, queue: WorkQueue, remaining_ms: int | None) -> Heartbeat:
        visibility = int(os.environ.get("WORK_VISIBILITY_S", DEFAULT_VISIBILITY_S))
        interval = float(os.environ.get("WORK_HEARTBEAT_S", DEFAULT_INTERVAL_S))
        deadline = time.monotonic() + remaining_ms / 1000 if remaining_ms is not None else None
        return cls(queue, visibility, interval, deadline)

    def start(self, handles: Iterable[str]) -> Heartbeat:
        self.handles.update(h for h in handles if h)
        self._thread = threading.Thread(target=self._run, name="sqs-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def release(self, handle: str) -> None:
        """No more beats for this record (it failed: it comes back within the visibility timeout)."""
        with self.lock:
            self.handles.discard(handle)

    def last_word(self, handle: str, seconds: int) -> None:
        """The record's own visibility (a deferral): set after any beat in progress, and no beat after it."""
        with self.lock:
            self.handles.discard(handle)
            self.queue.change_visibility(handle, seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return
            self.beat()

    def beat(self) -> None:
        with self.lock:
            for handle in sorted(self.handles):
                try:
                    self.queue.change_visibility(handle, self.visibility_s)
                    self.beats += 1
                except Exception as e:  # e.g. ReceiptHandleIsInvalid: delivered again, no longer ours to extend
                    self.handles.discard(handle)
                    logger.warning("heartbeat dropped a record", extra={"error": type(e).__name__})


class HeartbeatQueue(WorkQueue):
    """The worker's view of the queue during one invocation: a visibility change on a record goes through the
    heartbeat, so it wins over a late beat."""

    def __init__(self, inner: WorkQueue, heartbeat: Heartbeat) -> None:
        self.inner = inner
        self.heartbeat = heartbeat

    def send_fanout(self, messages: list[FanoutMessage], delay_s: int = 0) -> None:
        self.inner.send_fanout(messages, delay_s)

    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None:
        self.inner.send_work(messages, delay_s)

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.heartbeat.last_word(receipt_handle, seconds)
