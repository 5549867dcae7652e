"""WorkQueue on SQS: batched sends (10 per call) and visibility changes."""

from __future__ import annotations

from typing import Any

from scrapersky.models import FanoutMessage, WorkMessage
from scrapersky.ports import WorkQueue

MAX_VISIBILITY_S = 43_199  # SQS limit is 12 h


class SqsWorkQueue(WorkQueue):
    def __init__(self, fanout_url: str, work_url: str, client: Any) -> None:
        self.fanout_url = fanout_url
        self.work_url = work_url
        self.sqs = client

    def _send(self, url: str, bodies: list[str], delay_s: int = 0) -> None:
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": b, **({"DelaySeconds": delay_s} if delay_s else {})}
                for i, b in enumerate(bodies[start : start + 10])
            ]
            pending = entries
            for _ in range(5):
                got = self.sqs.send_message_batch(QueueUrl=url, Entries=pending)
                failed = {f["Id"] for f in got.get("Failed", [])}
                pending = [e for e in pending if e["Id"] in failed]
                if not pending:
                    break
            if pending:
                raise RuntimeError(f"SQS refused {len(pending)} messages")

    def send_fanout(self, messages: list[FanoutMessage]) -> None:
        self._send(self.fanout_url, [m.model_dump_json(exclude_none=True) for m in messages])

    def send_work(self, messages: list[WorkMessage], delay_s: int = 0) -> None:
        self._send(self.work_url, [m.model_dump_json() for m in messages], min(900, max(0, int(delay_s))))

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.work_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(MAX_VISIBILITY_S, int(seconds))),
        )
