"""The work queue's heartbeat: every record an invocation holds stays hidden while it is worked on; a record that
is deferred or failed gets no beat after that, and a deferral's own visibility wins over a late beat."""

from __future__ import annotations

import threading
import time
from typing import Any

from scrapersky import entrypoints
from scrapersky.heartbeat import Heartbeat, HeartbeatQueue

from tests.conftest import LambdaContext
from tests.fakes.deps import make_deps
from tests.fakes.edges import FakeQueue


def _wait(condition: Any, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def _beats(queue: FakeQueue, handle: str) -> list[int]:
    return [s for h, s in queue.visibility if h == handle]


def test_every_record_in_flight_is_extended_until_it_leaves():
    queue = FakeQueue()
    beat = Heartbeat(queue, visibility_s=30, interval_s=0.02, deadline=None).start(["a", "b", "c"])
    try:
        assert _wait(lambda: all(len(_beats(queue, h)) >= 2 for h in "abc"))
        beat.release("b")  # its handling raised: it comes back within the visibility timeout
        beat.last_word("c", 7)  # deferred for 7 s
        seen = len(queue.visibility)
        assert _wait(lambda: len(queue.visibility) >= seen + 3)
    finally:
        beat.stop()
    assert set(_beats(queue, "a")) == {30}
    assert len(_beats(queue, "b")) == len([s for s in _beats(queue, "b") if s == 30])
    after = queue.visibility[seen:]
    assert all(h == "a" for h, _ in after), after
    assert _beats(queue, "c")[-1] == 7


def test_a_deferral_wins_over_a_beat_in_progress():
    class SlowQueue(FakeQueue):
        def __init__(self) -> None:
            super().__init__()
            self.beating = threading.Event()
            self.go_on = threading.Event()

        def change_visibility(self, receipt_handle: str, seconds: int) -> None:
            if seconds == 30 and not self.go_on.is_set():
                self.beating.set()
                self.go_on.wait(5)
            super().change_visibility(receipt_handle, seconds)

    queue = SlowQueue()
    beat = Heartbeat(queue, visibility_s=30, interval_s=0.01, deadline=None).start(["a"])
    assert queue.beating.wait(5)  # a beat for "a" is under way (its answer is slow)
    deferral = threading.Thread(target=HeartbeatQueue(queue, beat).change_visibility, args=("a", 5))
    deferral.start()
    time.sleep(0.05)
    queue.go_on.set()
    deferral.join(5)
    time.sleep(0.05)
    beat.stop()
    assert _beats(queue, "a")[-1] == 5  # the late beat landed first; nothing after the deferral


def test_beats_stop_at_the_invocation_deadline_and_drop_a_handle_that_no_longer_works():
    class Stale(FakeQueue):
        def change_visibility(self, receipt_handle: str, seconds: int) -> None:
            if receipt_handle == "old":
                raise RuntimeError("ReceiptHandleIsInvalid")
            super().change_visibility(receipt_handle, seconds)

    queue = Stale()
    beat = Heartbeat(queue, visibility_s=30, interval_s=0.01, deadline=time.monotonic() + 0.1).start(["old", "a"])
    assert _wait(lambda: beat._thread is not None and not beat._thread.is_alive(), 2)
    beat.stop()
    assert "old" not in beat.handles
    n = len(queue.visibility)
    time.sleep(0.05)
    assert len(queue.visibility) == n


def test_the_worker_entry_point_beats_for_its_records_and_a_deferral_has_the_last_word(monkeypatch):
    monkeypatch.setenv("WORK_HEARTBEAT_S", "0.02")
    monkeypatch.setenv("WORK_VISIBILITY_S", "30")
    deps = make_deps()
    seen: list[str] = []

    def factory(d: Any) -> Any:
        def on_record(record: Any) -> str:
            seen.append(record.receipt_handle)
            time.sleep(0.1)  # long enough for several beats
            if record.receipt_handle == "rh-1":
                d.queue.change_visibility(record.receipt_handle, 9)  # what a deferral does
                raise RuntimeError("deferred")
            return "done"

        return on_record

    handler = entrypoints._sqs_handler(factory, deps_factory=lambda: deps, heartbeat=True)
    records = [
        {"messageId": f"m{i}", "receiptHandle": f"rh-{i}", "body": "{}", "attributes": {}, "eventSource": "aws:sqs"}
        for i in range(3)
    ]
    out = handler({"Records": records}, LambdaContext())  # type: ignore[arg-type]
    assert out["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert seen == ["rh-0", "rh-1", "rh-2"]
    assert set(_beats(deps.queue, "rh-2")) == {30} and _beats(deps.queue, "rh-2")  # waiting its turn: extended
    assert _beats(deps.queue, "rh-1")[-1] == 9  # the deferral's visibility is the last word
    assert deps.queue is not None and not isinstance(deps.queue, HeartbeatQueue)  # the container's deps untouched
    n = len(deps.queue.visibility)
    time.sleep(0.06)
    assert len(deps.queue.visibility) == n  # no beat after the invocation returned
