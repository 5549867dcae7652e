"""Fault injection for chaos runs of the local stack: a botocore hook that makes a share of the DynamoDB and SQS
calls fail the way AWS calls do. Only `bootstrap.build` registers it, and only when SCRAPERSKY_FAULTS is set; the
deployed template never sets it (the local stack sets it for a chaos run only).

    SCRAPERSKY_FAULTS="rate=0.05,seed=7,log=/tmp/faults.log,switch=/tmp/faults.on"

- `rate`: the share of calls (attempts, retries included) that fail, split evenly between three faults:
  `throttle` (400 ProvisionedThroughputExceededException on DynamoDB, ThrottlingException on SQS), `error500`
  (500 InternalServerError / InternalFailure) and `timeout_after` (the call reaches the service and is applied,
  then the caller sees a read timeout, so botocore retries a write that was already applied). `kinds` picks a
  subset (`kinds=throttle+timeout_after`).
- The error answers are returned from `before-send` as the service's own error responses, so botocore parses and
  retries them exactly as it would on AWS (standard mode: throttles and 5xx are retryable); the timeout is a
  `ReadTimeoutError` raised after the send, which botocore treats as the transient failure it is.
- `seed`: each process draws from Random(f"{seed}:{pid}"): reproducible per process, different across them.
- `log`: a file each injected fault appends a line to (`epoch service operation kind`), for the run's figures.
- `switch`: faults are injected only while this file exists (the run turns them off to time the recovery).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

ENV = "SCRAPERSKY_FAULTS"
KINDS = ("throttle", "error500", "timeout_after")
SERVICES = ("dynamodb", "sqs")

_ERRORS = {  # (service, kind) -> (status, JSON error type)
    ("dynamodb", "throttle"): (400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
    ("dynamodb", "error500"): (500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
    ("sqs", "throttle"): (400, "com.amazonaws.sqs#ThrottlingException"),
    ("sqs", "error500"): (500, "com.amazonaws.sqs#InternalFailure"),
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


@dataclass
class FaultInjector:
    rate: float
    seed: str = "0"
    kinds: tuple[str, ...] = KINDS
    log_path: str | None = None
    switch_path: str | None = None
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.seed}:{os.getpid()}")
        self.lock = threading.Lock()
        self.http = URLLib3Session(timeout=30)

    @classmethod
    def from_spec(cls, spec: str) -> FaultInjector:
        opts = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
        kinds = tuple(k for k in opts.get("kinds", "+".join(KINDS)).split("+") if k in KINDS)
        return cls(
            rate=float(opts.get("rate", "0.05")),
            seed=opts.get("seed", "0"),
            kinds=kinds or KINDS,
            log_path=opts.get("log"),
            switch_path=opts.get("switch"),
        )

    def register(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        if service in SERVICES:
            client.meta.events.register(f"before-send.{client.meta.service_model.service_id.hyphenize()}", self)

    def _draw(self) -> str | None:
        if self.switch_path and not os.path.exists(self.switch_path):
            return None
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            return self.rng.choice(self.kinds)

    def __call__(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        kind = self._draw()
        if kind is None:
            return None
        service, operation = event_name.split(".")[1:3]
        self._record(service, operation, kind)
        if kind == "timeout_after":
            self.http.send(request)  # applied by the service; the answer is lost on the way back
            raise ReadTimeoutError(endpoint_url=request.url, error="injected: read timeout after the call applied")
        status, error_type = _ERRORS[(service, kind)]
        body = json.dumps({"__type": error_type, "message": f"injected {kind}"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
        return AWSResponse(request.url, status, headers, _Body(body))

    def _record(self, service: str, operation: str, kind: str) -> None:
        with self.lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(f"{time.time():.3f} {service} {operation} {kind}\n")


def from_env(env: dict[str, str] | None = None) -> FaultInjector | None:
    """The injector SCRAPERSKY_FAULTS asks for, or None (always, unless a chaos run set the variable)."""
    spec = (os.environ if env is None else env).get(ENV, "").strip()
    return FaultInjector.from_spec(spec) if spec else None
