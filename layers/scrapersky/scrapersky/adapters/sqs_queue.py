"""WorkQueue on SQS: batched sends (10 per call) and visibility changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapersky.models import FanoutMessage, WorkMessage
from scrapersky.ports import WorkQueue

MAX_VISIBILITY_S = 43_199  # SQS limit is 12 h
MAX_ENTRIES = 10  # per SendMessageBatch call
MAX_CALL_BYTES = 1_000_000  # SQS caps a SendMessageBatch call at 1 MiB (1,048,576 bytes) of bodies; keep a margin
MAX_MESSAGE_BYTES = 1_048_576  # and one message at 1 MiB (256 KiB before 2025)


def _batches(bodies: list[str], delay_s: int) -> Iterator[list[dict[str, Any]]]:
    """Entries grouped so that no call exceeds 10 messages or the call's byte limit (UTF-8 bytes count)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for i, body in enumerate(bodies):
        n = len(body.encode())
        if n > MAX_MESSAGE_BYTES:
            raise ValueError(f"a message of {n} bytes is over the SQS limit")
        if batch and (len(batch) >= MAX_ENTRIES or size + n > MAX_CALL_BYTES):
            yield batch
            batch, size = [], 0
        batch.append({"Id": str(i), "MessageBody": body, **({"DelaySeconds": delay_s} if delay_s else {})})
        size += n
    if batch:
        yield batch


def send_bodies(sqs: Any, url: str, bodies: list[str], delay_s: int = 0) -> None:
    """Sends message bodies in batched calls, re-sending the entries SQS refused (a few times, then raises)."""
    for entries in _batches(bodies, delay_s):
        pending = entries
        for _ in range(5):
            got = sqs.send_message_batch(QueueUrl=url, Entries=pending)
            failed = {f["Id"] for f in got.get("Failed", [])}
            pending = [e for e in pending if e["Id"] in failed]
            if not pending:
                break
        if pending:
            raise RuntimeError(f"SQS refused {len(pending)} messages")


class SqsWorkQueue(WorkQueue):
    def __init__(self, fanout_url: str, work_url: str, client: Any) -> None:
        self.fanout_url = fanout_url
        self.work_url = work_url
        self.sqs = client

    def _send(self, url: str, bodies: list[str], delay_s: int = 0) -> None:
        send_bodies(self.sqs, url, bodies, delay_s)

    def send_fanout(self, messages: list[FanoutMessage], delay_s: int = 0) -> None:
        bodies = [m.model_dump_json(exclude_none=True) for m in messages]
        self._send(self.fanout_url, bodies, min(900, max(0, int(delay_s))))

    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None:
        self._send(self.work_url, [m.model_dump_json() for m in messages], min(900, max(0, int(delay_s))))

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.work_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(MAX_VISIBILITY_S, int(seconds))),
        )
