"""What the local stack does before it prints "ready", so that a user's first request finds its function up.

ministack runs each function's handlers in processes of its own, one per concurrent invocation; a new one unpacks
the function's code and the layer (~100 MB, 4,000 files) and imports its handler. Measured here (bench.first_requests)
the first call of each function took 4-9 s after "ready"; unpacked on the disk alone a process took 9-12 s, in
memory (/dev/shm) ~1 s. A user's first batch needs several processes of the queue consumers at once: on a fresh stack
(bench.rate_limits, its cold row) the first fan-out process came up 15 s after the batch was created, the four worker
processes 55-56 s after it, and the site saw the first request at 62 s. So each consumer gets as many invocations at
once as its event source mapping may run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
API_FUNCTIONS = ("BatchesFunction", "StatusFunction", "ScrapeFunction", "AdminFunction")
QUEUE_FUNCTIONS = ("FanoutFunction", "WorkerFunction", "DeadLetterFunction", "EventsFunction")


def scratch_dir() -> str | None:
    """Where ministack unpacks the handler processes: SCRAPERSKY_STACK_TMPDIR, else memory (/dev/shm) when it
    has room, else None (the system's temporary directory)."""
    chosen = os.environ.get("SCRAPERSKY_STACK_TMPDIR")
    if chosen:
        return chosen
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        if os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 4 << 30:
            return str(shm)
    return None


def warm_events(api_key: str) -> dict[str, bytes]:
    """Function logical id -> an event that changes nothing: GET /health (a 404 from the API functions that do not
    serve it, after their dependencies are built), an SQS event without records, the seeded tenant's
    authorization. Not the maintenance sweep: the schedule runs it, no user waits on it."""
    health = (ROOT / "events" / "api_health.json").read_bytes()
    authorize = json.loads((ROOT / "events" / "authorizer_request.json").read_text())
    authorize["headers"]["Authorization"] = f"Bearer {api_key}"
    no_records = json.dumps({"Records": []}).encode()  # answered with no work (entrypoints._sqs_handler)
    events = dict.fromkeys(API_FUNCTIONS, health) | dict.fromkeys(QUEUE_FUNCTIONS, no_records)
    return {**events, "AuthorizerFunction": json.dumps(authorize).encode()}


def concurrency(lam: Any) -> dict[str, int]:
    """Function name -> how many of its invocations its event source mappings may run at once."""
    wanted: dict[str, int] = {}
    for esm in lam.list_event_source_mappings()["EventSourceMappings"]:
        limit = (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if limit:
            name = esm["FunctionArn"].rsplit(":", 1)[-1]
            wanted[name] = max(wanted.get(name, 0), int(limit))
    return wanted


def warm(lam: Any, api_key: str, log: Callable[[str], None]) -> int:
    """Invoke each function once, a queue consumer as many times at once as its event source mapping may run,
    all in parallel; returns how many invocations were made."""
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    at_once = concurrency(lam)
    calls = []
    for logical_id, event in warm_events(api_key).items():
        for name in (n for n in names if logical_id in n):
            calls += [(name, event)] * at_once.get(name, 1)
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        answers = list(pool.map(lambda call: lam.invoke(FunctionName=call[0], Payload=call[1]), calls))
    failed = [name for (name, _), answer in zip(calls, answers, strict=True) if answer.get("FunctionError")]
    if failed:
        log(f"warm-up: {sorted(set(failed))} answered with an error (see the stack's ministack.log)")
    return len(calls)
