"""Tolerated failures: the arithmetic at its boundaries, and a batch past its tolerance on the fakes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from scrapersky.domain.tolerance import exceeded
from scrapersky.models import BatchOptions, BatchStatus, CreateBatchRequest, CreateTenantRequest
from scrapersky.services import admin, batches, event_delivery

from tests.fakes import FakeDeps, failure, make_deps, page
from tests.unit.seeding import drain, urls

TENANT = "t_acme"


@pytest.mark.parametrize(
    ("options", "succeeded", "failed", "total", "expected"),
    [
        ({"tolerated_failure_count": 0}, 18, 1, 100, False),  # 19 finished: not judged yet
        ({"tolerated_failure_count": 0}, 19, 1, 100, True),  # 20 finished, 1 > 0
        ({"tolerated_failure_count": 1}, 19, 1, 100, False),  # 1 is not more than 1
        ({"tolerated_failure_count": 0}, 4, 1, 5, True),  # a small batch is judged when all finished
        ({"tolerated_failure_count": 0}, 3, 1, 5, False),  # ... and not before
        ({"tolerated_failure_pct": 10}, 18, 2, 100, False),  # 2 is not more than 10 % of 20
        ({"tolerated_failure_pct": 10}, 17, 3, 100, True),
        ({"tolerated_failure_pct": 0}, 19, 1, 100, True),
        ({"tolerated_failure_pct": 0}, 20, 0, 100, False),
        ({"tolerated_failure_pct": 100}, 0, 20, 100, False),  # everything may fail
        ({"tolerated_failure_pct": 50, "tolerated_failure_count": 5}, 14, 6, 100, True),  # either threshold
        ({"tolerated_failure_pct": 50, "tolerated_failure_count": 50}, 9, 11, 100, True),
        ({}, 0, 20, 20, False),  # no tolerance set: never stops early
    ],
)
def test_the_tolerance_is_judged_once_20_items_or_all_finished(options, succeeded, failed, total, expected):
    assert exceeded(options, succeeded, failed, 0, total) is expected


@pytest.mark.parametrize(
    "bad", [{"tolerated_failure_pct": 101}, {"tolerated_failure_pct": -1}, {"tolerated_failure_count": -1}]
)
def test_a_tolerance_out_of_range_is_refused(bad):
    with pytest.raises(ValidationError):
        BatchOptions(**bad)


def _run(deps: FakeDeps, n: int, fail_first: int, **options: object) -> str:
    admin.create_tenant(deps, CreateTenantRequest(name="acme"), tenant_id=TENANT)
    bad = set(urls(n)[:fail_first])
    deps.fetcher.default = lambda call: failure("http_500", permanent=True) if call.url in bad else page(call.url)
    req = CreateBatchRequest(items=urls(n), options=BatchOptions(max_attempts=1, **options), callback_url=None)
    got = batches.create_batch(deps, TENANT, req)
    drain(deps)
    return got["batch_id"]


def test_a_batch_past_its_tolerated_failures_stops_and_ends_failed_with_cancelled_leftovers():
    deps = make_deps(proxies=1)
    batch_id = _run(deps, 60, fail_first=25, tolerated_failure_count=0)
    view = batches.get_batch(deps, TENANT, batch_id)
    assert view["status"] == "failed" and view["reason"] == "tolerated_failure_exceeded"
    assert view["succeeded"] + view["failed"] + view["cancelled"] == 60
    assert view["failed"] >= 1 and view["cancelled"] > 0 and view["pending"] == view["in_progress"] == 0
    fetched = {c.url for c in deps.fetcher.fetches}
    cancelled = [i for (b, _), i in deps.items.items.items() if b == batch_id and i.status == "cancelled"]
    assert all(i.item not in fetched for i in cancelled)  # cancelled without being fetched
    (msg, _) = deps.events.queue.sent[-1]
    event_delivery.handle(deps, msg)
    body = json.loads(deps.events.bus.events[-1][2])
    assert (body["status"], body["reason"]) == ("failed", "tolerated_failure_exceeded")
    assert (body["failed"], body["cancelled"]) == (view["failed"], view["cancelled"])


def test_a_batch_within_its_tolerance_ends_as_its_counts_say():
    deps = make_deps(proxies=1)
    batch_id = _run(deps, 30, fail_first=3, tolerated_failure_pct=10)
    view = batches.get_batch(deps, TENANT, batch_id)
    assert (view["status"], view["reason"], view["failed"], view["cancelled"]) == ("partial", None, 3, 0)


def test_a_small_batch_that_fails_past_its_tolerance_at_its_end_ends_failed_with_the_reason():
    deps = make_deps(proxies=1)
    batch_id = _run(deps, 5, fail_first=1, tolerated_failure_count=0)
    view = batches.get_batch(deps, TENANT, batch_id)
    assert (view["status"], view["reason"], view["succeeded"], view["failed"]) == (
        BatchStatus.FAILED.value,
        "tolerated_failure_exceeded",
        4,
        1,
    )
